"""Sources that come up with the agent: a machine powered on with its edge box, a demo whose
simulator starts beside it. Waiting for them quietly connects them at once, rather than after a
refused connection, a warning and a second of backoff."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

PROBE_S = 0.1  # between two probes of a server not listening yet


async def until_listening(host: str | None, port: int | None, wait_s: float) -> None:
    """Return once something accepts TCP connections at `host`:`port`, or after `wait_s`."""
    if wait_s <= 0 or host is None or port is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_S)
        except (OSError, TimeoutError):
            await asyncio.sleep(PROBE_S)
            continue
        writer.close()
        return
    log.info("%s:%d not listening after %g s; connecting anyway", host, port, wait_s)
