"""The gateway against a Node-RED flow as demo centres build it, on the same Mosquitto and the
same InfluxDB 1.x, the same loads taken in turns.

The flow: `mqtt in` (QoS 1) -> `json` -> a function building one InfluxDB point a reading ->
`influxdb batch` (node-red-contrib-influxdb), one write a message. Node-RED 4 and the node are
installed with npm into a cache folder outside the repository (SHOPFLOOR_BENCH_CACHE, by default
~/.cache/shopfloor-bench); without npm, or when the install fails (no network), the run is
skipped with a message. Both consumers stay up for the whole run, each on its own tenant's
topics, so a load reaches only the one it is for. CPU is the kernel's accounting of each
process (utime+stime) over a load, divided by the points it stored.

Each CPU figure has its floor beside it, measured in the same run: what any consumer of the
gateway's protocol that keeps its guarantees spends at least on that load, a do-nothing MQTT 5
subscriber acknowledging by hand on the same messages, plus the validation of each message
against the contract (`decode_readings`, in pydantic-core: Node-RED's flow validates nothing),
plus one bare `/write` a message of the same points over a kept-alive connection (the body made
beforehand, not compressed). A goal at or below the floor cannot be met by any Python consumer
that speaks MQTT 5 and validates; the verdict says so, with the floor's three parts, or else the
gateway's excess over the floor.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
from rich.console import Console
from rich.table import Table

from bench.gateway import (
    BATCH,
    BATCH_OFFERED,
    DATABASE,
    OUTSIDE,
    PACED_ASSETS,
    POLL_S,
    SIGNALS,
    SITE,
    TENANT,
    Consumer,
    Flood,
    GatewayProcess,
    Paced,
    Payloads,
    _asset,
    _connect,
    _percentile,
    _probe,
    _stored,
    do_nothing_flood,
    do_nothing_paced,
    gateway_flood,
    paced_latency,
)
from shopfloor.messages import Reading, decode_readings, encode_readings
from shopfloor.store import Point
from shopfloor.store.influx import to_line_protocol
from tests.servers import InfluxDB, Mosquitto, ServerProcess, free_port

NODE_RED, INFLUXDB_NODE = "node-red@4", "node-red-contrib-influxdb@0.7"
CACHE = Path(os.environ.get("SHOPFLOOR_BENCH_CACHE", Path.home() / ".cache/shopfloor-bench"))
FLOW_TENANT = "nodered"  # the topics of the flow's loads; the gateway subscribes to TENANT's
GOAL_P99_RATIO, GOAL_CPU_RATIO = 1.0, 0.5  # of Node-RED's p99 at 1 Hz, of its CPU a point
WRITES = 200  # bare /writes a load, for its floor
VALIDATED = 100_000  # readings validated a load, for its floor
PACED_ROUNDS = 2  # of each 1 Hz load into each consumer, in turns

# Contract readings to InfluxDB points: the asset from the topic, microsecond timestamps (the
# contract's precision), the gateway's measurement, tags and fields.
TO_POINTS = """
const [tenant, site, area, cell, asset] = msg.topic.split('/');
msg.payload = msg.payload.readings.map((r) => {
    const [whole, fraction = ''] = r.ts.replace('Z', '').split('.');
    return {
        measurement: 'reading',
        tags: {tenant, site, area, cell, asset, signal: r.signal},
        fields: {value: r.value, quality: r.quality || 'good', unit: r.unit || ''},
        timestamp: Date.parse(whole + 'Z') * 1000 + Number(fraction.padEnd(6, '0').slice(0, 6)),
    };
});
return msg;
"""


class NodeRedUnavailableError(Exception):
    """Node-RED cannot be run here; the message says why."""


def install() -> Path:
    """The folder Node-RED and the InfluxDB node are installed in, installing them once."""
    folder = CACHE / "node-red"
    red = folder / "node_modules/node-red/red.js"
    if red.exists() and (folder / "node_modules/node-red-contrib-influxdb").exists():
        return red
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise NodeRedUnavailableError("npm or node is not installed (apt-get install -y npm)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "shopfloor-bench-node-red", "private": true}')
    argv = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", NODE_RED, INFLUXDB_NODE]
    try:
        subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=600, check=True)
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr.strip().splitlines() or ["no message"])[-1]
        raise NodeRedUnavailableError(
            f"npm install {NODE_RED} {INFLUXDB_NODE} failed: {last}"
        ) from None
    except subprocess.TimeoutExpired:
        raise NodeRedUnavailableError(
            f"npm install {NODE_RED} {INFLUXDB_NODE} took over 10 minutes"
        ) from None
    return red


def flows(broker: Mosquitto, influx: InfluxDB) -> list[dict[str, object]]:
    """The flow, as Node-RED's editor exports it (an id equal to a type would be read as a
    reference to a configuration node)."""
    return [
        {"id": "bench-tab", "type": "tab", "label": "shopfloor bench"},
        {
            "id": "bench-broker",
            "type": "mqtt-broker",
            "broker": "127.0.0.1",
            "port": str(broker.port),
            "clientid": "",
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": True,
        },
        {
            "id": "bench-influxdb",
            "type": "influxdb",
            "hostname": "127.0.0.1",
            "port": str(influx.port),
            "protocol": "http",
            "database": DATABASE,
            "influxdbVersion": "1.x",
            "usetls": False,
        },
        {
            "id": "bench-in",
            "type": "mqtt in",
            "z": "bench-tab",
            "topic": f"{FLOW_TENANT}/{SITE}/+/+/+/data",
            "qos": "1",
            "datatype": "utf8",
            "broker": "bench-broker",
            "nl": False,
            "rap": True,
            "inputs": 0,
            "wires": [["bench-json"]],
        },
        {
            "id": "bench-json",
            "type": "json",
            "z": "bench-tab",
            "property": "payload",
            "wires": [["bench-points"]],
        },
        {
            "id": "bench-points",
            "type": "function",
            "z": "bench-tab",
            "name": "contract readings to points",
            "func": TO_POINTS,
            "outputs": 1,
            "wires": [["bench-write"]],
        },
        {
            "id": "bench-write",
            "type": "influxdb batch",
            "z": "bench-tab",
            "influxdb": "bench-influxdb",
            "precision": "u",
            "database": DATABASE,
            "wires": [],
        },
    ]


class NodeRed(ServerProcess):
    """Node-RED running the flow, its points counted in InfluxDB."""

    def __init__(self, workdir: Path, red: Path, broker: Mosquitto, influx: InfluxDB):
        workdir.mkdir(parents=True, exist_ok=True)
        flow_file = workdir / "flows.json"
        flow_file.write_text(json.dumps(flows(broker, influx), indent=2))
        port = free_port()
        argv = ["node", str(red), "--userDir", str(workdir), "--port", str(port), str(flow_file)]
        super().__init__("node-red", argv, port, workdir, {**os.environ, "NODE_ENV": "production"})
        self.store = httpx.Client(base_url=influx.url, timeout=30)

    @property
    def pid(self) -> int:
        assert self.process is not None, "Node-RED is not running"
        return self.process.pid

    def points_written(self) -> int:
        return _stored(self.store, "", FLOW_TENANT)

    def wait_subscribed(self, broker: Mosquitto, timeout_s: float = 60) -> None:
        """Publish a probe reading until the flow has stored one: it is then subscribed."""
        deadline = time.monotonic() + timeout_s
        while self.points_written() == 0:
            if time.monotonic() > deadline:
                log = (self.workdir / "node-red.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nothing came through Node-RED:\n{log}")
            _probe_flow(broker)
            time.sleep(0.5)

    def stop(self) -> None:
        self.store.close()
        super().stop()


def _probe_flow(broker: Mosquitto) -> None:
    client = _connect(broker.port, "probe")
    reading = Reading(signal="s0", value=1, ts=datetime.now(UTC))
    client.publish(_asset("probe", 0, FLOW_TENANT).topic(), encode_readings([reading]), qos=1)
    time.sleep(0.1)
    client.disconnect()
    client.loop_stop()


@dataclass(frozen=True)
class Side:
    """One consumer's figures over the loads."""

    paced: Paced  # 200 signals at 1 Hz, one reading a message
    grouped: Paced  # the same, one message a machine
    batched: Flood  # BATCH readings a message at BATCH_OFFERED points/s


def _loads(
    broker: Mosquitto,
    influx: httpx.Client,
    consumers: dict[str, tuple[Consumer, str]],
    servers: dict[str, list[int]],
) -> dict[str, Side]:
    """Each load into each consumer in turn (consumer, tenant of its topics); the 1 Hz loads
    PACED_ROUNDS times, their delays pooled, so that one stall of either consumer (or of the
    machine) weighs on its p99 as what it is, not as a fortieth of the tail."""
    paced: dict[str, list[Paced]] = {name: [] for name in consumers}
    grouped: dict[str, list[Paced]] = {name: [] for name in consumers}
    for _ in range(PACED_ROUNDS):
        for name, (consumer, tenant) in consumers.items():
            paced[name].append(paced_latency(broker, influx, consumer, "paced", False, tenant))
        for name, (consumer, tenant) in consumers.items():
            grouped[name].append(paced_latency(broker, influx, consumer, "grouped", True, tenant))
    batched = {
        name: gateway_flood(broker, influx, c, servers, "batch", BATCH, BATCH_OFFERED / BATCH, t)
        for name, (c, t) in consumers.items()
    }
    return {
        name: Side(_pooled(paced[name]), _pooled(grouped[name]), batched[name])
        for name in consumers
    }


def _pooled(runs: list[Paced]) -> Paced:
    """Runs of one 1 Hz load as one: every delay, and the sums of what was sent, lost and spent."""
    return Paced(
        [delay for run in runs for delay in run.latencies],
        sum(run.sent for run in runs),
        sum(run.lost for run in runs),
        sum(run.cpu_s for run in runs),
    )


@dataclass(frozen=True)
class Floor:
    """The least CPU a point of one load: receiving and acknowledging it, validating it against
    the contract, writing it."""

    receive_us: float
    validate_us: float
    write_us: float

    @property
    def total_us(self) -> float:
        return self.receive_us + self.validate_us + self.write_us

    def parts(self, baseline_us: float) -> str:
        """Each part as a share of `baseline_us`."""
        shares = (self.receive_us, self.validate_us, self.write_us)
        names = ("receive+ack", "validate", "write")
        return ", ".join(f"{n} {us / baseline_us:.2f}" for n, us in zip(names, shares, strict=True))


def validate_cpu_us(per_message: int) -> float:
    """This thread's CPU to validate one message of `per_message` readings against the contract
    (`decode_readings`, in pydantic-core): the least that the gateway's guarantee of validation
    costs a message. Node-RED's flow validates nothing."""
    payload = Payloads(per_message, datetime.now(UTC)).payload(1)
    decode_readings(payload)
    runs = max(1, VALIDATED // per_message)
    started = time.thread_time()
    for _ in range(runs):
        decode_readings(payload)
    return (time.thread_time() - started) / runs * 1e6


def write_cpu_us(server: InfluxDB, per_message: int) -> float:
    """This thread's CPU for one bare `/write` of `per_message` points over a kept-alive
    connection, the line protocol made beforehand: the least a consumer spends storing a
    message. The same points are written each time (InfluxDB overwrites them)."""
    asset, now = _asset("floor", 0, OUTSIDE), datetime.now(UTC)
    body = to_line_protocol(
        Point(asset, f"s{j % SIGNALS}", now + timedelta(microseconds=j), float(j))
        for j in range(per_message)
    ).encode()
    path = f"/write?{urlencode({'db': DATABASE, 'precision': 'ns'})}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def write() -> None:
        connection.request("POST", path, body)
        response = connection.getresponse()
        if response.status != 204:
            raise RuntimeError(f"InfluxDB answered {response.status}: {response.read()!r}")
        response.read()

    try:
        write()  # connects
        started = time.thread_time()
        for _ in range(WRITES):
            write()
        return (time.thread_time() - started) / WRITES * 1e6
    finally:
        connection.close()


def floors(broker: Mosquitto, server: InfluxDB, servers: dict[str, list[int]]) -> dict[str, Floor]:
    """Each load's floor (by the name of its field of Side), on the broker and store the
    consumers use, topics of a tenant neither subscribes to."""
    batched = do_nothing_flood(broker, servers, True, BATCH, BATCH_OFFERED / BATCH)
    return {
        "paced": Floor(
            do_nothing_paced(broker, False).cpu_per_point_us(),
            validate_cpu_us(1),
            write_cpu_us(server, 1),
        ),
        "grouped": Floor(
            do_nothing_paced(broker, True).cpu_per_point_us(),
            validate_cpu_us(SIGNALS) / SIGNALS,
            write_cpu_us(server, SIGNALS) / SIGNALS,
        ),
        "batched": Floor(
            batched.cpu_per_message_us() / BATCH,
            validate_cpu_us(BATCH) / BATCH,
            write_cpu_us(server, BATCH) / BATCH,
        ),
    }


def measure(red: Path) -> tuple[dict[str, Side], dict[str, Floor]]:
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(Path(folder) / "broker")
        server = InfluxDB(Path(folder) / "influxdb")
        broker.start()
        server.start()
        influx = httpx.Client(base_url=server.url, timeout=30)
        gateway: GatewayProcess | None = None
        node_red = NodeRed(Path(folder) / "node-red", red, broker, server)
        try:
            assert broker.process and server.process
            servers = {"broker": [broker.process.pid], "influxd": [server.process.pid]}
            gateway = GatewayProcess(Path(folder), broker, server)
            _probe(broker, gateway)
            node_red.start(timeout=60)
            node_red.wait_subscribed(broker)
            consumers: dict[str, tuple[Consumer, str]] = {
                "gateway": (gateway, TENANT),
                "Node-RED": (node_red, FLOW_TENANT),
            }
            return _loads(broker, influx, consumers, servers), floors(broker, server, servers)
        finally:
            node_red.stop()
            if gateway:
                gateway.stop()
            influx.close()
            server.stop()
            broker.stop()


def _cpu_per_point_us(flood: Flood) -> float:
    return flood.cpu["consumer"] / flood.points_per_s * 1e6


def _delay_verdict(what: str, mine_s: float, baseline_s: float) -> str:
    """A delay goal missed, and whether by less than the bench can tell apart: both sides' delays
    are read by polling InfluxDB every POLL_S, so each carries up to POLL_S of the poll."""
    slower = mine_s - baseline_s
    verdict = f"{what}: MISSED ({mine_s / baseline_s:.2f} of Node-RED's, {slower * 1000:.0f} ms"
    if slower < POLL_S:
        return f"{verdict}, less than the {POLL_S * 1000:.0f} ms between two polls: level)"
    return f"{verdict})"


def _verdict(what: str, ratio: float, floor: Floor, baseline_us: float) -> str:
    """Why a CPU goal is missed: the floor's share of Node-RED's CPU, when the goal sits at or
    below it, or the gateway's excess over the floor."""
    share = floor.total_us / baseline_us
    parts = floor.parts(baseline_us)
    if share >= GOAL_CPU_RATIO:
        return f"{what}: MISSED: floor is {share:.2f} of Node-RED's ({parts})"
    return f"{what}: MISSED: {ratio:.2f} of Node-RED's against a floor of {share:.2f} ({parts})"


def main() -> None:
    console = Console()
    try:
        red = install()
    except NodeRedUnavailableError as exc:
        console.print(f"[yellow]gateway against Node-RED: skipped: {exc}[/yellow]")
        return
    sides, floor = measure(red)
    ours, theirs = sides["gateway"], sides["Node-RED"]
    table = Table(
        title=(
            "gateway against Node-RED 4 (mqtt in -> json -> function -> influxdb batch), "
            "same Mosquitto and InfluxDB 1.x, loads taken in turns"
        ),
        caption=(
            f"{PACED_ASSETS * SIGNALS} signals at 1 Hz, each 1 Hz load {PACED_ROUNDS} times in "
            "turns, delays pooled; CPU: utime+stime of each process over "
            "the load / points stored; ratio: gateway / Node-RED (lower is better); floor: a "
            "do-nothing MQTT 5 subscriber acknowledging by hand on the same load, plus the "
            "contract's validation of its messages, plus one bare /write a message over a "
            "kept-alive connection, in the same run"
        ),
    )
    columns = ("what", "gateway", "Node-RED (baseline)", "ratio", "floor", "floor / Node-RED")
    for column in (*columns, "goal", "met"):
        table.add_column(column, justify="left" if column == "what" else "right")
    verdicts = []

    def row(
        what: str,
        mine: float,
        baseline: float,
        unit: str,
        goal: float | None,
        floor: Floor | None = None,
    ) -> None:
        ratio = mine / baseline
        met = "" if goal is None else ("met" if ratio <= goal else "MISSED")
        if met == "MISSED":
            verdicts.append(
                _delay_verdict(what, mine, baseline)
                if floor is None
                else _verdict(what, ratio, floor, baseline)
            )
        floor_text = "" if floor is None else f"{floor.total_us:,.3f} {unit}"
        floor_ratio = "" if floor is None else f"{floor.total_us / baseline:.2f}"
        table.add_row(
            *(what, f"{mine:,.3f} {unit}", f"{baseline:,.3f} {unit}", f"{ratio:.2f}"),
            *(floor_text, floor_ratio, "" if goal is None else f"<= {goal:g}", met),
        )

    for name, load, mine, base in (
        ("one reading a message", "paced", ours.paced, theirs.paced),
        (f"{SIGNALS} readings a message", "grouped", ours.grouped, theirs.grouped),
    ):
        for share, goal in ((0.5, None), (0.99, GOAL_P99_RATIO)):
            row(
                f"1 Hz, {name}: publish -> queryable, p{share * 100:g}",
                _percentile(mine.latencies, share),
                _percentile(base.latencies, share),
                "s",
                goal,
            )
        row(
            f"1 Hz, {name}: CPU a point",
            mine.cpu_per_point_us(),
            base.cpu_per_point_us(),
            "µs",
            GOAL_CPU_RATIO,
            floor[load],
        )
    row(
        f"{BATCH} readings a message at {BATCH_OFFERED:,.0f}/s: points/s (higher is better)",
        ours.batched.points_per_s,
        theirs.batched.points_per_s,
        "",
        None,
    )
    row(
        f"{BATCH} readings a message: CPU a point",
        _cpu_per_point_us(ours.batched),
        _cpu_per_point_us(theirs.batched),
        "µs",
        GOAL_CPU_RATIO,
        floor["batched"],
    )
    console.print(table)
    lost = {name: s.paced.lost + s.grouped.lost + s.batched.lost for name, s in sides.items()}
    console.print(f"points lost: {', '.join(f'{n} {count:,}' for n, count in lost.items())}")
    for verdict in verdicts:
        console.print(f"[red]{verdict}[/red]")


if __name__ == "__main__":
    main()
