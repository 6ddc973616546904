"""Reads one machine's signals from its OPC UA server through a subscription.

The connection is watched and, when the server restarts or the network drops, re-created with
its subscription after a growing back-off: a machine switched off at night must not need the
agent to be restarted in the morning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from asyncua import Client, Node, ua

from shopfloor.messages import AssetPath, Quality, Reading
from shopfloor.plant import Machine, Signal

log = logging.getLogger(__name__)

Emit = Callable[[AssetPath, Reading], None]
MAX_BACKOFF_S = 5.0  # a machine switched back on is read again within seconds


def endpoint_on_host(endpoint: str, host: str | None) -> str:
    """The endpoint with its host replaced (simulators or machines reached under another name)."""
    if not host:
        return endpoint
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))


def _quality(status: ua.StatusCode) -> Quality:
    if status.is_good():
        return Quality.GOOD
    return Quality.UNCERTAIN if status.is_uncertain() else Quality.BAD


class _DataChangeHandler:
    """asyncua calls this for every change of a monitored node."""

    def __init__(self, path: AssetPath, signals: dict[str, Signal], emit: Emit):
        self.path, self.signals, self.emit = path, signals, emit

    def datachange_notification(self, node: Node, value: Any, data: Any) -> None:
        signal = self.signals.get(node.nodeid.to_string())
        if signal is None or not isinstance(value, int | float | str | bool):
            log.warning(
                "ignoring %s = %r from %s: not a scalar of a known signal", node, value, self.path
            )
            return
        data_value = data.monitored_item.Value
        ts = data_value.SourceTimestamp or data_value.ServerTimestamp or datetime.now(UTC)
        reading = Reading(
            signal=signal.id,
            value=value,
            ts=ts if ts.tzinfo else ts.replace(tzinfo=UTC),
            quality=_quality(data_value.StatusCode),
            unit=signal.unit,
        )
        self.emit(self.path, reading)


class OpcUaSource:
    """Subscribes to every signal of one machine and emits readings as they change."""

    def __init__(
        self,
        path: AssetPath,
        machine: Machine,
        emit: Emit,
        host: str | None = None,
        publishing_interval_ms: int = 250,
    ):
        if machine.opcua is None:
            raise ValueError(f"machine {machine.id} has no OPC UA endpoint")
        self.path, self.machine, self.emit = path, machine, emit
        self.namespace = machine.opcua.namespace
        self.url = endpoint_on_host(machine.opcua.endpoint, host)
        self.publishing_interval_ms = publishing_interval_ms
        self.reconnects = 0

    async def run(self) -> None:
        """Keep the subscription alive until cancelled."""
        backoff = 1.0
        while True:
            try:
                await self._subscribe_and_watch()
            except Exception as exc:  # any failure of one server must not stop the agent
                log.warning(
                    "%s at %s: %s; retrying in %.0f s",
                    self.machine.id,
                    self.url,
                    exc or type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self.reconnects += 1
            else:
                backoff = 1.0

    async def _subscribe_and_watch(self) -> None:
        client = Client(self.url, timeout=5)
        await client.connect()
        try:
            namespace = await client.get_namespace_index(self.namespace)
            by_node = {
                ua.NodeId.from_string(self.machine.node_id(s, namespace)).to_string(): s
                for s in self.machine.signals
            }
            handler = _DataChangeHandler(self.path, by_node, self.emit)
            subscription = await client.create_subscription(self.publishing_interval_ms, handler)
            nodes = [client.get_node(node_id) for node_id in by_node]
            await subscription.subscribe_data_change(nodes, queuesize=100)
            log.info("%s: subscribed to %d signals at %s", self.machine.id, len(nodes), self.url)
            while True:
                await asyncio.sleep(1)
                await client.check_connection()
        finally:
            await _disconnect_quietly(client)


async def _disconnect_quietly(client: Client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), timeout=2)
    except Exception:  # the connection is already gone; nothing left to close cleanly
        client.disconnect_socket()
