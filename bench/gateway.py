"""Gateway figures: its ceiling as a share of what a do-nothing subscriber of the same protocol
and QoS takes from the same broker, its batched throughput, and the delay from publish to
queryable in InfluxDB.

The gateway runs as it does in production (`shopfloor gateway`, a subprocess) against a real
Mosquitto and a real InfluxDB 1.x, so its CPU is the kernel's accounting of its own process.
The publishers and the do-nothing subscriber are processes of their own as well: on a machine
of two shared cores every party competes for CPU, so the baseline is measured with the same
publishers, broker and machine in the same run, and the ceiling is a ratio to it. The baseline
speaks the gateway's protocol, MQTT 5 with acknowledgements by hand, at QoS 1; a do-nothing MQTT
3.1.1 subscriber, which paho acknowledges for, is measured too for comparison. Every flood is
counted in InfluxDB afterwards, because a rate that loses points is no rate at all.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Protocol

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rich.console import Console
from rich.table import Table

from bench.edge import _cpu_seconds
from shopfloor.messages import AssetPath, Reading, decode_readings, encode_readings, iso_utc
from shopfloor.mqtt import Session
from shopfloor.store import to_ns
from tests.servers import InfluxDB, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
TENANT, SITE, AREA = "bench", "site", "area"
OUTSIDE = "elsewhere"  # a tenant the gateway does not subscribe to: the baseline's floods
DATABASE = "bench"
SIGNALS = 10  # per machine of the bench plant
FLOOD_S, WARM_UP_S = 8.0, 1.5  # rates count from the end of the warm-up to the end of the flood
ROUNDS = 2  # baseline and gateway floods taken in turns, the best of each kept (noise)
PUBLISHERS = 2  # processes flooding at once, one asset each
WINDOW = 1000  # a publisher's QoS 1 messages not yet acknowledged by the broker
SAMPLE_EVERY = 50  # messages between two publish times kept for the latency at the ceiling
BATCH = 500  # readings a message in the batched flood, as the edge agent sends them
PACED_ASSETS, PACED_S = 20, 20.0  # 20 machines x 10 signals at 1 Hz, for 20 s
POLL_S = 0.05  # how often InfluxDB is asked what is queryable
STEADY_SHARE = 0.8  # of the flood's rate, for the delay near the ceiling without a backlog
BATCH_OFFERED = 100_000.0  # points/s: twice the goal, rather than publishers spinning
GOAL_RATIO, GOAL_POINTS_PER_S, GOAL_P99_S = 0.8, 50_000.0, 1.5
GATEWAY_MQTT_VERSION = "5"  # the gateway's default, and so the baseline's protocol


def _plant(directory: Path) -> Path:
    """Cells `flood<round>`, `steady`, `batch` (a machine per publisher), `paced` and
    `grouped` (PACED_ASSETS machines) and `probe`, each machine with SIGNALS signals, so that
    each flood's points are counted apart."""
    floods = [f"flood{turn}" for turn in range(ROUNDS)]
    cells = {"probe": 1, "paced": PACED_ASSETS, "grouped": PACED_ASSETS} | {
        cell: PUBLISHERS for cell in (*floods, "steady", "batch")
    }
    lines = [
        {
            "id": cell,
            "machines": [
                {
                    "id": f"{cell}-{i:02d}",
                    "name": f"{cell} {i}",
                    "type": "other",
                    "ideal_cycle_time": {"part": 30.0},
                    "signals": [{"id": f"s{s}"} for s in range(SIGNALS)],
                }
                for i in range(machines)
            ],
        }
        for cell, machines in cells.items()
    ]
    plant = {
        "tenant": {"id": TENANT, "name": "Bench"},
        "site": {"id": SITE, "name": "Bench site", "areas": [{"id": AREA, "lines": lines}]},
        "products": [{"id": "part"}],
    }
    path = directory / "plant.yaml"
    path.write_text(yaml.safe_dump(plant))
    return path


def _asset(cell: str, index: int, tenant: str = TENANT) -> AssetPath:
    return AssetPath(tenant, SITE, AREA, cell, f"{cell}-{index:02d}")


def _connect(port: int, name: str, mqtt5: bool = False) -> mqtt.Client:
    """A bare paho client, connected, its network loop running: MQTT 3.1.1 with a clean
    session, or MQTT 5 acknowledging by hand with the gateway's receive maximum."""
    client_id = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    if mqtt5:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = Session().receive_maximum
        client.connect("127.0.0.1", port, clean_start=True, properties=properties)
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        client.connect("127.0.0.1", port)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected():
        if time.monotonic() > deadline:
            raise ConnectionError(f"no broker on port {port}")
        time.sleep(0.01)
    return client


# --- processes of their own (started with multiprocessing's spawn) --------------------------


class Payloads:
    """Contract payloads of `count` readings of one asset, made from one encoded template so
    the publisher spends its CPU on publishing: message m's reading j is stamped `base` + m ms
    + j µs, so no two readings share a series and timestamp (they would overwrite each other)."""

    def __init__(self, count: int, base: datetime):
        mark = datetime(2000, 1, 1, tzinfo=UTC)
        template = [
            Reading(signal=f"s{j % SIGNALS}", value=float(j), ts=mark + timedelta(microseconds=j))
            for j in range(count)
        ]
        self.pieces = encode_readings(template).decode().split(iso_utc(mark)[:23])
        self.count, self.base = count, base.replace(microsecond=base.microsecond // 1000 * 1000)
        first = decode_readings(self.payload(1))  # the template is a valid contract payload
        assert [r.ts for r in first] == [self.ts(1, j) for j in range(count)]

    def ts(self, message: int, reading: int) -> datetime:
        return self.base + timedelta(milliseconds=message, microseconds=reading)

    def payload(self, message: int) -> bytes:
        return iso_utc(self.ts(message, 0))[:23].join(self.pieces).encode()


@dataclass(frozen=True)
class Published:
    """What one publisher sent, all of it acknowledged by the broker, and when some of it went:
    (ts of a message's last reading in ns, wall-clock time of its publish call)."""

    asset: str
    messages: int
    readings: int
    samples: list[tuple[int, float]]


def _publish(
    port: int,
    asset: AssetPath,
    per_message: int,
    rate: float | None,
    seconds: float,
    go: Event,
    pipe: Connection,
) -> None:
    """Publish messages of `per_message` readings at QoS 1 for `seconds` from `go`: `rate`
    messages/s, or with None as fast as the client library and the broker take them (at most
    WINDOW unacknowledged)."""
    acknowledged = 0

    def on_publish(
        client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        nonlocal acknowledged
        acknowledged += 1

    client = _connect(port, "publisher")
    client.on_publish = on_publish
    # Timestamps run 1 ms a message from 10 minutes ago, to stay clear of the future check.
    payloads = Payloads(per_message, datetime.now(UTC) - timedelta(minutes=10))
    topic, samples, messages = asset.topic(), list[tuple[int, float]](), 0
    pipe.send("ready")
    go.wait()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = messages + 1 if rate is None else int(rate * elapsed)
        if messages >= due or messages - acknowledged >= WINDOW:
            time.sleep(0.0005)
            continue
        payload = payloads.payload(messages)
        if messages % SAMPLE_EVERY == 0:
            samples.append((to_ns(payloads.ts(messages, per_message - 1)), time.time()))
        client.publish(topic, payload, qos=1)
        messages += 1
    deadline = time.monotonic() + 30
    while acknowledged < messages and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    pipe.send(Published(asset.asset, acknowledged, acknowledged * per_message, samples))


def _paced(
    port: int, cell: str, grouped: bool, tenant: str, seconds: float, go: Event, pipe: Connection
) -> None:
    """Each signal of `cell` once a second, the messages spread evenly over the second, each
    reading stamped with the time of its publish call: one reading a message, or (`grouped`)
    a message a machine with all its signals, as an edge agent polling once a second sends
    them. Sends back (asset, signal, ts in ns, that time as a float) of every reading."""
    client = _connect(port, cell)
    assets = [_asset(cell, a, tenant) for a in range(PACED_ASSETS)]
    signals = [f"s{s}" for s in range(SIGNALS)]
    messages = (
        [(a, signals) for a in assets] if grouped else [(a, [s]) for a in assets for s in signals]
    )
    sent: list[tuple[str, str, int, float]] = []
    pipe.send("ready")
    go.wait()
    started = time.time()
    for second in range(int(seconds)):
        for index, (asset, names) in enumerate(messages):
            time.sleep(max(0.0, started + second + index / len(messages) - time.time()))
            now = time.time()
            ts = datetime.fromtimestamp(now, UTC)
            readings = [Reading(signal=name, value=second, ts=ts) for name in names]
            client.publish(asset.topic(), encode_readings(readings), qos=1)
            sent += [(asset.asset, name, to_ns(ts), now) for name in names]
    time.sleep(0.5)  # the last PUBACKs
    client.disconnect()
    client.loop_stop()
    pipe.send(sent)


def _do_nothing(port: int, topic: str, mqtt5: bool, ready: Event, pipe: Connection) -> None:
    """A bare subscriber, QoS 1, whose on_message only counts: paho acknowledges each message
    when it returns (MQTT 3.1.1), or on_message does (MQTT 5, as the gateway speaks it).
    Samples (time, count) every 50 ms; told a total, it stops once it has that many (or 60 s
    later) and sends the samples back."""
    received = 0

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if mqtt5:
            client.ack(msg.mid, msg.qos)

    def on_subscribe(*args: object) -> None:
        ready.set()

    client = _connect(port, "do-nothing", mqtt5)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.subscribe(topic, qos=1)
    samples: list[tuple[float, int]] = []
    expected, deadline = -1, float("inf")
    while not (0 <= expected <= received) and time.monotonic() < deadline:
        if pipe.poll(0.05):
            expected, deadline = pipe.recv(), time.monotonic() + 60
        samples.append((time.time(), received))
    samples.append((time.time(), received))
    client.disconnect()
    client.loop_stop()
    pipe.send(samples)


# --- the gateway and the store, seen from outside -------------------------------------------


class Consumer(Protocol):
    """What takes the loads into InfluxDB: its process, and how many points it has written."""

    @property
    def pid(self) -> int: ...

    def points_written(self) -> int: ...


class GatewayProcess:
    """`shopfloor gateway` as a subprocess, on the bench plant (or `plant`), its /metrics read
    with a token."""

    def __init__(
        self, directory: Path, broker: Mosquitto, influx: InfluxDB, plant: Path | None = None
    ):
        self.log = directory / "gateway.log"
        token = uuid.uuid4().hex
        plant = plant or _plant(directory)
        argv = [
            *(sys.executable, "-m", "launcher", "gateway", "--plant", str(plant)),
            *("--broker", broker.url, "--store-url", influx.url, "--store-database", DATABASE),
            *("--client-id", f"bench-gateway-{uuid.uuid4().hex[:6]}"),
            *("--spill", str(directory / "spill.db"), "--http-port", "0"),
            *("--mqtt-version", GATEWAY_MQTT_VERSION),
        ]
        env = {**os.environ, "SHOPFLOOR_API_TOKEN": token}
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=output, cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        while not (found := re.search(r"HTTP API on (http://\S+) ", self._tail())):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start:\n{self._tail()}")
            _ = self.pid
            time.sleep(0.1)
        self.http = httpx.Client(base_url=found[1], headers={"Authorization": f"Bearer {token}"})

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    @property
    def pid(self) -> int:
        if self.process.poll() is not None:
            raise RuntimeError(f"the gateway exited ({self.process.returncode}):\n{self._tail()}")
        return self.process.pid

    def points_written(self) -> int:
        text = self.http.get("/metrics").raise_for_status().text
        found = re.search(r"^shopfloor_gateway_points_written_total (\d+)", text, re.MULTILINE)
        assert found, text
        return int(found[1])

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _query(influx: httpx.Client, statement: str) -> list[dict[str, Any]]:
    response = influx.get("/query", params={"db": DATABASE, "q": statement, "epoch": "ns"})
    result: dict[str, Any] = response.raise_for_status().json()["results"][0]
    if "error" in result:
        raise RuntimeError(f"InfluxDB: {result['error']}")
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def _stored(influx: httpx.Client, cell: str, tenant: str = TENANT, since_ns: int = 0) -> int:
    """Points of one cell (of a tenant, of every cell with "") in InfluxDB, stamped at or
    after `since_ns`."""
    where = f"tenant = '{tenant}'" + (f" AND cell = '{cell}'" if cell else "")
    where += f" AND time >= {since_ns}" if since_ns else ""
    series = _query(influx, f"SELECT count(value) FROM reading WHERE {where}")
    return int(series[0]["values"][0][1]) if series else 0


class Poller(threading.Thread):
    """Asks InfluxDB every POLL_S for the newest point of each series of a cell and keeps when
    each newer timestamp was first seen. Each series is published and written in time order,
    so a timestamp seen means every older point of its series is queryable too."""

    def __init__(self, influx: httpx.Client, cell: str, group_by: str, tenant: str = TENANT):
        super().__init__(daemon=True)
        self.influx, self.group_by = influx, group_by
        self.statement = (
            f"SELECT last(value) FROM reading WHERE tenant = '{tenant}' AND cell = '{cell}' "
            f"GROUP BY {group_by}"
        )
        self.seen: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}  # ts (ns), when
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(POLL_S):
            series = _query(self.influx, self.statement)
            now = time.time()  # the answer's arrival: an upper bound of when it became true
            for one in series:
                key = tuple(one["tags"][tag] for tag in self.group_by.split(", "))
                stamps, times = self.seen.setdefault(key, ([], []))
                ts = int(one["values"][0][0])
                if not stamps or ts > stamps[-1]:
                    stamps.append(ts)
                    times.append(now)

    def queryable_at(self, key: tuple[str, ...], ts: int) -> float | None:
        """When the point at `ts` (ns) of the series `key` was first seen, or None if never."""
        stamps, times = self.seen.get(key, ([], []))
        index = bisect.bisect_left(stamps, ts)
        return times[index] if index < len(times) else None

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


# --- the figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Flood:
    """One flood: the consumer's rate between warm-up and the flood's end, CPU of each process
    over the same interval (share of one core), what was sent and lost, and publish-to-
    queryable delays of a sample of readings (gateway floods only)."""

    messages_per_s: float
    points_per_s: float
    published_per_s: float
    readings: int
    lost: int
    cpu: dict[str, float]
    latencies: list[float]

    def cpu_per_message_us(self) -> float:
        """The consumer's CPU time per message received."""
        return self.cpu["consumer"] / self.messages_per_s * 1e6

    def cpu_text(self) -> str:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in self.cpu.items())
        return f"{shares} ({self.cpu_per_message_us():,.0f} µs a message)"


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(_cpu_seconds(pid) for pid in group) for name, group in pids.items()}


def _spawn_publishers(
    broker: Mosquitto, cell: str, per_message: int, rate: float | None, tenant: str = TENANT
) -> tuple[list[multiprocessing.process.BaseProcess], list[Connection], Event]:
    """PUBLISHERS processes sharing `rate` messages/s (None: flat out), connected and waiting
    for the returned event."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    processes: list[multiprocessing.process.BaseProcess] = []
    pipes: list[Connection] = []
    share = None if rate is None else rate / PUBLISHERS
    for index in range(PUBLISHERS):
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_publish,
            args=(
                *(broker.port, _asset(cell, index, tenant), per_message, share, FLOOD_S),
                *(go, theirs),
            ),
            daemon=True,
        )
        process.start()
        processes.append(process)
        pipes.append(ours)
    for pipe in pipes:
        if not pipe.poll(30) or pipe.recv() != "ready":
            raise RuntimeError("a publisher did not connect to the broker")
    return processes, pipes, go


@dataclass(frozen=True)
class Window:
    """From the end of the warm-up to the end of the flood: its bounds (wall clock), what the
    consumer counted meanwhile (when it can be asked), CPU of each process in shares of a core."""

    start: float
    end: float
    counted: int
    cpu: dict[str, float]


def _flood_window(
    pids: dict[str, list[int]], go: Event, count: Callable[[], int] | None = None
) -> Window:
    """Start the flood and watch it until it ends."""
    started = time.time()
    go.set()
    time.sleep(WARM_UP_S)
    start, first, first_cpu = time.time(), count() if count else 0, _cpu(pids)
    time.sleep(max(0.0, started + FLOOD_S - time.time()))
    end, last, last_cpu = time.time(), count() if count else 0, _cpu(pids)
    shares = {name: (last_cpu[name] - first_cpu[name]) / (end - start) for name in pids}
    return Window(start, end, last - first, shares)


def _count_at(samples: list[tuple[float, int]], at: float) -> int:
    """The count of the last sample taken at or before `at`."""
    index = bisect.bisect_right([t for t, _ in samples], at)
    return samples[index - 1][1] if index else 0


def _join(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.terminate()


def _spawn_do_nothing(
    broker: Mosquitto, mqtt5: bool
) -> tuple[multiprocessing.process.BaseProcess, int, Connection]:
    """A do-nothing subscriber (its process, pid and pipe) on topics like the gateway's but of
    a tenant it does not subscribe to, so the gateway can stay up."""
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    ours, theirs = context.Pipe()
    topic = f"{OUTSIDE}/{SITE}/+/+/+/data"  # the gateway's filter, for another tenant
    subscriber = context.Process(
        target=_do_nothing, args=(broker.port, topic, mqtt5, ready, theirs), daemon=True
    )
    subscriber.start()
    if not ready.wait(30) or subscriber.pid is None:
        raise RuntimeError("the do-nothing subscriber did not subscribe")
    return subscriber, subscriber.pid, ours


def do_nothing_flood(
    broker: Mosquitto,
    server_pids: dict[str, list[int]],
    mqtt5: bool,
    per_message: int = 1,
    rate: float | None = None,
) -> Flood:
    """The baseline: a flood of messages of `per_message` readings (`rate` a second or flat
    out) into a subscriber that only counts."""
    subscriber, pid, ours = _spawn_do_nothing(broker, mqtt5)
    publishers, pipes, go = _spawn_publishers(broker, "flood", per_message, rate, OUTSIDE)
    pids = {
        **server_pids,
        "publishers": [p.pid for p in publishers if p.pid],
        "consumer": [pid],
    }
    window = _flood_window(pids, go)
    sent: list[Published] = [pipe.recv() for pipe in pipes]
    total = sum(p.messages for p in sent)
    ours.send(total)
    samples: list[tuple[float, int]] = ours.recv()
    _join([subscriber, *publishers])
    received = _count_at(samples, window.end) - _count_at(samples, window.start)
    received_per_s = received / (window.end - window.start)
    return Flood(
        messages_per_s=received_per_s,
        points_per_s=received_per_s * per_message,
        published_per_s=total / FLOOD_S,
        readings=total * per_message,
        lost=(total - samples[-1][1]) * per_message,
        cpu=window.cpu,
        latencies=[],
    )


def gateway_flood(
    broker: Mosquitto,
    influx: httpx.Client,
    gateway: Consumer,
    server_pids: dict[str, list[int]],
    cell: str,
    per_message: int,
    rate: float | None,
    tenant: str = TENANT,
) -> Flood:
    """Messages of `per_message` readings into the gateway (or another consumer of `tenant`'s
    topics), `rate` a second or flat out; counted in InfluxDB once drained, and delays of a
    sample published between warm-up and end."""
    before = gateway.points_written()
    publishers, pipes, go = _spawn_publishers(broker, cell, per_message, rate, tenant)
    pids = {
        **server_pids,
        "publishers": [p.pid for p in publishers if p.pid],
        "consumer": [gateway.pid],
    }
    poller = Poller(influx, cell, "asset", tenant)
    poller.start()
    window = _flood_window(pids, go, gateway.points_written)
    sent: list[Published] = [pipe.recv() for pipe in pipes]
    _join(publishers)
    total = sum(p.readings for p in sent)
    deadline = time.monotonic() + 120
    while gateway.points_written() - before < total and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3 * POLL_S)
    poller.stop()
    latencies = [
        seen - published
        for one in sent
        for ts, published in one.samples
        if window.start <= published <= window.end
        and (seen := poller.queryable_at((one.asset,), ts)) is not None
    ]
    points_per_s = window.counted / (window.end - window.start)
    return Flood(
        messages_per_s=points_per_s / per_message,
        points_per_s=points_per_s,
        published_per_s=total / per_message / FLOOD_S,
        readings=total,
        lost=total - _stored(influx, cell, tenant),
        cpu=window.cpu,
        latencies=latencies,
    )


@dataclass(frozen=True)
class Paced:
    """A 1 Hz load: publish-to-queryable delay of every reading, what was sent and lost, and
    the consumer's CPU seconds from the first publish until the last point was stored."""

    latencies: list[float]
    sent: int
    lost: int
    cpu_s: float

    def cpu_per_point_us(self) -> float:
        return self.cpu_s / max(1, self.sent - self.lost) * 1e6


def _spawn_paced(
    broker: Mosquitto, cell: str, grouped: bool, tenant: str
) -> tuple[multiprocessing.process.BaseProcess, Connection, Event]:
    """The 1 Hz publisher of `cell`, connected and waiting for the returned event."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    ours, theirs = context.Pipe()
    publisher = context.Process(
        target=_paced,
        args=(broker.port, cell, grouped, tenant, PACED_S, go, theirs),
        daemon=True,
    )
    publisher.start()
    if not ours.poll(30) or ours.recv() != "ready":
        raise RuntimeError("the paced publisher did not connect to the broker")
    return publisher, ours, go


def do_nothing_paced(broker: Mosquitto, grouped: bool) -> Paced:
    """The 1 Hz load of paced_latency into a do-nothing MQTT 5 subscriber acknowledging by
    hand: the CPU any consumer of the gateway's protocol spends receiving it."""
    subscriber, pid, counts = _spawn_do_nothing(broker, mqtt5=True)
    publisher, ours, go = _spawn_paced(broker, "paced", grouped, OUTSIDE)
    cpu_before = _cpu_seconds(pid)
    go.set()
    sent: list[tuple[str, str, int, float]] = ours.recv()  # after the last PUBACK
    cpu_s = _cpu_seconds(pid) - cpu_before
    counts.send(len(sent) // (SIGNALS if grouped else 1))
    received = counts.recv()[-1][1] * (SIGNALS if grouped else 1)
    _join([subscriber, publisher])
    return Paced([], len(sent), len(sent) - received, cpu_s)


def paced_latency(
    broker: Mosquitto,
    influx: httpx.Client,
    consumer: Consumer,
    cell: str = "paced",
    grouped: bool = False,
    tenant: str = TENANT,
) -> Paced:
    """Every signal of `cell` (200) at 1 Hz for PACED_S into `consumer`, one reading a message
    or (`grouped`) one message a machine."""
    publisher, ours, go = _spawn_paced(broker, cell, grouped, tenant)
    poller = Poller(influx, cell, "asset, signal", tenant)
    poller.start()
    cpu_before = _cpu_seconds(consumer.pid)
    go.set()
    sent: list[tuple[str, str, int, float]] = ours.recv()
    _join([publisher])
    since = min((ts for _, _, ts, _ in sent), default=0)  # an earlier run's points left out
    deadline = time.monotonic() + 10
    while _stored(influx, cell, tenant, since) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    cpu_s = _cpu_seconds(consumer.pid) - cpu_before
    time.sleep(3 * POLL_S)
    poller.stop()
    latencies = [
        seen - published
        for asset, signal, ts, published in sent
        if (seen := poller.queryable_at((asset, signal), ts)) is not None
    ]
    return Paced(latencies, len(sent), len(sent) - _stored(influx, cell, tenant, since), cpu_s)


def _probe(broker: Mosquitto, gateway: GatewayProcess) -> None:
    """One reading through the gateway, so it is subscribed before anything is measured."""
    client = _connect(broker.port, "probe")
    try:
        reading = Reading(signal="s0", value=1, ts=datetime.now(UTC))
        client.publish(_asset("probe", 0).topic(), encode_readings([reading]), qos=1)
        deadline = time.monotonic() + 30
        while gateway.points_written() < 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no reading came through the gateway; see {gateway.log}")
            time.sleep(0.1)
    finally:
        client.disconnect()
        client.loop_stop()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def _delays(values: list[float]) -> str:
    return f"p50 {_percentile(values, 0.5):.3f} s, p99 {_percentile(values, 0.99):.3f} s"


@dataclass(frozen=True)
class Figures:
    """The best baseline and gateway flood of the rounds, and the rest taken once."""

    bare: Flood  # the do-nothing subscriber of the gateway's protocol: the baseline
    bare311: Flood  # the do-nothing MQTT 3.1.1 subscriber, for comparison
    single: Flood
    steady: Flood
    batched: Flood
    paced: Paced
    lost: int  # in every gateway flood of the rounds


def _best(floods: list[Flood]) -> Flood:
    return max(floods, key=lambda flood: flood.messages_per_s)


def measure() -> Figures:
    """Every figure, in one run on one broker and one InfluxDB."""
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(Path(folder) / "broker")
        server = InfluxDB(Path(folder) / "influxdb")
        broker.start()
        server.start()
        influx = httpx.Client(base_url=server.url, timeout=10)
        try:
            assert broker.process and server.process
            servers = {"broker": [broker.process.pid], "influxd": [server.process.pid]}
            gateway = GatewayProcess(Path(folder), broker, server)
            try:
                _probe(broker, gateway)
                bares, bares311, singles = [], [], []
                mqtt5 = GATEWAY_MQTT_VERSION == "5"
                for turn in range(ROUNDS):
                    bares.append(do_nothing_flood(broker, servers, mqtt5))
                    bares311.append(do_nothing_flood(broker, servers, mqtt5=False))
                    cell = f"flood{turn}"
                    singles.append(gateway_flood(broker, influx, gateway, servers, cell, 1, None))
                single = _best(singles)
                steady_rate = STEADY_SHARE * single.messages_per_s
                steady = gateway_flood(broker, influx, gateway, servers, "steady", 1, steady_rate)
                offered = BATCH_OFFERED / BATCH
                batched = gateway_flood(broker, influx, gateway, servers, "batch", BATCH, offered)
                paced = paced_latency(broker, influx, gateway)
            finally:
                gateway.stop()
        finally:
            influx.close()
            server.stop()
            broker.stop()
    lost = sum(flood.lost for flood in singles)
    return Figures(_best(bares), _best(bares311), single, steady, batched, paced, lost)


def _met(goal_met: bool) -> str:
    return "met" if goal_met else "MISSED"


def _sent(flood: Flood) -> str:
    return f"{flood.readings:,} sent, {flood.lost:,} lost"


def main() -> None:
    f = measure()
    table = Table(
        title="gateway: MQTT -> InfluxDB 1.x, run as `shopfloor gateway` (a subprocess)",
        caption=(
            f"{PUBLISHERS} publisher processes at QoS 1; rates and CPU (shares of one core) "
            f"from {WARM_UP_S:g} s to {FLOOD_S:g} s of each flood; the baseline and the "
            f"gateway's flood: best of {ROUNDS}, taken in turns; ratio: to the baseline or the "
            "goal (a rate meets its goal at 1 or more, a delay under 1)"
        ),
    )
    for column in ("what", "figure", "baseline / goal", "ratio", "readings", "met"):
        table.add_column(column, justify="left" if column == "what" else "right")
    ratio = f.single.messages_per_s / f.bare.messages_per_s
    p99 = _percentile(f.paced.latencies, 0.99)
    backlog = "(the backlog at the broker included)"
    per_point = f.batched.cpu_per_message_us() / BATCH
    rows = [
        (
            f"do-nothing subscriber, MQTT {GATEWAY_MQTT_VERSION} acknowledging by hand, the "
            "gateway's protocol (baseline): flood of one-reading messages",
            f"{f.bare.messages_per_s:,.0f} messages/s",
            f"{f.bare.published_per_s:,.0f} messages/s published",
            "",
            _sent(f.bare),
            "",
        ),
        (
            "do-nothing subscriber, MQTT 3.1.1, paho acknowledging",
            f"{f.bare311.messages_per_s:,.0f} messages/s",
            "the baseline",
            f"{f.bare311.messages_per_s / f.bare.messages_per_s:.2f}",
            _sent(f.bare311),
            "",
        ),
        (
            "gateway: the same flood, into InfluxDB",
            f"{f.single.messages_per_s:,.0f} messages/s = points/s",
            f"the baseline; goal >= {GOAL_RATIO:.1f}",
            f"{ratio:.2f}",
            _sent(f.single),
            _met(ratio >= GOAL_RATIO),
        ),
        (
            "gateway: that flood against the MQTT 3.1.1 do-nothing subscriber",
            f"{f.single.messages_per_s:,.0f} messages/s",
            f"{f.bare311.messages_per_s:,.0f} messages/s",
            f"{f.single.messages_per_s / f.bare311.messages_per_s:.2f}",
            "",
            "",
        ),
        (
            "gateway: CPU a message in that flood",
            f"{f.single.cpu_per_message_us():,.0f} µs",
            f"{f.bare.cpu_per_message_us():,.0f} µs (the baseline)",
            f"{f.bare.cpu_per_message_us() / f.single.cpu_per_message_us():.2f}",
            "",
            "",
        ),
        (
            f"gateway: publish -> queryable in that flood {backlog}",
            _delays(f.single.latencies),
            "",
            "",
            f"{len(f.single.latencies):,} sampled",
            "",
        ),
        (
            f"gateway: publish -> queryable, paced at {STEADY_SHARE:.0%} of that flood's rate",
            _delays(f.steady.latencies),
            f"{f.steady.published_per_s:,.0f} messages/s published",
            "",
            f"{_sent(f.steady)}, {len(f.steady.latencies):,} sampled",
            "",
        ),
        (
            f"gateway: {BATCH} readings a message, into InfluxDB",
            f"{f.batched.points_per_s:,.0f} points/s",
            f">= {GOAL_POINTS_PER_S:,.0f} (offered {f.batched.published_per_s * BATCH:,.0f})",
            f"{f.batched.points_per_s / GOAL_POINTS_PER_S:.2f}",
            _sent(f.batched),
            _met(f.batched.points_per_s >= GOAL_POINTS_PER_S),
        ),
        (
            "gateway: CPU a point there; points per CPU-second, a core to itself",
            f"{per_point:.1f} µs; {1e6 / per_point:,.0f} points/s",
            f">= {GOAL_POINTS_PER_S:,.0f} points/s",
            f"{1e6 / per_point / GOAL_POINTS_PER_S:.2f}",
            "",
            _met(1e6 / per_point >= GOAL_POINTS_PER_S),
        ),
        (
            f"gateway: publish -> queryable, {BATCH} readings a message {backlog}",
            _delays(f.batched.latencies),
            "",
            "",
            f"{len(f.batched.latencies):,} sampled",
            "",
        ),
        (
            f"gateway: publish -> queryable, {PACED_ASSETS * SIGNALS} signals at 1 Hz, one "
            f"reading a message, InfluxDB asked every {POLL_S * 1000:.0f} ms",
            _delays(f.paced.latencies),
            f"p99 < {GOAL_P99_S:g} s",
            f"{p99 / GOAL_P99_S:.2f}",
            f"{f.paced.sent:,} sent, {f.paced.lost:,} lost",
            _met(p99 < GOAL_P99_S),
        ),
        ("CPU in the baseline's flood", f.bare.cpu_text(), "", "", "", ""),
        ("CPU in the MQTT 3.1.1 do-nothing flood", f.bare311.cpu_text(), "", "", "", ""),
        ("CPU in the gateway's flood", f.single.cpu_text(), "", "", "", ""),
        (f"CPU in the {BATCH}-reading flood", f.batched.cpu_text(), "", "", "", ""),
    ]
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    lost = f.lost + f.steady.lost + f.batched.lost + f.paced.lost
    if lost:
        console.print(f"[red]{lost:,} readings published to the gateway never reached InfluxDB")
    if ratio < GOAL_RATIO or f.batched.points_per_s < GOAL_POINTS_PER_S or p99 >= GOAL_P99_S:
        console.print("[red]the gateway misses a goal[/red]")


if __name__ == "__main__":
    main()
