"""Every use of asyncua's private internals, in one place: tests/test_library_adapters.py fails
naming the one a new asyncua no longer has, before a deployment finds out.

One is used: `Subscription._subscribe`, the only way asyncua offers to monitor nodes with both a
filter (the deadband) and a sampling interval; its public helpers take one or the other.
asyncua is imported only to check it: the contract package does not depend on it, while the
edge and the simulators, which do, install it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncua import Node, ua
    from asyncua.common.subscription import Subscription

__all__ = ["monitor", "unmet"]

_ARGUMENTS = ("nodes", "mfilter", "queuesize", "sampling_interval")


async def monitor(
    subscription: Subscription,
    nodes: Sequence[Node],
    mfilter: ua.MonitoringFilter | None,
    queuesize: int,
    sampling_interval: float,
) -> list[int | ua.StatusCode]:
    """Monitor `nodes` with the filter and the sampling interval at once; for each node, its
    monitored item's id or the status the server refused it with."""
    results: list[Any] = await subscription._subscribe(
        list(nodes), mfilter=mfilter, queuesize=queuesize, sampling_interval=sampling_interval
    )
    return results


def unmet() -> list[str]:
    """What `monitor` assumes of asyncua and the installed one does not hold, each naming
    asyncua's version and the attribute; empty when all holds."""
    from asyncua.common.subscription import Subscription

    where = f"asyncua {version('asyncua')}: asyncua.common.subscription.Subscription._subscribe"
    method = getattr(Subscription, "_subscribe", None)
    if not inspect.iscoroutinefunction(method):
        return [f"{where} is {method!r}, not a coroutine method"]
    parameters = inspect.signature(method).parameters
    return [f"{where} takes no argument {name!r}" for name in _ARGUMENTS if name not in parameters]
