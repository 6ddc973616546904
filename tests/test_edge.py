"""The edge agent against a real simulator (OPC UA servers) and real Mosquitto."""

from __future__ import annotations

import functools
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from shopfloor.messages import AssetPath, Reading, decode_readings, parse_topic, subscription
from shopfloor.mqtt import make_client
from shopfloor.plant import load_plant
from tests.servers import Mosquitto, port_open
from tests.test_end_to_end import plant_on_free_ports, shopfloor, stop_all, wait_until


@dataclass
class Received:
    """Everything the edge published, as the broker delivered it."""

    readings: list[tuple[AssetPath, Reading, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        path, _ = parse_topic(msg.topic)
        now = time.monotonic()
        with self.lock:
            self.readings += [(path, r, now) for r in decode_readings(msg.payload)]

    def seen(self, moment: float, asset: str) -> bool:
        return bool(self.since(moment, asset))

    def since(self, moment: float, asset: str) -> list[Reading]:
        with self.lock:
            return [r for p, r, t in self.readings if t >= moment and p.asset == asset]


@dataclass
class Floor:
    plant_file: Path
    broker: Mosquitto
    received: Received
    workdir: Path
    simulator: subprocess.Popen[bytes] | None = None

    def start_simulator(self) -> None:
        args = ["--plant", str(self.plant_file), "--broker", self.broker.url]
        self.simulator = shopfloor("simulate", *args, log=self.workdir / "simulate.log")

    def opcua_ports(self) -> list[int]:
        plant = load_plant(self.plant_file)
        return [int(m.opcua.endpoint.rsplit(":", 1)[1]) for _, m in plant.machines() if m.opcua]


@pytest.fixture
def floor(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Floor]:
    received = Received()
    listener = make_client(
        mosquitto.url, f"listener-{uuid.uuid4().hex[:8]}", [(subscription("polimer"), 1)]
    )
    listener.on_message = received.on_message
    listener.loop_start()
    wait_until(listener.is_connected, 10, "the listener")
    setup = Floor(plant_on_free_ports(tmp_path), mosquitto, received, tmp_path)
    edge = shopfloor(
        "edge", "run", "--plant", str(setup.plant_file), "--broker", mosquitto.url,
        "--buffer", str(tmp_path / "edge.db"),
        log=tmp_path / "edge.log",
    )  # fmt: skip
    try:
        yield setup
    finally:
        stop_all([p for p in (edge, setup.simulator) if p is not None])
        listener.disconnect()
        listener.loop_stop()


def test_edge_started_before_the_machines_reads_them_once_they_are_up(floor: Floor) -> None:
    time.sleep(2)  # the agent is up and failing to connect to servers that do not exist yet
    started = time.monotonic()
    floor.start_simulator()
    for asset in ("imm-01", "cnc-01", "pack-01", "env-01"):
        wait_until(functools.partial(floor.received.seen, started, asset), 60, asset)


def test_opcua_server_restart_is_recovered_within_10_s(floor: Floor) -> None:
    floor.start_simulator()
    wait_until(lambda: bool(floor.received.since(0, "cnc-01")), 60, "first readings")
    assert floor.simulator is not None
    floor.simulator.kill()
    floor.simulator.wait()
    time.sleep(3)  # the machines are off; the agent notices and backs off
    floor.start_simulator()
    ports = floor.opcua_ports()
    wait_until(lambda: all(port_open(p) for p in ports), 60, "the restarted servers")
    back = time.monotonic()
    for asset in ("imm-01", "cnc-01", "pack-01"):
        remaining = 10 - (time.monotonic() - back)
        wait_until(functools.partial(floor.received.seen, back, asset), remaining, asset)


def test_bad_sensor_payloads_are_skipped_and_the_rest_flows(floor: Floor) -> None:
    floor.start_simulator()
    wait_until(lambda: bool(floor.received.since(0, "env-01")), 60, "sensor readings")
    client = make_client(floor.broker.url, client_id="bad-sensor")
    client.loop_start()
    wait_until(client.is_connected, 10, "the bad sensor")
    client.publish("sensors/hall-a/env-01/noise", b"loud", qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    after = time.monotonic()
    wait_until(lambda: bool(floor.received.since(after, "env-01")), 10, "sensor readings after")
    assert all(r.value != "loud" for _, r, _ in floor.received.readings)
    log = (floor.workdir / "edge.log").read_text()
    assert "sensor topic sensors/hall-a/env-01/noise: payload b'loud' is not a number" in log
