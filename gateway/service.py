"""The gateway: contract messages from the broker into the time-series store.

MQTT callbacks only decode and validate; a writer thread batches points into the store and,
when the store is unreachable, keeps its batch and retries with back-off, so a slow or absent
database never blocks the network loop and never loses accepted points.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import paho.mqtt.client as mqtt

from shopfloor.messages import (
    MessageError,
    MessageKind,
    TopicError,
    decode_events,
    decode_readings,
    parse_topic,
    subscription,
)
from shopfloor.mqtt import make_client
from shopfloor.plant import Plant
from shopfloor.store import Point, Store, StoreError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


class Gateway:
    def __init__(
        self,
        plant: Plant,
        broker_url: str,
        store: Store,
        client_id: str | None = None,
        batch_size: int = 5000,
        flush_interval_s: float = 0.5,
    ):
        self.plant = plant
        self.store = store
        self.catalogue = plant.catalogue()
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        filters = [(subscription(plant.tenant.id, kind), 1) for kind in MessageKind]
        # One id per tenant and site: gateways of different sandboxes share a broker in peace.
        client_id = client_id or f"shopfloor-gateway-{plant.tenant.id}-{plant.site.id}"
        self.mqtt = make_client(broker_url, client_id, filters)
        self.mqtt.on_message = self._on_message
        self.pending: queue.Queue[Point] = queue.Queue()
        self.stopping = threading.Event()
        self.received = self.rejected = self.written = 0
        self._writer = threading.Thread(target=self._write_forever, name="store-writer")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        try:
            points = self.accept(msg.topic, msg.payload)
        except (TopicError, MessageError) as exc:
            self.rejected += 1
            log.warning("rejected message on %s: %s", msg.topic, exc)
            return
        for point in points:
            self.pending.put(point)

    def accept(self, topic: str, payload: bytes | bytearray) -> list[Point]:
        """Decode a message and check it against the plant; raises with the reason if bad."""
        path, kind = parse_topic(topic)
        signals = self.catalogue.get(path)
        if signals is None:
            raise TopicError(f"no asset {path} in the plant model")
        if kind is MessageKind.EVENT:
            return [Point.from_event(path, event) for event in decode_events(payload)]
        readings = decode_readings(payload)
        for reading in readings:
            if reading.signal not in signals:
                raise MessageError(f"asset {path} has no signal {reading.signal!r}")
        return [Point.from_reading(path, reading) for reading in readings]

    def _next_batch(self) -> list[Point]:
        batch: list[Point] = []
        deadline = time.monotonic() + self.flush_interval_s
        while len(batch) < self.batch_size:
            try:
                batch.append(self.pending.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _write_forever(self) -> None:
        while not (self.stopping.is_set() and self.pending.empty()):
            batch = self._next_batch()
            if batch:
                self._write_with_retry(batch)

    def _write_with_retry(self, batch: list[Point]) -> None:
        backoff = 0.5
        while True:
            try:
                self.store.write(batch)
                self.written += len(batch)
                return
            except StoreError as exc:
                log.warning(
                    "store write of %d points failed: %s; retrying in %.1f s",
                    len(batch),
                    exc,
                    backoff,
                )
                if self.stopping.wait(backoff) and backoff >= MAX_BACKOFF_S:
                    log.error("giving up on %d points at shutdown: %s", len(batch), exc)
                    return
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def start(self) -> None:
        self._writer.start()
        self.mqtt.loop_start()

    def stop(self) -> None:
        """Stop taking messages, then write what was already accepted."""
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
        self.stopping.set()
        self._writer.join()
