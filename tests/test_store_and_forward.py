"""Store-and-forward at the edge, against real Mosquitto and a real OPC UA server at 100 Hz."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import paho.mqtt.client as mqtt
import pytest
import yaml
from asyncua import Server, ua

from shopfloor.diskqueue import DiskQueue
from shopfloor.messages import decode_readings, subscription
from shopfloor.mqtt import make_client
from tests.servers import OUTAGE_S, Mosquitto, free_port
from tests.test_end_to_end import shopfloor, stop_all, wait_until

RATE_HZ = 100


def counter_plant(directory: Path, port: int) -> Path:
    plant = {
        "tenant": {"id": "sf", "name": "Store and forward"},
        "site": {"id": "lab", "name": "Lab", "areas": [{"id": "a", "lines": [{"id": "l", "machines": [
            {"id": "counter-01", "name": "Counter", "type": "other", "ideal_cycle_time": {"p": 1},
             "opcua": {"endpoint": f"opc.tcp://127.0.0.1:{port}"}, "signals": [{"id": "seq"}]},
        ]}]}]},
        "products": [{"id": "p"}],
    }  # fmt: skip
    path = directory / "plant.yaml"
    path.write_text(yaml.safe_dump(plant))
    return path


class Counter:
    """An OPC UA server whose `seq` node counts up RATE_HZ times a second."""

    def __init__(self, port: int):
        self.port, self.value = port, 0
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/")
        ns = await server.register_namespace("urn:shopfloor:machines")
        machine = await server.nodes.objects.add_object(ua.NodeId("counter-01", ns), "counter-01")
        node = await machine.add_variable(
            ua.NodeId("counter-01.seq", ns), "seq", ua.Variant(0, ua.VariantType.Int64)
        )
        async with server:
            self.running.set()
            started = time.monotonic()
            while not self.stopping.is_set():
                self.value += 1
                await server.write_attribute_value(
                    node.nodeid, ua.DataValue(ua.Variant(self.value, ua.VariantType.Int64))
                )
                await asyncio.sleep(max(0.0, started + self.value / RATE_HZ - time.monotonic()))

    def __enter__(self) -> Counter:
        self.thread.start()
        assert self.running.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)


@dataclass
class Listener:
    values: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.values += [int(r.value) for r in decode_readings(msg.payload)]

    def seen(self) -> list[int]:
        with self.lock:
            return list(self.values)


@dataclass
class Bench:
    broker: Mosquitto
    plant: Path
    buffer: Path
    listener: Listener
    workdir: Path
    edge: Popen[bytes] | None = None

    def start_edge(self) -> None:
        self.edge = shopfloor(
            "edge", "run", "--plant", str(self.plant), "--broker", self.broker.url,
            "--buffer", str(self.buffer), log=self.workdir / "edge.log",
        )  # fmt: skip


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    listener = Listener()
    # A persistent session: what arrives while the listener reconnects waits at the broker.
    client = make_client(
        broker.url,
        f"sf-listener-{uuid.uuid4().hex[:6]}",
        [(subscription("sf"), 1)],
        clean_session=False,
    )
    client.on_message = listener.on_message
    client.loop_start()
    wait_until(client.is_connected, 10, "the listener")
    setup = Bench(
        broker, counter_plant(tmp_path, free_port()), tmp_path / "edge.db", listener, tmp_path
    )
    try:
        yield setup
    finally:
        if setup.edge is not None:
            stop_all([setup.edge])
        client.disconnect()
        client.loop_stop()
        broker.stop()


def assert_complete(values: list[int], first: int, last: int) -> None:
    """Every value from first to last arrived, and in order (repeats of a redelivery aside)."""
    firsts = list(dict.fromkeys(values))
    window = [v for v in firsts if first <= v <= last]
    missing = sorted(set(range(first, last + 1)) - set(window))
    assert not missing, f"{len(missing)} readings lost, first {missing[:5]}"
    assert window == sorted(window), "order not kept"


def test_broker_down_at_100_readings_a_second_loses_nothing(bench: Bench) -> None:
    port = int(
        yaml.safe_load(bench.plant.read_text())["site"]["areas"][0]["lines"][0]["machines"][0][
            "opcua"
        ]["endpoint"].rsplit(":", 1)[1]
    )
    with Counter(port) as counter:
        bench.start_edge()
        wait_until(lambda: len(bench.listener.seen()) > 200, 60, "readings flowing")
        first = bench.listener.seen()[0]
        bench.broker.stop()
        outage_start = counter.value
        time.sleep(OUTAGE_S)
        produced = counter.value - outage_start  # readings produced while the broker was away
        assert produced >= 80 * OUTAGE_S
        bench.broker.start()
        last = counter.value
        wait_until(lambda: max(bench.listener.seen(), default=0) >= last, 60, "the backlog")
    assert_complete(bench.listener.seen(), first, last)


def test_edge_killed_mid_stream_loses_nothing_it_had_accepted(bench: Bench) -> None:
    port = int(
        yaml.safe_load(bench.plant.read_text())["site"]["areas"][0]["lines"][0]["machines"][0][
            "opcua"
        ]["endpoint"].rsplit(":", 1)[1]
    )
    with Counter(port):
        bench.start_edge()
        wait_until(lambda: len(bench.listener.seen()) > 100, 60, "readings flowing")
        bench.broker.stop()
        time.sleep(3)  # a backlog builds up on disk
        assert bench.edge is not None
        bench.edge.send_signal(signal.SIGKILL)
        bench.edge.wait()
        snapshot = DiskQueue(bench.buffer)
        accepted = [
            int(r.value) for m in snapshot.oldest(1_000_000) for r in decode_readings(m.payload)
        ]
        snapshot.close()
        assert len(accepted) > 100
        bench.broker.start()
        bench.start_edge()
        wait_until(lambda: set(accepted) <= set(bench.listener.seen()), 60, "the accepted backlog")
