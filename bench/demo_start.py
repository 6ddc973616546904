"""Start-up of the live demo: `shopfloor demo` to live values on the dashboard, and a restart.

`python -m bench.demo_start`. The demo runs as `make demo` runs it (the moulding scenario, the
installed broker), from the current virtualenv, with its machines moved to free OPC UA ports
so that another demo on the machine does not disturb the figures. A start is timed from the
command's launch to a machine card of the shop-floor page showing a live value in headless
Chromium, the page opened as soon as the dashboard listens (as a user opens the address the
demo prints); the first machine reading in the session's store is timed too. A restart is
Ctrl-C, then the same command again on the same ports, timed from the Ctrl-C. Where the time
goes comes from the timestamps of each process's log.

The baseline is the bare start of the command line (`python -m launcher --help`) in the same
run: the floor of every child process's start on this machine at this moment.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from playwright.sync_api import Page, sync_playwright
from rich.console import Console
from rich.table import Table

from launcher.session import running_demo
from shopfloor.plant import load_plant
from shopfloor.store import Scope, StoreSettings, open_store
from tests.servers import free_port, machine_on_free_ports

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples" / "scenarios" / "moulding.yaml"
GOAL_START_S, GOAL_RESTART_S = 10.0, 5.0
CORES = os.cpu_count() or 1
TIMEOUT_S = 120.0
LIVE_VALUE = re.compile(r"updated \d+ sec ago")  # a machine card's freshness line
BROKER_LISTENS, STORE_VALUE, DASHBOARD_LISTENS, DASHBOARD_VALUE = (
    "broker listens (running.json written)",
    "first machine value in the store",
    "dashboard listens",
    "live value on the dashboard",
)
# Where the time goes: each child's log, and the line that marks its hop (the last such line).
LOG_MARKS = {
    "simulate": ("every OPC UA server listens", "OPC UA server for .* listening"),
    "gateway": ("gateway subscribed, its API up", "HTTP API on"),
    "edge": ("edge subscribed to every machine", "subscribed to .* nodes"),
}
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _scenario_on_free_ports(directory: Path) -> Path:
    scenario = yaml.safe_load(SCENARIO.read_text())
    plant = yaml.safe_load((SCENARIO.parent / scenario["plant"]).read_text())
    for area in plant["site"]["areas"]:
        for line in area["lines"]:
            for machine in line["machines"]:
                machine_on_free_ports(machine)
    (directory / "plant.yaml").write_text(yaml.safe_dump(plant, sort_keys=False))
    scenario["plant"] = "plant.yaml"
    path = directory / "moulding.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def _machine_values(data_dir: Path) -> bool:
    """Whether the running demo's session store holds a reading of one of its machines."""
    demo = running_demo(data_dir)
    if demo is None or not (demo.session_dir / "store.db").exists():
        return False
    plant = load_plant(demo.plant)
    machines = {machine.id for _, machine in plant.machines()}
    store = open_store(StoreSettings(url=f"sqlite:{demo.session_dir / 'store.db'}"))
    try:
        return any(p.asset.asset in machines for p in store.latest(Scope(plant.tenant.id)))
    finally:
        store.close()


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_name(pid: int) -> str:
    """`simulate` for `python -m launcher simulate ...`, `dashboard` for the Streamlit server
    it becomes; the program's name otherwise."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    if argv[1:2] != ["-m"]:
        return Path(argv[0]).name
    return argv[3] if argv[2] == "launcher" else {"streamlit": "dashboard"}.get(argv[2], argv[2])


def cpu_by_process(supervisor: int) -> dict[str, float]:
    """CPU seconds so far of the supervisor and of each of its children, by name."""
    used = {"supervisor": _cpu_s(supervisor)}
    for child, name in _children(supervisor).items():
        with contextlib.suppress(OSError):
            used[name] = _cpu_s(child)
    return used


@dataclass
class Run:
    """One start of the demo: when each hop first worked, in seconds from the launch, and the
    CPU seconds each process had used by the live value."""

    process: subprocess.Popen[bytes]
    launched: float  # wall clock, to read the logs' timestamps against
    marks: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def log_marks(self, data_dir: Path) -> None:
        """Add each process's hop from its log in the run's session."""
        demo = running_demo(data_dir)
        if demo is None:
            return
        for name, (hop, pattern) in LOG_MARKS.items():
            log = demo.session_dir / f"{name}.log"
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            times = [
                datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                for line in lines
                if re.search(pattern, line) and (match := LOG_TIME.match(line))
            ]
            if times:
                self.marks[hop] = times[-1] - self.launched


def start(scenario: Path, data_dir: Path, port: int, page: Page) -> Run:
    """Launch the demo and open its dashboard once it listens; return once a machine card
    shows a live value."""
    argv = [
        sys.executable, "-m", "launcher", "demo", "--scenario", str(scenario),
        "--data-dir", str(data_dir), "--dashboard-port", str(port),
    ]  # fmt: skip
    began = time.monotonic()
    process = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    run = Run(process, time.time())
    while DASHBOARD_VALUE not in run.marks:
        elapsed = time.monotonic() - began
        if process.poll() is not None or elapsed > TIMEOUT_S:
            stop(process)
            raise RuntimeError(f"the demo showed no live values; see the logs in {data_dir}")
        if BROKER_LISTENS not in run.marks and running_demo(data_dir) is not None:
            run.marks[BROKER_LISTENS] = elapsed
        if STORE_VALUE not in run.marks and _machine_values(data_dir):
            run.marks[STORE_VALUE] = elapsed
        if DASHBOARD_LISTENS not in run.marks and _listens(port):
            run.marks[DASHBOARD_LISTENS] = elapsed
            page.goto(f"http://127.0.0.1:{port}", timeout=TIMEOUT_S * 1000)
        if DASHBOARD_LISTENS in run.marks and page.get_by_text(LIVE_VALUE).count():
            run.marks[DASHBOARD_VALUE] = time.monotonic() - began
            run.cpu = cpu_by_process(process.pid)
        time.sleep(0.05)
    run.marks.setdefault(STORE_VALUE, run.marks[DASHBOARD_VALUE])  # seen on the page first
    run.log_marks(data_dir)
    return run


def _children(supervisor: int) -> dict[int, str]:
    """The supervisor's children: their names by process id."""
    found = {}
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        for child in map(int, (task / "children").read_text().split()):
            with contextlib.suppress(OSError, IndexError):
                found[child] = _process_name(child)
    return found


def _gone(pid: int) -> bool:
    """Whether a process has exited (a zombie waiting for its parent's wait counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def stop(process: subprocess.Popen[bytes]) -> dict[str, float]:
    """Ctrl-C the demo; the seconds until each of its processes, and the supervisor, exited."""
    children = _children(process.pid) if process.poll() is None else {}
    began = time.monotonic()
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    exited: dict[str, float] = {}
    while process.poll() is None and time.monotonic() - began < TIMEOUT_S:
        for pid, name in children.items():
            if name not in exited and _gone(pid):
                exited[name] = time.monotonic() - began
        time.sleep(0.02)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    exited["supervisor"] = time.monotonic() - began
    return exited


def bare_start_s() -> float:
    """Seconds for `python -m launcher --help`: the baseline, best of three."""
    times = []
    for _ in range(3):
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "launcher", "--help"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        times.append(time.monotonic() - began)
    return min(times)


@contextlib.contextmanager
def browser_page() -> Iterator[Page]:
    """A headless Chromium page; RuntimeError naming the package when Chromium is missing."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


@dataclass(frozen=True)
class Figures:
    bare_s: float
    first: Run
    stopped: dict[str, float]  # seconds from the Ctrl-C to each process's exit
    again: Run

    @property
    def stop_s(self) -> float:
        return self.stopped["supervisor"]

    @property
    def start_s(self) -> float:
        return self.first.marks[DASHBOARD_VALUE]

    @property
    def restart_s(self) -> float:
        return self.stop_s + self.again.marks[DASHBOARD_VALUE]

    @property
    def restart_floor_s(self) -> float:
        """What the restart would take with both cores busy from its start to the live value:
        the work the processes do to get there, not their order, bounds it."""
        return self.stop_s + sum(self.again.cpu.values()) / CORES


def measure() -> Figures:
    """The baseline, a start, its stop and a restart on the same ports."""
    bare = bare_start_s()
    with tempfile.TemporaryDirectory() as folder, browser_page() as page:
        scenario = _scenario_on_free_ports(Path(folder))
        data_dir, port = Path(folder) / "data", free_port()
        first = start(scenario, data_dir, port, page)
        page.goto("about:blank")  # before the stop: a dashboard going away is not a page error
        stopped = stop(first.process)
        again = start(scenario, data_dir, port, page)
        page.goto("about:blank")
        stop(again.process)
    return Figures(bare, first, stopped, again)


def main() -> None:
    figures = measure()
    table = Table(
        title="demo start-up (make demo, moulding scenario), baseline: `shopfloor --help` "
        f"{figures.bare_s:.2f} s"
    )
    for column in ("what", "seconds", "baseline", "ratio", "goal", "met"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for what, seconds, goal in (
        ("start to a live value on the dashboard", figures.start_s, GOAL_START_S),
        ("restart: Ctrl-C to a live value again", figures.restart_s, GOAL_RESTART_S),
        ("  of which Ctrl-C to every process stopped", figures.stop_s, None),
        (
            f"  its floor on {CORES} cores: the stop + the CPU s by the live value / {CORES}",
            figures.restart_floor_s,
            None,
        ),
        ("start to the first machine value in the store", figures.first.marks[STORE_VALUE], None),
    ):
        met = "" if goal is None else ("met" if seconds < goal else "MISSED")
        table.add_row(
            what, f"{seconds:.1f}", f"{figures.bare_s:.2f}", f"{seconds / figures.bare_s:.1f}x",
            "" if goal is None else f"< {goal:g} s", met,
        )  # fmt: skip
    Console().print(table)
    hops = Table(title="where the start goes (seconds from the command's launch)")
    for column in ("hop", "start", "restart"):
        hops.add_column(column, justify="left" if column == "hop" else "right")
    order = sorted(figures.first.marks, key=figures.first.marks.__getitem__)
    for hop in order:
        again = figures.again.marks.get(hop)
        hops.add_row(
            hop, f"{figures.first.marks[hop]:.1f}", "" if again is None else f"{again:.1f}"
        )
    Console().print(hops)
    cpu = Table(
        title=f"CPU seconds of each process by the live value ({CORES} cores: the wall time's "
        f"floor is their sum / {CORES})"
    )
    for column in ("process", "start", "restart"):
        cpu.add_column(column, justify="left" if column == "process" else "right")
    for name, used in sorted(figures.first.cpu.items(), key=lambda item: -item[1]):
        again = figures.again.cpu.get(name)
        cpu.add_row(name, f"{used:.1f}", "" if again is None else f"{again:.1f}")
    total, total_again = sum(figures.first.cpu.values()), sum(figures.again.cpu.values())
    cpu.add_row("all", f"{total:.1f}", f"{total_again:.1f}")
    Console().print(cpu)
    exits = Table(title="where the stop goes (seconds from the Ctrl-C to each exit)")
    for column in ("process", "exited"):
        exits.add_column(column, justify="left" if column == "process" else "right")
    for name, seconds in sorted(figures.stopped.items(), key=lambda item: item[1]):
        exits.add_row(name, f"{seconds:.1f}")
    Console().print(exits)


if __name__ == "__main__":
    main()
