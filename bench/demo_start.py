"""Start-up of the live demo: `shopfloor demo` to its first live machine values, and a restart.

`python -m bench.demo_start`. The demo runs as `make demo` runs it (the moulding scenario, the
installed broker), from the current virtualenv, with its machines moved to free OPC UA ports
so that another demo on the machine does not disturb the figures. A start is timed from the
command's launch to the first machine reading in the new session's store (what the shop-floor
page shows first); a restart is Ctrl-C, then the same command again, timed the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from launcher.session import running_demo
from shopfloor.plant import load_plant
from shopfloor.store import Scope, StoreSettings, open_store
from tests.servers import free_port, machine_on_free_ports

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples" / "scenarios" / "moulding.yaml"
GOAL_START_S, GOAL_RESTART_S = 20.0, 10.0
TIMEOUT_S = 120.0


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


def start(scenario: Path, data_dir: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Launch the demo; return it and the seconds to its first machine values."""
    argv = [
        sys.executable, "-m", "launcher", "demo", "--scenario", str(scenario),
        "--data-dir", str(data_dir), "--dashboard-port", str(free_port()),
    ]  # fmt: skip
    began = time.monotonic()
    process = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    while not _machine_values(data_dir):
        if process.poll() is not None or time.monotonic() - began > TIMEOUT_S:
            stop(process)
            raise RuntimeError(f"the demo showed no machine values; see the logs in {data_dir}")
        time.sleep(0.1)
    return process, time.monotonic() - began


def stop(process: subprocess.Popen[bytes]) -> float:
    """Ctrl-C the demo; the seconds until it has exited."""
    began = time.monotonic()
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.monotonic() - began


def measure() -> tuple[float, float, float]:
    """Seconds to first values, to stop, and to fresh values after a restart."""
    with tempfile.TemporaryDirectory() as folder:
        scenario = _scenario_on_free_ports(Path(folder))
        data_dir = Path(folder) / "data"
        demo, first_s = start(scenario, data_dir)
        stop_s = stop(demo)
        demo, restart_s = start(scenario, data_dir)
        stop(demo)
    return first_s, stop_s, restart_s


def main() -> None:
    first_s, stop_s, restart_s = measure()
    table = Table(title="demo start-up (shopfloor demo, moulding scenario)")
    for column in ("what", "seconds", "goal"):
        table.add_column(column, justify="left" if column == "what" else "right")
    table.add_row("start to the first live machine values", f"{first_s:.1f}", f"< {GOAL_START_S:g}")
    table.add_row("Ctrl-C to every process stopped", f"{stop_s:.1f}", "")
    table.add_row("restart to fresh machine values", f"{restart_s:.1f}", f"< {GOAL_RESTART_S:g}")
    Console().print(table)


if __name__ == "__main__":
    main()
