"""`shopfloor demo` as a user runs it: it comes up, data flows, and Ctrl-C leaves no orphans;
each run is a session of its own, which `control` finds and `--resume` goes on with."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from analytics.service import AnalyticsService
from launcher.demo import choose_port
from launcher.session import RunningDemo, running_demo
from shopfloor.kpis import SHIFT_REPORT, ShiftReportDoc
from shopfloor.messages import decode_status, status_topic
from shopfloor.mqtt import read_retained
from shopfloor.plant import load_plant
from shopfloor.store import Point, Scope, Store, StoreSettings, data_clock, open_store
from tests.conftest import ROOT
from tests.servers import free_port, machine_on_free_ports, require_binary
from tests.test_end_to_end import plant_on_free_ports, wait_until


def session_members(session_id: int) -> list[int]:
    """Every live process of a session (the demo runs in its own)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def command_lines(session_id: int) -> list[str]:
    """The command lines of a session's processes, as `ps` shows them to every user."""
    found = []
    for pid in session_members(session_id):
        with contextlib.suppress(OSError):
            found.append((Path("/proc") / str(pid) / "cmdline").read_text().replace("\0", " "))
    return found


def assert_session_ends(session_id: int, timeout_s: float) -> None:
    """Wait for every process of the session to exit; name the ones that do not."""
    deadline = time.monotonic() + timeout_s
    while (members := session_members(session_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    commands = command_lines(session_id) if members else []
    assert not commands, f"still running after {timeout_s} s: {commands}"


@dataclass
class Demo:
    process: subprocess.Popen[str]
    data_dir: Path
    dashboard_port: int
    output: list[str]
    running: RunningDemo | None = None

    def wait_for_line(self, prefix: str, timeout_s: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            self.output.append(line)
            if line.startswith(prefix):
                return line
            if not line and self.process.poll() is not None:
                break
        raise AssertionError(f"no {prefix!r} line; demo printed {self.output}")

    def wait_until_up(self) -> RunningDemo:
        """Once the dashboard listens: where the demo runs, from its running.json."""
        self.wait_for_line("dashboard:", 120)
        self.running = running_demo(self.data_dir)
        assert self.running is not None and self.running.pid == self.process.pid
        return self.running

    @property
    def session_dir(self) -> Path:
        assert self.running is not None
        return self.running.session_dir

    def machines_with_data(self) -> set[str]:
        with session_store(self.session_dir) as store:
            return {p.asset.asset for p in store.latest(Scope("polimer"))}

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert self.process.wait(30) == 0
        assert_session_ends(self.process.pid, 10)
        assert self.process.stdout is not None
        self.output += self.process.stdout.readlines()


@contextlib.contextmanager
def session_store(session_dir: Path) -> Iterator[Store]:
    store = open_store(StoreSettings(url=f"sqlite:{session_dir / 'store.db'}"))
    try:
        yield store
    finally:
        store.close()


def demo_ports(directory: Path) -> list[str]:
    """The options that give the demos of one test their broker's and API's ports, chosen
    free once: the defaults, 1883 and 8080, would be raced for by demos of tests run side by
    side, the second to bind losing."""
    chosen = directory / "demo-ports"
    if not chosen.exists():
        chosen.write_text(f"{free_port()} {free_port()}")
    broker, api = chosen.read_text().split()
    return ["--broker-port", broker, "--api-port", api]


def start_demo(tmp_path: Path, broker: str, *options: str) -> Demo:
    port = free_port()
    data_dir = tmp_path / "data"
    plant = tmp_path / "plant.yaml"
    if "--scenario" not in options and not plant.exists():
        plant_on_free_ports(tmp_path)
    source = [] if "--scenario" in options else ["--plant", str(plant)]
    argv = [
        sys.executable, "-m", "launcher", "demo", *source,
        "--data-dir", str(data_dir), "--dashboard-port", str(port), "--broker-server", broker,
        *demo_ports(tmp_path), *options,
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    return Demo(process, data_dir, port, [])


@pytest.fixture(params=["mosquitto", "embedded"])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Demo]:
    if request.param == "mosquitto":
        require_binary("mosquitto")
    running = start_demo(tmp_path, request.param)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
        running.process.wait()


def test_demo_runs_the_shop_floor_and_ctrl_c_stops_every_process(demo: Demo) -> None:
    broker_line = demo.wait_for_line("broker:", 60)
    assert "store: sqlite:" in broker_line
    api_line = demo.wait_for_line("API:", 10)
    meters_line = demo.wait_for_line("energy meters:", 10)
    assert meters_line.rstrip().endswith("edge.yaml)")
    api_url, _, token_note = api_line.partition("/docs  ")
    running = demo.wait_until_up()
    assert running.dashboard_url == f"http://127.0.0.1:{demo.dashboard_port}"
    assert running.api_url == api_url.removeprefix("API: ")
    assert running.session_dir.parent == demo.data_dir / "sessions"
    token_file = running.session_dir / "api-token"
    assert token_note.strip() == f"(bearer token in {token_file})"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 16
    wait_until(
        lambda: {"imm-01", "cnc-01", "pack-01", "env-01"} <= demo.machines_with_data(),
        120,  # the kit's first reading waits for the shift's start, held for the edge (30 s)
        "data from every machine",
    )
    # supervisor and its children, the analytics once the first readings are stored
    wait_until(lambda: len(session_members(demo.process.pid)) >= 6, 60, "the analytics")
    members = session_members(demo.process.pid)
    # Mosquitto is out of reach of the terminal's Ctrl-C, in a process group of its own: the
    # supervisor stops it last, once the others have said goodbye through it.
    programs = {p: Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0] for p in members}
    mosquitto = [p for p, program in programs.items() if program.endswith(b"mosquitto")]
    assert len(mosquitto) == (1 if "Mosquitto" in broker_line else 0)
    assert all(os.getpgid(p) == p != os.getpgid(demo.process.pid) for p in mosquitto)
    # The energy meters come over Modbus, stamped with the simulator's clock as the rest is.
    edge_log = running.session_dir / "edge.log"
    wait_until(lambda: "connected, reading unit 3" in edge_log.read_text(), 30, "the meters")
    with session_store(running.session_dir) as store:
        newest = {(p.asset.asset, p.signal): p.ts for p in store.latest(Scope("polimer"))}
    lag = newest["imm-01", "melt_temperature"] - newest["imm-01", "energy"]
    assert abs(lag.total_seconds()) < 30, newest
    # The gateway got the token (from its environment): the API answers with it, not without.
    plant_url = api_url.removeprefix("API: ") + "/api/v1/plant"
    assert httpx.get(plant_url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(plant_url).status_code == 401
    commands = command_lines(demo.process.pid)
    assert any(" gateway " in command for command in commands), commands
    assert not [command for command in commands if token in command]
    demo.stop()
    assert running_demo(demo.data_dir) is None
    assert not (demo.data_dir / "running.json").exists()
    logs = sorted(running.session_dir.glob("*.log"))
    assert {log.name for log in logs} >= {"gateway.log", "edge.log", "simulate.log"}
    assert not [log.name for log in logs if token in log.read_text(errors="replace")]
    assert not [line for line in demo.output if token in line]


def test_killing_the_supervisor_takes_its_children_along(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, "embedded")
    try:
        demo.wait_until_up()

        def children() -> list[int]:
            return [p for p in session_members(demo.process.pid) if p != demo.process.pid]

        # The analytics come last, once the first readings are stored.
        wait_until(lambda: len(children()) >= 5, 60, "every child")
        demo.process.kill()
        demo.process.wait()
        assert_session_ends(demo.process.pid, 30)
        assert running_demo(demo.data_dir) is None  # its running.json names a dead process
    finally:
        if session_members(demo.process.pid):
            os.killpg(demo.process.pid, signal.SIGKILL)


def control(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    """`shopfloor control` as staff type it: no --broker, no --plant, only the demo's folder."""
    return subprocess.run(
        [sys.executable, "-m", "launcher", "control", *args, "--data-dir", str(demo.data_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


def simulator_started(demo: Demo) -> datetime:
    """When the simulator's shift began, as it announces it."""
    assert demo.running is not None
    payload = read_retained(demo.running.broker_url, status_topic("polimer", "brest"), 3.0)
    assert payload is not None
    return decode_status(payload).started


def newest(demo: Demo) -> datetime | None:
    with session_store(demo.session_dir) as store:
        return data_clock(load_plant(demo.running.plant if demo.running else Path()), store)


def test_sessions_control_reset_shift_and_resume(tmp_path: Path) -> None:
    """A reset shift is a new shift whose OEE has no problems; the next demo is a new session
    on the same broker port; `--resume` goes on from the session's clock; `--list` lists."""
    require_binary("mosquitto")
    first = start_demo(tmp_path, "mosquitto")
    try:
        running = first.wait_until_up()
        wait_until(lambda: "imm-01" in first.machines_with_data(), 60, "live data")
        shift_before = simulator_started(first)
        # The clock waited for the edge agent: the shift is recorded from its first instant.
        path = next(p for p, _ in load_plant(running.plant).machines())

        def states() -> list[Point]:
            """The press's states (OPC UA), which can come a moment after its meter's readings
            (Modbus), its first data, when the dashboard is up before any data."""
            with session_store(first.session_dir) as store:
                return store.history(
                    path, "state", shift_before - timedelta(1), shift_before + timedelta(1)
                )

        wait_until(lambda: bool(states()), 30, "the press's first state")
        assert states()[0].ts == shift_before
        assert control(first, "speed", "60").returncode == 0
        reset = control(first, "reset-shift")
        assert reset.returncode == 0, reset.stderr
        assert reset.stdout == "sent reset_shift to polimer/brest\n"
        wait_until(lambda: simulator_started(first) > shift_before, 10, "the new shift")
        new_shift = simulator_started(first)
        wait_until(
            lambda: (newest(first) or new_shift) > new_shift + timedelta(minutes=15),
            60,
            "15 simulated minutes of the new shift",
        )
        first.stop()
    finally:
        stop_if_running(first)
    assert running_demo(first.data_dir) is None
    plant = load_plant(running.plant)
    with session_store(running.session_dir) as store:
        AnalyticsService(plant, store).run_once()
        reports = {
            path.asset: ShiftReportDoc.model_validate_json(str(points[-1].value))
            for path, _ in plant.machines()
            if (points := store.history(path, SHIFT_REPORT, new_shift, new_shift + timedelta(1)))
        }
    assert reports["imm-01"].oee is not None and reports["imm-01"].oee.produced > 0
    assert {m: r.oee.problems for m, r in reports.items() if r.oee} == {m: [] for m in reports}
    first_clock = newest(first)
    assert first_clock is not None

    second = start_demo(tmp_path, "mosquitto")
    try:
        again = second.wait_until_up()
        assert again.session_dir != running.session_dir
        # Mosquitto's port, in TIME_WAIT after the stop, is the broker's again (unless another
        # program held it from the start, which the first demo said).
        if not [line for line in first.output if "the broker listens on" in line]:
            assert urlsplit(again.broker_url).port == urlsplit(running.broker_url).port
        wait_until(lambda: "imm-01" in second.machines_with_data(), 60, "live data")
        assert (newest(second) or first_clock) < first_clock  # its own clock: not the last one's
        second.stop()
    finally:
        stop_if_running(second)

    resumed = start_demo(tmp_path, "mosquitto", "--session", running.session_dir.name)
    try:
        assert resumed.wait_until_up().session_dir == running.session_dir
        assert simulator_started(resumed) >= first_clock  # on from where the session stopped
        wait_until(lambda: (newest(resumed) or first_clock) > first_clock, 60, "new readings")
        resumed.stop()
    finally:
        stop_if_running(resumed)
    listed = subprocess.run(
        [sys.executable, "-m", "launcher", "demo", "--list", "--data-dir", str(first.data_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    rows = [line for line in listed.stdout.splitlines() if line.startswith("│ 2")]
    assert [row.split()[1] for row in rows] == [running.session_dir.name, again.session_dir.name]
    assert all(" plant " in row for row in rows)


def stop_if_running(demo: Demo) -> None:
    if demo.process.poll() is None:
        os.killpg(demo.process.pid, signal.SIGKILL)
        demo.process.wait()


def test_a_port_in_time_wait_is_free_and_a_taken_one_is_named() -> None:
    """A demo restarted right after a stop finds its ports in TIME_WAIT: they are its own
    again, as the servers bind with SO_REUSEADDR; a port another program listens on is not."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR, as the servers do
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first: its end of the connection waits in TIME_WAIT
    client.close()
    listener.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # the port is in TIME_WAIT indeed
    said: list[str] = []
    assert choose_port(port, "the broker", said.append) == port
    assert said == []
    with socket.create_server(("127.0.0.1", port)):
        other = choose_port(port, "the broker", said.append)
    assert other != port
    assert said == [
        f"port {port} is in use by another process; the broker listens on {other} instead"
    ]


def examples_on_free_ports(directory: Path) -> Path:
    """The moulding and machining scenarios and their plants, machines on free OPC UA ports;
    returns the moulding scenario."""
    for plant in ("plant.yaml", "machining-plant.yaml"):
        data = yaml.safe_load((ROOT / "examples" / plant).read_text())
        for area in data["site"]["areas"]:
            for line in area["lines"]:
                for machine in line["machines"]:
                    machine_on_free_ports(machine)
        (directory / plant).write_text(yaml.safe_dump(data, sort_keys=False))
    for name in ("moulding", "machining"):
        scenario = yaml.safe_load((ROOT / "examples" / "scenarios" / f"{name}.yaml").read_text())
        scenario["plant"] = Path(scenario["plant"]).name
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    return directory / "moulding.yaml"


def test_a_scenario_of_another_plant_restarts_the_demo_in_a_new_session(tmp_path: Path) -> None:
    scenario = examples_on_free_ports(tmp_path)
    demo = start_demo(tmp_path, "embedded", "--scenario", str(scenario))
    try:
        moulding = demo.wait_until_up()
        switched = control(demo, "scenario", "machining")
        assert switched.returncode == 0, switched.stderr
        demo.wait_for_line("loading ", 30)
        machining = demo.wait_until_up()
        assert machining.session_dir != moulding.session_dir
        assert machining.plant == (tmp_path / "machining-plant.yaml").resolve()
        assert machining.dashboard_url == moulding.dashboard_url
        with session_store(machining.session_dir) as store:
            wait_until(
                lambda: {p.asset.asset for p in store.latest(Scope("metalform"))} >= {"cnc-01"},
                60,
                "the machining plant's data in the new session",
            )
        demo.stop()
    finally:
        stop_if_running(demo)
