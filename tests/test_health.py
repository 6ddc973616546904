"""Health that tells the truth, against real servers: the gateway's and the edge's health turn
degraded within 2 s of each cause (a dead receive or writer thread, a store that fails, ingest
that lags, a broker that is gone) and healthy within 2 s after it, naming the cause."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.service import Gateway, GatewaySettings
from shopfloor.messages import decode_edge_status, encode_readings
from shopfloor.mqtt import Session, make_client
from shopfloor.plant import Plant
from shopfloor.store import Point, Store, StoreSettings, open_store
from tests.servers import InfluxDB, Mosquitto, free_port
from tests.test_edge_agent import processes, retrofit_config  # noqa: F401 - a fixture
from tests.test_end_to_end import shopfloor, wait_until
from tests.test_gateway_delivery import PRESS, reading

BOUND_S = 2.0  # what the health of either component promises


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own, to stop and start."""
    server = Mosquitto(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[tuple[InfluxDB, Store]]:
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    store = open_store(StoreSettings(url=server.url, database="health"))
    yield server, store
    store.close()
    server.stop()


class Traffic:
    """A reading a tenth of a second on the press, from a client that outlives the broker."""

    def __init__(self, broker: Mosquitto):
        self.client = make_client(broker.url, f"traffic-{uuid.uuid4().hex[:6]}")
        self.client.loop_start()
        self.sent = 0

    def tick(self) -> None:
        self.client.publish(PRESS.topic(), encode_readings([reading(self.sent)]), qos=1)
        self.sent += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_gateway(
    plant: Plant, broker: Mosquitto, store: Store, directory: Path, **options: object
) -> Gateway:
    settings = GatewaySettings(
        client_id=f"gw-{uuid.uuid4().hex[:8]}",
        spill_path=directory / "spill.db",
        session=Session(expiry_s=60),
        **options,  # type: ignore[arg-type]
    )
    service = Gateway(plant, broker.url, store, settings)
    service.start()
    wait_until(lambda: not service.snapshot().causes, 10, "a healthy gateway")
    return service


def until_causes(
    service: Gateway, traffic: Traffic, wanted: list[str], bound_s: float = BOUND_S
) -> float:
    """Seconds until the gateway's causes are `wanted`, while traffic flows; fails past the
    bound."""

    def reached() -> bool:
        traffic.tick()
        return service.snapshot().causes == wanted

    return wait_until(reached, bound_s, f"causes {wanted} (now {service.snapshot().causes})")


def test_gateway_health_follows_the_store_going_and_coming_back(
    example_plant: Plant, broker: Mosquitto, influx: tuple[InfluxDB, Store], tmp_path: Path
) -> None:
    server, store = influx
    traffic = Traffic(broker)
    service = start_gateway(example_plant, broker, store, tmp_path)
    try:
        server.stop()
        until_causes(service, traffic, ["store_failing"])
        time.sleep(3)  # still failing while it is down, whether or not a write is due
        assert service.snapshot().causes == ["store_failing"]
        server.start()
        until_causes(service, traffic, [])
    finally:
        service.stop()
        traffic.close()


def test_gateway_health_sees_a_store_that_stops_answering_as_lagging_ingest(
    example_plant: Plant, broker: Mosquitto, influx: tuple[InfluxDB, Store], tmp_path: Path
) -> None:
    """A frozen database (SIGSTOP): writes hang, nothing fails yet, but ingest lags."""
    server, store = influx
    assert server.process is not None
    traffic = Traffic(broker)
    service = start_gateway(example_plant, broker, store, tmp_path, max_lag_s=2.0)
    try:
        server.process.send_signal(signal.SIGSTOP)
        until_causes(service, traffic, ["ingest_lagging"], bound_s=2.0 + BOUND_S)
        assert service.snapshot().unwritten_age_s > 2.0
        server.process.send_signal(signal.SIGCONT)
        until_causes(service, traffic, [])
    finally:
        server.process.send_signal(signal.SIGCONT)
        service.stop()
        traffic.close()


def test_gateway_health_follows_the_broker(
    example_plant: Plant, broker: Mosquitto, tmp_path: Path
) -> None:
    store = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
    traffic = Traffic(broker)
    service = start_gateway(example_plant, broker, store, tmp_path)
    try:
        broker.stop()
        until_causes(service, traffic, ["broker_disconnected"])
        broker.start()
        until_causes(service, traffic, [])
    finally:
        service.stop()
        traffic.close()
        store.close()


def test_gateway_health_sees_its_receive_thread_end(
    example_plant: Plant, broker: Mosquitto, tmp_path: Path
) -> None:
    store = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
    traffic = Traffic(broker)
    service = start_gateway(example_plant, broker, store, tmp_path)
    try:
        service.mqtt.loop_stop()  # the network thread ends, as an uncaught error would end it
        until_causes(service, traffic, ["receive_thread_dead"])
    finally:
        service.stop()
        traffic.close()
        store.close()


class Fatal(BaseException):
    """Nothing in the writer may catch this: it ends the thread, as a defect in it would."""


class BreakingStore:
    """The embedded store, until told to break its writer."""

    def __init__(self, store: Store):
        self.store = store
        self.broken = False

    def write(self, points: list[Point]) -> None:
        if self.broken:
            raise Fatal
        self.store.write(points)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_gateway_health_sees_its_writer_thread_end(
    example_plant: Plant, broker: Mosquitto, tmp_path: Path
) -> None:
    store = BreakingStore(open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}")))
    traffic = Traffic(broker)
    service = start_gateway(example_plant, broker, store, tmp_path)  # type: ignore[arg-type]
    try:
        store.broken = True
        until_causes(service, traffic, ["writer_thread_dead"])
        assert service.snapshot().writing is False
    finally:
        service.stopping.set()
        service.mqtt.disconnect()
        service.mqtt.loop_stop()
        traffic.close()
        store.store.close()


# --- the edge agent ---------------------------------------------------------------------------


def _edge(port: int, page: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError:
        return 0, {}


def test_edge_health_follows_the_broker_and_survives_hostile_sensor_payloads(
    broker: Mosquitto,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    port = free_port()
    config = retrofit_config(tmp_path, port)
    command = ["edge", "run", "--config", str(config), "--broker", broker.url]
    processes.append(shopfloor(*command, log=tmp_path / "edge.log"))
    wait_until(lambda: _edge(port, "health") == (200, {"status": "ok", "causes": []}), 30, "ok")

    hostile = [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"i": ' + b"9" * 400 + b"}",
        b'{"i": "' + b"x" * 100_000 + b'"}',
        b'{"i": true}',
        b"\xff\xfe",
        b'{"i": "NaN"}',
    ]
    kit = make_client(broker.url, f"kit-{uuid.uuid4().hex[:6]}")
    kit.loop_start()
    wait_until(kit.is_connected, 10, "the kit")
    for payload in hostile * 10:
        kit.publish("kit/lathe-02", payload, qos=1).wait_for_publish(5)
    kit.publish("kit/lathe-02", b'{"i": 6000}', qos=1).wait_for_publish(5)
    kit.disconnect()
    kit.loop_stop()

    def counted() -> bool:
        status = decode_edge_status(json.dumps(_edge(port, "status")[1]).encode())
        return status.rejected_total == len(hostile) * 10 and status.readings_total >= 2

    wait_until(counted, 10, "every hostile payload counted, the valid one read")
    status = _edge(port, "status")[1]
    assert (status["receiving"], status["causes"]) == (True, [])
    log = (tmp_path / "edge.log").read_text()
    assert "x" * 200 not in log and "Traceback" not in log

    broker.stop()
    wait_until(
        lambda: _edge(port, "health")[1].get("causes") == ["broker_disconnected"],
        BOUND_S,
        "degraded",
    )
    assert _edge(port, "health")[0] == 503
    broker.start()
    wait_until(lambda: _edge(port, "health")[0] == 200, BOUND_S, "healthy again")
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'shopfloor_edge_healthy{device="pi-lathe"} 1\n' in metrics
    assert 'shopfloor_edge_receiving{device="pi-lathe"} 1\n' in metrics
