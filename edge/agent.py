"""The edge agent: machines and sensors in, contract messages out to the broker.

Sources (one OPC UA subscription per machine, raw MQTT sensor topics) push readings onto one
queue; the publisher drains it every batch interval and publishes one `data` message per asset.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import defaultdict

import paho.mqtt.client as mqtt

from edge.buffer import BufferError, DiskQueue
from edge.forwarder import Forwarder
from edge.opcua_source import OpcUaSource
from edge.sensors import SensorPayloadError, parse_sensor_payload, sensor_topics
from shopfloor.messages import AssetPath, Reading, encode_readings
from shopfloor.mqtt import make_client
from shopfloor.plant import Plant

log = logging.getLogger(__name__)

MAX_READINGS_PER_MESSAGE = 500


class EdgeAgent:
    def __init__(
        self,
        plant: Plant,
        broker_url: str,
        buffer: DiskQueue,
        opcua_host: str | None = None,
        batch_interval_s: float = 0.2,
    ):
        self.plant = plant
        self.batch_interval_s = batch_interval_s
        self.sensor_topics = sensor_topics(plant)
        self.queue: asyncio.Queue[tuple[AssetPath, Reading]] = asyncio.Queue()
        self.sources = [
            OpcUaSource(path, machine, self._emit, host=opcua_host)
            for path, machine in plant.machines()
            if machine.opcua
        ]
        client_id = f"shopfloor-edge-{plant.tenant.id}-{plant.site.id}-{socket.gethostname()}"
        sensor_subscriptions = [(topic, 0) for topic in self.sensor_topics]
        self.mqtt = make_client(broker_url, client_id[:128], sensor_subscriptions)
        self.buffer = buffer
        self.forwarder = Forwarder(buffer, self.mqtt)
        self.lost_to_buffer_errors = 0
        self.mqtt.on_message = self._on_sensor_message
        self.published = 0
        self.rejected_sensor_payloads = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def _emit(self, path: AssetPath, reading: Reading) -> None:
        self.queue.put_nowait((path, reading))

    def _on_sensor_message(
        self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage
    ) -> None:
        path, signal = self.sensor_topics[msg.topic]
        try:
            reading = parse_sensor_payload(msg.payload, signal)
        except SensorPayloadError as exc:
            self.rejected_sensor_payloads += 1
            log.warning("sensor topic %s: %s", msg.topic, exc)
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._emit, path, reading)

    async def run(self) -> None:
        """Run every source and the publisher until cancelled."""
        self._loop = asyncio.get_running_loop()
        self.mqtt.loop_start()
        try:
            async with asyncio.TaskGroup() as group:
                for source in self.sources:
                    group.create_task(source.run())
                group.create_task(self._publish_forever())
        finally:
            self.mqtt.disconnect()
            self.mqtt.loop_stop()

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(self.batch_interval_s)
            self.publish_pending()

    def publish_pending(self) -> None:
        """Move what the sources read into the disk buffer, one message per asset (split when
        very large), then forward what the broker can take."""
        by_asset: dict[AssetPath, list[Reading]] = defaultdict(list)
        while not self.queue.empty():
            path, reading = self.queue.get_nowait()
            by_asset[path].append(reading)
        messages = [
            (path.topic(), encode_readings(readings[start : start + MAX_READINGS_PER_MESSAGE]))
            for path, readings in by_asset.items()
            for start in range(0, len(readings), MAX_READINGS_PER_MESSAGE)
        ]
        count = sum(len(readings) for readings in by_asset.values())
        if messages:
            try:
                self.buffer.put(messages)
                self.published += count
            except BufferError as exc:
                self.lost_to_buffer_errors += count
                log.error("%s; %d readings lost", exc, count)
        self.forwarder.pump()
