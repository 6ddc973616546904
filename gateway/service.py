"""The gateway: contract messages from the broker into the time-series store, losing nothing.

    broker ──(QoS 1, persistent session)──> validate ──> batch ──> writer thread ──> store
                                               │                    │  └─ store down: spill to disk,
                                               └─ refused ──────────┤     drain in order later
                                                                    └─ then acknowledge, in order

MQTT callbacks only decode, validate and add the message to the batch being filled; the writer
thread is woken once a batch, not once a message. A batch is taken when it is full (5,000 points
or half the broker's window of unacknowledged messages), its flush interval is over, or the
broker pauses because it waits for our acknowledgements. The writer writes its points and only
then acknowledges its messages, so a gateway killed mid-batch gets them again from its
persistent session (a repeated point overwrites itself). When the store is down, batches go to
a bounded disk spill and are acknowledged; the spill is written back oldest first before
anything newer. A refused message goes to the dead-letter topic with its reason and is
acknowledged like any other, so one bad publisher never stops or slows the valid traffic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway.stats import GatewayStats, StatsRecorder
from shopfloor.diskqueue import DiskQueue, DiskQueueError
from shopfloor.messages import (
    AssetPath,
    DeadLetter,
    MessageError,
    MessageKind,
    Problem,
    Quality,
    TopicError,
    dead_letter_topic,
    decode_events,
    decode_readings,
    encode_dead_letter,
    parse_topic,
    subscription,
)
from shopfloor.mqtt import Session, make_client
from shopfloor.plant import Plant, Signal
from shopfloor.store import Point, Store, StoreError, from_ns, to_ns

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
QUIET_S = 0.02  # no message for this long: the broker is waiting for our acknowledgements
DEAD_LETTER_SAMPLE = 1000
REJECTED_BY_STORE = "rejected_by_store"  # counted with the dead letters; the message is gone


@dataclass(frozen=True)
class GatewaySettings:
    client_id: str | None = None  # fixed, so the broker keeps the session across restarts
    share_group: str | None = None  # several gateways split one stream
    batch_size: int = 5000
    flush_interval_s: float = 0.5
    max_future_s: float = 300.0  # timestamps further ahead of this clock are refused
    spill_path: Path = Path(".shopfloor/gateway-spill.db")
    spill_max_mb: float = 1024
    spill_max_age_h: float = 168
    mqtt5: bool = True  # False for brokers that speak only 3.1.1 (the embedded demo broker)
    session: Session = field(default_factory=Session)


@dataclass(slots=True)
class Batch:
    """Messages written and acknowledged together, in the order they arrived."""

    points: list[Point] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    mids: list[int] = field(default_factory=list)  # QoS 1 messages of the current connection
    messages: int = 0
    started: float = 0.0  # monotonic time of its first message


Route = tuple[AssetPath, MessageKind, dict[str, Signal]]


class Gateway:
    def __init__(
        self, plant: Plant, broker_url: str, store: Store, settings: GatewaySettings | None = None
    ):
        self.plant, self.store = plant, store
        self.settings = settings = settings or GatewaySettings()
        self.catalogue = plant.catalogue()
        # Every topic the plant allows, so that a message is routed with one lookup.
        self.routes: dict[str, Route] = {
            path.topic(kind): (path, kind, signals)
            for path, signals in self.catalogue.items()
            for kind in MessageKind
        }
        self.max_future = timedelta(seconds=settings.max_future_s)
        tenant, site = plant.tenant.id, plant.site.id
        self.client_id = settings.client_id or f"shopfloor-gateway-{tenant}-{site}"
        filters = [subscription(tenant, kind, site) for kind in MessageKind]
        if settings.share_group:
            filters = [f"$share/{settings.share_group}/{topic}" for topic in filters]
        self.mqtt = make_client(
            broker_url,
            self.client_id,
            [(topic, 1) for topic in filters],
            clean_session=False,
            session=settings.session if settings.mqtt5 else None,
        )
        if not settings.mqtt5:
            self.mqtt.manual_ack_set(True)
        self.mqtt.on_message = self._on_message
        self.mqtt.on_disconnect = self._on_disconnect
        self.dead_letters = dead_letter_topic(tenant, site)
        self.spill = DiskQueue(
            settings.spill_path,
            int(settings.spill_max_mb * 1024 * 1024),
            settings.spill_max_age_h * 3600,
            name="gateway spill",
        )
        # Half the broker's window: the other half keeps arriving while a batch is written.
        self.batch_messages = max(1, settings.session.receive_maximum // 2)
        self.stats = StatsRecorder()
        self.stopping = threading.Event()
        # Guards the batches below and the connection number; notified when a batch starts
        # or is full, so that the writer is not woken for every message.
        self._arrived = threading.Condition()
        self._filling = Batch()
        self._full: deque[Batch] = deque()
        self._last_arrival = 0.0
        self._connection = 0
        self._next_drain = 0.0
        self._drain_backoff = 0.5
        self._final: GatewayStats | None = None
        # A daemon: whatever it has not acknowledged waits at the broker or in the spill, so
        # nothing is lost if the process must end without a clean stop.
        self._writer = threading.Thread(
            target=self._write_forever, name="store-writer", daemon=True
        )

    # --- receiving (paho's network thread) --------------------------------------------------

    def _on_disconnect(self, *args: object) -> None:
        """Acknowledgements of the old connection's messages are void: the broker sends them
        again on the next one, perhaps under other ids."""
        with self._arrived:
            self._connection += 1
            for batch in (*self._full, self._filling):
                batch.mids.clear()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.stopping.is_set():
            return  # unacknowledged: the broker gives it to the next gateway session
        self.stats.received()
        topic, payload = msg.topic, msg.payload
        letter = None
        try:
            points = self.accept(topic, payload)
        except (TopicError, MessageError) as exc:
            problem = exc.problem if isinstance(exc, MessageError) else Problem.BAD_TOPIC
            points, letter = [], self._letter(topic, payload, problem, str(exc))
        with self._arrived:
            self._add(points, letter, msg.mid if msg.qos else 0)

    def _add(self, points: list[Point], letter: DeadLetter | None, mid: int) -> None:
        """Add one message to the batch being filled (the lock held); wake the writer when it
        is the batch's first message or fills it."""
        batch = self._filling
        self._last_arrival = now = time.monotonic()
        if not batch.messages:
            batch.started = now
            self._arrived.notify()
        batch.points += points
        batch.messages += 1
        if letter is not None:
            batch.letters.append(letter)
        if mid:
            batch.mids.append(mid)
        if len(batch.points) >= self.settings.batch_size or batch.messages >= self.batch_messages:
            self._full.append(batch)
            self._filling = Batch()
            self._arrived.notify()

    def accept(self, topic: str, payload: bytes | bytearray) -> list[Point]:
        """Decode a message and check it against the plant; raises with the reason if bad."""
        route = self.routes.get(topic)
        if route is None:
            path, _ = parse_topic(topic)
            raise MessageError(f"no asset {path} in the plant model", Problem.UNKNOWN_ASSET)
        path, kind, signals = route
        if kind is MessageKind.EVENT:
            return [Point.from_event(path, event) for event in decode_events(payload)]
        readings = decode_readings(payload)
        horizon = datetime.now(UTC) + self.max_future
        for reading in readings:
            if reading.signal not in signals:
                raise MessageError(
                    f"asset {path} has no signal {reading.signal!r}", Problem.UNKNOWN_SIGNAL
                )
            if reading.ts > horizon:
                raise MessageError(
                    f"{reading.signal}: ts {reading.ts.isoformat()} is more than "
                    f"{self.settings.max_future_s:g} s ahead of the gateway's clock",
                    Problem.FUTURE_TIMESTAMP,
                )
        return [Point.from_reading(path, reading) for reading in readings]

    def _letter(
        self, topic: str, payload: bytes | bytearray, problem: Problem, reason: str
    ) -> DeadLetter:
        return DeadLetter(
            topic=topic,
            problem=problem,
            reason=reason,
            received=datetime.now(UTC),
            payload=bytes(payload[:DEAD_LETTER_SAMPLE]).decode("utf-8", errors="replace"),
            size=len(payload),
            gateway=self.client_id,
        )

    # --- writing (the writer thread) --------------------------------------------------------

    def _next_batch(self) -> tuple[Batch, int] | None:
        """The oldest batch once it is full, its flush interval is over or the broker pauses
        (no message for QUIET_S), with the connection it came on; None if none started."""
        first_wait = self.settings.flush_interval_s if self.spill.empty else 0.1
        with self._arrived:
            if not self._full and not self._filling.messages:
                self._arrived.wait(first_wait)
            while not self._full and self._filling.messages and not self.stopping.is_set():
                deadline = self._filling.started + self.settings.flush_interval_s
                wake = min(deadline, self._last_arrival + QUIET_S)
                remaining = wake - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            if not self._full:
                if not self._filling.messages:
                    return None
                self._full.append(self._filling)
                self._filling = Batch()
            return self._full.popleft(), self._connection

    def _has_pending(self) -> bool:
        with self._arrived:
            return bool(self._full or self._filling.messages)

    def _write_forever(self) -> None:
        while not (self.stopping.is_set() and not self._has_pending()):
            taken = self._next_batch()
            if taken and not self._handle(*taken):
                return  # stopping with a batch neither written nor spilled: the broker keeps it
            if not self.spill.empty and time.monotonic() >= self._next_drain:
                self._drain()

    def _handle(self, batch: Batch, connection: int) -> bool:
        """Store (or spill) a batch, dead-letter its refused messages, then acknowledge all."""
        if batch.points and not self._persist(batch.points):
            return False
        for letter in batch.letters:
            self._dead_letter(letter)
        with self._arrived:  # a disconnect meanwhile voids the batch's acknowledgements
            if connection == self._connection:
                for mid in batch.mids:
                    self.mqtt.ack(mid, 1)  # subscribed at QoS 1: nothing arrives at QoS 2
        return True

    def _persist(self, points: list[Point]) -> bool:
        """Write, or spill while the store is down; wait and retry when neither works."""
        backoff = 0.5
        while True:
            if self.spill.empty and self._write(points):
                return True
            try:
                self.spill.put([("points", encode_points(points))])
                return True
            except DiskQueueError as exc:
                log.error("%s; holding %d points, unacknowledged", exc, len(points))
            if self.stopping.wait(backoff):
                return False
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _write(self, points: list[Point]) -> bool:
        """Write points; False while the store is unavailable. Points the store rejects (an
        out-of-range timestamp, say) are found by halving the batch and dropped, counted, so
        that one bad point never blocks the rest, nor the spill behind it."""
        started = time.monotonic()
        try:
            self.store.write(points)
        except StoreError as exc:
            if not exc.rejected:
                self.stats.write_failed()
                log.warning("store write of %d points failed: %s", len(points), exc)
                return False
            if len(points) == 1:
                self.stats.dead_letter(REJECTED_BY_STORE)
                log.error("the store rejected %s: %s", points[0], exc)
                return True
            half = len(points) // 2
            return self._write(points[:half]) and self._write(points[half:])
        self.stats.wrote(len(points), time.monotonic() - started)
        return True

    def _drain(self, max_batches: int = 20) -> None:
        """Write spilled batches back, oldest first; back off while the store stays down."""
        for entry in self.spill.oldest(max_batches):
            if not self._write(decode_points(entry.payload)):
                self._next_drain = time.monotonic() + self._drain_backoff
                self._drain_backoff = min(self._drain_backoff * 2, MAX_BACKOFF_S)
                return
            self.spill.acknowledge([entry.id])
        self._drain_backoff = 0.5

    def _dead_letter(self, letter: DeadLetter) -> None:
        self.stats.dead_letter(letter.problem.value)
        log.warning("dead-lettered a message on %s: %s", letter.topic, letter.reason)
        self.mqtt.publish(self.dead_letters, encode_dead_letter(letter), qos=1)

    # --- life cycle -------------------------------------------------------------------------

    def snapshot(self) -> GatewayStats:
        """The figures now; after `stop`, the figures it stopped with."""
        if self._final is not None:
            return self._final
        return self.stats.snapshot(
            self.spill.depth, self.spill.dropped, broker_connected=self.mqtt.is_connected()
        )

    def start(self) -> None:
        self._writer.start()
        self.mqtt.loop_start()

    def stop(self) -> None:
        """Stop taking messages, then store what was already received (or leave it at the
        broker, unacknowledged, when the store cannot take it now)."""
        self.stopping.set()
        with self._arrived:
            self._arrived.notify()  # a writer waiting for a first message stops waiting
        self._writer.join()
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
        self._final = self.snapshot()
        self.spill.close()


def encode_points(points: list[Point]) -> bytes:
    """Points as compact JSON rows, for the spill file."""
    rows = [[*p.asset, p.signal, to_ns(p.ts), p.value, p.quality.value, p.unit] for p in points]
    return json.dumps(rows, separators=(",", ":")).encode()


def decode_points(payload: bytes) -> list[Point]:
    return [
        Point(AssetPath(*row[:5]), row[5], from_ns(row[6]), row[7], Quality(row[8]), row[9])
        for row in json.loads(payload)
    ]
