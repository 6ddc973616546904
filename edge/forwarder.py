"""Moves messages from the disk queue to the broker, each one deleted only once acknowledged.

Publishes with QoS 1 in arrival order, keeping at most `window` messages in flight (paho refuses
more than 65,535 unacknowledged ones). When the connection drops, whatever was in flight is sent
again from the queue after the reconnect: delivery is at-least-once, and a repeated reading
overwrites itself in the store (same series, same timestamp), so nothing is doubled.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

from shopfloor.diskqueue import DiskQueue


class Forwarder:
    def __init__(self, queue: DiskQueue, client: mqtt.Client, window: int = 1000):
        self.queue, self.client, self.window = queue, client, window
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}  # paho message id -> queue row id
        self._acknowledged: list[int] = []
        self._early: set[int] = set()
        self._connection = 0  # bumped on every disconnect
        self._sent_up_to = 0
        self.forwarded = 0
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        with self._lock:
            row = self._in_flight.pop(mid, None)
            if row is None:
                self._early.add(mid)  # acknowledged before publish() returned its id
            else:
                self._acknowledged.append(row)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        with self._lock:  # unacknowledged messages go again, from the queue, after reconnecting
            self._in_flight.clear()
            self._early.clear()
            self._sent_up_to = 0
            self._connection += 1

    @property
    def disconnects(self) -> int:
        """How often the connection to the broker was lost."""
        with self._lock:
            return self._connection

    def pump(self) -> int:
        """Forget acknowledged messages, then send what fits in the window; returns sent."""
        with self._lock:
            done, self._acknowledged = self._acknowledged, []
        self.queue.acknowledge(done)
        self.forwarded += len(done)
        if not self.client.is_connected():
            return 0
        with self._lock:
            room = self.window - len(self._in_flight)
            after, connection = self._sent_up_to, self._connection
        sent = 0
        # Never call paho while holding our lock: paho holds its own while it calls back.
        for message in self.queue.oldest(room, after_id=after) if room > 0 else []:
            info = self.client.publish(message.topic, message.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            with self._lock:
                if connection != self._connection:
                    break  # disconnected meanwhile: everything goes again after reconnecting
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self._acknowledged.append(message.id)
                else:
                    self._in_flight[info.mid] = message.id
                self._sent_up_to = message.id
            sent += 1
        return sent
