"""Record and replay of live sessions, on a real Mosquitto broker."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from shopfloor.messages import (
    AssetPath,
    Event,
    MessageKind,
    Reading,
    decode_events,
    decode_readings,
    encode_events,
    encode_readings,
    parse_topic,
)
from shopfloor.mqtt import make_client
from simulators.recording import RecordingError, record, replay
from tests.servers import Mosquitto

BASE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
ASSETS = [
    AssetPath("polimer", "brest", "moulding", "line-1", "cnc-01"),
    AssetPath("polimer", "brest", "moulding", "line-1", "imm-01"),
    AssetPath("polimer", "brest", "moulding", "hall-a", "env-01"),
]
CNC = ASSETS[0]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Listener:
    """A subscriber that keeps every message it receives, in order."""

    def __init__(self, url: str, *filters: str):
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        subscriptions = [(f, 1) for f in filters]
        self.client = make_client(url, f"test-listener-{uuid.uuid4().hex[:8]}", subscriptions)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.loop_start()
        wait_until(self.subscribed.is_set, 10, "the listener's subscription")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            return  # left on the shared broker by earlier tests (e.g. a simulator's status)
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: list[ReasonCode], _: object
    ) -> None:
        self.subscribed.set()

    def received(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listen(mosquitto: Mosquitto) -> Iterator[Callable[..., Listener]]:
    listeners: list[Listener] = []

    def start(*filters: str) -> Listener:
        listeners.append(Listener(mosquitto.url, *filters))
        return listeners[-1]

    yield start
    for listener in listeners:
        listener.close()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    client = make_client(mosquitto.url, f"test-publisher-{uuid.uuid4().hex[:8]}")
    client.loop_start()
    wait_until(client.is_connected, 10, "the publisher")
    yield client
    client.disconnect()
    client.loop_stop()


def session() -> list[tuple[str, bytes]]:
    """A short shop-floor session: three assets, two signals each, five batches; one fault."""
    messages: list[tuple[str, bytes]] = []
    for i in range(5):
        ts = BASE + timedelta(seconds=i, microseconds=250_000)
        for n, asset in enumerate(ASSETS):
            readings = [
                Reading(signal="power", value=10.5 * n + i, ts=ts, unit="kW"),
                Reading(signal="state", value="running" if i % 2 else "idle", ts=ts),
            ]
            messages.append((asset.topic(), encode_readings(readings)))
        if i == 2:
            fault = Event(name="bearing_wear", start=ts, end=ts + timedelta(minutes=10))
            messages.append((CNC.topic(MessageKind.EVENT), encode_events([fault])))
    return messages


def write_recording(path: Path, messages: list[tuple[float, str, bytes]]) -> Path:
    lines = [{"shopfloor_recording": 1, "tenant": "polimer", "started": "2026-11-02T08:00:00Z"}]
    lines += [{"t": t, "topic": topic, "payload": json.loads(p)} for t, topic, p in messages]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def file_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


class Recorder:
    """`record` running in a thread, started once its header shows it is listening."""

    def __init__(self, url: str, tenant: str, path: Path):
        self.path, self.stop = path, threading.Event()
        self.result: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(record(url, tenant, path, stop=self.stop))
        )
        self.thread.start()
        wait_until(lambda: len(file_lines(path)) == 1, 10, "the recording's header")

    def finish(self, lines: int) -> int:
        wait_until(lambda: len(file_lines(self.path)) == lines, 10, f"{lines} lines")
        self.stop.set()
        self.thread.join(10)
        return self.result[0]


def timestamps(topic: str, payload: bytes) -> list[datetime]:
    if parse_topic(topic)[1] is MessageKind.DATA:
        return [r.ts for r in decode_readings(payload)]
    return [t for e in decode_events(payload) for t in (e.start, e.end) if t is not None]


def series(messages: list[tuple[str, bytes]]) -> dict[tuple[str, str], list[Any]]:
    """Each signal's values in arrival order, keyed by (topic below the tenant, signal)."""
    found: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for topic, payload in messages:
        below = topic.split("/", 1)[1]
        if parse_topic(topic)[1] is MessageKind.DATA:
            for r in decode_readings(payload):
                found[below, r.signal].append(r.value)
        else:
            found[below, "events"] += [e.name for e in decode_events(payload)]
    return dict(found)


def test_record_then_replay_under_another_tenant(
    mosquitto: Mosquitto, publisher: mqtt.Client, listen: Callable[..., Listener], tmp_path: Path
) -> None:
    path = tmp_path / "session.jsonl"
    sent = session()
    recorder = Recorder(mosquitto.url, "polimer", path)
    for topic, payload in sent:
        publisher.publish(topic, payload, qos=1).wait_for_publish(5)
    assert recorder.finish(1 + len(sent)) == len(sent)

    header, *lines = file_lines(path)
    assert header["shopfloor_recording"] == 1 and header["tenant"] == "polimer"
    started = datetime.fromisoformat(header["started"])
    assert [(line["topic"], line["payload"]) for line in lines] == [
        (topic, json.loads(payload)) for topic, payload in sent
    ]
    assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(lines))

    listener = listen("trainee-1/+/+/+/+/+")
    before = datetime.now(UTC)
    assert replay(path, mosquitto.url, speed=1000, tenant="trainee-1", progress=False) == len(sent)
    after = datetime.now(UTC)
    wait_until(lambda: len(listener.received()) == len(sent), 10, "the replayed messages")

    got = listener.received()
    assert all(topic.startswith("trainee-1/brest/moulding/") for topic, _ in got)
    assert series(got) == series(sent)  # every value, in order per signal
    by_topic: dict[str, list[bytes]] = defaultdict(list)
    for topic, payload in sent:
        by_topic[topic.split("/", 1)[1]].append(payload)
    offsets = set()
    for topic, payload in got:
        original = by_topic[topic.split("/", 1)[1]].pop(0)
        new, old = timestamps(topic, payload), timestamps(topic, original)
        assert len(new) == len(old)
        offsets |= {a - b for a, b in zip(new, old, strict=True)}
    assert len(offsets) == 1
    assert before - started <= offsets.pop() <= after - started


def test_concurrent_replays_stay_in_their_own_tenant(
    mosquitto: Mosquitto, listen: Callable[..., Listener], tmp_path: Path
) -> None:
    sent = session()
    path = write_recording(
        tmp_path / "session.jsonl", [(i / 100, t, p) for i, (t, p) in enumerate(sent)]
    )
    listener = listen("trainee-1/+/+/+/+/+", "trainee-2/+/+/+/+/+")
    results: dict[str, int] = {}

    def run(tenant: str) -> None:
        results[tenant] = replay(path, mosquitto.url, speed=10, tenant=tenant, progress=False)

    threads = [threading.Thread(target=run, args=(t,)) for t in ("trainee-1", "trainee-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == {"trainee-1": len(sent), "trainee-2": len(sent)}
    wait_until(lambda: len(listener.received()) >= 2 * len(sent), 10, "both replays")
    time.sleep(0.3)  # anything extra would arrive now

    got = listener.received()
    assert len(got) == 2 * len(sent)
    for tenant in ("trainee-1", "trainee-2"):
        own = [(topic, payload) for topic, payload in got if topic.startswith(f"{tenant}/")]
        assert len(own) == len(sent)
        assert series(own) == series(sent)


def test_replay_paces_messages_by_speed(
    mosquitto: Mosquitto, listen: Callable[..., Listener], tmp_path: Path
) -> None:
    batch = encode_readings([Reading(signal="power", value=1.0, ts=BASE, unit="kW")])
    path = write_recording(tmp_path / "paced.jsonl", [(t, CNC.topic(), batch) for t in (0, 1, 2)])
    listener = listen("paced/+/+/+/+/+")
    started = time.monotonic()
    assert replay(path, mosquitto.url, speed=2, tenant="paced", progress=True) == 3
    assert 0.8 <= time.monotonic() - started <= 3
    wait_until(lambda: len(listener.received()) == 3, 5, "the paced messages")


GOOD = json.dumps(
    {
        "t": 0.5,
        "topic": "polimer/brest/moulding/line-1/cnc-01/data",
        "payload": {
            "v": 1,
            "readings": [{"signal": "power", "value": 1, "ts": "2026-11-02T08:00Z"}],
        },
    }
)
HEADER = '{"shopfloor_recording": 1, "tenant": "polimer", "started": "2026-11-02T08:00:00Z"}'
NO_TS = GOOD.replace(', "ts": "2026-11-02T08:00Z"', "")
UNKNOWN_KIND = GOOD.replace("cnc-01/data", "cnc-01/status")
BACKWARDS = GOOD.replace('"t": 0.5', '"t": 0.2')


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        ([GOOD, GOOD], 1, "missing header"),
        ([HEADER.replace(": 1,", ": 2,"), GOOD], 1, "unsupported recording version 2"),
        ([HEADER, GOOD, "{not json", GOOD], 3, "not JSON"),
        ([HEADER, GOOD, UNKNOWN_KIND], 3, "unknown kind 'status'"),
        ([HEADER, GOOD, NO_TS], 3, "payload breaks the message contract: readings.0.ts"),
        ([HEADER, GOOD, GOOD, BACKWARDS], 4, "'t' goes backwards"),
    ],
    ids=["no-header", "version-2", "not-json", "unknown-kind", "reading-without-ts", "t-backwards"],
)
def test_bad_recordings_are_refused_before_anything_is_published(
    mosquitto: Mosquitto,
    listen: Callable[..., Listener],
    tmp_path: Path,
    lines: list[str],
    line: int,
    reason: str,
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(f"{text}\n" for text in lines))
    listener = listen("#")
    with pytest.raises(RecordingError) as raised:
        replay(path, mosquitto.url, speed=1000, progress=False)
    message = str(raised.value)
    assert message.startswith(f"{path}:{line}: ")
    assert reason in message and "\n" not in message
    time.sleep(0.3)
    assert listener.received() == []


def test_missing_or_empty_recording_and_bad_speed(mosquitto: Mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "missing.jsonl"
    with pytest.raises(RecordingError, match="cannot read") as raised:
        replay(path, mosquitto.url, progress=False)
    assert str(raised.value).startswith(f"{path}: ")
    path.write_text("")
    with pytest.raises(RecordingError, match="empty file") as raised:
        replay(path, mosquitto.url, progress=False)
    assert str(raised.value).startswith(f"{path}: ")
    with pytest.raises(ValueError, match="speed"):
        replay(write_recording(path, []), mosquitto.url, speed=0, progress=False)


def test_record_for_a_duration_of_a_quiet_floor(mosquitto: Mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "quiet.jsonl"
    started = time.monotonic()
    assert record(mosquitto.url, "quiet", path, duration_s=0.3) == 0
    assert 0.3 <= time.monotonic() - started < 5
    [header] = file_lines(path)
    assert header["shopfloor_recording"] == 1 and header["tenant"] == "quiet"
    assert replay(path, mosquitto.url, progress=False) == 0


def test_messages_breaking_the_contract_are_not_recorded(
    mosquitto: Mosquitto,
    publisher: mqtt.Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="simulators.recording")
    good = session()[:3]
    data, event = CNC.topic(), CNC.topic(MessageKind.EVENT)
    fault = encode_events([Event(name="bearing_wear", start=BASE)])
    bad = [
        (data, b"{not json"),
        (
            data,
            b'{"v": 1, "readings": [{"signal": "power", "value": NaN, "ts": "2026-11-02T08:00Z"}]}',
        ),
        (data, fault),  # an event on a data topic
        (event, good[0][1]),  # readings on an event topic
        (data, good[0][1].replace(b'"v":1', b'"v":2')),
    ]
    path = tmp_path / "session.jsonl"
    recorder = Recorder(mosquitto.url, "polimer", path)
    for topic, payload in [bad[0], good[0], *bad[1:3], good[1], *bad[3:], good[2]]:
        publisher.publish(topic, payload, qos=1).wait_for_publish(5)
    assert recorder.finish(1 + len(good)) == len(good)

    _, *lines = file_lines(path)
    assert [(line["topic"], line["payload"]) for line in lines] == [
        (topic, json.loads(payload)) for topic, payload in good
    ]
    skipped = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(skipped) == len(bad)
    assert all("not recording the message on polimer/" in r.getMessage() for r in skipped)
