"""The gateway: contract messages from the broker into the time-series store, losing nothing.

    broker ──(QoS 1, persistent session)──> validate ──> batch ──> writer thread ──> store
                                               │                    │  └─ store down: spill to disk,
                                               └─ refused ──────────┤     drain in order later
                                                                    └─ then acknowledge, in order

MQTT callbacks only decode, validate and add the message to the batch being filled; the writer
thread is woken once a batch, not once a message. A batch is taken when it is full (5,000 points
or half the broker's window of unacknowledged messages) or as soon as the network loop has read
everything the broker sent: no timer holds a lone message back, and while the writer is busy
the next batch grows with whatever arrives meanwhile. The writer writes its points and only
then acknowledges its messages, so a gateway killed mid-batch gets them again from its
persistent session (a repeated point overwrites itself). When the store is down, batches go to
a bounded disk spill and are acknowledged; the spill is written back oldest first before
anything newer. A refused message goes to the dead-letter topic with its reason and is
acknowledged once the broker has the dead letter, so one bad publisher never stops the valid
traffic, and a restart does not meet the same message again. Nothing a message holds can raise
out of the receive path; the writer thread survives whatever a store throws. `snapshot()` says
when either thread has died, the store is failing or ingest lags.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway.acceptance import Acceptance, Refusal
from gateway.stats import GatewayStats, StatsRecorder
from shopfloor.diskqueue import DiskQueue, DiskQueueError, Queued
from shopfloor.messages import (
    AssetPath,
    DeadLetter,
    MessageKind,
    Problem,
    Quality,
    dead_letter_topic,
    encode_dead_letter,
    excerpt,
    status_topic,
    subscription,
)
from shopfloor.mqtt import Session, close, make_client, network_thread, read_ahead
from shopfloor.plant import Plant
from shopfloor.store import EVENT_PREFIX, Point, Store, StoreError, from_ns, to_ns

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
# While the store is down, the spill is tried (or the store probed) this often, so that health
# turns back to ok within two seconds of the store's return.
STORE_RETRY_S = 1.0
IDLE_WAKE_S = 0.5  # the writer, with nothing to write, looks at the spill and the store this often
DEAD_LETTER_SAMPLE = 1000
DEAD_LETTER_CONFIRM_S = 10.0  # the broker's acknowledgement of a dead letter, before ours


@dataclass(frozen=True)
class GatewaySettings:
    client_id: str | None = None  # fixed, so the broker keeps the session across restarts
    share_group: str | None = None  # several gateways split one stream
    batch_size: int = 5000
    max_future_s: float = 300.0  # timestamps further ahead of this clock are refused
    spill_path: Path = Path(".shopfloor/gateway-spill.db")
    spill_max_mb: float = 1024
    spill_max_age_h: float = 168
    mqtt5: bool = True  # False for brokers that speak only 3.1.1 (the embedded demo broker)
    session: Session = field(default_factory=Session)
    max_lag_s: float = 5.0  # a message received longer ago and not yet stored: ingest lags


@dataclass(slots=True)
class Batch:
    """Messages written and acknowledged together, in the order they arrived."""

    points: list[Point] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    mids: list[int] = field(default_factory=list)  # QoS 1 messages of the current connection
    messages: int = 0
    started: float = 0.0  # monotonic time of its first message
    ready: bool = False  # the broker had sent nothing more when the network loop looked


class Gateway:
    def __init__(
        self, plant: Plant, broker_url: str, store: Store, settings: GatewaySettings | None = None
    ):
        self.plant, self.store = plant, store
        self.settings = settings = settings or GatewaySettings()
        self.accept = Acceptance(plant, settings.max_future_s)
        tenant, site = plant.tenant.id, plant.site.id
        self.client_id = settings.client_id or f"shopfloor-gateway-{tenant}-{site}"
        filters = [subscription(tenant, kind, site) for kind in MessageKind]
        if settings.share_group:
            filters = [f"$share/{settings.share_group}/{topic}" for topic in filters]
        # Every gateway of the site follows the session clock, queued in order with the data.
        self.status_topic = status_topic(tenant, site)
        self.mqtt = make_client(
            broker_url,
            self.client_id,
            [(topic, 1) for topic in (*filters, self.status_topic)],
            clean_session=False,
            session=settings.session if settings.mqtt5 else None,
        )
        if not settings.mqtt5:
            self.mqtt.manual_ack_set(True)
        self.mqtt.on_message = self._on_message
        self.mqtt.on_disconnect = self._on_disconnect
        read_ahead(self.mqtt, on_idle=self._quiet)
        self.dead_letters = dead_letter_topic(tenant, site)
        self.spill = DiskQueue(
            settings.spill_path,
            int(settings.spill_max_mb * 1024 * 1024),
            settings.spill_max_age_h * 3600,
            name="gateway spill",
        )
        self._spill_holds = not self.spill.empty  # False: known empty, without asking its file
        # Half the broker's window: the other half keeps arriving while a batch is written.
        self.batch_messages = max(1, settings.session.receive_maximum // 2)
        self.stats = StatsRecorder()
        self.stopping = threading.Event()
        # Guards the batches below and the connection number; notified when a batch starts
        # or is full, so that the writer is not woken for every message.
        self._arrived = threading.Condition()
        self._filling = Batch()
        self._full: deque[Batch] = deque()
        self._connection = 0
        self._next_store_try = 0.0
        self._unconfirmed: list[mqtt.MQTTMessageInfo] = []  # dead letters the broker may lack
        self._receiver: threading.Thread | None = None
        self._writing: Batch | None = None  # the batch the writer holds, out of the queue
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
        if _topic(msg) == self.status_topic:
            self.accept.follow(msg.payload, datetime.now(UTC))
            if msg.qos:
                self.mqtt.ack(msg.mid, 1)
            return
        self.stats.received()
        try:
            self._take(msg)
        except Exception:  # the network thread must live on; the message waits for a reconnect
            self.stats.receive_error()
            log.exception("could not take a message; it stays unacknowledged")

    def _take(self, msg: mqtt.MQTTMessage) -> None:
        topic = _topic(msg)
        accepted = self.accept(topic, msg.payload)
        if isinstance(accepted, Refusal):
            points, letter = [], self._letter(topic, msg.payload, accepted)
        else:
            points, letter = accepted, None
        with self._arrived:
            self._add(points, letter, msg.mid if msg.qos else 0)

    def _add(self, points: list[Point], letter: DeadLetter | None, mid: int) -> None:
        """Add one message to the batch being filled (the lock held); wake the writer when it
        fills the batch."""
        batch = self._filling
        if not batch.messages:
            batch.started = time.monotonic()
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

    def _quiet(self) -> None:
        """The network loop has read all the broker sent: the batch being filled is ready, and
        the writer is woken for it (once)."""
        with self._arrived:
            if self._filling.messages and not self._filling.ready:
                self._filling.ready = True
                self._arrived.notify()

    def _letter(self, topic: str, payload: bytes | bytearray, refusal: Refusal) -> DeadLetter:
        return DeadLetter(
            topic=excerpt(topic),
            problem=refusal.problem,
            reason=refusal.reason,
            received=datetime.now(UTC),
            payload=bytes(payload[:DEAD_LETTER_SAMPLE]).decode("utf-8", errors="replace"),
            size=len(payload),
            gateway=self.client_id,
        )

    # --- writing (the writer thread) --------------------------------------------------------

    def _next_batch(self) -> tuple[Batch, int] | None:
        """The oldest batch once it is full or the broker has gone quiet (on stopping, the one
        being filled as it is), with the connection it came on; None if none is ready."""
        with self._arrived:
            if not self._ready():
                self._arrived.wait(IDLE_WAKE_S if self._spill_empty() else 0.1)
            if not self._ready():
                return None
            if not self._full:
                self._full.append(self._filling)
                self._filling = Batch()
            return self._full.popleft(), self._connection

    def _ready(self) -> bool:
        """Whether a batch can be taken (the lock held)."""
        filling = self._filling
        return bool(self._full or (filling.messages and (filling.ready or self.stopping.is_set())))

    def _has_pending(self) -> bool:
        with self._arrived:
            return bool(self._full or self._filling.messages)

    def _write_forever(self) -> None:
        while not (self.stopping.is_set() and not self._has_pending()):
            try:
                if not self._write_next():
                    return  # stopping with a batch neither written nor spilled: the broker has it
            except Exception:  # whatever a store throws, the writer lives on
                self.stats.write_failed()
                log.exception("the store writer failed; retrying")
                self.stopping.wait(STORE_RETRY_S)

    def _write_next(self) -> bool:
        """Handle the next batch, if any, then the spill or a probe of a failing store."""
        taken = self._next_batch()
        if taken:
            batch, connection = taken
            self._writing = batch
            try:
                if not self._handle(batch, connection):
                    return False
            except BaseException:
                with self._arrived:  # not lost: retried first
                    self._full.appendleft(batch)
                raise
            finally:
                self._writing = None
        if time.monotonic() >= self._next_store_try:
            if not self._spill_empty():
                self._drain()
            elif not self.stats.store_ok:
                self._probe()
        return True

    def _handle(self, batch: Batch, connection: int) -> bool:
        """Store (or spill) a batch and dead-letter its refused messages; once the broker has
        the dead letters, acknowledge the batch's messages."""
        if batch.points and not self._persist(batch.points):
            return False
        for letter in batch.letters:
            self._dead_letter(letter)
        if not self._confirm_dead_letters():
            return True  # unacknowledged: the broker sends them again on the next connection
        with self._arrived:  # a disconnect meanwhile voids the batch's acknowledgements
            if connection == self._connection:
                for mid in batch.mids:
                    self.mqtt.ack(mid, 1)  # subscribed at QoS 1: nothing arrives at QoS 2
        return True

    def _persist(self, points: list[Point]) -> bool:
        """Write, or spill while the store is down; wait and retry when neither works."""
        backoff = 0.5
        while True:
            if self._spill_empty() and self._write(points):
                return True
            try:
                self.spill.put([("points", encode_points(points))])
                self._spill_holds = True
                return True
            except DiskQueueError as exc:
                log.error("%s; holding %d points, unacknowledged", exc, len(points))
            if self.stopping.wait(backoff):
                return False
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _write(self, points: list[Point]) -> bool:
        """Write points; False while the store is unavailable. Points the store rejects (an
        out-of-range timestamp, say) are found by halving the batch and dead-lettered, so
        that one bad point never blocks the rest, nor the spill behind it."""
        started = time.monotonic()
        try:
            self.store.write(points)
        except StoreError as exc:
            if not exc.rejected:
                self._store_failed(f"store write of {len(points)} points failed: {exc}")
                return False
            if len(points) == 1:
                self._dead_letter(self._rejected_letter(points[0], exc))
                return True
            half = len(points) // 2
            return self._write(points[:half]) and self._write(points[half:])
        self.stats.wrote(len(points), time.monotonic() - started)
        return True

    def _spill_empty(self) -> bool:
        """Whether nothing waits in the spill, its file asked only while something may: at
        1 Hz loads a batch is one message, and a query for each is CPU spent on nothing."""
        if self._spill_holds:
            self._spill_holds = not self.spill.empty
        return not self._spill_holds

    def _store_failed(self, reason: str) -> None:
        self.stats.write_failed()
        self._next_store_try = time.monotonic() + STORE_RETRY_S
        log.warning("%s", reason)

    def _rejected_letter(self, point: Point, exc: StoreError) -> DeadLetter:
        """A dead letter for a point the store refused, the point (as the spill keeps it) as
        its payload."""
        kind = MessageKind.EVENT if point.signal.startswith(EVENT_PREFIX) else MessageKind.DATA
        refusal = Refusal(Problem.REJECTED_BY_STORE, excerpt(str(exc)))
        return self._letter(point.asset.topic(kind), encode_points([point]), refusal)

    def _drain(self, max_batches: int = 2000) -> None:
        """Write spilled batches back, oldest first, until the store fails again: several in
        one write, up to a batch's points, since a batch of a 1 Hz load is one message and a
        write each would drain an outage's spill slower than it filled."""
        entries: list[Queued] = []
        points: list[Point] = []
        for entry in self.spill.oldest(max_batches):
            entries.append(entry)
            points += decode_points(entry.payload)
            if len(points) >= self.settings.batch_size:
                if not self._write_back(entries, points):
                    return
                entries, points = [], []
        if entries:
            self._write_back(entries, points)

    def _write_back(self, entries: list[Queued], points: list[Point]) -> bool:
        """Write the points of spilled batches and forget the batches; False if the store
        failed."""
        if not self._write(points):
            return False
        self.spill.acknowledge([entry.id for entry in entries])
        return True

    def _probe(self) -> None:
        """A failing store with no traffic to try it: ask it whether it is back."""
        try:
            self.store.ping()
        except StoreError as exc:
            self._store_failed(f"the store is still failing: {exc}")
        else:
            self.stats.store_back()

    def _dead_letter(self, letter: DeadLetter) -> None:
        self.stats.dead_letter(letter.problem.value)
        log.warning("dead-lettered a message on %s: %s", excerpt(letter.topic), letter.reason)
        info = self.mqtt.publish(self.dead_letters, encode_dead_letter(letter), qos=1)
        self._unconfirmed.append(info)

    def _confirm_dead_letters(self) -> bool:
        """Wait for the broker to acknowledge the dead letters published since the last call;
        False when it has not in time (it is gone, say): the messages they stand for are then
        left unacknowledged, and are refused again when the broker sends them again."""
        deadline = time.monotonic() + DEAD_LETTER_CONFIRM_S
        unconfirmed, self._unconfirmed = self._unconfirmed, []
        confirmed = all(_confirmed(info, deadline) for info in unconfirmed)
        if not confirmed:
            log.warning("the broker has not confirmed the dead letters of a batch")
        return confirmed

    # --- life cycle -------------------------------------------------------------------------

    def snapshot(self) -> GatewayStats:
        """The figures and health now; after `stop`, the figures it stopped with."""
        if self._final is not None:
            return self._final
        return self.stats.snapshot(
            self.spill.depth,
            self.spill.dropped,
            broker_connected=self.mqtt.is_connected(),
            receiving=self._receiver is not None and self._receiver.is_alive(),
            writing=self._writer.is_alive(),
            unwritten_age_s=self._unwritten_age(),
            max_lag_s=self.settings.max_lag_s,
        )

    def _unwritten_age(self) -> float:
        """Seconds since the oldest message received and not yet stored (or spilled) came."""
        with self._arrived:
            held = [self._writing, *self._full, self._filling]
            started = [batch.started for batch in held if batch is not None and batch.messages]
        return time.monotonic() - min(started) if started else 0.0

    def start(self) -> None:
        self._writer.start()
        self.mqtt.loop_start()
        self._receiver = network_thread(self.mqtt)

    def stop(self) -> None:
        """Stop taking messages, then store what was already received (or leave it at the
        broker, unacknowledged, when the store cannot take it now)."""
        self.stopping.set()
        with self._arrived:
            self._arrived.notify()  # a writer waiting for a first message stops waiting
        self._writer.join()
        close(self.mqtt)
        self._final = self.snapshot()
        self.spill.close()


def _topic(msg: mqtt.MQTTMessage) -> str:
    try:
        return msg.topic
    except UnicodeDecodeError:  # brokers should refuse these, but not every one does
        return "(a topic that is not UTF-8)"


def _confirmed(info: mqtt.MQTTMessageInfo, deadline: float) -> bool:
    """Whether the broker acknowledged a QoS 1 publication by `deadline`."""
    try:
        info.wait_for_publish(max(deadline - time.monotonic(), 0.001))
        return info.is_published()
    except (RuntimeError, ValueError):  # paho: not sent (no connection, queue full)
        return False


def encode_points(points: list[Point]) -> bytes:
    """Points as compact JSON rows, for the spill file."""
    rows = [[*p.asset, p.signal, to_ns(p.ts), p.value, p.quality.value, p.unit] for p in points]
    return json.dumps(rows, separators=(",", ":")).encode()


def decode_points(payload: bytes) -> list[Point]:
    return [
        Point(AssetPath(*row[:5]), row[5], from_ns(row[6]), row[7], Quality(row[8]), row[9])
        for row in json.loads(payload)
    ]
