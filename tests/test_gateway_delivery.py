"""The gateway loses nothing, against real Mosquitto and a real InfluxDB: the database down under
load (20 s in the suite, 60 s under `make bench`), the gateway killed and restarted, 10,000
malformed messages in valid traffic, two gateways sharing one subscription."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.service import Gateway, GatewaySettings
from shopfloor.messages import (
    AssetPath,
    Problem,
    Reading,
    dead_letter_topic,
    decode_dead_letter,
    encode_readings,
)
from shopfloor.mqtt import Session, make_client
from shopfloor.plant import Plant
from shopfloor.store import Store, StoreSettings, open_store
from tests.conftest import EXAMPLE_PLANT
from tests.servers import OUTAGE_S, InfluxDB, Mosquitto
from tests.test_end_to_end import shopfloor, stop_all, wait_until

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=10)


def reading(index: int) -> Reading:
    return Reading(signal="power", value=float(index), ts=T0 + index * STEP, unit="kW")


class Stream:
    """Publishes `power` readings 0, 1, 2, ... (QoS 1) at a steady rate from a thread."""

    def __init__(self, broker: Mosquitto, per_second: float, per_message: int = 1):
        self.client = make_client(broker.url, f"stream-{uuid.uuid4().hex[:8]}")
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "the stream's connection")
        self.per_second, self.per_message = per_second, per_message
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        interval = self.per_message / self.per_second
        next_at = time.monotonic()
        while not self._stop.is_set():
            batch = [reading(self.sent + i) for i in range(self.per_message)]
            info = self.client.publish(PRESS.topic(), encode_readings(batch), qos=1)
            info.wait_for_publish(10)
            self.sent += self.per_message
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.disconnect()
        self.client.loop_stop()


def stored(store: Store) -> list[float]:
    points = store.history(PRESS, "power", T0, T0 + timedelta(days=30))
    return [float(p.value) for p in points]


def all_stored(store: Store, count: int) -> bool:
    return len(stored(store)) == count


def assert_exactly(store: Store, count: int) -> None:
    values = stored(store)
    assert len(values) == count, f"{count - len(values)} of {count} points missing"
    assert values == [float(i) for i in range(count)]  # each once, in time order


@pytest.fixture
def influx_store(tmp_path: Path) -> Iterator[tuple[InfluxDB, Store]]:
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    store = open_store(StoreSettings(url=server.url, database="delivery"))
    try:
        yield server, store
    finally:
        store.close()
        server.stop()


def gateway(
    plant: Plant, broker: Mosquitto, store: Store, directory: Path, **options: object
) -> Gateway:
    client_id = str(options.pop("client_id", f"gw-{uuid.uuid4().hex[:8]}"))
    settings = GatewaySettings(
        client_id=client_id,
        spill_path=directory / f"{client_id}-spill.db",
        session=Session(expiry_s=120),
        **options,  # type: ignore[arg-type]
    )
    service = Gateway(plant, broker.url, store, settings)
    service.start()
    wait_until(service.mqtt.is_connected, 10, "the gateway's connection")
    time.sleep(0.3)  # the subscription settles at the broker
    return service


def test_influxdb_down_under_load_loses_nothing(
    example_plant: Plant,
    mosquitto: Mosquitto,
    influx_store: tuple[InfluxDB, Store],
    tmp_path: Path,
) -> None:
    server, store = influx_store
    service = gateway(example_plant, mosquitto, store, tmp_path)
    try:
        with Stream(mosquitto, per_second=200) as stream:
            time.sleep(5)
            server.stop()
            time.sleep(OUTAGE_S)
            spilled = service.snapshot()
            server.start()
            time.sleep(5)
        total = stream.sent
        wait_until(lambda: all_stored(store, total), 60, f"all {total} points")
    finally:
        service.stop()
    assert spilled.buffer_depth > 0 and not spilled.store_ok  # the outage went to the spill
    assert_exactly(store, total)
    figures = service.snapshot()
    assert (figures.buffer_depth, figures.buffer_dropped, figures.store_ok) == (0, 0, True)
    assert figures.points_written == total


def test_gateway_killed_and_restarted_loses_nothing(
    mosquitto: Mosquitto, influx_store: tuple[InfluxDB, Store], tmp_path: Path
) -> None:
    server, store = influx_store
    command = [
        "gateway", "--plant", str(EXAMPLE_PLANT), "--broker", mosquitto.url,
        "--store-url", server.url, "--store-database", "delivery",
        "--client-id", f"gw-kill-{uuid.uuid4().hex[:6]}", "--spill", str(tmp_path / "spill.db"),
        "--http-port", "0", "--session-expiry", "120",
    ]  # fmt: skip
    process = shopfloor(*command, log=tmp_path / "gateway.log")
    try:
        wait_until(
            lambda: "connected to the broker" in (tmp_path / "gateway.log").read_text(),
            20,
            "the gateway",
        )
        with Stream(mosquitto, per_second=200, per_message=5) as stream:
            time.sleep(4)
            process.kill()  # mid-stream: batches received, not yet acknowledged
            process.wait()
            time.sleep(4)  # the broker keeps the session's messages meanwhile
            process = shopfloor(*command, log=tmp_path / "gateway.log")
            time.sleep(4)
        total = stream.sent
        wait_until(lambda: all_stored(store, total), 60, f"all {total} points")
    finally:
        stop_all([process])
    assert_exactly(store, total)


class DeadLetters:
    def __init__(self, broker: Mosquitto, plant: Plant):
        self.letters: list[bytes] = []
        self._lock = threading.Lock()
        topic = dead_letter_topic(plant.tenant.id, plant.site.id)
        self.client = make_client(broker.url, f"dlq-{uuid.uuid4().hex[:6]}", [(topic, 1)])
        self.client.on_message = self._on_message
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "the dead-letter listener")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.letters.append(bytes(msg.payload))

    def count(self) -> int:
        with self._lock:
            return len(self.letters)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


MALFORMED: list[tuple[AssetPath, bytes, Problem]] = [
    (PRESS, b"not json at all", Problem.NOT_JSON),
    (PRESS, b'{"v": 1, "readings": []}', Problem.BAD_FIELD),
    (PRESS, b'{"v":1,"readings":[{"signal":"power","value":NaN,"ts":"2026-11-02T08:00:00Z"}]}', Problem.BAD_FIELD),
    (PRESS, b'{"v":1,"readings":[{"signal":"power","value":"1","ts":"2026-11-02T08:00:00"}]}', Problem.BAD_FIELD),
    (PRESS, b'{"v":2,"readings":[{"signal":"power","value":1,"ts":"2026-11-02T08:00:00Z"}]}', Problem.BAD_FIELD),
    (PRESS, encode_readings([Reading(signal="colour", value=1, ts=T0)]), Problem.UNKNOWN_SIGNAL),
    (PRESS._replace(asset="ghost"), encode_readings([reading(0)]), Problem.UNKNOWN_ASSET),
    (PRESS, encode_readings([Reading(signal="power", value=1, ts=datetime.now(UTC) + timedelta(days=2))]), Problem.FUTURE_TIMESTAMP),
]  # fmt: skip


def test_10000_malformed_messages_are_dead_lettered_and_every_valid_point_stored(
    example_plant: Plant,
    mosquitto: Mosquitto,
    influx_store: tuple[InfluxDB, Store],
    tmp_path: Path,
) -> None:
    _, store = influx_store
    letters = DeadLetters(mosquitto, example_plant)
    service = gateway(example_plant, mosquitto, store, tmp_path)
    publisher = make_client(mosquitto.url, f"mixed-{uuid.uuid4().hex[:6]}")
    publisher.loop_start()
    wait_until(publisher.is_connected, 10, "the publisher")
    oversized = encode_readings([reading(0)]) + b" " * (256 * 1024)
    expected: Counter[str] = Counter()
    valid = 0
    try:
        for index in range(10_000):
            path, payload, problem = MALFORMED[index % len(MALFORMED)]
            if index % 1000 == 999:
                path, payload, problem = PRESS, oversized, Problem.OVERSIZED
            publisher.publish(path.topic(), payload, qos=1)
            expected[problem.value] += 1
            if index % 2 == 0:  # 5,000 valid messages of 2 readings between them
                batch = [reading(valid), reading(valid + 1)]
                publisher.publish(PRESS.topic(), encode_readings(batch), qos=1)
                valid += 2
        wait_until(lambda: letters.count() == 10_000, 120, "10,000 dead letters")
        wait_until(lambda: all_stored(store, valid), 60, f"{valid} valid points")
    finally:
        service.stop()
        publisher.disconnect()
        publisher.loop_stop()
        letters.close()
    assert_exactly(store, valid)
    decoded = [decode_dead_letter(letter) for letter in letters.letters]
    assert Counter(letter.problem.value for letter in decoded) == expected
    assert service.snapshot().dead_lettered == dict(expected)
    assert all(letter.reason and letter.topic.startswith("polimer/brest/") for letter in decoded)
    oversized_letter = next(letter for letter in decoded if letter.problem is Problem.OVERSIZED)
    assert oversized_letter.size == len(oversized) and len(oversized_letter.payload) == 1000
    not_json = next(letter for letter in decoded if letter.problem is Problem.NOT_JSON)
    assert not_json.payload == "not json at all"


def test_two_gateways_on_one_shared_subscription_store_every_point_once(
    example_plant: Plant,
    mosquitto: Mosquitto,
    influx_store: tuple[InfluxDB, Store],
    tmp_path: Path,
) -> None:
    _, store = influx_store
    group = f"writers-{uuid.uuid4().hex[:6]}"
    first = gateway(example_plant, mosquitto, store, tmp_path, share_group=group)
    second = gateway(example_plant, mosquitto, store, tmp_path, share_group=group)
    try:
        with Stream(mosquitto, per_second=400) as stream:
            time.sleep(8)
        total = stream.sent
        wait_until(lambda: all_stored(store, total), 30, f"all {total} points")
    finally:
        first.stop()
        second.stop()
    assert_exactly(store, total)
    split = [first.snapshot().points_written, second.snapshot().points_written]
    assert sum(split) == total  # no message went to both
    assert min(split) > total * 0.2, split  # and both took a share


def test_a_point_the_database_rejects_is_dropped_alone(
    example_plant: Plant,
    mosquitto: Mosquitto,
    influx_store: tuple[InfluxDB, Store],
    tmp_path: Path,
) -> None:
    """A sensor whose clock says 1601 (a reset RTC): InfluxDB refuses the batch it is in. The
    point alone is dead-lettered, with the store's reason and the point as its payload."""
    _, store = influx_store
    letters = DeadLetters(mosquitto, example_plant)
    service = gateway(example_plant, mosquitto, store, tmp_path)
    publisher = make_client(mosquitto.url, f"rtc-{uuid.uuid4().hex[:6]}")
    publisher.loop_start()
    wait_until(publisher.is_connected, 10, "the publisher")
    broken_clock = Reading(signal="power", value=1.0, ts=datetime(1601, 1, 1, tzinfo=UTC))
    try:
        for index in range(0, 200, 2):
            batch = [reading(index), reading(index + 1)]
            if index == 100:
                batch.insert(1, broken_clock)
            publisher.publish(PRESS.topic(), encode_readings(batch), qos=1)
        wait_until(lambda: all_stored(store, 200), 30, "the 200 good points")
        wait_until(lambda: letters.count() == 1, 20, "the dead letter")
    finally:
        service.stop()
        publisher.disconnect()
        publisher.loop_stop()
        letters.close()
    assert_exactly(store, 200)
    assert service.snapshot().dead_lettered == {"rejected_by_store": 1}
    letter = decode_dead_letter(letters.letters[0])
    assert (letter.problem, letter.topic) == (Problem.REJECTED_BY_STORE, PRESS.topic())
    assert "400" in letter.reason  # InfluxDB's answer to the write
    assert json.loads(letter.payload)[0][5:8] == ["power", -11644473600000000000, 1.0]
