"""No payload or topic stops ingest: the contract codec, the gateway's acceptance and the edge's
sensor mapping turn anything into points (or a reading) or a reason, never an exception; and
end to end, against real Mosquitto and InfluxDB, hostile messages in valid traffic are each
dead-lettered while every valid point is stored once, also across a gateway killed with a
hostile message still unacknowledged at the broker."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import SensorMapping
from edge.sensors import SensorPayloadError, SensorRoute, read_sensor_message
from gateway.acceptance import Acceptance, Refusal
from shopfloor.messages import (
    AssetPath,
    MessageError,
    Problem,
    Reading,
    decode_dead_letter,
    decode_events,
    decode_readings,
    encode_readings,
)
from shopfloor.mqtt import make_client
from shopfloor.plant import Plant, Signal, SignalKind
from shopfloor.store import Point, Store
from tests.conftest import EXAMPLE_PLANT
from tests.servers import InfluxDB, Mosquitto, free_port
from tests.test_end_to_end import shopfloor, stop_all, wait_until
from tests.test_gateway_delivery import (
    PRESS,
    DeadLetters,
    all_stored,
    assert_exactly,
    gateway,
    influx_store,  # noqa: F401 - a fixture
    reading,
)
from tests.test_packaging import NOT_IN_EXTRA, without

ENV = AssetPath("polimer", "brest", "moulding", "hall-a", "env-01")
VALID_TS = "2026-11-02T08:00:00Z"


def data(*readings: dict[str, object], v: object = 1) -> bytes:
    return json.dumps({"v": v, "readings": list(readings)}).encode()


def one(value: object = 1.0, ts: object = VALID_TS, signal: str = "power") -> bytes:
    return data({"signal": signal, "value": value, "ts": ts})


def event(start: object = VALID_TS, end: object = None) -> bytes:
    body = {"v": 1, "events": [{"name": "bearing_wear", "start": start, "end": end}]}
    return json.dumps(body).encode()


DEEP = b'{"v":1,"readings":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
HUGE_TOPIC = f"polimer/brest/{'x' * 40_000}/line-1/imm-01/data"

# (topic, payload, problem, what the reason says): each class known to have stopped ingest, and
# each refusal the contract and the plant make.
HOSTILE: list[tuple[str, bytes, Problem, str]] = [
    (PRESS.topic(), b'{"v":1,"readings":[{"signal":"power","value":' + b"9" * 400 + b',"ts":"2026-11-02T08:00:00Z"}]}', Problem.BAD_FIELD, "too large"),
    (PRESS.topic(), b'{"v":1,"readings":[{"signal":"power","value":' + b"9" * 5000 + b',"ts":"2026-11-02T08:00:00Z"}]}', Problem.NOT_JSON, "number out of range"),
    (PRESS.topic(), one(ts="9999-12-31T23:59:59-05:00"), Problem.BAD_FIELD, "outside the date range"),
    (PRESS.topic(), one(ts="0001-01-01T00:00:00+05:00"), Problem.BAD_FIELD, "outside the date range"),
    (PRESS.topic(), one(ts="2026-11-02T08:00:00+25:00"), Problem.BAD_FIELD, "readings.0.ts"),
    (PRESS.topic(), one(ts=1_700_000_000), Problem.BAD_FIELD, "not a number"),
    (PRESS.topic(), one(ts=None), Problem.BAD_FIELD, "readings.0.ts"),
    (PRESS.topic(), data({"signal": "power", "ts": VALID_TS}), Problem.BAD_FIELD, "readings.0.value: Field required"),
    (PRESS.topic(), json.dumps({"readings": [{"signal": "power", "value": 1, "ts": VALID_TS}]}).encode(), Problem.BAD_FIELD, "v: Field required"),
    (PRESS.topic(), DEEP, Problem.NOT_JSON, "recursion limit"),
    (PRESS.topic(), one("hot"), Problem.WRONG_KIND, "signal 'power' carries number values, not text"),
    (PRESS.topic(), one(True), Problem.WRONG_KIND, "signal 'power' carries number values, not boolean True"),
    (PRESS.topic(), one(3.0, signal="state"), Problem.WRONG_KIND, "signal 'state' carries text values, not number 3.0"),
    (PRESS.topic().replace("/data", "/event"), event(end="9999-12-31T23:59:59-05:00"), Problem.BAD_FIELD, "events.0.end"),
    (PRESS.topic().replace("/data", "/event"), event(start="0001-01-01T00:00:00+01:00"), Problem.BAD_FIELD, "events.0.start"),
    (PRESS.topic().replace("/data", "/event"), event(end="2026-11-02T07:00:00Z"), Problem.BAD_FIELD, "before start"),
    (PRESS.topic().replace("/data", "/event"), event(start=0), Problem.BAD_FIELD, "not a number"),
    (HUGE_TOPIC, one(), Problem.UNKNOWN_ASSET, "(40028 characters)"),
    ("polimer/brest/" + "/".join(["y" * 20_000] * 3) + "/data", one(), Problem.UNKNOWN_ASSET, "no asset"),
    ("polimer/brest//line-1/imm-01/data", one(), Problem.BAD_TOPIC, "is not <tenant>"),
]  # fmt: skip


@pytest.fixture(scope="module")
def acceptance(example_plant: Plant) -> Acceptance:
    return Acceptance(example_plant, max_future_s=300)


@pytest.mark.parametrize(("topic", "payload", "problem", "reason"), HOSTILE)
def test_hostile_message_is_refused_with_its_reason(
    acceptance: Acceptance, topic: str, payload: bytes, problem: Problem, reason: str
) -> None:
    refused = acceptance(topic, payload)
    assert isinstance(refused, Refusal)
    assert (refused.problem, reason in refused.reason) == (problem, True), refused.reason
    assert len(refused.reason) < 600  # a topic of tens of kilobytes is never echoed whole


def test_text_boolean_and_number_signals_accept_their_own_kind(example_plant: Plant) -> None:
    accept = Acceptance(example_plant, max_future_s=300)
    stored = accept(PRESS.topic(), data(
        {"signal": "state", "value": "running", "ts": VALID_TS},
        {"signal": "power", "value": 12, "ts": VALID_TS},
        {"signal": "power", "value": 12.5, "ts": "2026-11-02T09:00:00+01:00"},
    ))  # fmt: skip
    assert isinstance(stored, list)
    assert [(p.signal, p.value) for p in stored] == [
        ("state", "running"),
        ("power", 12.0),
        ("power", 12.5),
    ]
    assert stored[2].ts == datetime(2026, 11, 2, 8, tzinfo=UTC)
    switch = Signal(id="door_open", kind=SignalKind.BOOLEAN)
    for value in (True, False, 0, 1):
        switch.check(value)
    for wrong in (2, 0.5, "open"):
        with pytest.raises(ValueError, match="'door_open' carries boolean values"):
            switch.check(wrong)


# --- properties: anything in, points or a reason out ------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
READING_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "signal": st.sampled_from(["power", "state", "temperature", ""]) | st.text(max_size=70),
        "value": JSON | st.integers(min_value=10**300, max_value=10**400),
        "ts": st.datetimes(timezones=st.timezones()).map(datetime.isoformat)
        | st.sampled_from(
            ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+14:00", "2026-11-02T08:00:00+25:00"]
        )
        | JSON,
        "quality": st.sampled_from(["good", "bad", "worse"]) | JSON,
        "unit": st.text(max_size=70),
    },
)
MESSAGES = st.builds(
    lambda version, readings, events: json.dumps(
        {"v": version, "readings": readings, "events": events}, allow_nan=True
    ).encode(),
    st.sampled_from([1, 2, None, "1"]),
    st.lists(READING_FIELDS, max_size=3),
    st.lists(
        st.dictionaries(
            st.sampled_from(["name", "start", "end", "type"]),
            JSON | st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
        ),
        max_size=2,
    ),
)
PAYLOADS = st.binary(max_size=300) | MESSAGES | JSON.map(lambda v: json.dumps(v).encode())
TOPICS = st.text(max_size=80) | st.sampled_from(
    [PRESS.topic(), PRESS.topic().replace("/data", "/event"), ENV.topic(), "polimer/brest/+/#"]
)
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(payload=PAYLOADS)
def test_codec_decodes_anything_to_readings_or_a_reason(payload: bytes) -> None:
    for decode in (decode_readings, decode_events):
        try:
            decoded = decode(payload)
        except MessageError as exc:
            assert exc.problem in Problem and str(exc)
        else:
            assert decoded


@PROPERTY
@given(topic=TOPICS, payload=PAYLOADS)
def test_gateway_accepts_anything_as_points_or_a_reason(
    acceptance: Acceptance, topic: str, payload: bytes
) -> None:
    result = acceptance(topic, payload)
    if isinstance(result, Refusal):
        assert result.problem is not Problem.UNEXPECTED, result.reason
        assert result.reason
    else:
        assert all(isinstance(point, Point) for point in result)
        assert all(isinstance(point.value, float | str) for point in result)


SENSOR_PAYLOADS = PAYLOADS | st.builds(
    lambda value, ts: json.dumps({"value": value, "ts": ts}).encode(),
    JSON | st.integers(min_value=10**300, max_value=10**400) | st.floats(),
    JSON | st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
)


@PROPERTY
@given(
    payload=SENSOR_PAYLOADS,
    kind=st.sampled_from(SignalKind),
    scale=st.sampled_from([1.0, 0.01, 1e300]),
)
def test_edge_maps_any_sensor_payload_to_a_reading_or_a_reason(
    payload: bytes, kind: SignalKind, scale: float
) -> None:
    target = Signal(id="temperature", unit="degC", kind=kind)
    mapping = SensorMapping(topic="t", asset="env-01", signal="temperature", ts="ts", scale=scale)
    route = SensorRoute(mapping, {"env-01": (ENV, {"temperature": target})}, ZoneInfo("UTC"))
    try:
        _, got = read_sensor_message(route, "t", payload)
    except SensorPayloadError as exc:
        assert str(exc)
    else:
        assert all(isinstance(reading, Reading) for reading in got)
        for reading in got:
            target.check(reading.value)


# --- end to end: real Mosquitto and InfluxDB --------------------------------------------------


def test_hostile_messages_in_valid_traffic_cost_only_themselves(
    example_plant: Plant,
    mosquitto: Mosquitto,
    influx_store: tuple[InfluxDB, Store],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    _, store = influx_store
    letters = DeadLetters(mosquitto, example_plant)
    service = gateway(example_plant, mosquitto, store, tmp_path)
    publisher = make_client(mosquitto.url, f"hostile-{uuid.uuid4().hex[:6]}")
    publisher.loop_start()
    wait_until(publisher.is_connected, 10, "the publisher")
    expected: Counter[str] = Counter()
    valid = 0
    try:
        for round_ in range(20):
            for topic, payload, problem, _ in HOSTILE:
                publisher.publish(topic, payload, qos=1).wait_for_publish(10)
                expected[problem.value] += 1
                batch = [reading(valid), reading(valid + 1)]
                publisher.publish(PRESS.topic(), encode_readings(batch), qos=1)
                valid += 2
            assert service.snapshot().receiving, f"the receive thread died in round {round_}"
        total = sum(expected.values())
        wait_until(lambda: letters.count() == total, 60, f"{total} dead letters")
        wait_until(lambda: all_stored(store, valid), 60, f"{valid} valid points")
        health = service.snapshot()
    finally:
        service.stop()
        publisher.disconnect()
        publisher.loop_stop()
        letters.close()
    assert_exactly(store, valid)
    assert health.receiving and health.writing and health.causes == []
    decoded = [decode_dead_letter(letter) for letter in letters.letters]
    assert Counter(letter.problem.value for letter in decoded) == expected
    assert all(len(letter.topic) <= 1000 + 30 for letter in decoded)


def _health(port: int) -> tuple[int, dict[str, object]]:
    """The gateway's /health answer; (0, {}) while nothing answers on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError:
        return 0, {}


def test_gateway_killed_with_poison_unacknowledged_goes_on_after_restart(
    example_plant: Plant,
    mosquitto: Mosquitto,
    influx_store: tuple[InfluxDB, Store],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """SIGKILL, then hostile messages (each class) queued for the stopped gateway's session
    ahead of valid ones: after the restart, each is dead-lettered and every valid point stored."""
    server, store = influx_store
    port = free_port()
    log = tmp_path / "gateway.log"
    command = [
        "gateway", "--plant", str(EXAMPLE_PLANT), "--broker", mosquitto.url,
        "--store-url", server.url, "--store-database", "delivery",
        "--client-id", f"gw-poison-{uuid.uuid4().hex[:6]}", "--spill", str(tmp_path / "spill.db"),
        "--http-port", str(port), "--session-expiry", "120", "--api-token", "t" * 32,
    ]  # fmt: skip
    letters = DeadLetters(mosquitto, example_plant)
    publisher = make_client(mosquitto.url, f"poison-{uuid.uuid4().hex[:6]}")
    publisher.loop_start()
    wait_until(publisher.is_connected, 10, "the publisher")
    gateway_only = without(tmp_path / "uninstalled", *NOT_IN_EXTRA["gateway"])
    process = shopfloor(*command, log=log, env=gateway_only)
    try:
        wait_until(lambda: _health(port)[0] == 200, 30, "a healthy gateway")
        process.send_signal(signal.SIGKILL)
        process.wait()
        for index, (topic, payload, _, _) in enumerate(HOSTILE):
            publisher.publish(topic, payload, qos=1).wait_for_publish(10)
            batch = [reading(2 * index), reading(2 * index + 1)]
            publisher.publish(PRESS.topic(), encode_readings(batch), qos=1).wait_for_publish(10)
        process = shopfloor(*command, log=log)
        wait_until(
            lambda: letters.count() == len(HOSTILE), 60, "every hostile message dead-lettered"
        )
        wait_until(lambda: all_stored(store, 2 * len(HOSTILE)), 60, "every valid point")
        publisher.publish(PRESS.topic(), encode_readings([reading(2 * len(HOSTILE))]), qos=1)
        wait_until(lambda: all_stored(store, 2 * len(HOSTILE) + 1), 20, "ingest after the poison")
        status, body = _health(port)
    finally:
        stop_all([process])
        publisher.disconnect()
        publisher.loop_stop()
        letters.close()
    assert (status, body["causes"]) == (200, [])
    assert_exactly(store, 2 * len(HOSTILE) + 1)
    problems = Counter(decode_dead_letter(letter).problem for letter in letters.letters)
    assert problems == Counter(problem for _, _, problem, _ in HOSTILE)
    text = log.read_text()
    assert "Traceback" not in text
    assert "x" * 1000 not in text and "y" * 1000 not in text  # huge topics never logged whole


def test_timestamps_far_ahead_stay_refused_near_the_end_of_time(example_plant: Plant) -> None:
    """A horizon beyond year 9999 (the demo's large --max-future) refuses nothing by accident."""
    accept = Acceptance(example_plant, max_future_s=1e12)
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert isinstance(accept(PRESS.topic(), one(ts=future)), list)
