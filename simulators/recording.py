"""Record a live shop-floor session to a file and replay it later, for trainers.

A recording is JSON Lines: a header, then one line per contract message with its offset from
the start of the recording::

    {"shopfloor_recording": 1, "tenant": "polimer", "started": "2026-11-02T08:00:00.000000Z"}
    {"t": 0.25, "topic": "polimer/brest/moulding/line-1/cnc-01/data", "payload": {"v": 1, ...}}

A replay starts the recording "now": every timestamp in the payloads moves by the same offset,
so dashboards and analytics see a live line. Its pace can be changed (`speed`), which turns the
recording's own timestamps into a simulated clock; the replay announces that clock on each
site's status topic, as a live simulator does, so gateways accept readings that run ahead of
the wall clock. Its tenant can be replaced, so several trainees can each get an isolated copy of
the same session on one broker.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from shopfloor.messages import (
    Event,
    MessageKind,
    Reading,
    SimulatorStatus,
    TopicError,
    decode_events,
    decode_readings,
    encode_events,
    encode_readings,
    iso_utc,
    parse_topic,
    status_topic,
    subscription,
)
from shopfloor.mqtt import close, make_client, publish_once, wait_connected
from shopfloor.sandboxes import TENANT_ID

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
HEADER_KEY = "shopfloor_recording"
CONNECT_TIMEOUT_S = 30.0
# A replay gives up (rather than return as if nothing were lost) when the broker acknowledges
# nothing for this long; the client keeps reconnecting and resending until then.
ACK_TIMEOUT_S = 60.0


class RecordingError(Exception):
    """A recording file that cannot be replayed; the message is one `FILE[:LINE]: reason` line."""

    def __init__(self, path: Path, reason: str, line: int | None = None):
        self.path, self.line = path, line
        self.reason = " ".join(reason.split())
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {self.reason}")


class RecordingWriter:
    """The one writer of recording files, for live recordings and fast simulator runs alike.

    Writes the header, then one flushed line per message, so a killed writer loses at most
    the line it was writing.
    """

    def __init__(self, file: TextIO, tenant: str, started: datetime):
        self.file = file
        self._line({HEADER_KEY: FORMAT_VERSION, "tenant": tenant, "started": iso_utc(started)})

    def write(self, t: float, topic: str, payload: object) -> None:
        """One message, `t` seconds after the start, its payload as parsed JSON."""
        self._line({"t": round(t, 6), "topic": topic, "payload": payload})

    def _line(self, line: dict[str, Any]) -> None:
        self.file.write(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n")
        self.file.flush()


class _Recorder:
    """Writes each accepted message as one flushed line, from paho's network thread."""

    def __init__(self, tenant: str, file: TextIO):
        self.tenant, self.file = tenant, file
        self.lock = threading.Lock()
        self.started_mono: float | None = None
        self.writer: RecordingWriter | None = None
        self.recorded = self.skipped = 0

    def start(self) -> None:
        """Write the header once: the clock starts when the recorder can first hear the floor."""
        with self.lock:
            self._start()

    def _start(self) -> None:
        if self.started_mono is not None:
            return
        self.started_mono = time.monotonic()
        self.writer = RecordingWriter(self.file, self.tenant, _now())

    def on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: object,
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            log.error("the broker refused the recorder's subscriptions: %s", reason_codes)
            return
        self.start()

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            _, kind = parse_topic(msg.topic)
            (decode_readings if kind is MessageKind.DATA else decode_events)(msg.payload)
            payload = json.loads(msg.payload)
        except ValueError as exc:  # TopicError, MessageError and JSON errors alike
            self.skipped += 1
            log.warning("not recording the message on %s: %s", msg.topic, exc)
            return
        with self.lock:
            self._start()
            assert self.started_mono is not None and self.writer is not None
            self.writer.write(time.monotonic() - self.started_mono, msg.topic, payload)
            self.recorded += 1


def _now() -> datetime:
    return datetime.now(UTC)


def record(
    broker_url: str,
    tenant: str,
    path: Path,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Record the tenant's data and event messages to `path` until `duration_s` or `stop`.

    Messages that break the contract are skipped (and logged), so a recording always replays.
    The header is written once the broker has acknowledged the subscriptions (or at the end, if
    it never did): a reader that sees it knows the recorder is listening. Each line is flushed,
    so a killed recorder loses at most the line it was writing. Returns the messages recorded.
    """
    if stop is None:
        stop = threading.Event()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    filters = [(subscription(tenant, kind), 1) for kind in (MessageKind.DATA, MessageKind.EVENT)]
    client_id = f"shopfloor-record-{uuid.uuid4().hex[:12]}"
    with path.open("w", encoding="utf-8") as file:
        recorder = _Recorder(tenant, file)
        client = make_client(broker_url, client_id, subscriptions=filters)
        client.on_subscribe = recorder.on_subscribe
        client.on_message = recorder.on_message
        client.loop_start()
        try:
            while not stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                stop.wait(remaining)
        finally:
            close(client)
            recorder.start()
    log.info(
        "recorded %d messages of tenant %s to %s (%d skipped as breaking the contract)",
        recorder.recorded,
        tenant,
        path,
        recorder.skipped,
    )
    return recorder.recorded


@dataclass(frozen=True)
class _Message:
    t: float
    topic: str
    readings: list[Reading]
    events: list[Event]


def _read_lines(path: Path) -> Generator[tuple[int, str], None, None]:
    try:
        with path.open("rb") as file:
            for number, raw in enumerate(file, start=1):
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise RecordingError(path, "not UTF-8 text", number) from None
    except OSError as exc:
        raise RecordingError(path, f"cannot read the recording: {exc.strerror}") from None


def _read_header(path: Path, lines: Iterator[tuple[int, str]]) -> tuple[str, datetime]:
    """The recording's tenant and start time, from its first line."""
    first = next(lines, None)
    if first is None:
        raise RecordingError(path, "empty file: no recording header")
    number, text = first
    try:
        header = json.loads(text)
    except ValueError:
        header = None
    if not isinstance(header, dict) or HEADER_KEY not in header:
        raise RecordingError(
            path, f'missing header: expected {{"{HEADER_KEY}": {FORMAT_VERSION}, ...}}', number
        )
    if header[HEADER_KEY] != FORMAT_VERSION:
        raise RecordingError(
            path,
            f"unsupported recording version {header[HEADER_KEY]!r} (expected {FORMAT_VERSION})",
            number,
        )
    try:
        started = datetime.fromisoformat(header["started"])
    except (KeyError, TypeError, ValueError):
        started = None
    if started is None or started.tzinfo is None:
        raise RecordingError(path, "header: 'started' is not an ISO 8601 time with a zone", number)
    tenant = header.get("tenant")
    if not isinstance(tenant, str):
        raise RecordingError(path, "header: 'tenant' is not text", number)
    return tenant, started


def _parse_message(path: Path, number: int, text: str) -> _Message:
    try:
        line = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordingError(path, f"not JSON: {exc.msg} at column {exc.colno}", number) from None
    if not isinstance(line, dict):
        raise RecordingError(path, "not a JSON object", number)
    for key in ("t", "topic", "payload"):
        if key not in line:
            raise RecordingError(path, f"missing {key!r}", number)
    t, topic = line["t"], line["topic"]
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise RecordingError(path, f"'t' must be a number of seconds >= 0, not {t!r}", number)
    if not isinstance(topic, str):
        raise RecordingError(path, f"'topic' must be text, not {topic!r}", number)
    try:
        _, kind = parse_topic(topic)
        payload = json.dumps(line["payload"], allow_nan=False).encode()
        if kind is MessageKind.DATA:
            return _Message(float(t), topic, decode_readings(payload), [])
        return _Message(float(t), topic, [], decode_events(payload))
    except TopicError as exc:
        raise RecordingError(path, str(exc), number) from None
    except ValueError as exc:  # MessageError, or a NaN the contract has no JSON for
        raise RecordingError(path, f"payload breaks the message contract: {exc}", number) from None


def recording_header(path: Path) -> tuple[str, datetime]:
    """The tenant a recording was made of and when it started; raises RecordingError."""
    lines = _read_lines(path)
    try:
        return _read_header(path, lines)
    finally:
        lines.close()


def _messages(path: Path) -> Iterator[_Message]:
    """The recording's messages, each checked as it is read; raises RecordingError."""
    lines = _read_lines(path)
    try:
        _read_header(path, lines)
        last_t = 0.0
        for number, text in lines:
            if not text.strip():
                continue
            message = _parse_message(path, number, text)
            if message.t < last_t:
                raise RecordingError(
                    path, f"'t' goes backwards: {message.t} after {last_t}", number
                )
            last_t = message.t
            yield message
    finally:
        lines.close()


def _shifted(message: _Message, offset: timedelta) -> bytes:
    """The payload re-encoded with every timestamp moved by `offset`."""
    if message.readings:
        return encode_readings(
            [r.model_copy(update={"ts": r.ts + offset}) for r in message.readings]
        )
    return encode_events(
        [
            e.model_copy(update={"start": e.start + offset, "end": e.end and e.end + offset})
            for e in message.events
        ]
    )


class _Acks:
    """Counts the broker's acknowledgements, so a replay returns only once nothing is lost."""

    def __init__(self, progress: Progress, task: TaskID):
        self.progress, self.task = progress, task
        self.count = 0
        self.changed = threading.Condition()

    def on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()
        self.progress.advance(self.task)

    def wait_for(self, total: int) -> None:
        with self.changed:
            while self.count < total:
                before = self.count
                self.changed.wait(ACK_TIMEOUT_S)
                if self.count == before:
                    raise ConnectionError(
                        f"the broker acknowledged nothing for {ACK_TIMEOUT_S:.0f} s; "
                        f"{total - self.count} of {total} messages unconfirmed"
                    )


def replay(
    path: Path,
    broker_url: str,
    speed: float = 1.0,
    tenant: str | None = None,
    progress: bool = True,
    shift_time: bool = True,
) -> int:
    """Publish a recording as if it were happening now; returns the messages published.

    The whole file is validated first, so a bad line never leaves a half-played session.
    Message `t` is published at `t / speed` seconds after the start and every payload
    timestamp moves by (now - recording start), so at `speed` 60 a minute carries an hour of
    readings; with `shift_time` false
    they keep their recorded times (to backfill history). The session's clock is announced,
    retained, on each site's status topic while the replay runs. `tenant` replaces the first
    topic level, isolating concurrent replays. Returns only once the broker has acknowledged
    every message (QoS 1).
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0, not {speed}")
    if tenant is not None and not TENANT_ID.match(tenant):
        raise ValueError(f"tenant {tenant!r} is not an id (lower-case letters, digits, - and _)")
    total, sites = 0, set()
    for message in _messages(path):
        total += 1
        sites.add(message.topic.split("/", 2)[1])
    recorded_tenant, started = recording_header(path)
    statuses = sorted(status_topic(tenant or recorded_tenant, site) for site in sites)

    client = make_client(broker_url, f"shopfloor-replay-{uuid.uuid4().hex[:12]}")
    if statuses:  # a replay that dies without a word must not leave its clock running
        client.will_set(statuses[0], b"", qos=1, retain=True)
    bar = Progress(
        TextColumn("replay {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
    )
    task = bar.add_task(path.name, total=total)
    acks = _Acks(bar, task)
    client.on_publish = acks.on_publish
    client.loop_start()
    try:
        wait_connected(client, broker_url, CONNECT_TIMEOUT_S)
        try:
            bar.start()
        except LiveError:  # older rich shows one live display at a time; later replays go without
            bar.disable = True
        begun = _now()
        offset = begun - started if shift_time else timedelta(0)
        status = SimulatorStatus(
            scenario=f"replay of {path.name}",
            available=[],
            speed=speed,
            started=started + offset,
            clock=started + offset,
            announced=begun,
        )
        _announce(broker_url, statuses, status.model_dump_json().encode())
        try:
            published = _publish_all(client, path, speed, tenant, offset)
            acks.wait_for(published)
        finally:
            bar.stop()
            _announce(broker_url, statuses, b"")  # the session is over: its clock stops
    finally:
        close(client)
    log.info("replayed %d messages from %s at speed %g", published, path, speed)
    return published


def _announce(broker_url: str, topics: list[str], payload: bytes) -> None:
    """Keep `payload` retained on each status topic (an empty one clears it)."""
    for topic in topics:
        publish_once(broker_url, topic, payload, CONNECT_TIMEOUT_S, retain=True)


def _publish_all(
    client: mqtt.Client, path: Path, speed: float, tenant: str | None, offset: timedelta
) -> int:
    """Publish every message on time, its timestamps moved by `offset`."""
    start_mono = time.monotonic()
    published = 0
    for message in _messages(path):
        delay = start_mono + message.t / speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        topic = message.topic
        if tenant is not None:
            topic = f"{tenant}/{topic.split('/', 1)[1]}"
        client.publish(topic, _shifted(message, offset), qos=1)
        published += 1
    return published
