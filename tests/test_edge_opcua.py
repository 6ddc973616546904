"""The OPC UA source against real asyncua servers (the simulator's machine server): deadband,
polling, the fallback for servers that refuse subscriptions, users and Basic256Sha256, and
nodes that cannot be read (an unknown namespace, a missing node), each failing alone, once in
the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, ua

from edge.config import OpcUaSourceConfig, load_edge_config
from edge.listening import until_listening
from edge.opcua_source import OpcUaSource, OpcUaTarget
from shopfloor.messages import AssetPath, Reading
from shopfloor.opcua_security import create_certificate
from shopfloor.plant import Machine, Signal
from simulators.opcua import MachineServer, ServerSecurity, Value
from tests.conftest import ROOT
from tests.opcua_fixtures import ConnectClient, ServeMachine, eventually
from tests.servers import free_port

PATH = AssetPath("sf", "lab", "shop", "line-1", "oven-01")
IDLE: dict[str, Value] = {"temperature": 0.0, "state": "idle"}


def oven(port: int) -> Machine:
    return Machine.model_validate(
        {
            "id": "oven-01", "name": "Oven", "type": "other", "ideal_cycle_time": {"p": 60},
            "opcua": {"endpoint": f"opc.tcp://127.0.0.1:{port}"},
            "signals": [{"id": "temperature", "unit": "degC"}, {"id": "state"}],
        }
    )  # fmt: skip


@pytest.fixture
def machine() -> Machine:
    """The oven, on a port of its own."""
    return oven(free_port())


class Collected:
    def __init__(self) -> None:
        self.readings: list[Reading] = []

    def __call__(self, path: AssetPath, reading: Reading) -> None:
        assert path == PATH
        self.readings.append(reading)

    def values(self, signal: str) -> list[object]:
        return [r.value for r in self.readings if r.signal == signal]


@contextlib.asynccontextmanager
async def reading(
    machine: Machine, settings: dict[str, Any], startup_wait_s: float = 0.0
) -> AsyncIterator[tuple[OpcUaSource, Collected]]:
    """A source with `settings` reading `machine`'s server while the block drives and checks it."""
    collected = Collected()
    config = OpcUaSourceConfig.model_validate({"machine": machine.id, **settings})
    target = OpcUaTarget.build(PATH, machine, config, None)
    source = OpcUaSource(target, collected, startup_wait_s)
    task = asyncio.create_task(source.run())
    try:
        yield source, collected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "subscribe", "sampling_interval_ms": 50},
        {"mode": "poll", "poll_interval_s": 0.1},
    ],
    ids=["subscribed", "polled"],
)
async def test_deadband_reports_only_moves_larger_than_it(
    settings: dict[str, Any], machine: Machine, opcua_server: ServeMachine
) -> None:
    server = await opcua_server(machine, IDLE)
    async with reading(machine, {**settings, "deadband": 1.0}) as (source, got):
        await eventually(lambda: got.values("temperature") == [0.0], 10, "the first value")
        for second, value in enumerate([20.0, 20.5, 22.0, 22.3, 25.0, 24.2], 1):
            await server.publish({"temperature": value}, T0 + timedelta(seconds=second))
            await asyncio.sleep(0.4)
        await eventually(lambda: len(got.values("temperature")) >= 4, 5, "the moves")
        await asyncio.sleep(0.5)
        assert got.values("temperature") == [0.0, 20.0, 22.0, 25.0]
        assert got.values("state") == ["idle"]
        assert source.polled_nodes == (2 if settings["mode"] == "poll" else 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(("startup_wait_s", "warned"), [(30.0, False), (0.0, True)])
async def test_a_server_that_comes_up_with_the_agent_is_waited_for_quietly(
    machine: Machine,
    opcua_server: ServeMachine,
    caplog: pytest.LogCaptureFixture,
    startup_wait_s: float,
    warned: bool,
) -> None:
    """Started before its server listens (a machine powered on with its edge box), a source
    with a start-up wait connects once the server listens, with no refusal logged or counted;
    without one it logs the refusal and counts a reconnect, as before."""
    settings = {"mode": "subscribe", "sampling_interval_ms": 50}
    async with reading(machine, settings, startup_wait_s) as (source, got):
        await asyncio.sleep(1.0)  # the source tries (or waits) before the server is up
        await opcua_server(machine, IDLE)
        await eventually(lambda: got.values("state") == ["idle"], 15, "the first value")
        assert (source.reconnects > 0) is warned
    refusals = [
        r for r in caplog.records if r.levelno >= logging.WARNING and "retrying" in r.message
    ]
    assert bool(refusals) is warned


@pytest.mark.asyncio
async def test_a_lost_server_is_down_since_the_session_ended(
    machine: Machine, opcua_server: ServeMachine
) -> None:
    """What the edge status names as lost: a machine not connected yet, or no longer."""
    server = await opcua_server(machine, IDLE)
    async with reading(machine, {"mode": "subscribe", "sampling_interval_ms": 50}) as (source, _):
        assert source.down_since is not None  # not connected yet
        await eventually(lambda: source.connected, 10, "the session")
        assert source.down_since is None
        before_loss = datetime.now(UTC)
        await server.stop()
        await eventually(lambda: source.down_since is not None, 15, "the loss noticed")
        assert source.down_since is not None and source.down_since >= before_loss


async def refusing_subscriptions(serve: ServeMachine, machine: Machine) -> MachineServer:
    """The oven's server allowing no subscription, as some PLCs do; asyncua checks the limit at
    each new subscription, so a running server takes it."""
    server = await serve(machine, IDLE)
    server.server.iserver.max_subscriptions = 0
    return server


@pytest.mark.asyncio
async def test_a_server_refusing_subscriptions_is_polled_in_auto_mode(
    machine: Machine, opcua_server: ServeMachine
) -> None:
    server = await refusing_subscriptions(opcua_server, machine)
    async with reading(machine, {"mode": "auto", "poll_interval_s": 0.2}) as (source, got):
        await eventually(lambda: got.values("temperature") == [0.0], 10, "the first value")
        await server.publish({"temperature": 42.0, "state": "running"}, T0)
        await eventually(lambda: 42.0 in got.values("temperature"), 5, "the polled change")
        assert got.values("state") == ["idle", "running"]
        assert (source.connected, source.polled_nodes) == (True, 2)


@pytest.mark.asyncio
async def test_subscribe_mode_does_not_silently_poll(
    machine: Machine, opcua_server: ServeMachine
) -> None:
    await refusing_subscriptions(opcua_server, machine)
    async with reading(machine, {"mode": "subscribe"}) as (source, got):
        await eventually(lambda: source.reconnects >= 1, 10, "a refused subscription")
        assert got.readings == [] and not source.connected


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("certs")
    server_cert, server_key = await create_certificate(
        directory, "simulator", "urn:shopfloor:simulator", server=True
    )
    edge_cert, edge_key = await create_certificate(
        directory, "edge", "urn:shopfloor:edge", server=False
    )
    return {"server_cert": server_cert, "server_key": server_key,
            "edge_cert": edge_cert, "edge_key": edge_key}  # fmt: skip


def secured(certificates: dict[str, Path], password: str) -> dict[str, Any]:
    return {
        "username": "operator",
        "password": password,
        "security": {
            "policy": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "certificate": certificates["edge_cert"],
            "private_key": certificates["edge_key"],
        },
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("password", "with_security", "reads"),
    [("s3cret", True, True), ("wrong", True, False), ("s3cret", False, False)],
    ids=["right-password", "wrong-password", "no-encryption"],
)
async def test_secured_server_reads_only_with_encryption_and_the_right_user(
    certificates: dict[str, Path],
    password: str,
    with_security: bool,
    reads: bool,
    machine: Machine,
    opcua_server: ServeMachine,
) -> None:
    security = ServerSecurity(
        certificates["server_cert"], certificates["server_key"], {"operator": "s3cret"}
    )
    settings = secured(certificates, password)
    if not with_security:
        del settings["security"]
    await opcua_server(machine, IDLE, security=security)
    async with reading(machine, settings) as (source, got):
        if reads:
            await eventually(lambda: got.values("temperature") == [0.0], 15, "a secured read")
            assert source.connected
        else:
            await eventually(lambda: source.reconnects >= 1, 15, "a refused session")
            assert got.readings == []


@pytest.mark.asyncio
async def test_a_stop_that_asyncua_drops_with_a_refusal_still_stops_the_source(
    certificates: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    machine: Machine,
    opcua_server: ServeMachine,
) -> None:
    """The agent is stopped just as the server refuses the session, and the OPC UA client
    loses the cancellation (seen once in a loaded test run: a source that kept retrying).
    Reproduced here by making every session activation drop the cancellation that arrives
    with it."""
    activate = Client.activate_session

    async def stopped_meanwhile(self: Client, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # where the cancellation lands, and is lost
        return await activate(self, *args, **kwargs)

    monkeypatch.setattr(Client, "activate_session", stopped_meanwhile)
    security = ServerSecurity(
        certificates["server_cert"], certificates["server_key"], {"operator": "s3cret"}
    )
    await opcua_server(machine, IDLE, security=security)
    config = OpcUaSourceConfig.model_validate(
        {"machine": machine.id, **secured(certificates, "wrong")}
    )
    source = OpcUaSource(OpcUaTarget.build(PATH, machine, config, None), Collected())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(source.run(), 10)
    assert source.reconnects == 0


@pytest.mark.asyncio
async def test_secured_server_offers_only_basic256sha256_sign_and_encrypt(
    certificates: dict[str, Path], machine: Machine, opcua_server: ServeMachine
) -> None:
    security = ServerSecurity(certificates["server_cert"], certificates["server_key"])
    server = await opcua_server(machine, IDLE, security=security)
    endpoints = await Client(server.url).connect_and_get_server_endpoints()
    assert sorted({(e.SecurityPolicyUri, int(e.SecurityMode)) for e in endpoints}) == [
        ("http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256", 3)
    ]


def test_endpoint_is_required_when_the_plant_has_none() -> None:
    machine = oven(4840).model_copy(update={"opcua": None})
    with pytest.raises(ValueError, match="no OPC UA endpoint"):
        OpcUaTarget.build(PATH, machine, OpcUaSourceConfig(machine="oven-01"), None)
    config = OpcUaSourceConfig(machine="oven-01", endpoint="opc.tcp://10.0.0.5:4840")
    target = OpcUaTarget.build(PATH, machine, config, "plc.local")
    assert target.url == "opc.tcp://plc.local:4840"
    assert [n.node for n in target.nodes] == [
        "nsu=urn:shopfloor:machines;s=oven-01.temperature",
        "nsu=urn:shopfloor:machines;s=oven-01.state",
    ]


@pytest.mark.asyncio
async def test_a_servers_first_values_carry_the_simulated_time_they_were_sampled_at(
    machine: Machine, opcua_server: ServeMachine, opcua_client: ConnectClient
) -> None:
    """Stamped with the server's start instead, the first state would be newer than the
    simulator's next writes and stay the machine's state in every store."""
    assert machine.opcua is not None
    await opcua_server(machine, {"temperature": 180.0, "state": "running"}, T0)
    client = await opcua_client(machine.opcua.endpoint)
    namespace = await client.get_namespace_index(machine.opcua.namespace)
    data = await client.get_node(machine.node_id(machine.signals[1], namespace)).read_data_value()
    assert data.Value is not None and data.Value.Value == "running"
    assert data.SourceTimestamp is not None
    assert data.SourceTimestamp.replace(tzinfo=UTC) == T0


NAMESPACE = "urn:shopfloor:machines"


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "edge.opcua_source" and r.levelno == level]  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_a_node_in_a_namespace_the_server_lacks_fails_alone(
    mode: str, machine: Machine, opcua_server: ServeMachine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.opcua_source")
    await opcua_server(machine, IDLE)
    nodes = [
        {"signal": "temperature", "node": "nsu=urn:acme:oven;s=Zone1.Temp"},
        {"signal": "state", "node": f"nsu={NAMESPACE};s=oven-01.state"},
    ]
    settings = {"mode": mode, "poll_interval_s": 0.1, "nodes": nodes}
    async with reading(machine, settings) as (source, got):
        await eventually(lambda: got.values("state") == ["idle"], 10, "the machine's other node")
        await asyncio.sleep(0.3)
        assert (source.connected, source.reconnects, got.values("temperature")) == (True, 0, [])
    assert logged(caplog, logging.WARNING) == [
        "oven-01: node nsu=urn:acme:oven;s=Zone1.Temp (temperature) not read: the server has no "
        f"namespace urn:acme:oven (the server's: http://opcfoundation.org/UA/, "
        f"urn:freeopcua:python:server, {NAMESPACE})"
    ]


@pytest.mark.asyncio
async def test_a_polled_node_that_fails_is_logged_once_with_its_status_code(
    machine: Machine, opcua_server: ServeMachine, caplog: pytest.LogCaptureFixture
) -> None:
    """Polled every 50 ms, a node that does not exist yet is one warning naming the status
    code; once it appears (a PLC program loaded), it is read and the end of the problem is
    logged with how many reads it lasted."""
    caplog.set_level(logging.INFO, logger="edge.opcua_source")
    server = await opcua_server(machine, IDLE)
    nodes = [
        {"signal": "temperature", "node": f"nsu={NAMESPACE};s=oven-01.zone1"},
        {"signal": "state", "node": f"nsu={NAMESPACE};s=oven-01.state"},
    ]
    async with reading(machine, {"mode": "poll", "poll_interval_s": 0.05, "nodes": nodes}) as (
        source,
        got,
    ):
        await eventually(lambda: got.values("state") == ["idle"], 10, "the machine's other node")
        await asyncio.sleep(0.5)
        namespace = await server.server.get_namespace_index(NAMESPACE)
        await server.server.nodes.objects.add_variable(
            ua.NodeId("oven-01.zone1", namespace), "zone1", 181.5
        )
        await eventually(lambda: got.values("temperature") == [181.5], 5, "the node, once it is")
    node = f"ns={namespace};s=oven-01.zone1"
    assert logged(caplog, logging.WARNING) == [
        f"oven-01: {node} (temperature) reads no value: BadNodeIdUnknown (0x80340000)"
    ]
    ended = [m for m in logged(caplog, logging.INFO) if "ended" in m]
    assert len(ended) == 1, ended
    found = re.fullmatch(rf"oven-01: {node}: BadNodeIdUnknown \(0x80340000\) ended after (\d+) reads", ended[0])  # fmt: skip
    assert found is not None and int(found.group(1)) >= 8, ended
    assert source.rejected == 0  # no value was read, so none was rejected


@pytest.mark.asyncio
async def test_subscribed_counts_only_the_nodes_the_server_accepted(
    machine: Machine, opcua_server: ServeMachine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.opcua_source")
    extra = [Signal(id="pressure", unit="bar"), Signal(id="level", unit="%")]
    machine = machine.model_copy(update={"signals": [*machine.signals, *extra]})
    await opcua_server(machine, IDLE)
    nodes = [
        {"signal": "temperature", "node": f"nsu={NAMESPACE};s=oven-01.temperature"},
        {"signal": "state", "node": f"nsu={NAMESPACE};s=oven-01.state"},
        {"signal": "pressure", "node": f"nsu={NAMESPACE};s=oven-01.no-such-node"},
        {"signal": "level", "node": "nsu=urn:acme:oven;s=Tank.Level"},
    ]
    async with reading(machine, {"mode": "auto", "nodes": nodes}) as (source, got):
        await eventually(lambda: got.values("state") == ["idle"], 10, "the accepted nodes")
        assert (source.polled_nodes, got.values("temperature")) == (0, [0.0])
    assert machine.opcua is not None
    url = machine.opcua.endpoint
    subscribed = [m for m in logged(caplog, logging.INFO) if "subscribed" in m]
    assert subscribed == [f"oven-01: subscribed to 2 of 4 nodes at {url}"]
    assert logged(caplog, logging.WARNING) == [
        "oven-01: node nsu=urn:acme:oven;s=Tank.Level (level) not read: the server has no "
        f"namespace urn:acme:oven (the server's: http://opcfoundation.org/UA/, "
        f"urn:freeopcua:python:server, {NAMESPACE})",
        "oven-01: node ns=2;s=oven-01.no-such-node (pressure) refused: BadNodeIdUnknown "
        "(0x80340000)",
    ]


@pytest.mark.asyncio
async def test_browse_writes_the_user_and_the_password_as_a_reference_the_agent_reads(
    certificates: dict[str, Path],
    machine: Machine,
    opcua_server: ServeMachine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`edge browse --username` on a server taking only a user over Sign & Encrypt: the file
    it writes logs in alike, the password read from the environment, and reads the oven."""
    security = ServerSecurity(
        certificates["server_cert"], certificates["server_key"], {"operator": "s3cret"}
    )
    await opcua_server(machine, IDLE, security=security)
    assert machine.opcua is not None
    plant = tmp_path / "plant.yaml"
    plant.write_text(
        "tenant: {id: sf, name: Lab}\nsite: {id: lab, name: Lab, areas: [{id: shop, lines: "
        f"[{{id: line-1, machines: [{machine.model_dump_json(exclude_none=True)}]}}]}}]}}\n"
        "products: [{id: p}]\n"
    )
    config = tmp_path / "edge.yaml"
    browse = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "launcher", "edge", "browse", machine.opcua.endpoint,
        "--machine", "oven-01", "--plant", str(plant), "-o", str(config), "--username", "operator",
        "--certificate", str(certificates["edge_cert"]), "--private-key", str(certificates["edge_key"]),
        cwd=ROOT, env={**os.environ, "SHOPFLOOR_OPCUA_PASSWORD": "s3cret"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(browse.communicate(), 60)
    assert browse.returncode == 0, err.decode()
    assert out.decode().endswith("; the agent reads the password from OPCUA_PASSWORD_OVEN_01\n")
    text = config.read_text()
    assert "s3cret" not in text
    certs = certificates["edge_cert"].parent
    assert (
        f'    endpoint: "{machine.opcua.endpoint}"\n'
        '    username: "operator"\n'
        '    password: "${OPCUA_PASSWORD_OVEN_01}"  # set OPCUA_PASSWORD_OVEN_01 in the environment\n'
        f'    security: {{certificate: "{os.path.relpath(certs / "edge-cert.der", tmp_path)}", '
        f'private_key: "{os.path.relpath(certs / "edge-key.pem", tmp_path)}"}}\n'
    ) in text
    monkeypatch.setenv("OPCUA_PASSWORD_OVEN_01", "s3cret")
    edge, _ = load_edge_config(config)
    assert edge.opcua is not None
    async with reading(machine, edge.opcua[0].model_dump(exclude={"machine"})) as (_, got):
        await eventually(lambda: got.values("temperature") == [0.0], 15, "the browsed config")


@pytest.mark.asyncio
async def test_a_server_that_never_comes_up_is_tried_after_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge.listening")
    port = free_port()
    await until_listening("127.0.0.1", port, 0.3)
    assert caplog.messages == [f"127.0.0.1:{port} not listening after 0.3 s; connecting anyway"]
