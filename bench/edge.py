"""Edge agent figures: its memory and CPU at 200 and 1,000 readings/s, its ceiling, and what
each import costs it.

The agent runs as it does on a device (`shopfloor edge run`, a subprocess) against a real
Mosquitto, reading one MQTT sensor kit of 50 signals. A feeder publishes plain numbers that count
up, so every reading arriving on the agent's `data` topic is traced back to one that was fed and
none lost goes unnoticed. Memory and CPU come from the kernel's own accounting of the agent's
process (/proc), so nothing in the agent is instrumented. The baselines are measured against the
same broker in the same run, because the machines that run `make bench` are shared and noisy: a
bare paho-mqtt subscriber process receiving the same messages over the same intervals (the
floor of taking MQTT messages in Python), and a bare paho-mqtt publisher for the ceiling.

The memory floor is what the agent imports: each layer is imported in a fresh interpreter after
the ones before it, and the table says what it adds to the resident set and how long it takes.
An agent of sensor kits runs without asyncio (its jobs run in its own thread), so asyncio is a
layer of the sources that need it, OPC UA and Modbus, under asyncua and pymodbus.
Of the agent's resident set, the code of the interpreter and its libraries (RssFile) is mapped
from disk and shared with every process that maps it; the rest (RssAnon) is the agent's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from shopfloor.messages import AssetPath, Reading, decode_readings, encode_readings
from shopfloor.mqtt import make_client, wait_connected
from tests.servers import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
SIGNALS = 50
KIT = AssetPath("bench", "site", "area", "zone", "kit-01")
RAW_TOPIC = "bench/kit-01"
LOADS = (200.0, 1000.0)  # readings/s the issue sets goals for
GOAL_MB, GOAL_CPU = 40.0, 0.10  # peak resident set and share of one core at 1,000 readings/s
LEAD = 20_000  # flat out: readings fed ahead of what arrived, so the agent never starves
WARM_UP_S, MEASURE_S = 3.0, 10.0
# What the agent imports, in order (name in the table, modules); each row costs what it adds.
LIBRARY_LAYERS = (
    ("pydantic, with what its first model loads", "pydantic, pydantic.main, pydantic.types"),
    ("ssl (paho-mqtt imports it, even for mqtt://)", "ssl"),
    ("paho-mqtt", "paho.mqtt.client"),
    ("PyYAML, sqlite3", "yaml, sqlite3"),
    ("typer (the `shopfloor` command)", "typer"),
)
IMPORT_LAYERS = (
    *LIBRARY_LAYERS,
    ("the contract's messages (pydantic models)", "shopfloor.messages"),
    ("the plant file's model", "shopfloor.plant"),
    ("`shopfloor edge`'s command module", "launcher.cli.edge"),
    ("the agent (MQTT sensors, disk queue, /metrics)", "edge.agent"),
)
# Imported only when a source of their kind is configured: the event loop both need, then each.
EVENT_LOOP = ("asyncio (only with an OPC UA or Modbus source)", "asyncio")
SOURCE_IMPORTS = (
    ("asyncua, after asyncio (only with an OPC UA machine)", "asyncua, edge.opcua_source"),
    ("pymodbus, after asyncio (only with a Modbus device)", "pymodbus, edge.modbus_source"),
)
_IMPORT_PROBE = """
import importlib, json, sys, time
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
print(json.dumps(["python", rss_kb(), 0.0]))
for layer in sys.argv[1:]:
    started = time.perf_counter()
    for module in layer.split(", "):
        importlib.import_module(module)
    print(json.dumps([layer, rss_kb(), time.perf_counter() - started]))
"""
# A paho-mqtt subscriber that takes the sensor kit's messages and does nothing else.
_BARE_RECEIVER = """
import sys
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
client.on_connect = lambda client, *_: client.subscribe(sys.argv[2], 0)
client.connect("127.0.0.1", int(sys.argv[1]))
client.loop_forever()
"""


def _plant(directory: Path) -> Path:
    """One sensor kit of SIGNALS signals on `bench/kit-01/<signal>` and no OPC UA machine, so
    the agent's only work is the MQTT sensors."""
    plant = {
        "tenant": {"id": KIT.tenant, "name": "Bench"},
        "site": {
            "id": KIT.site,
            "name": "Bench site",
            "areas": [
                {
                    "id": KIT.area,
                    "zones": [
                        {
                            "id": KIT.cell,
                            "sensors": [
                                {
                                    "id": KIT.asset,
                                    "mqtt_topic": RAW_TOPIC,
                                    "signals": [{"id": f"s{i:02d}"} for i in range(SIGNALS)],
                                }
                            ],
                        }
                    ],
                }
            ],
        },
        "products": [{"id": "part"}],
    }
    path = directory / "plant.yaml"
    path.write_text(yaml.safe_dump(plant))
    return path


@dataclass
class Sink:
    """Subscribes to the agent's `data` topic; keeps every value (a sequence number) received."""

    values: set[int] = field(default_factory=set)
    highest: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        values = [int(reading.value) for reading in decode_readings(msg.payload)]
        with self.lock:
            self.values.update(values)
            self.highest = max([self.highest, *values])

    def received(self) -> int:
        with self.lock:
            return len(self.values)

    def missing(self, first: int, end: int, timeout_s: float) -> int:
        """How many of the values first..end-1 have not arrived once the last one has (the
        agent keeps their order) or the timeout is up."""
        deadline = time.monotonic() + timeout_s
        while self.highest < end - 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # a redelivery after a reconnect may still be on its way
        with self.lock:
            return sum(1 for value in range(first, end) if value not in self.values)


class Feeder(threading.Thread):
    """Publishes plain numbers (QoS 0) on the raw sensor topics, round-robin over the signals,
    at a paced rate or, with no rate, as fast as the agent forwards them (at most LEAD ahead)."""

    def __init__(self, url: str, sink: Sink):
        super().__init__(daemon=True)
        self.client = make_client(url, f"bench-feeder-{uuid.uuid4().hex[:6]}")
        self.topics = [f"{RAW_TOPIC}/s{i:02d}" for i in range(SIGNALS)]
        self.sink = sink
        self.sent = 0  # the next value to publish
        self._pace: tuple[float, int, float | None] = (0.0, 0, 0.0)  # since, first, rate
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def pace(self, rate: float | None) -> int:
        """Feed `rate` readings/s from now (None: flat out, 0: stop); returns the next value."""
        with self._lock:
            self._pace = (time.monotonic(), self.sent, rate)
            return self.sent

    def run(self) -> None:
        self.client.loop_start()
        try:
            while not self._stopping.is_set():
                with self._lock:
                    since, first, rate = self._pace
                    if rate is None:
                        due = min(self.sink.highest + 1 + LEAD, self.sent + 100)
                    else:
                        due = first + int(rate * (time.monotonic() - since))
                    while self.sent < due:
                        self.client.publish(
                            self.topics[self.sent % SIGNALS], str(self.sent).encode(), qos=0
                        )
                        self.sent += 1
                starved = rate is None and self.sent < self.sink.highest + 1 + LEAD
                time.sleep(0 if starved else 0.002)  # 0: let pace() have the lock
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


def _proc_status_mb(pid: int, key: str) -> float:
    """A memory figure of /proc/<pid>/status (VmRSS now, VmHWM its peak), in MB (2**20 B)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (utime+stime of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Load:
    """What the agent did over one measured interval."""

    fed_per_s: float
    forwarded_per_s: float
    cpu: float  # share of one core
    rss_mb: float  # mean over the interval
    peak_mb: float  # VmHWM: the peak since the agent started
    file_mb: float  # RssFile: code mapped from disk (libpython, pydantic-core, OpenSSL, ...)
    fed: int
    lost: int
    bare_cpu: float  # the bare paho subscriber's share of one core over the same interval
    bare_peak_mb: float


class Child:
    """A process of the bench, its output in a log file of `directory`."""

    def __init__(self, name: str, argv: list[str], directory: Path):
        self.name, self.log = name, directory / f"{name.replace(' ', '-')}.log"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=output, cwd=ROOT)

    @property
    def pid(self) -> int:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the {self.name} exited ({self.process.returncode}):\n{tail}")
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def edge_agent(directory: Path, broker_url: str) -> Child:
    """`shopfloor edge run` on the bench plant, without /metrics."""
    argv = [
        *(sys.executable, "-m", "launcher", "edge", "run"),
        *("--plant", str(_plant(directory)), "--broker", broker_url),
        *("--buffer", str(directory / "edge.db"), "--metrics-port", "0"),
    ]
    return Child("edge agent", argv, directory)


def bare_receiver(directory: Path, broker: Mosquitto) -> Child:
    """A bare paho-mqtt subscriber to the kit's raw topics: the baseline of the agent's CPU."""
    argv = [sys.executable, "-c", _BARE_RECEIVER, str(broker.port), f"{RAW_TOPIC}/#"]
    return Child("bare paho subscriber", argv, directory)


def _measure(agent: Child, bare: Child, feeder: Feeder, sink: Sink, rate: float | None) -> Load:
    """Feed at `rate` (None: flat out), warm up, then measure; stop feeding and count losses."""
    first = feeder.pace(rate)
    time.sleep(WARM_UP_S)
    pid = agent.pid
    fed, received, started = feeder.sent, sink.received(), time.monotonic()
    cpu, bare_cpu = _cpu_seconds(pid), _cpu_seconds(bare.pid)
    rss = []
    while time.monotonic() - started < MEASURE_S:
        rss.append(_proc_status_mb(pid, "VmRSS"))
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    cpu, bare_cpu = _cpu_seconds(pid) - cpu, _cpu_seconds(bare.pid) - bare_cpu
    fed, received = feeder.sent - fed, sink.received() - received
    peak = _proc_status_mb(pid, "VmHWM")
    end = feeder.pace(0)
    return Load(
        fed_per_s=fed / elapsed,
        forwarded_per_s=received / elapsed,
        cpu=cpu / elapsed,
        rss_mb=sum(rss) / len(rss),
        peak_mb=peak,
        file_mb=_proc_status_mb(pid, "RssFile"),
        fed=end - first,
        lost=sink.missing(first, end, timeout_s=30),
        bare_cpu=bare_cpu / elapsed,
        bare_peak_mb=_proc_status_mb(bare.pid, "VmHWM"),
    )


def agent_loads(broker: Mosquitto, directory: Path) -> dict[float | None, Load]:
    """The agent's figures at each paced load and flat out (key None)."""
    sink = Sink()
    listener = make_client(broker.url, f"bench-sink-{uuid.uuid4().hex[:6]}", [(KIT.topic(), 1)])
    listener.on_message = sink.on_message
    listener.loop_start()
    agent, bare = edge_agent(directory, broker.url), bare_receiver(directory, broker)
    feeder = Feeder(broker.url, sink)
    try:
        wait_connected(listener, broker.url, 10)
        feeder.start()
        feeder.pace(50)  # until the agent is up and subscribed; these are not counted
        deadline = time.monotonic() + 60
        while sink.highest < 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no reading came through the edge agent; see {agent.log}")
            _ = agent.pid  # raises if the agent died
            time.sleep(0.1)
        sink.missing(0, feeder.pace(0), timeout_s=2)
        return {rate: _measure(agent, bare, feeder, sink, rate) for rate in (*LOADS, None)}
    finally:
        feeder.stop()
        agent.stop()
        bare.stop()
        listener.disconnect()
        listener.loop_stop()


@dataclass(frozen=True)
class ImportCost:
    what: str
    added_mb: float  # to the resident set
    total_mb: float
    seconds: float


def import_costs(layers: Sequence[tuple[str, str]]) -> list[ImportCost]:
    """What each layer adds, imported in a fresh interpreter after the ones before it; the
    first row is the interpreter alone."""
    modules = [module for _, module in layers]
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *modules],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    measured = [json.loads(line) for line in probe.stdout.splitlines()]
    names = ["the Python interpreter", *(name for name, _ in layers)]
    return [
        ImportCost(name, (kb - previous_kb) / 1024, kb / 1024, seconds)
        for name, (_, kb, seconds), (_, previous_kb, _) in zip(
            names, measured, [measured[0], *measured[:-1]], strict=True
        )
    ]


def bare_paho_ceiling(broker: Mosquitto, seconds: float = 5.0, window: int = 1000) -> float:
    """Messages/s a bare paho-mqtt client has acknowledged at QoS 1, one reading a message
    (encoded once), publishing as fast as it can with at most `window` unacknowledged, as the
    agent's forwarder does: the client library's and the broker's own limit."""
    reading = Reading(signal="s00", value=1.0, ts=datetime.now(UTC))
    payload = encode_readings([reading])
    acknowledged = 0

    def on_publish(
        client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        nonlocal acknowledged
        acknowledged += 1

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-bare-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv311,
    )
    client.on_publish = on_publish
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        wait_connected(client, broker.url, 10)
        topic, sent = KIT._replace(asset="bare").topic(), 0
        started = time.monotonic()
        mark: tuple[float, int] | None = None
        while time.monotonic() - started < seconds + 1:
            if mark is None and time.monotonic() - started >= 1:  # one second of warm-up
                mark = (time.monotonic(), acknowledged)
            if sent - acknowledged < window:
                client.publish(topic, payload, qos=1)
                sent += 1
            else:
                time.sleep(0.0005)
        assert mark is not None
        return (acknowledged - mark[1]) / (time.monotonic() - mark[0])
    finally:
        client.disconnect()
        client.loop_stop()


def _met(ok: bool) -> str:
    return "met" if ok else "[red]MISSED[/red]"


def load_table(
    loads: dict[float | None, Load],
    bare: float,
    imports_mb: float,
    opcua: ImportCost,
    asyncua_alone: ImportCost,
) -> Table:
    """The agent at each load against its goals, its baselines measured in the same run."""
    table = Table(
        title="edge agent: one MQTT sensor kit of 50 signals, run as `shopfloor edge run` "
        "(no asyncio: its jobs run in its own thread)",
        caption="baselines in the same run: the agent's imports alone (memory), a bare paho "
        "subscriber taking the same messages (CPU), a bare paho publisher (ceiling)",
    )
    for column in ("what", "figure", "baseline", "ratio", "goal", "met", "readings"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for rate in LOADS:
        load, goal = loads[rate], rate == max(LOADS)
        table.add_row(
            f"edge: memory at {rate:,.0f} readings/s",
            f"{load.rss_mb:.1f} MB RSS ({load.file_mb:.1f} shared code), peak {load.peak_mb:.1f}",
            f"{imports_mb:.1f} MB (its imports)",
            f"{load.peak_mb / imports_mb:.2f}",
            f"< {GOAL_MB:.0f} MB peak" if goal else "",
            _met(load.peak_mb < GOAL_MB) if goal else "",
            f"{load.forwarded_per_s:,.0f}/s out",
        )
        table.add_row(
            f"edge: CPU at {rate:,.0f} readings/s",
            f"{load.cpu:.1%} of one core",
            f"{load.bare_cpu:.1%} (bare paho subscriber)",
            f"{load.cpu / max(load.bare_cpu, 1e-6):.2f}",
            f"< {GOAL_CPU:.0%} of one core" if goal else "",
            _met(load.cpu < GOAL_CPU) if goal else "",
            f"{load.fed:,} fed, {load.lost:,} lost",
        )
    table.add_row(
        "edge with an OPC UA machine: memory floor (its imports with asyncio and asyncua)",
        f"{opcua.total_mb:.1f} MB",
        f"{imports_mb:.1f} MB (without them)",
        f"{opcua.total_mb / imports_mb:.2f}",
        f"< {GOAL_MB:.0f} MB peak",
        _met(opcua.total_mb < GOAL_MB),
        f"Python with asyncua alone: {asyncua_alone.total_mb:.1f} MB",
    )
    flat_out = loads[None]
    table.add_row(
        "edge: ceiling fed flat out, readings/s out (batched, up to 500 a message)",
        f"{flat_out.forwarded_per_s:,.0f} readings/s",
        f"{bare:,.0f} messages/s (bare paho publisher, QoS 1, 1 reading a message)",
        f"{flat_out.forwarded_per_s / bare:.2f}",
        "",
        "",
        f"{flat_out.fed:,} fed, {flat_out.lost:,} lost",
    )
    table.add_row(
        "edge: CPU and memory at the ceiling",
        f"{flat_out.cpu:.0%} of one core, {flat_out.peak_mb:.1f} MB peak",
        f"{flat_out.bare_cpu:.0%}, {flat_out.bare_peak_mb:.1f} MB (bare paho subscriber)",
        f"{flat_out.cpu / max(flat_out.bare_cpu, 1e-6):.2f}",
        "",
        "",
        "",
    )
    return table


def import_table(agent: list[ImportCost], sources: list[ImportCost], alone: ImportCost) -> Table:
    """What each import adds to the agent's memory and start-up, in the order it imports them;
    `sources` starts with the event loop the others need."""
    table = Table(
        title="edge agent: what each import costs (a fresh interpreter, layer on layer)",
        caption=f"the agent's imports are its memory floor: {agent[-1].total_mb:.1f} MB "
        f"against the {GOAL_MB:.0f} MB goal before it reads anything, of which Python and the "
        f"libraries it is built on take {agent[len(LIBRARY_LAYERS)].total_mb:.1f} MB; asyncio "
        f"({sources[0].added_mb:+.1f} MB: inspect, ssl and sockets are loaded already) comes "
        "only with an OPC UA or Modbus source, and Python with asyncua alone is "
        f"{alone.total_mb:.1f} MB. {GOAL_MB:.0f} MB would need an agent without pydantic, and "
        "an OPC UA client lighter than asyncua",
    )
    for column in ("import", "adds MB RSS", "total MB", "import ms"):
        table.add_column(column, justify="left" if column == "import" else "right")
    for cost in agent:
        table.add_row(
            cost.what, f"{cost.added_mb:+.1f}", f"{cost.total_mb:.1f}", f"{cost.seconds * 1e3:.0f}"
        )
    for cost in sources:
        table.add_row(
            f"+ {cost.what}",
            f"{cost.added_mb:+.1f}",
            f"{cost.total_mb:.1f}",
            f"{cost.seconds * 1e3:.0f}",
        )
    return table


def main() -> None:
    agent_imports = import_costs(IMPORT_LAYERS)
    with_loop = (*IMPORT_LAYERS, EVENT_LOOP)
    source_imports = [
        import_costs(with_loop)[-1],
        *(import_costs((*with_loop, source))[-1] for source in SOURCE_IMPORTS),
    ]
    asyncua_alone = import_costs((("asyncua", "asyncua"),))[-1]
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(Path(folder) / "broker")
        broker.start()
        try:
            loads = agent_loads(broker, Path(folder))
            bare = bare_paho_ceiling(broker)
        finally:
            broker.stop()
    console = Console()
    console.print(
        load_table(loads, bare, agent_imports[-1].total_mb, source_imports[1], asyncua_alone)
    )
    console.print(import_table(agent_imports, source_imports, asyncua_alone))
    lost = sum(load.lost for load in loads.values())
    if lost:
        console.print(f"[red]{lost:,} readings fed to the edge agent never came out[/red]")


if __name__ == "__main__":
    main()
