"""Capacity of one box: how many machines of 10 signals sampled at 1 Hz the whole chain carries
on this machine with zero loss, p99 publish-to-queryable under 1.5 s and analytics cycles that
keep up with their interval, and which process gives out first (`python -m bench.capacity`;
`--quick` for one short step of 2 machines, `--machines N` for one step of N).

Every component runs as in a demo centre, a process of its own started with its `shopfloor`
command: the simulator (an OPC UA server per machine), the edge agent (an OPC UA session per
machine), Mosquitto, the gateway, InfluxDB 1.x and the analytics service. The edge polls each
machine's 10 nodes once a second: the simulator writes its nodes every 0.5 s and asyncua's server
ignores a subscription's sampling interval, so a subscription would report 2 Hz. Each step runs
a plant of N machines (lines of 10) on fresh servers; N doubles from 10 until a criterion fails,
then is bisected between the last N that passed and the first that failed.

The analytics service reads up to two hours of history a cycle, so a step first writes two hours
of the plant's data into the store (a fast simulator run of one line, copied onto every line): a
cycle then costs what it costs in a running demo, not what it costs on a minute of data. The
step warms up until the service has finished its first cycle (which scores the whole backfill),
and 20 s more, then measures a 60 s window:

- loss: once the simulator is stopped and the edge's disk buffer is empty, the readings the edge
  accepted (`readings_total` of its /metrics) against the points of the plant's signals stored
  since the step began, both settled; exact, since a point written twice overwrites itself and
  the edge never emits a sample twice;
- 1 Hz held: power and the process signals change at every tick of the simulator, so each must
  yield a stored reading a second (0.98 at least), or a process fell behind before the edge;
- publish to queryable: a value is published when the simulator's tick writes it to its OPC UA
  node, and queryable when a poller asking InfluxDB every 50 ms for the newest point of each
  numeric series of the plant's last line (written last in a tick) first sees it. The simulator
  stamps values with its own clock, which lags the wall clock by its start-up time, so that lag
  is measured by reading a node's source timestamp over OPC UA and added back;
- analytics: every cycle the service logs ("wrote N points in S s") in the window must take less
  than its interval, and one must end in the window at least;
- CPU: utime+stime of each process from /proc, in shares of one core, over the window and over
  the moments the analytics service computed (it uses none between cycles); the busy time of
  the whole machine from /proc/stat, so what other users of a shared machine took is known; and
  the queries the analytics service sent InfluxDB a cycle (its /debug/vars, the poller's left
  out).

The first bottleneck is named on the failed criterion's path: the process nearest the CPU it
can use (one core for the Python services and Mosquitto, every core for InfluxDB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import yaml
from asyncua import Client
from rich.console import Console
from rich.table import Table

from analytics.service import AnalyticsSettings
from bench.gateway import DATABASE, GOAL_P99_S, GatewayProcess, Poller, _cpu, _percentile, _query
from gateway.service import GatewaySettings
from shopfloor.messages import AssetPath, decode_readings, parse_topic
from shopfloor.plant import DEFAULT_OPCUA_NAMESPACE, Plant, load_plant
from shopfloor.store import Point, StoreSettings, open_store, to_ns
from simulators.fast import run_fast
from simulators.scenario import LoadedScenario, Scenario
from tests.servers import InfluxDB, Mosquitto, free_port, port_open

ROOT = Path(__file__).resolve().parent.parent
TENANT, SITE, AREA = "bench", "site", "area"
LINE = 10  # machines a line; the backfill is one line's, copied onto every line
TEXT = ("state", "stop_reason")
PROCESS = ("spindle_load", "spindle_temperature", "motor_temperature", "vibration")
SIGNALS = (*TEXT, "part_count", "reject_count", "power", "energy", *PROCESS)
EVERY_TICK = ("power", *PROCESS)  # noisy: a new value at every tick of the simulator
POLL_INTERVAL_S = 1.0  # the edge reads every node of a machine once a second
INTERVAL_S = AnalyticsSettings().interval_s
MIN_HZ = 0.98  # readings a second of each EVERY_TICK signal, at least
CORES = os.cpu_count() or 1
SINGLE_THREADED = 1.0  # cores a Python service (one GIL) or Mosquitto can use
EDGE_DEVICE = "bench-edge"
NUMERIC = "signal =~ /^({})$/".format("|".join(s for s in SIGNALS if s not in TEXT))
CYCLE = re.compile(r"wrote \d+ points in ([\d.]+) s")
SKIPPED = "recomputation skipped"
SAMPLE_S = 0.25  # between two readings of every process's CPU
OPCUA_PORTS = (20000, 32000)
BATCH = GatewaySettings().batch_size  # points a backfill write


@dataclass(frozen=True)
class Sizing:
    """The first N, the largest, how a step warms up and measures, the history it starts with."""

    first: int
    most: int
    warm_up_s: float
    window_s: float
    backfill: timedelta


FULL = Sizing(10, 640, warm_up_s=20.0, window_s=60.0, backfill=timedelta(hours=2))
QUICK = Sizing(2, 2, warm_up_s=5.0, window_s=15.0, backfill=timedelta(minutes=15))
RESOLUTION = 0.1  # bisect until the first failing N is within 10 % of the last passing one


def _machine_id(index: int) -> str:
    return f"cnc-{index:03d}"


def _line_id(index: int) -> str:
    return f"line-{index // LINE:02d}"


def _opcua_ports(count: int) -> Iterator[int]:
    """Free ports below Linux's ephemeral range (32768 up): an ephemeral one can be taken as
    the source port of any outgoing connection before the simulator binds it."""
    ports = (port for port in range(*OPCUA_PORTS) if not port_open(port))
    for _ in range(count):
        yield next(ports)


def _plant(machines: int) -> dict[str, object]:
    """`machines` CNC machines with SIGNALS on lines of LINE, each with an OPC UA port of its
    own, and three 8-hour shifts every day, so that a shift is always running."""
    lines: dict[str, list[dict[str, object]]] = {}
    for i, port in zip(range(machines), _opcua_ports(machines), strict=True):
        lines.setdefault(_line_id(i), []).append(
            {
                "id": _machine_id(i),
                "name": f"CNC {i}",
                "type": "cnc",
                "rated_power_kw": 11.0,
                "ideal_cycle_time": {"part": 30.0},
                "energy_meter": {
                    "id": f"em-{i:03d}",
                    "power_signal": "power",
                    "energy_signal": "energy",
                },
                "opcua": {"endpoint": f"opc.tcp://127.0.0.1:{port}"},
                "signals": [{"id": signal} for signal in SIGNALS],
            }
        )
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    shifts = [("early", "06:00", "14:00"), ("late", "14:00", "22:00"), ("night", "22:00", "06:00")]
    area = {"id": AREA, "lines": [{"id": k, "machines": v} for k, v in lines.items()]}
    return {
        "version": 1,
        "tenant": {"id": TENANT, "name": "Bench"},
        "site": {"id": SITE, "name": "Bench site", "areas": [area]},
        "products": [{"id": "part"}],
        "shifts": [{"name": n, "start": s, "end": e, "days": days} for n, s, e in shifts],
    }


def write_files(directory: Path, machines: int) -> tuple[Path, Path]:
    """The plant file, and the edge's config: every machine polled once a second."""
    plant = directory / "plant.yaml"
    plant.write_text(yaml.safe_dump(_plant(machines), sort_keys=False))
    sources = [
        {"machine": _machine_id(i), "mode": "poll", "poll_interval_s": POLL_INTERVAL_S}
        for i in range(machines)
    ]
    edge = directory / "edge.yaml"
    config = {"version": 1, "plant": plant.name, "device": EDGE_DEVICE, "opcua": sources}
    edge.write_text(yaml.safe_dump(config, sort_keys=False))
    return plant, edge


# --- the backfill ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One line's readings over the backfill: (machine index in the line, seconds before the
    end, signal, value, unit), in time order."""

    readings: list[tuple[int, float, str, float | str, str]]

    @classmethod
    def simulate(cls, directory: Path, span: timedelta) -> Template:
        """A fast simulator run of one line (default behaviour: breakdowns, micro-stops),
        recorded as the edge reports it: every change, sampled each second."""
        plant = Plant.model_validate(_plant(LINE))
        seconds = span.total_seconds()
        scenario = Scenario(
            name="backfill", plant=Path("plant.yaml"), product="part", duration=seconds
        )
        start = datetime(2026, 11, 2, tzinfo=UTC)
        recording = directory / "backfill.jsonl"
        run_fast(
            LoadedScenario(scenario=scenario, plant=plant, path=Path("plant.yaml")),
            recording,
            start,
        )
        readings = []
        with recording.open() as lines:
            next(lines)  # the header
            for line in lines:
                message = json.loads(line)
                if "readings" not in message["payload"]:
                    continue  # an event, which the analytics service does not read
                path, _ = parse_topic(message["topic"])
                index = int(path.asset.removeprefix("cnc-"))
                for r in decode_readings(json.dumps(message["payload"]).encode()):
                    value = r.value if isinstance(r.value, str) else float(r.value)
                    ago = seconds - (r.ts - start).total_seconds()
                    readings.append((index, ago, r.signal, value, r.unit))
        recording.unlink()
        return cls(readings)

    def points(self, machines: int, end: datetime) -> Iterator[list[Point]]:
        """The template on every line of a plant of `machines`, ending at `end`, in batches of
        the gateway's size at most (a partial last line takes the template's first machines)."""
        for first in range(0, machines, LINE):
            paths = [
                AssetPath(TENANT, SITE, AREA, _line_id(i), _machine_id(i))
                for i in range(first, min(first + LINE, machines))
            ]
            line = [
                Point(paths[index], signal, end - timedelta(seconds=ago), value, unit=unit)
                for index, ago, signal, value, unit in self.readings
                if index < len(paths)
            ]
            for start in range(0, len(line), BATCH):
                yield line[start : start + BATCH]


# --- the chain, seen from outside -----------------------------------------------------------


class Command:
    """A `shopfloor` command as a subprocess, its output in a log file."""

    def __init__(self, directory: Path, name: str, *args: str):
        self.name, self.log = name, directory / f"{name}.log"
        argv = [sys.executable, "-m", "launcher", *args]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=output, cwd=ROOT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def pid(self) -> int:
        if self.process.poll() is not None:
            tail = self.text()[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{tail}")
        return self.process.pid

    def wait_for(self, pattern: str, count: int, stalled_s: float) -> None:
        """Until the log holds `count` matches of `pattern`; fails once no new one came for
        `stalled_s` (a shared machine may be slow, but it moves)."""
        found, since = 0, time.monotonic()
        while found < count:
            if (now := len(re.findall(pattern, self.text()))) > found:
                found, since = now, time.monotonic()
            elif time.monotonic() - since > stalled_s:
                raise RuntimeError(f"{self.name}: {found} of {count} x {pattern!r} in {self.log}")
            _ = self.pid
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class EdgeMetrics:
    """The edge agent's /metrics, as numbers by name (`readings_total`, `queue_depth`, ...)."""

    def __init__(self, port: int):
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def read(self) -> dict[str, float]:
        text = self.http.get("/metrics").raise_for_status().text
        found = re.findall(r"^shopfloor_edge_(\w+)\{[^}]*\} (\S+)$", text, re.MULTILINE)
        return {name: float(value) for name, value in found}

    def wait_connected(self, edge: Command, machines: int, stalled_s: float) -> None:
        """Until the edge has a session with every machine; fails once none more came for
        `stalled_s`."""
        connected, since = 0.0, time.monotonic()
        while connected < machines:
            try:
                if (now := self.read().get("sources_connected", 0.0)) > connected:
                    connected, since = now, time.monotonic()
            except httpx.HTTPError:
                pass  # not serving yet
            if time.monotonic() - since > stalled_s:
                raise RuntimeError(f"the edge connected to {connected:.0f} of {machines} machines")
            _ = edge.pid
            time.sleep(0.5)


async def _clock_lag(url: str, machine: str, seconds: float = 3.0) -> float:
    """How far the simulator's clock runs behind the wall clock: the least age of a value read
    over OPC UA (its source timestamp against the midpoint of the read's round trip), since a
    read that follows a tick closely sees a value almost 0 s old."""
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # its session-timeout notice
    async with Client(url) as client:
        namespace = await client.get_namespace_index(DEFAULT_OPCUA_NAMESPACE)
        node = client.get_node(f"ns={namespace};s={machine}.power")
        lag, deadline = float("inf"), time.monotonic() + seconds
        while time.monotonic() < deadline:
            sent = time.time()
            data = await node.read_data_value()
            received = time.time()
            assert data.SourceTimestamp is not None
            source = data.SourceTimestamp.replace(tzinfo=UTC).timestamp()
            lag = min(lag, (sent + received) / 2 - source)
            await asyncio.sleep(0.02)
    return lag


class LivePoller(Poller):
    """The gateway bench's poller on one line's numeric signals (not the analytics' results),
    from `since` on, so that the backfill is not scanned at every poll."""

    def __init__(self, influx: httpx.Client, cell: str, since: datetime):
        super().__init__(influx, cell, "asset, signal")
        self.statement = (
            f"SELECT last(value) FROM reading WHERE cell = '{cell}' AND {NUMERIC} "
            f"AND time >= {to_ns(since)} GROUP BY asset, signal"
        )


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (/proc/stat, all but idle and iowait)."""
    ticks = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _stored(influx: httpx.Client, start: datetime, end: datetime | None = None) -> int:
    """Points of the plant's own signals (not the analytics' results) stored in [start, end)."""
    bound = f" AND time < {to_ns(end)}" if end else ""
    statement = f"SELECT count(quality) FROM reading WHERE time >= {to_ns(start)}{bound}"
    series = _query(influx, f"{statement} GROUP BY signal")
    return sum(int(s["values"][0][1]) for s in series if s["tags"]["signal"] in SIGNALS)


def _every_tick_hz(influx: httpx.Client, start: datetime, end: datetime, machines: int) -> float:
    """Readings a second of each EVERY_TICK signal stamped in [start, end), over the plant."""
    pattern = "|".join(EVERY_TICK)
    series = _query(
        influx,
        f"SELECT count(value) FROM reading WHERE signal =~ /^({pattern})$/ "
        f"AND time >= {to_ns(start)} AND time < {to_ns(end)}",
    )
    count = int(series[0]["values"][0][1]) if series else 0
    return count / ((end - start).total_seconds() * machines * len(EVERY_TICK))


def _latencies(
    influx: httpx.Client, poller: Poller, cell: str, start: datetime, end: datetime, lag: float
) -> list[float]:
    """Publish-to-queryable delay of every numeric reading of `cell` stamped in [start, end)."""
    series = _query(
        influx,
        f"SELECT value FROM reading WHERE cell = '{cell}' AND {NUMERIC} "
        f"AND time >= {to_ns(start)} AND time < {to_ns(end)} GROUP BY asset, signal",
    )
    delays = []
    for one in series:
        key = (one["tags"]["asset"], one["tags"]["signal"])
        for ts, _ in one["values"]:
            seen = poller.queryable_at(key, int(ts))
            if seen is not None:
                delays.append(seen - (int(ts) / 1e9 + lag))
    return delays


def _settled(read: Callable[[], float], done: Callable[[float], bool], timeout_s: float) -> float:
    """What `read` returns once `done` says so and it has not changed for 2 s, or at timeout."""
    value, since, deadline = read(), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (done(value) and time.monotonic() - since > 2):
        time.sleep(0.5)
        if (latest := read()) != value:
            value, since = latest, time.monotonic()
    return value


# --- a step ---------------------------------------------------------------------------------


# The processes each criterion depends on.
PATHS = {
    "loss": ("edge", "mosquitto", "gateway", "influxd"),
    "sampling": ("simulator", "edge"),
    "latency": ("simulator", "edge", "mosquitto", "gateway", "influxd"),
    "analytics": ("analytics", "influxd"),
}


@dataclass(frozen=True)
class Failure:
    criterion: str  # a key of PATHS
    text: str


@dataclass(frozen=True)
class Step:
    """What a plant of `machines` did over one step's window."""

    machines: int
    readings_per_s: float  # stored, stamped within the window
    hz: float  # readings a second of each EVERY_TICK signal, over the plant
    published: int  # readings the edge accepted over the whole step
    lost: int
    latencies: list[float]
    cycles: list[float]  # durations of the analytics cycles that ended within the window
    skipped: int  # analytics cycles the store failed
    queries_per_cycle: float  # the analytics service's queries to InfluxDB
    cpu: dict[str, float]  # shares of one core, by process
    cycling: dict[str, float]  # the same, while the analytics service computed
    busy: float  # the whole machine's busy time, in cores

    @property
    def p99(self) -> float:
        return _percentile(self.latencies, 0.99)

    def failures(self) -> list[Failure]:
        """The criteria this step misses."""
        failed = []
        if self.lost:
            failed.append(Failure("loss", f"{self.lost:,} of {self.published:,} readings lost"))
        if self.hz < MIN_HZ:
            failed.append(Failure("sampling", f"sampling fell to {self.hz:.2f} Hz"))
        if not self.latencies or self.p99 >= GOAL_P99_S:
            failed.append(Failure("latency", f"p99 publish-to-queryable {self.p99:.2f} s"))
        if not self.cycles or max(self.cycles) >= INTERVAL_S or self.skipped:
            slowest = f"{max(self.cycles):.1f} s" if self.cycles else "none ended"
            text = f"analytics cycle {slowest}, interval {INTERVAL_S:g} s"
            failed.append(
                Failure("analytics", text + f", {self.skipped} failed" * bool(self.skipped))
            )
        return failed

    def verdict(self) -> str:
        return "; ".join(failure.text for failure in self.failures()) or "passed"

    def chain(self) -> float:
        """Cores the chain's processes used, without the bench's own poller."""
        return sum(share for name, share in self.cpu.items() if name != "bench")

    def bottleneck(self, failure: Failure) -> str:
        """The process on the failed criterion's path nearest what it can use (one core for
        the single-threaded ones, every core for InfluxDB) with the CPU of the others, over
        the window or, for the analytics cycles, while the service computed."""
        analytics = failure.criterion == "analytics"
        shares = self.cycling if analytics else self.cpu
        path = sorted(PATHS[failure.criterion], key=lambda n: -shares[n] / _usable(n))
        others = ", ".join(f"{n} {shares[n]:.0%}" for n in path[1:])
        if not analytics:
            return f"{path[0]} at {shares[path[0]]:.0%} of a core ({failure.text}; {others})"
        return (
            f"{path[0]} at {shares[path[0]]:.0%} of a core while the service computed "
            f"({failure.text}; {self.queries_per_cycle:,.0f} InfluxDB queries a cycle; "
            f"{others} meanwhile)"
        )


def _usable(process: str) -> float:
    return CORES if process == "influxd" else SINGLE_THREADED


class Requests:
    """An httpx event hook counting the requests of a client (the poller's)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, request: httpx.Request) -> None:
        self.count += 1


class Watch(threading.Thread):
    """Every SAMPLE_S the CPU seconds of each process, and at the end of each analytics cycle
    (a new line in its log) the queries InfluxDB has answered less the poller's. The service
    neither computes nor queries while it waits for its next cycle, so what each process used
    while it computed is told apart from the average, and a cycle's queries are exact."""

    def __init__(
        self, pids: dict[str, list[int]], analytics: Command, influx: httpx.Client, polls: Requests
    ):
        super().__init__(daemon=True)
        self.pids, self.analytics, self.influx, self.polls = pids, analytics, influx, polls
        self.samples: list[tuple[float, dict[str, float]]] = []  # (wall clock, CPU seconds)
        self.queries: list[int] = []  # at each cycle's end
        self._stopping = threading.Event()

    def run(self) -> None:
        cycles = len(CYCLE.findall(self.analytics.text()))
        while True:
            self.samples.append((time.time(), _cpu(self.pids)))
            if (ended := len(CYCLE.findall(self.analytics.text()))) > cycles:
                self.queries.append(_influx_queries(self.influx) - self.polls.count)
                cycles = ended
            if self._stopping.wait(SAMPLE_S):
                self.samples.append((time.time(), _cpu(self.pids)))
                return

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)

    def shares(self, busy: str | None = None) -> dict[str, float]:
        """Shares of one core of each process over the whole window or, with `busy`, over
        the samples in which that process used CPU."""
        spans = [
            (a, b) for a, b in pairwise(self.samples) if busy is None or b[1][busy] > a[1][busy]
        ]
        seconds = sum(b[0] - a[0] for a, b in spans) or float("nan")
        return {
            name: sum(b[1][name] - a[1][name] for a, b in spans) / seconds for name in self.pids
        }

    def queries_per_cycle(self) -> float:
        """The analytics service's queries in the cycles that began and ended in the window."""
        done = [b - a for a, b in pairwise(self.queries)]
        return sum(done) / len(done) if done else float("nan")


def _influx_queries(influx: httpx.Client) -> int:
    """Queries InfluxDB has answered since it started (its /debug/vars)."""
    stats = influx.get("/debug/vars").raise_for_status().json()
    return int(next(v for k, v in stats.items() if k.startswith("httpd"))["values"]["queryReq"])


def run_step(machines: int, sizing: Sizing, template: Template, console: Console) -> Step:
    """A plant of `machines` through the whole chain, on fresh servers in a fresh folder."""
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        directory = Path(folder)
        plant, edge_config = write_files(directory, machines)
        broker, server = Mosquitto(directory / "broker"), InfluxDB(directory / "influxdb")
        for service in (broker, server):
            service.start()
            stack.callback(service.stop)
        assert broker.process and server.process
        influx = stack.enter_context(httpx.Client(base_url=server.url, timeout=60))
        gateway = GatewayProcess(directory, broker, server, plant)
        stack.callback(gateway.stop)
        began = datetime.now(UTC).replace(microsecond=0)  # no live reading is stamped earlier
        simulator = Command(directory, "simulator", "simulate", "--plant", str(plant),
                            "--broker", broker.url)  # fmt: skip
        stack.callback(simulator.stop)
        store = open_store(StoreSettings(url=server.url, database=DATABASE))
        try:
            for points in template.points(machines, began - timedelta(seconds=1)):
                store.write(points)
        finally:
            store.close()
        simulator.wait_for("OPC UA server for .* listening", machines, 120)
        metrics_port = free_port()
        edge = Command(directory, "edge", "edge", "run", "--config", str(edge_config),
                       "--broker", broker.url, "--buffer", str(directory / "edge.db"),
                       "--metrics-port", str(metrics_port))  # fmt: skip
        stack.callback(edge.stop)
        analytics = Command(directory, "analytics", "analytics", "--plant", str(plant),
                            "--store-url", server.url, "--store-database", DATABASE)  # fmt: skip
        stack.callback(analytics.stop)
        metrics = EdgeMetrics(metrics_port)
        metrics.wait_connected(edge, machines, 120)
        *_, (_, last) = load_plant(plant).machines()
        assert last.opcua is not None
        lag = asyncio.run(_clock_lag(last.opcua.endpoint, last.id))
        console.log(f"{machines} machines: up, the simulator's clock {lag:.2f} s behind")
        analytics.wait_for(CYCLE.pattern, 1, 600 + 10 * machines)
        cell, polls = _line_id(machines - 1), Requests()
        client = httpx.Client(base_url=server.url, timeout=60, event_hooks={"request": [polls]})
        poller = LivePoller(stack.enter_context(client), cell, began)
        poller.start()
        stack.callback(poller.stop)
        time.sleep(sizing.warm_up_s)
        pids = {
            "simulator": [simulator.pid],
            "edge": [edge.pid],
            "mosquitto": [broker.process.pid],
            "gateway": [gateway.pid],
            "influxd": [server.process.pid],
            "analytics": [analytics.pid],
            "bench": [os.getpid()],
        }
        watch = Watch(pids, analytics, influx, polls)
        logged, busy, since = len(analytics.text()), _machine_busy(), time.time()
        watch.start()
        time.sleep(sizing.window_s)
        watch.stop()
        busy = (_machine_busy() - busy) / (time.time() - since)
        log = analytics.text()[logged:]
        simulator.stop()  # nothing new from here on: count what the edge accepted
        published = _settled(lambda: metrics.read()["readings_total"],
                             lambda _: metrics.read()["queue_depth"] == 0, 60)  # fmt: skip
        stored = _settled(lambda: _stored(influx, began), lambda n: n >= published, 120)
        poller.stop()
        (start, _), (end, _) = watch.samples[0], watch.samples[-1]
        data_start = datetime.fromtimestamp(start - lag, UTC)
        data_end = datetime.fromtimestamp(end - lag, UTC)
        cycles = [float(seconds) for seconds in CYCLE.findall(log)]
        return Step(
            machines=machines,
            readings_per_s=_stored(influx, data_start, data_end) / (end - start),
            hz=_every_tick_hz(influx, data_start, data_end, machines),
            published=int(published),
            lost=int(published - stored),
            latencies=_latencies(influx, poller, cell, data_start, data_end, lag),
            cycles=cycles,
            skipped=log.count(SKIPPED),
            queries_per_cycle=watch.queries_per_cycle(),
            cpu=watch.shares(),
            cycling=watch.shares(busy="analytics"),
            busy=busy,
        )


# --- stepping and the report ----------------------------------------------------------------


def capacity(sizing: Sizing, console: Console) -> tuple[int, Step | None, list[Step]]:
    """(machines carried, the first step that failed or None, every step in N order)."""
    with tempfile.TemporaryDirectory() as folder:
        template = Template.simulate(Path(folder), sizing.backfill)
    steps: dict[int, Step] = {}

    def step(machines: int) -> bool:
        try:
            steps[machines] = run_step(machines, sizing, template, console)
        except RuntimeError as exc:  # a process that did not start, on a busy shared machine
            console.log(f"{machines} machines: {exc}; once more")
            steps[machines] = run_step(machines, sizing, template, console)
        console.log(f"{machines} machines: {steps[machines].verdict()}")
        return not steps[machines].failures()

    passed, failed, machines = 0, None, sizing.first
    while failed is None and machines <= sizing.most:
        if step(machines):
            passed, machines = machines, 2 * machines
        else:
            failed = machines
    bisect = sizing.first < sizing.most
    while bisect and failed is not None and failed - passed > max(1.0, RESOLUTION * passed):
        machines = (passed + failed) // 2
        if step(machines):
            passed = machines
        else:
            failed = machines
    ordered = [steps[n] for n in sorted(steps)]
    return passed, steps.get(failed) if failed is not None else None, ordered


def report(passed: int, failed: Step | None, steps: list[Step], console: Console) -> None:
    table = Table(
        title="capacity: simulator -> edge -> Mosquitto -> gateway -> InfluxDB 1.x -> analytics",
        caption=(
            f"{len(SIGNALS)} signals a machine, polled at {1 / POLL_INTERVAL_S:g} Hz; Hz: "
            "stored readings a second of each signal that changes at every tick; cores: CPU "
            f"of the chain's processes / of the whole machine (other users included), {CORES} "
            "cores"
        ),
    )
    columns = ("machines", "readings/s", "Hz", "lost", "p99 s", "slowest cycle s",
               "queries a cycle", "chain", "machine", "verdict")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "verdict" else "right")
    for step in steps:
        table.add_row(
            f"{step.machines}",
            f"{step.readings_per_s:,.0f}",
            f"{step.hz:.2f}",
            f"{step.lost:,} of {step.published:,}",
            f"{step.p99:.2f}",
            f"{max(step.cycles, default=float('nan')):.1f}",
            f"{step.queries_per_cycle:,.0f}",
            f"{step.chain() / CORES:.0%}",
            f"{step.busy / CORES:.0%}",
            step.verdict(),
        )
    console.print(table)
    cpu = Table(
        title="CPU of each process in shares of one core: over the window / while the "
        "analytics service computed",
        caption="bench: the poller asking InfluxDB what is queryable (not part of the chain)",
    )
    cpu.add_column("machines", justify="right")
    for name in steps[0].cpu:
        cpu.add_column(name, justify="right")
    for step in steps:
        shares = (f"{step.cpu[n]:.0%} / {step.cycling[n]:.0%}" for n in step.cpu)
        cpu.add_row(f"{step.machines}", *shares)
    console.print(cpu)
    carried = next((s for s in steps if s.machines == passed), None)
    if carried is None:
        console.print(f"[red]not even {steps[0].machines} machines pass: {steps[0].verdict()}")
        return
    figure = (
        f"{passed} machines ({passed * len(SIGNALS):,} signals at 1 Hz, "
        f"{carried.readings_per_s:,.0f} readings/s stored) with zero loss, "
        f"p99 {carried.p99:.2f} s, slowest analytics cycle {max(carried.cycles):.1f} s"
    )
    if failed is None:
        console.print(f"capacity: at least {figure}; no step up to {passed} machines failed")
        return
    bottlenecks = "; and ".join(failed.bottleneck(failure) for failure in failed.failures())
    console.print(
        f"capacity: {figure}; first bottleneck at {failed.machines} machines: {bottlenecks}"
    )
    console.print(
        f"the machine's own limit: the chain used {carried.chain():.2f} of {CORES} cores "
        f"({carried.chain() / CORES:.0%}) at {passed} machines, {failed.chain():.2f} "
        f"({failed.chain() / CORES:.0%}) at {failed.machines}; the whole machine, other users "
        f"included, was {carried.busy / CORES:.0%} and {failed.busy / CORES:.0%} busy"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short step of 2 machines")
    parser.add_argument("--machines", type=int, help="one step of this many machines")
    options = parser.parse_args(argv)
    sizing = QUICK if options.quick else FULL
    if options.machines:
        sizing = replace(sizing, first=options.machines, most=options.machines)
    console = Console()
    report(*capacity(sizing, console), console)


if __name__ == "__main__":
    main()
