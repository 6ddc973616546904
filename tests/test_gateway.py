"""The gateway against real Mosquitto and real stores, including its fault paths."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.service import IDLE_WAKE_S, Gateway, GatewaySettings
from shopfloor.messages import (
    AssetPath,
    Event,
    MessageKind,
    Reading,
    encode_events,
    encode_readings,
)
from shopfloor.mqtt import Session, make_client
from shopfloor.plant import Plant
from shopfloor.store import Store, StoreSettings, open_store
from tests.servers import InfluxDB, Mosquitto

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    client = make_client(mosquitto.url, client_id=f"test-publisher-{uuid.uuid4().hex[:8]}")
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def settings(client_id: str, directory: Path) -> GatewaySettings:
    return GatewaySettings(
        client_id=client_id,
        spill_path=directory / f"{client_id}-spill.db",
        session=Session(expiry_s=120),  # the broker serves the whole test run: forget soon
    )


def start_gateway(plant: Plant, broker_url: str, store: Store, directory: Path) -> Gateway:
    gateway = Gateway(plant, broker_url, store, settings(f"gw-{uuid.uuid4().hex[:8]}", directory))
    gateway.start()
    wait_until(gateway.mqtt.is_connected, 10, "the gateway to connect")
    time.sleep(0.2)  # let the subscription settle at the broker
    return gateway


def wait_written(gateway: Gateway, count: int, timeout_s: float) -> None:
    wait_until(lambda: gateway.snapshot().points_written == count, timeout_s, f"{count} points")


def powers(count: int, start: int = 0) -> list[Reading]:
    return [
        Reading(signal="power", value=float(i), ts=T0 + timedelta(seconds=i), unit="kW")
        for i in range(start, start + count)
    ]


def stored_powers(store: Store) -> list[float]:
    history = store.history(PRESS, "power", T0, T0 + timedelta(days=1))
    return [float(p.value) for p in history]


def test_malformed_messages_are_rejected_and_valid_ones_all_stored(
    example_plant: Plant,
    mosquitto: Mosquitto,
    publisher: mqtt.Client,
    store: Store,
    tmp_path: Path,
) -> None:
    gateway = start_gateway(example_plant, mosquitto.url, store, tmp_path)
    bad = [
        (PRESS.topic(), b"not json"),
        (PRESS.topic(), b'{"v": 1, "readings": []}'),
        (PRESS.topic(), encode_readings([Reading(signal="colour", value=1, ts=T0)])),
        (AssetPath("polimer", "brest", "moulding", "line-1", "ghost").topic(), b"{}"),
        (PRESS.topic(), b'{"v":1,"readings":[{"signal":"power","value":NaN,"ts":"2026-11-02"}]}'),
        (PRESS.topic(), json.dumps({"v": 1, "readings": [{"signal": "power"}]}).encode()),
    ]
    try:
        for index, reading in enumerate(powers(300)):
            publisher.publish(PRESS.topic(), encode_readings([reading]), qos=1)
            if index % 50 == 0:
                topic, payload = bad[index // 50]
                publisher.publish(topic, payload, qos=1)
        wait_until(lambda: len(stored_powers(store)) == 300, 20, "300 valid points")
        wait_until(
            lambda: sum(gateway.snapshot().dead_lettered.values()) == len(bad),
            5,
            "every bad message counted",
        )
    finally:
        gateway.stop()
    assert stored_powers(store) == [float(i) for i in range(300)]
    assert gateway.snapshot().points_written == 300
    assert gateway.snapshot().messages_in == 300 + len(bad)


def test_gateway_started_before_the_broker_connects_when_it_comes_up(
    example_plant: Plant, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "late-broker")
    store = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
    gateway = Gateway(example_plant, broker.url, store, settings("gw-late", tmp_path))
    gateway.start()
    try:
        time.sleep(1)
        broker.start()
        wait_until(gateway.mqtt.is_connected, 20, "the gateway to connect")
        client = make_client(broker.url, client_id="late-publisher")
        client.loop_start()
        time.sleep(0.3)
        client.publish(PRESS.topic(), encode_readings(powers(5)), qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        wait_until(lambda: len(stored_powers(store)) == 5, 10, "points through the late broker")
    finally:
        gateway.stop()
        store.close()
        broker.stop()


def test_events_are_stored_and_their_end_overwrites_the_open_one(
    example_plant: Plant,
    mosquitto: Mosquitto,
    publisher: mqtt.Client,
    store: Store,
    tmp_path: Path,
) -> None:
    gateway = start_gateway(example_plant, mosquitto.url, store, tmp_path)
    opened = Event(name="bearing_wear", start=T0, note="injected")
    closed = Event(name="bearing_wear", start=T0, end=T0 + timedelta(minutes=30), note="injected")
    try:
        publisher.publish(PRESS.topic(MessageKind.EVENT), encode_events([opened]), qos=1)
        wait_until(lambda: gateway.snapshot().points_written == 1, 10, "the open event")
        publisher.publish(PRESS.topic(MessageKind.EVENT), encode_events([closed]), qos=1)
        ghost = AssetPath("polimer", "brest", "moulding", "line-1", "ghost")
        publisher.publish(ghost.topic(MessageKind.EVENT), encode_events([opened]), qos=1)
        wait_until(
            lambda: (
                gateway.snapshot().points_written == 2
                and sum(gateway.snapshot().dead_lettered.values()) == 1
            ),
            10,
            "the rest",
        )
    finally:
        gateway.stop()
    points = store.history(PRESS, "event.bearing_wear", T0, T0 + timedelta(days=1))
    assert len(points) == 1
    assert points[0].as_event() == closed


def test_mqtt5_properties_arrive_as_paho_sends_them(mosquitto: Mosquitto) -> None:
    """The gateway's client decodes properties more cheaply than paho; none may change."""
    topic = f"test/properties/{uuid.uuid4().hex[:8]}"
    received: list[mqtt.MQTTMessage] = []
    subscriber = make_client(
        mosquitto.url, f"test-properties-{uuid.uuid4().hex[:8]}", [(topic, 1)], session=Session()
    )

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        received.append(msg)
        client.ack(msg.mid, msg.qos)

    subscriber.on_message = on_message
    sender = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-p5-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    sent = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    sent.ContentType = "application/json"
    sent.UserProperty = ("line", "line-1")
    sent.UserProperty = ("shift", "early")
    sent.MessageExpiryInterval = 3600
    subscriber.loop_start()
    sender.connect("127.0.0.1", mosquitto.port)
    sender.loop_start()
    try:
        wait_until(lambda: subscriber.is_connected() and sender.is_connected(), 10, "clients")
        time.sleep(0.2)  # let the subscription settle at the broker
        sender.publish(topic, b"with", qos=1, properties=sent).wait_for_publish(5)
        sender.publish(topic, b"without", qos=1).wait_for_publish(5)
        wait_until(lambda: len(received) == 2, 10, "both messages")
    finally:
        sender.disconnect()
        sender.loop_stop()
        subscriber.disconnect()
        subscriber.loop_stop()
    given: Any = received[0].properties  # paho's properties are attributes it sets by name
    assert given.ContentType == "application/json"
    assert given.UserProperty == [("line", "line-1"), ("shift", "early")]
    assert 3590 <= given.MessageExpiryInterval <= 3600
    none: Any = received[1].properties
    assert none.json() == {}


def test_a_lone_message_is_written_at_once_and_a_burst_in_few_batches(
    example_plant: Plant,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    publisher: mqtt.Client,
    tmp_path: Path,
) -> None:
    """No timer holds a message back: the batch is taken as soon as the network loop has read
    all the broker sent, and grows while the writer is busy, so a burst takes few writes."""
    store = open_store(StoreSettings(url=influxdb.url, database=f"quiet_{uuid.uuid4().hex[:8]}"))
    gateway = start_gateway(example_plant, mosquitto.url, store, tmp_path)
    try:
        for index in range(3):
            published = time.monotonic()
            publisher.publish(PRESS.topic(), encode_readings(powers(1, index)), qos=1)
            wait_written(gateway, index + 1, 5)
            assert time.monotonic() - published < IDLE_WAKE_S / 2
        assert gateway.snapshot().write_latency_count == 3  # a write each
        burst = 3000
        for reading in powers(burst, start=3):
            publisher.publish(PRESS.topic(), encode_readings([reading]), qos=1)
        wait_written(gateway, 3 + burst, 30)
        writes = gateway.snapshot().write_latency_count - 3
        assert stored_powers(store) == [float(i) for i in range(3 + burst)]
    finally:
        gateway.stop()
        store.close()
    assert writes <= burst // 20, f"{burst} messages in {writes} writes"
