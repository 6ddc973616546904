"""The edge agent: machines and sensors in, contract messages out to the broker.

    OPC UA servers ─┐                          ┌─> disk queue ─> forwarder ─> broker (QoS 1)
    Modbus devices ─┼─> readings ─> (clamps) ──┘
    sensor topics  ─┤
                    └─ health: birth / last will, status every interval, /metrics

Sources (one OPC UA session per machine, one Modbus connection per device, raw MQTT sensor
topics) push readings onto one queue (a signal a Modbus device reads is left out of its
machine's OPC UA nodes: one source per signal); the publisher drains it every batch interval
into one `data` message per asset, which waits on disk until the broker has acknowledged it.
Sensor readings go onto the queue straight from the MQTT network thread (a deque: appending
is atomic), so a reading costs no wake-up of the publisher.
The publisher and the status reports are periodic jobs: in an event loop when an OPC UA or
Modbus source needs one, else in the calling thread, so an agent of sensor kits never imports
asyncio (bench/edge.py measures what it would add).
A sensor payload, OPC UA or Modbus value that is not a reading of its signal is counted and
logged, never sent; nothing one holds can stop the agent.
The status names each cause of a degraded agent (see `EdgeAgent.causes`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from edge.clamp import StateFromCurrent
from edge.config import EdgeConfig, OpcUaSourceConfig
from edge.forwarder import Forwarder
from edge.health import MetricsServer
from edge.sensors import (
    SensorMessageIgnored,
    SensorPayloadError,
    SensorRoute,
    read_sensor_message,
    sensor_routes,
)
from shopfloor.diskqueue import DiskQueue, DiskQueueError
from shopfloor.messages import (
    AssetPath,
    EdgeState,
    EdgeStatus,
    Reading,
    edge_state_topic,
    edge_status_topic,
    encode_edge,
    encode_readings,
    excerpt,
)
from shopfloor.mqtt import Presence, close, make_client, network_thread
from shopfloor.plant import Plant

if TYPE_CHECKING:  # imported where a source is configured: asyncua alone is 23 MB of memory
    from edge.modbus_source import ModbusSource
    from edge.opcua_source import OpcUaSource

log = logging.getLogger(__name__)

MAX_READINGS_PER_MESSAGE = 500
# The broker announces a vanished device (its last will) after 1.5 keep-alive periods.
KEEPALIVE_S = 10
# A message queued longer than this while the broker is connected: forwarding has stalled.
MAX_FORWARD_LAG_S = 10.0
# Sensor topics whose matching routes are remembered: a kit's topics are few and repeat, and a
# flood of new ones costs only the matching, never unbounded memory.
ROUTED_TOPICS = 4096


def _version() -> str:
    try:
        return version("shopfloor")
    except PackageNotFoundError:
        return ""


class EdgeAgent:
    def __init__(self, config: EdgeConfig, plant: Plant, buffer: DiskQueue):
        self.config, self.plant, self.buffer = config, plant, buffer
        self.device = config.device
        self.started = datetime.now(UTC)
        self.queue: deque[tuple[AssetPath, Reading]] = deque()
        self.modbus = self._modbus_sources()
        self.sources = self._opcua_sources()
        self.sensor_routes = sensor_routes(plant, config.sensors)
        self._routes_for = functools.lru_cache(maxsize=ROUTED_TOPICS)(self._matching_routes)
        self.clamps = {
            (clamp.machine, clamp.current_signal): StateFromCurrent(clamp)
            for clamp in config.current_clamps
        }
        tenant, site = plant.tenant.id, plant.site.id
        self.status_topic = edge_status_topic(tenant, site, self.device)
        presence = Presence(
            topic=edge_state_topic(tenant, site, self.device),
            online=encode_edge(self._state(online=True)),
            offline=encode_edge(self._state(online=False)),
        )
        self.mqtt = make_client(
            config.broker.url_with_credentials(),
            f"shopfloor-edge-{tenant}-{site}-{self.device}"[:128],
            [(topic, 0) for topic in dict.fromkeys(r.mapping.topic for r in self.sensor_routes)],
            presence=presence,
            keepalive_s=KEEPALIVE_S,
        )
        self.presence = presence
        self.mqtt.on_message = self._on_sensor_message
        self.forwarder = Forwarder(buffer, self.mqtt)
        self.published = 0
        self.lost_to_buffer_errors = 0
        self.buffer_ok = True  # the last write to the disk queue succeeded
        self.rejected_sensor_payloads = 0
        self._receiver: threading.Thread | None = None
        self._rate_mark = (time.monotonic(), 0)

    def _modbus_sources(self) -> list[ModbusSource]:
        if not self.config.modbus:
            return []
        from edge.modbus_source import modbus_sources

        return modbus_sources(
            self.config.modbus, self.plant, self._emit, self.config.startup_wait_s
        )

    def _opcua_sources(self) -> list[OpcUaSource]:
        """A source per machine of the config's `opcua` (without it: every machine the plant
        gives an endpoint), less the signals a Modbus device reads."""
        machines = {machine.id: (path, machine) for path, machine in self.plant.machines()}
        settings = self.config.opcua
        if settings is None:
            settings = [OpcUaSourceConfig(machine=m.id) for _, m in machines.values() if m.opcua]
        if not settings:
            return []
        from edge.opcua_source import OpcUaSource, OpcUaTarget

        by_modbus = {
            (source.target.path.asset, register.signal)
            for source in self.modbus
            for register in source.device.registers
        }
        targets = [
            OpcUaTarget.build(*machines[source.machine], source, self.config.opcua_host)
            for source in settings
        ]
        return [
            OpcUaSource(
                replace(
                    target,
                    nodes=tuple(
                        node
                        for node in target.nodes
                        if (target.machine_id, node.signal.id) not in by_modbus
                    ),
                ),
                self._emit,
                self.config.startup_wait_s,
            )
            for target in targets
        ]

    def _state(self, online: bool) -> EdgeState:
        started = self.started if online else None
        return EdgeState(device=self.device, online=online, started=started, version=_version())

    def _emit(self, path: AssetPath, reading: Reading) -> None:
        """Queue a reading, and the state a current clamp reads from it (a clamp's signal has
        one source, so one thread updates it)."""
        self.queue.append((path, reading))
        clamp = self.clamps.get((path.asset, reading.signal))
        state = clamp.update(reading) if clamp else None
        if state is not None:
            self.queue.append((path, state))

    def _on_sensor_message(
        self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage
    ) -> None:
        try:
            self._take_sensor_message(msg)
        except Exception:  # the network thread also forwards: it must live on
            self.rejected_sensor_payloads += 1
            log.exception("could not take a sensor message")

    def _matching_routes(self, topic: str) -> tuple[SensorRoute, ...]:
        return tuple(
            r for r in self.sensor_routes if mqtt.topic_matches_sub(r.mapping.topic, topic)
        )

    def _take_sensor_message(self, msg: mqtt.MQTTMessage) -> None:
        """Read a message with every sensors entry whose topic filter matches it."""
        routes = self._routes_for(msg.topic)
        if not routes:
            self.rejected_sensor_payloads += 1
            log.warning("sensor topic %s: no sensor mapping has this topic", excerpt(msg.topic))
        for route in routes:
            try:
                path, readings = read_sensor_message(route, msg.topic, msg.payload, msg.retain)
            except SensorMessageIgnored as exc:
                log.log(exc.level, "sensor topic %s: %s", excerpt(msg.topic), exc)
                continue
            except SensorPayloadError as exc:
                self.rejected_sensor_payloads += 1
                log.warning("sensor topic %s: %s", excerpt(msg.topic), exc)
                continue
            for reading in readings:
                self._emit(path, reading)

    def serve(self) -> None:
        """Run until interrupted (KeyboardInterrupt): in an event loop when a source needs one,
        else the periodic jobs in this thread, without asyncio."""
        if self._named_sources():
            import asyncio

            asyncio.run(self.run())
            return
        with self._running():
            _run_periodically(self._periodic_jobs())

    async def run(self) -> None:
        """Run every source, the publisher and the health reports until cancelled."""
        import asyncio

        with self._running():
            async with asyncio.TaskGroup() as group:
                for _, source in self._named_sources():
                    group.create_task(source.run())
                for interval_s, job in self._periodic_jobs():
                    group.create_task(_every(interval_s, job))

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """The broker connection, its network thread and /metrics, for as long as the agent
        runs; a clean stop says offline."""
        metrics = self._metrics_server()
        self.mqtt.loop_start()
        self._receiver = network_thread(self.mqtt)
        try:
            yield
        finally:
            self._say_goodbye()
            if metrics:
                metrics.stop()

    def _periodic_jobs(self) -> list[tuple[float, Callable[[], None]]]:
        """What the agent does every so many seconds, whichever way it runs."""
        return [
            (self.config.batch_interval_s, self.publish_pending),
            (self.config.health.status_interval_s, self._report_status),
        ]

    def _metrics_server(self) -> MetricsServer | None:
        health = self.config.health
        if not health.metrics_port:
            return None
        try:
            server = MetricsServer(self.status, health.metrics_host, health.metrics_port)
        except OSError as exc:  # the agent's job is the data; its health page is a convenience
            log.error("no /metrics on %s:%d: %s", health.metrics_host, health.metrics_port, exc)
            return None
        server.start()
        return server

    def _say_goodbye(self) -> None:
        """A clean stop sends no last will, so say offline ourselves."""
        if self.mqtt.is_connected():
            info = self.mqtt.publish(self.presence.topic, self.presence.offline, qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        close(self.mqtt)

    def _report_status(self) -> None:
        """Publish the status (retained), starting a new readings/s interval."""
        status = self.status(advance_rate=True)
        if self.mqtt.is_connected():  # a stale status queued for later would mislead
            self.mqtt.publish(self.status_topic, encode_edge(status), qos=0, retain=True)

    def status(self, advance_rate: bool = False) -> EdgeStatus:
        """The agent's health figures now; `advance_rate` starts a new readings/s interval."""
        now = time.monotonic()
        mark_time, mark_count = self._rate_mark
        rate = (self.published - mark_count) / max(now - mark_time, 1e-9)
        if advance_rate:
            self._rate_mark = (now, self.published)
        oldest_queued_s = self.buffer.oldest_age_s
        receiving = self._receiver is not None and self._receiver.is_alive()
        return EdgeStatus(
            device=self.device,
            ts=datetime.now(UTC),
            uptime_s=round((datetime.now(UTC) - self.started).total_seconds(), 3),
            readings_total=self.published,
            readings_per_s=round(rate, 3),
            forwarded_total=self.forwarder.forwarded,
            queue_depth=self.buffer.depth,
            queue_bytes=self.buffer.size_bytes,
            dropped_total=self.buffer.dropped,
            lost_total=self.lost_to_buffer_errors,
            rejected_total=self.rejected_sensor_payloads
            + sum(source.rejected for _, source in self._named_sources()),
            broker_connected=self.mqtt.is_connected(),
            broker_reconnects=self.forwarder.disconnects,
            sources_connected=sum(source.connected for _, source in self._named_sources()),
            sources_total=len(self._named_sources()),
            source_reconnects=sum(source.reconnects for _, source in self._named_sources()),
            sources_lost={
                name: source.down_since
                for name, source in self._named_sources()
                if source.down_since is not None
            },
            source_errors={source.target.name: dict(source.errors) for source in self.modbus},
            oldest_queued_s=round(oldest_queued_s, 3),
            receiving=receiving,
            causes=self.causes(receiving, oldest_queued_s),
        )

    def causes(self, receiving: bool, oldest_queued_s: float) -> list[str]:
        """Why the agent is degraded now; empty when it does its job."""
        connected = self.mqtt.is_connected()
        checks = {
            "receive_thread_dead": not receiving,
            "broker_disconnected": not connected,
            "forwarder_stalled": connected and oldest_queued_s > MAX_FORWARD_LAG_S,
            "buffer_failing": not self.buffer_ok,
            "sources_disconnected": any(not s.connected for _, s in self._named_sources()),
        }
        return [cause for cause, failed in checks.items() if failed]

    def _named_sources(self) -> list[tuple[str, OpcUaSource | ModbusSource]]:
        """Every machine's OPC UA source by machine, every Modbus device by asset@endpoint."""
        return [
            *((source.target.machine_id, source) for source in self.sources),
            *((source.target.name, source) for source in self.modbus),
        ]

    def publish_pending(self) -> None:
        """Move what the sources read into the disk buffer, one message per asset (split when
        very large), then forward what the broker can take."""
        by_asset: dict[AssetPath, list[Reading]] = defaultdict(list)
        for _ in range(len(self.queue)):  # what is queued now; later readings wait their turn
            path, reading = self.queue.popleft()
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
                self.buffer_ok = True
            except DiskQueueError as exc:
                self.lost_to_buffer_errors += count
                self.buffer_ok = False
                log.error("%s; %d readings lost", exc, count)
        self.forwarder.pump()


async def _every(interval_s: float, job: Callable[[], None]) -> None:
    """Run `job` every `interval_s` seconds after the previous run, in the event loop."""
    import asyncio

    while True:
        await asyncio.sleep(interval_s)
        job()


def _run_periodically(jobs: Sequence[tuple[float, Callable[[], None]]]) -> None:
    """Run each job every its interval after its previous run, in this thread, as `_every`
    does in an event loop, until one raises (KeyboardInterrupt: Ctrl-C or SIGTERM)."""
    due = [time.monotonic() + interval_s for interval_s, _ in jobs]
    while True:
        index = min(range(len(jobs)), key=due.__getitem__)
        time.sleep(max(0.0, due[index] - time.monotonic()))
        interval_s, job = jobs[index]
        job()
        due[index] = time.monotonic() + interval_s
