"""Edge agent figures: its memory and CPU at 200 and 1,000 readings/s, and its ceiling.

The agent runs as it does on a device (`shopfloor edge run`, a subprocess) against a real
Mosquitto, reading one MQTT sensor kit of 50 signals. A feeder publishes plain numbers that count
up, so every reading arriving on the agent's `data` topic is traced back to one that was fed and
none lost goes unnoticed. Memory and CPU come from the kernel's own accounting of the agent's
process (/proc), so nothing in the agent is instrumented. The ceiling is a ratio to a bare
paho-mqtt publisher measured against the same broker in the same run, because the machines that
run `make bench` are shared and noisy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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
GOAL_MB, GOAL_CPU = 80.0, 0.25  # at 1,000 readings/s
LEAD = 20_000  # flat out: readings fed ahead of what arrived, so the agent never starves
WARM_UP_S, MEASURE_S = 3.0, 10.0


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
    fed: int
    lost: int


class Agent:
    """`shopfloor edge run` as a subprocess, on the bench plant, without /metrics."""

    def __init__(self, directory: Path, broker_url: str):
        self.log = directory / "edge.log"
        argv = [
            *(sys.executable, "-m", "launcher", "edge", "run"),
            *("--plant", str(_plant(directory)), "--broker", broker_url),
            *("--buffer", str(directory / "edge.db"), "--metrics-port", "0"),
        ]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=output, cwd=ROOT)

    @property
    def pid(self) -> int:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the edge agent exited ({self.process.returncode}):\n{tail}")
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _measure(agent: Agent, feeder: Feeder, sink: Sink, rate: float | None) -> Load:
    """Feed at `rate` (None: flat out), warm up, then measure; stop feeding and count losses."""
    first = feeder.pace(rate)
    time.sleep(WARM_UP_S)
    pid = agent.pid
    fed, received, cpu, started = feeder.sent, sink.received(), _cpu_seconds(pid), time.monotonic()
    rss = []
    while time.monotonic() - started < MEASURE_S:
        rss.append(_proc_status_mb(pid, "VmRSS"))
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    cpu = _cpu_seconds(pid) - cpu
    fed, received = feeder.sent - fed, sink.received() - received
    peak = _proc_status_mb(pid, "VmHWM")
    end = feeder.pace(0)
    return Load(
        fed_per_s=fed / elapsed,
        forwarded_per_s=received / elapsed,
        cpu=cpu / elapsed,
        rss_mb=sum(rss) / len(rss),
        peak_mb=peak,
        fed=end - first,
        lost=sink.missing(first, end, timeout_s=30),
    )


def agent_loads(broker: Mosquitto, directory: Path) -> dict[float | None, Load]:
    """The agent's figures at each paced load and flat out (key None)."""
    sink = Sink()
    listener = make_client(broker.url, f"bench-sink-{uuid.uuid4().hex[:6]}", [(KIT.topic(), 1)])
    listener.on_message = sink.on_message
    listener.loop_start()
    agent = Agent(directory, broker.url)
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
        return {rate: _measure(agent, feeder, sink, rate) for rate in (*LOADS, None)}
    finally:
        feeder.stop()
        agent.stop()
        listener.disconnect()
        listener.loop_stop()


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


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(Path(folder) / "broker")
        broker.start()
        try:
            loads = agent_loads(broker, Path(folder))
            bare = bare_paho_ceiling(broker)
        finally:
            broker.stop()
    table = Table(
        title="edge agent: one MQTT sensor kit of 50 signals, run as `shopfloor edge run`",
        caption="ratio: to the baseline, or to the goal (under 1 meets it)",
    )
    for column in ("what", "figure", "baseline / goal", "ratio", "readings"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for rate in LOADS:
        load, goal = loads[rate], rate == max(LOADS)
        table.add_row(
            f"edge: memory at {rate:,.0f} readings/s",
            f"{load.rss_mb:.1f} MB RSS, peak {load.peak_mb:.1f}",
            f"< {GOAL_MB:.0f} MB" if goal else "",
            f"{load.peak_mb / GOAL_MB:.2f}" if goal else "",
            f"{load.forwarded_per_s:,.0f}/s out",
        )
        table.add_row(
            f"edge: CPU at {rate:,.0f} readings/s",
            f"{load.cpu:.1%} of one core",
            f"< {GOAL_CPU:.0%} of one core" if goal else "",
            f"{load.cpu / GOAL_CPU:.2f}" if goal else "",
            f"{load.fed:,} fed, {load.lost:,} lost",
        )
    flat_out = loads[None]
    table.add_row(
        "edge: ceiling fed flat out, readings/s out (batched, up to 500 a message)",
        f"{flat_out.forwarded_per_s:,.0f} readings/s",
        f"{bare:,.0f} messages/s (bare paho, QoS 1, 1 reading a message)",
        f"{flat_out.forwarded_per_s / bare:.2f}",
        f"{flat_out.fed:,} fed, {flat_out.lost:,} lost",
    )
    table.add_row(
        "edge: CPU and memory at the ceiling",
        f"{flat_out.cpu:.0%} of one core, {flat_out.peak_mb:.1f} MB peak",
        "",
        "",
        "",
    )
    Console().print(table)
    lost = sum(load.lost for load in loads.values())
    if lost:
        Console().print(f"[red]{lost:,} readings fed to the edge agent never came out[/red]")


if __name__ == "__main__":
    main()
