"""The live simulator: OPC UA methods and demo controls, against real Mosquitto and asyncua."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
import yaml
from asyncua import Client, ua

from shopfloor.messages import (
    Event,
    MessageKind,
    ResetShift,
    SetSpeed,
    decode_events,
    parse_topic,
    subscription,
)
from shopfloor.mqtt import make_client
from simulators.live import LiveSimulator
from simulators.scenario import load_scenario
from tests.conftest import ROOT
from tests.opcua_fixtures import ConnectClient, eventually
from tests.servers import Mosquitto, machine_on_free_ports, port_open
from tests.test_end_to_end import shopfloor, stop_all, wait_until

NAMESPACE = "urn:shopfloor:machines"


def machining_on_free_ports(directory: Path) -> tuple[Path, dict[str, str]]:
    """The machining scenario and plant, with free OPC UA ports and no scripted faults."""
    plant = yaml.safe_load((ROOT / "examples" / "machining-plant.yaml").read_text())
    endpoints = {}
    for area in plant["site"]["areas"]:
        for line in area["lines"]:
            for machine in line["machines"]:
                endpoints[machine["id"]] = machine_on_free_ports(machine)
    (directory / "plant.yaml").write_text(yaml.safe_dump(plant, sort_keys=False))
    scenario = yaml.safe_load((ROOT / "examples" / "scenarios" / "machining.yaml").read_text())
    scenario.update(plant="plant.yaml", faults=[], planned_stops=[])
    path = directory / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path, endpoints


@dataclass
class Events:
    received: list[tuple[str, Event]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        path, _ = parse_topic(msg.topic)
        with self.lock:
            self.received += [(path.asset, e) for e in decode_events(msg.payload)]

    def of(self, asset: str, name: str) -> list[Event]:
        with self.lock:
            return [e for a, e in self.received if a == asset and e.name == name]


@dataclass
class Live:
    scenario: Path
    plant: Path
    endpoints: dict[str, str]
    broker: Mosquitto
    events: Events


@pytest.fixture
def live(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Live]:
    scenario, endpoints = machining_on_free_ports(tmp_path)
    events = Events()
    listener = make_client(
        mosquitto.url,
        f"events-{uuid.uuid4().hex[:8]}",
        [(subscription("metalform", MessageKind.EVENT), 1)],
    )
    listener.on_message = events.on_message
    listener.loop_start()
    simulator = shopfloor(
        "simulate", "--scenario", str(scenario), "--broker", mosquitto.url, "--speed", "60",
        log=tmp_path / "simulate.log",
    )  # fmt: skip
    try:
        ports = [int(e.rsplit(":", 1)[1]) for e in endpoints.values()]
        wait_until(lambda: all(port_open(p) for p in ports), 60, "the OPC UA servers")
        wait_until(listener.is_connected, 10, "the event listener")
        yield Live(scenario, tmp_path / "plant.yaml", endpoints, mosquitto, events)
    finally:
        stop_all([simulator])
        listener.disconnect()
        listener.loop_stop()


async def call(client: Client, machine: str, method: str, *args: ua.Variant) -> object:
    ns = await client.get_namespace_index(NAMESPACE)
    return await client.get_node(ua.NodeId(machine, ns)).call_method(f"{ns}:{method}", *args)


async def read(client: Client, machine: str, signal: str) -> ua.DataValue:
    ns = await client.get_namespace_index(NAMESPACE)
    return await client.get_node(f"ns={ns};s={machine}.{signal}").read_data_value()


@pytest.mark.asyncio
async def test_inject_fault_method_labels_an_event_and_changes_the_signal(
    live: Live, opcua_client: ConnectClient
) -> None:
    client = await opcua_client(live.endpoints["cnc-01"])
    before = (await read(client, "cnc-01", "spindle_temperature")).Value.Value
    started = await call(
        client, "cnc-01", "InjectFault",
        ua.Variant("overheating", ua.VariantType.String),
        ua.Variant(1200.0, ua.VariantType.Double),
    )  # fmt: skip
    assert isinstance(started, str) and datetime.fromisoformat(started)
    await eventually(lambda: bool(live.events.of("cnc-01", "overheating")), 10, "the opened event")
    opened = live.events.of("cnc-01", "overheating")[0]
    assert opened.end is None and opened.start == datetime.fromisoformat(started)
    await asyncio.sleep(12)  # at x60: 12 minutes of simulated heating
    hot = (await read(client, "cnc-01", "spindle_temperature")).Value.Value
    assert hot > before + 8
    await eventually(
        lambda: len(live.events.of("cnc-01", "overheating")) == 2, 20, "the closed event"
    )
    closed = live.events.of("cnc-01", "overheating")[1]
    assert closed.start == opened.start and closed.end is not None
    assert (closed.end - closed.start).total_seconds() == pytest.approx(1200)


@pytest.mark.asyncio
async def test_unknown_fault_through_the_method_is_refused(
    live: Live, opcua_client: ConnectClient
) -> None:
    client = await opcua_client(live.endpoints["cnc-02"])
    with pytest.raises(ua.UaStatusCodeError):
        await call(
            client, "cnc-02", "InjectFault",
            ua.Variant("gremlins", ua.VariantType.String),
            ua.Variant(60.0, ua.VariantType.Double),
        )  # fmt: skip


@pytest.mark.asyncio
async def test_stop_and_start_methods(live: Live, opcua_client: ConnectClient) -> None:
    client = await opcua_client(live.endpoints["cnc-02"])

    async def stopped() -> bool:
        state: object = (await read(client, "cnc-02", "state")).Value.Value
        return state == "planned_stop"

    async def restarted() -> bool:
        return not await stopped()

    await call(client, "cnc-02", "Stop")
    await eventually(stopped, 10, "the operator stop")
    await call(client, "cnc-02", "Start")
    await eventually(restarted, 10, "the restart")


@pytest.mark.asyncio
async def test_every_machines_server_has_the_standard_nodes_and_its_own_machine_alone(
    live: Live, opcua_client: ConnectClient
) -> None:
    """The simulator builds the standard address space once and copies it into each further
    server: each still has it whole, and what one server adds stays its own."""
    for machine in live.endpoints:
        client = await opcua_client(live.endpoints[machine])
        children = await client.nodes.objects.get_children()
        names = {(await child.read_browse_name()).Name for child in children}
        assert names & set(live.endpoints) == {machine}
        assert "Server" in names
        namespaces = await client.get_namespace_array()
        assert namespaces[0] == "http://opcfoundation.org/UA/" and NAMESPACE in namespaces
        state = await client.get_node(ua.ObjectIds.Server_ServerStatus_State).read_value()
        assert state == ua.ServerState.Running


def control(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", "control", *args, "--plant", str(live.plant),
         "--broker", live.broker.url],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


@pytest.mark.asyncio
async def test_control_commands_inject_faults_and_change_speed(
    live: Live, opcua_client: ConnectClient
) -> None:
    client = await opcua_client(live.endpoints["cnc-01"])

    async def command(*args: str) -> subprocess.CompletedProcess[str]:
        """`control` in a thread, so that the loop and the client's session on it go on."""
        return await asyncio.to_thread(control, live, *args)

    result = await command("inject", "cnc-02", "bearing_wear", "--duration", "900")
    assert result.returncode == 0, result.stderr
    await eventually(lambda: bool(live.events.of("cnc-02", "bearing_wear")), 10, "the event")

    async def simulated_seconds_over(wall_s: float) -> float:
        first = (await read(client, "cnc-01", "power")).SourceTimestamp
        await asyncio.sleep(wall_s)
        last = (await read(client, "cnc-01", "power")).SourceTimestamp
        return float((last - first).total_seconds())

    assert await simulated_seconds_over(3) > 100  # x60
    reached = (await read(client, "cnc-01", "power")).SourceTimestamp
    assert (await command("speed", "1")).returncode == 0
    await asyncio.sleep(1)
    assert await simulated_seconds_over(3) < 10  # x1
    assert (await read(client, "cnc-01", "power")).SourceTimestamp > reached  # never back
    bad = await command("inject", "cnc-02", "gremlins")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown fault 'gremlins'")


def test_status_lists_scenarios_and_load_scenario_switches(live: Live) -> None:
    from shopfloor.messages import SimulatorStatus, decode_status, status_topic
    from shopfloor.mqtt import read_retained

    other = yaml.safe_load(live.scenario.read_text())
    other.update(name="Metal-machining SME, night shift", seed=3)
    (live.scenario.parent / "night.yaml").write_text(yaml.safe_dump(other, sort_keys=False))

    def status() -> SimulatorStatus:
        payload = read_retained(live.broker.url, status_topic("metalform", "kragujevac"))
        assert payload is not None
        return decode_status(payload)

    assert control(live, "speed", "10").returncode == 0  # any command refreshes the status
    wait_until(lambda: "night" in status().available, 10, "the second scenario")
    result = control(live, "scenario", "night")
    assert result.returncode == 0, result.stderr
    wait_until(
        lambda: status().scenario == "Metal-machining SME, night shift",
        10,
        "the switch",
    )
    assert control(live, "scenario", "nowhere").returncode == 0  # sent; the simulator refuses
    time.sleep(1)
    assert status().scenario == "Metal-machining SME, night shift"


def test_a_machine_whose_port_is_taken_is_served_once_it_is_free(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Another program (or a stray client socket) holds one machine's port at start."""
    from shopfloor.plant import load_plant
    from tests.test_end_to_end import plant_on_free_ports

    plant_file = plant_on_free_ports(tmp_path)
    ports = {
        m.id: int(m.opcua.endpoint.rsplit(":", 1)[1])
        for _, m in load_plant(plant_file).machines()
        if m.opcua
    }
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", ports["imm-01"]))
    squatter.listen()
    args = ["--plant", str(plant_file), "--broker", mosquitto.url]
    simulator = shopfloor("simulate", *args, log=tmp_path / "simulate.log")
    try:
        wait_until(lambda: port_open(ports["pack-01"]), 60, "the other machines")
        assert simulator.poll() is None  # still running
        squatter.close()
        wait_until(lambda: port_open(ports["imm-01"]), 10, "imm-01 once its port is free")
    finally:
        squatter.close()
        stop_all([simulator])


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_simulator_that_is_gone_withdraws_its_status(
    mosquitto: Mosquitto, tmp_path: Path, how: str
) -> None:
    """Stopped, it clears its retained status; killed, the broker does it (its last will): the
    controls page must not show a simulator running that is not."""
    from shopfloor.messages import status_topic
    from shopfloor.mqtt import read_retained

    scenario, _ = machining_on_free_ports(tmp_path)
    topic = status_topic("metalform", "kragujevac")
    simulator = shopfloor(
        "simulate", "--scenario", str(scenario), "--broker", mosquitto.url, log=tmp_path / "sim.log"
    )
    try:
        wait_until(lambda: read_retained(mosquitto.url, topic) is not None, 60, "the status")
    finally:
        if how == "killed":
            simulator.kill()
            simulator.wait(15)
        else:
            stop_all([simulator])
    assert read_retained(mosquitto.url, topic, timeout_s=2.0) is None


# --- the clock: always in a shift, never back ---------------------------------------------

MINSK = ZoneInfo("Europe/Minsk")  # the example plant's site; shifts 06-14 and 14-22, Mon-Fri


def minsk(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in December 2026 (the 5th a Saturday, the 7th a Monday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=MINSK)


def simulator_at(mosquitto: Mosquitto, now: datetime, **options: Any) -> LiveSimulator:
    """The example plant's simulator with its wall clock stopped at `now`."""
    loaded = load_scenario(ROOT / "examples" / "scenarios" / "moulding.yaml")
    wall = now.astimezone(UTC)
    return LiveSimulator(loaded, mosquitto.url, shift_calendar=True, clock=lambda: wall, **options)


def test_the_clock_starts_inside_a_shift_at_any_hour(mosquitto: Mosquitto) -> None:
    saturday_dawn = simulator_at(mosquitto, minsk(5, 5))
    assert saturday_dawn.floor.start == minsk(7, 6)  # Monday's early shift
    tuesday = simulator_at(mosquitto, minsk(8, 10, 30))
    assert tuesday.floor.start == minsk(8, 6)  # in a shift: from that shift's start
    loaded = load_scenario(ROOT / "examples" / "scenarios" / "moulding.yaml")
    round_the_clock = LiveSimulator(loaded, mosquitto.url, clock=lambda: minsk(5, 5))
    assert round_the_clock.floor.start == minsk(5, 5)  # without --shift-calendar


def test_a_plant_without_shifts_runs_from_now(mosquitto: Mosquitto, tmp_path: Path) -> None:
    plant = yaml.safe_load((ROOT / "examples" / "plant.yaml").read_text())
    del plant["shifts"]
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(plant))
    scenario = yaml.safe_load((ROOT / "examples" / "scenarios" / "moulding.yaml").read_text())
    scenario["plant"] = "plant.yaml"
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    loaded = load_scenario(tmp_path / "scenario.yaml")
    simulator = LiveSimulator(
        loaded, mosquitto.url, shift_calendar=True, clock=lambda: minsk(5, 5).astimezone(UTC)
    )
    assert simulator.floor.start == minsk(5, 5)
    simulator.apply(ResetShift())
    assert simulator.floor.start == minsk(5, 5)


def test_the_clock_skips_to_the_next_shift_and_a_reset_starts_one(mosquitto: Mosquitto) -> None:
    simulator = simulator_at(mosquitto, minsk(4, 21, 58))  # Friday, near the late shift's end
    assert simulator.floor.start == minsk(4, 14)
    simulator._published = True
    simulator._advance(7 * 3600 + 58 * 60)
    assert simulator.floor.wall(simulator.floor.sim.now) == minsk(4, 21, 58)
    simulator._advance(60)
    assert simulator.floor.wall(simulator.floor.sim.now) == minsk(4, 21, 59)
    simulator._advance(600)  # past 22:00: the weekend is skipped
    assert simulator.floor.start == minsk(7, 6) and simulator.floor.sim.now == 0
    simulator._advance(60)  # a new shift is published at its start before its clock runs
    assert simulator.floor.sim.now == 0
    simulator._published = True
    simulator._advance(3600)
    simulator.apply(SetSpeed(speed=1))
    assert simulator.floor.wall(simulator.floor.sim.now) == minsk(7, 7)
    simulator.apply(ResetShift())
    assert simulator.floor.start == minsk(7, 14) and simulator.floor.sim.now == 0


@pytest.mark.parametrize(
    ("newest", "start"),
    [
        (minsk(8, 12), minsk(8, 14)),  # ahead of now, in a shift with data: the next shift
        (minsk(8, 9), minsk(8, 14)),  # behind now in the same shift: the next shift too
        (minsk(7, 10), minsk(8, 6)),  # yesterday: today's shift, from its start
    ],
)
def test_a_resumed_session_goes_on_from_its_newest_reading(
    mosquitto: Mosquitto, newest: datetime, start: datetime
) -> None:
    simulator = simulator_at(mosquitto, minsk(8, 10, 30), not_before=newest)
    assert simulator.floor.start == start
