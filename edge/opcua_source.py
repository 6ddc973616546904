"""Reads one machine's signals from its OPC UA server: subscribed where it can, polled where not.

The connection is watched and, when the server restarts or the network drops, re-created with
its subscription after a growing back-off: a machine switched off at night must not need the
agent to be restarted in the morning. Servers (or single nodes) that refuse subscriptions are
polled instead, with the same deadband applied on this side, so every machine reads alike.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, TypeGuard
from urllib.parse import urlsplit, urlunsplit

from asyncua import Client, Node, ua
from asyncua.crypto import security_policies

from edge.config import NodeMapping, OpcUaMode, OpcUaSecurity, OpcUaSourceConfig, SecurityPolicy
from edge.listening import until_listening
from shopfloor._asyncua import monitor
from shopfloor.messages import AssetPath, Quality, Reading, excerpt
from shopfloor.plant import DEFAULT_OPCUA_NAMESPACE, Machine, Signal

log = logging.getLogger(__name__)

Emit = Callable[[AssetPath, Reading], None]
MAX_BACKOFF_S = 5.0  # a machine switched back on is read again within seconds
CONNECTION_CHECK_S = 1.0
_POLICIES: dict[SecurityPolicy, type[security_policies.SecurityPolicy]] = {
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES128_SHA256_RSAOAEP: security_policies.SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicy.AES256_SHA256_RSAPSS: security_policies.SecurityPolicyAes256Sha256RsaPss,
}
# A node that does not exist cannot be polled either; anything else refused is polled instead.
_MISSING_NODE = {ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid}


def endpoint_on_host(endpoint: str, host: str | None) -> str:
    """The endpoint with its host replaced (simulators or machines reached under another name)."""
    if not host:
        return endpoint
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))


class UnknownNamespaceError(LookupError):
    """A node id names a namespace URI the server does not have."""


def with_namespace_index(node: str, namespaces: list[str]) -> str:
    """The node id with its `nsu=<uri>` replaced by the server's index of that namespace."""
    if node.startswith("nsu="):
        uri, rest = node[4:].split(";", 1)
        if uri not in namespaces:
            raise UnknownNamespaceError(f"the server has no namespace {uri}")
        node = f"ns={namespaces.index(uri)};{rest}"
    return str(ua.NodeId.from_string(node).to_string())


def status_name(status: ua.StatusCode) -> str:
    """An OPC UA status code as its name and number, e.g. BadNodeIdUnknown (0x80340000)."""
    return f"{ua.status_codes.get_name_and_doc(status.value)[0]} (0x{status.value:08X})"


def _quality(status: ua.StatusCode) -> Quality:
    if status.is_good():
        return Quality.GOOD
    return Quality.UNCERTAIN if status.is_uncertain() else Quality.BAD


@dataclass(frozen=True)
class NodeTarget:
    """One node read into one signal, with how often it is sampled and what change counts."""

    signal: Signal
    node: str
    sampling_interval_ms: float
    deadband: float


@dataclass(frozen=True)
class OpcUaTarget:
    """Everything needed to read one machine: where, as whom, which nodes, how."""

    path: AssetPath
    machine_id: str
    url: str
    nodes: tuple[NodeTarget, ...]
    settings: OpcUaSourceConfig

    @classmethod
    def build(
        cls, path: AssetPath, machine: Machine, settings: OpcUaSourceConfig, host: str | None
    ) -> OpcUaTarget:
        """Fill what the edge config leaves out from the plant file."""
        endpoint = settings.endpoint or (machine.opcua.endpoint if machine.opcua else None)
        if endpoint is None:
            raise ValueError(f"machine {machine.id} has no OPC UA endpoint")
        namespace = machine.opcua.namespace if machine.opcua else DEFAULT_OPCUA_NAMESPACE
        signals = {signal.id: signal for signal in machine.signals}
        mapped = settings.nodes or [
            _default_mapping(machine, signal, namespace) for signal in machine.signals
        ]
        nodes = tuple(
            NodeTarget(
                signal=signals[mapping.signal],
                node=mapping.node,
                sampling_interval_ms=(
                    settings.sampling_interval_ms
                    if mapping.sampling_interval_ms is None
                    else mapping.sampling_interval_ms
                ),
                deadband=settings.deadband if mapping.deadband is None else mapping.deadband,
            )
            for mapping in mapped
        )
        url = endpoint_on_host(endpoint, host)
        return cls(path=path, machine_id=machine.id, url=url, nodes=nodes, settings=settings)


def _default_mapping(machine: Machine, signal: Signal, namespace: str) -> NodeMapping:
    """The plant's explicit node, else the one the simulator (and the plant's convention) uses."""
    node = signal.node or f"nsu={namespace};s={machine.id}.{signal.id}"
    return NodeMapping(signal=signal.id, node=node)


class _ChangeFilter:
    """The absolute deadband as OPC UA defines it: a value is reported when it moved more than
    the deadband from the last value reported. Polled nodes need it here; monitored ones get it
    from the server too, but some servers compare with the previous sample instead, so the agent
    applies it again and every machine reads alike."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[object, datetime | None]] = {}

    def changed(self, key: str, value: object, ts: datetime | None, deadband: float) -> bool:
        previous = self._last.get(key)
        if previous is not None:
            last, last_ts = previous
            if value == last and ts == last_ts:
                return False  # the same sample, read again
            if _within_deadband(last, value, deadband):
                return False
        self._last[key] = (value, ts)
        return True


def _within_deadband(last: object, value: object, deadband: float) -> bool:
    if _is_number(last) and _is_number(value):
        if not (math.isfinite(last) and math.isfinite(value)):
            return False
        return abs(value - last) <= deadband if deadband > 0 else value == last
    return value == last


class _NodeProblems:
    """What is wrong with each node, logged when it starts or changes, and once more with its
    repeat count when it changes or ends: a node polled every second logs once, not every second."""

    def __init__(self, machine_id: str) -> None:
        self.machine_id = machine_id
        self._current: dict[str, tuple[str, int]] = {}  # node id -> problem, times seen

    def report(self, node_id: str, what: str, problem: str) -> None:
        """`what` happened to the node because of `problem`; a new problem is logged."""
        previous = self._current.get(node_id)
        if previous is not None and previous[0] == problem:
            self._current[node_id] = (problem, previous[1] + 1)
            return
        self._ended(node_id, "changed")
        self._current[node_id] = (problem, 1)
        log.warning("%s: %s: %s", self.machine_id, what, problem)

    def clear(self, node_id: str) -> None:
        self._ended(node_id, "ended")

    def _ended(self, node_id: str, how: str) -> None:
        previous = self._current.pop(node_id, None)
        if previous is not None:
            problem, times = previous
            log.info("%s: %s: %s %s after %d reads", self.machine_id, node_id, problem, how, times)


class OpcUaSource:
    """Reads every mapped node of one machine and emits readings as they change."""

    def __init__(self, target: OpcUaTarget, emit: Emit, startup_wait_s: float = 0.0):
        self.target, self.emit, self.startup_wait_s = target, emit, startup_wait_s
        self.settings = target.settings
        self.reconnects = 0
        self.rejected = 0  # values that were not readings of their signal
        self.connected = False
        self.down_since: datetime | None = datetime.now(UTC)  # not connected since; None if it is
        self.polled_nodes = 0  # how many nodes the current connection reads by polling
        self.connected_once = False  # since the last failure
        self._filter = _ChangeFilter()
        self._problems = _NodeProblems(target.machine_id)

    @property
    def url(self) -> str:
        return self.target.url

    async def run(self) -> None:
        """Keep reading until cancelled, whatever the server or the network does."""
        parts = urlsplit(self.url)
        await until_listening(parts.hostname, parts.port, self.startup_wait_s)
        backoff = 1.0
        while True:
            try:
                await self._session()
            except Exception as exc:  # any failure of one server must not stop the agent
                _stop_if_cancelled()
                if self.connected_once:  # a lost session: try again soon, then back off
                    backoff, self.connected_once = 1.0, False
                log.warning(
                    "%s at %s: %s; retrying in %.0f s",
                    self.target.machine_id,
                    self.url,
                    exc or type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self.reconnects += 1

    async def _session(self) -> None:
        client = await self._client()
        await client.connect()
        try:
            nodes = await self._resolve(client)
            polled = (
                nodes
                if self.settings.mode is OpcUaMode.POLL
                else await self._subscribe(client, nodes)
            )
            self.connected, self.connected_once, self.polled_nodes = True, True, len(polled)
            self.down_since = None
            await self._watch(client, polled)
        finally:
            if self.connected:
                self.down_since = datetime.now(UTC)
            self.connected = False
            await disconnect_quietly(client)

    async def _client(self) -> Client:
        client = Client(self.url, timeout=5)
        if self.settings.username is not None:
            client.set_user(self.settings.username)
        if self.settings.password is not None:
            client.set_password(self.settings.password.get_secret_value())
        if self.settings.security is not None:
            await secure_client(client, self.settings.security)
        return client

    async def _resolve(self, client: Client) -> dict[str, NodeTarget]:
        """Node id (with the server's namespace index) -> what it is read into. A node in a
        namespace the server lacks is left out, named in the log: the others are still read."""
        namespaces = await client.get_namespace_array()
        resolved: dict[str, NodeTarget] = {}
        for target in self.target.nodes:
            try:
                resolved[with_namespace_index(target.node, namespaces)] = target
            except UnknownNamespaceError as exc:
                log.warning(
                    "%s: node %s (%s) not read: %s (the server's: %s)",
                    self.target.machine_id,
                    target.node,
                    target.signal.id,
                    exc,
                    excerpt(", ".join(namespaces)),
                )
        return resolved

    async def _subscribe(
        self, client: Client, nodes: dict[str, NodeTarget]
    ) -> dict[str, NodeTarget]:
        """Subscribe to every node that accepts it; return those that must be polled."""
        if not nodes:
            return {}
        handler = _DataChangeHandler(self, nodes)
        try:
            subscription = await client.create_subscription(
                self.settings.publishing_interval_ms, handler
            )
        except ua.UaStatusCodeError as exc:
            if self.settings.mode is OpcUaMode.SUBSCRIBE:
                raise
            log.warning(
                "%s: the server refuses subscriptions (%s); polling every %g s",
                self.target.machine_id,
                exc,
                self.settings.poll_interval_s,
            )
            return nodes
        # A deadband filter on a text node is refused by some servers and breaks others.
        current = await client.read_attributes([client.get_node(node_id) for node_id in nodes])
        numeric = {
            node_id
            for node_id, data in zip(nodes, current, strict=True)
            if data.Value is not None and _is_number(data.Value.Value)
        }

        def key(item: tuple[str, NodeTarget]) -> tuple[float, float]:
            node_id, target = item
            return target.sampling_interval_ms, target.deadband if node_id in numeric else 0.0

        polled: dict[str, NodeTarget] = {}
        subscribed = 0
        for (sampling, deadband), group in groupby(sorted(nodes.items(), key=key), key=key):
            items = list(group)
            results = await monitor(
                subscription,
                [client.get_node(node_id) for node_id, _ in items],
                mfilter=_deadband_filter(deadband),
                queuesize=100,
                sampling_interval=sampling,
            )
            for (node_id, target), result in zip(items, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    polled.update(self._refused(node_id, target, result))
                else:
                    subscribed += 1
        log.info(
            "%s: subscribed to %d of %d nodes at %s%s",
            self.target.machine_id,
            subscribed,
            len(self.target.nodes),
            self.url,
            f", polling {len(polled)}" if polled else "",
        )
        return polled

    def _refused(
        self, node_id: str, target: NodeTarget, status: ua.StatusCode
    ) -> dict[str, NodeTarget]:
        machine = self.target.machine_id
        name = status_name(status)
        if status.value in _MISSING_NODE or self.settings.mode is OpcUaMode.SUBSCRIBE:
            log.warning("%s: node %s (%s) refused: %s", machine, node_id, target.signal.id, name)
            return {}
        log.warning("%s: node %s cannot be monitored (%s); polled", machine, node_id, name)
        return {node_id: target}

    async def _watch(self, client: Client, polled: dict[str, NodeTarget]) -> None:
        """Poll what must be polled; notice a dead connection within about a second."""
        interval = self.settings.poll_interval_s
        nodes = [client.get_node(node_id) for node_id in polled]
        next_poll = time.monotonic()
        while True:
            if polled and time.monotonic() >= next_poll:
                values = await client.read_attributes(nodes)
                for (node_id, target), data in zip(polled.items(), values, strict=True):
                    self.accept(node_id, target, data)
                next_poll += interval
            else:
                await client.check_connection()
            await asyncio.sleep(
                min(CONNECTION_CHECK_S, max(next_poll - time.monotonic(), 0)) if polled else 1.0
            )

    def accept(self, node_id: str, target: NodeTarget, data: ua.DataValue) -> None:
        """Emit one sampled value (from a notification or a poll) when it is a new reading. A
        read the server answered with a bad status and no value is logged with that status; a
        value that is not one of its signal (a string on a temperature, an out-of-range
        timestamp) is counted and logged, never sent."""
        value = data.Value.Value if data.Value is not None else None
        if value is None and not data.StatusCode.is_good():
            what = f"{node_id} ({target.signal.id}) reads no value"
            self._problems.report(node_id, what, status_name(data.StatusCode))
            return
        try:
            if not isinstance(value, int | float | str | bool):
                raise ValueError("not a scalar")
            target.signal.check(value)
            ts = data.SourceTimestamp or data.ServerTimestamp
            moment = ts or datetime.now(UTC)
            reading = Reading(
                signal=target.signal.id,
                value=value,
                ts=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
                quality=_quality(data.StatusCode),
                unit=target.signal.unit,
            )
        except ValueError as exc:  # pydantic's ValidationError is one too
            self.rejected += 1
            what = f"ignoring {node_id} = {excerpt(repr(value))}"
            self._problems.report(node_id, what, excerpt(str(exc)))
            return
        self._problems.clear(node_id)
        if self._filter.changed(node_id, value, ts, target.deadband):
            self.emit(self.target.path, reading)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _deadband_filter(deadband: float) -> ua.DataChangeFilter | None:
    if deadband <= 0:
        return None
    return ua.DataChangeFilter(
        Trigger=ua.DataChangeTrigger.StatusValue,
        DeadbandType=ua.DeadbandType.Absolute,
        DeadbandValue=deadband,
    )


class _DataChangeHandler:
    """asyncua calls this for every notification of a monitored node."""

    def __init__(self, source: OpcUaSource, nodes: dict[str, NodeTarget]):
        self.source, self.nodes = source, nodes

    def datachange_notification(self, node: Node, value: Any, data: Any) -> None:
        node_id = node.nodeid.to_string()
        target = self.nodes.get(node_id)
        if target is not None:
            self.source.accept(node_id, target, data.monitored_item.Value)


async def secure_client(client: Client, security: OpcUaSecurity) -> None:
    """Set a client up for an encrypted session; call before connecting."""
    client.application_uri = security.application_uri
    mode = getattr(ua.MessageSecurityMode, security.mode)
    await client.set_security(
        _POLICIES[security.policy],
        str(security.certificate),
        str(security.private_key),
        server_certificate=(
            str(security.server_certificate) if security.server_certificate else None
        ),
        mode=mode,
    )


def _stop_if_cancelled() -> None:
    """Raise CancelledError if this task has been asked to stop. A cancellation that lands
    inside the OPC UA client together with a server's reply can be lost there, leaving the
    reply's error to be retried (seen under load: a source being stopped went on reconnecting
    to a server that refused it); the task still counts the request, and stopping wins."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def disconnect_quietly(client: Client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), timeout=2)
    except Exception:  # the connection is already gone; nothing left to close cleanly
        client.disconnect_socket()
