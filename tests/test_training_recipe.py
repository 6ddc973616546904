"""The trainer's sandbox recipe in docs/training/README.md, run as written for one trainee at
x60 against Mosquitto and a sqlite store: the replay is stored, not dead-lettered, and the
analytics report the trainee's OEE. Only the scenario is shortened, to 20 minutes of shift."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from shopfloor.store import Scope, StoreSettings, open_store
from tests.conftest import ROOT
from tests.servers import Mosquitto
from tests.test_end_to_end import stop_all, wait_until

RECIPE = ROOT / "docs" / "training" / "README.md"
SCENARIO = "examples/scenarios/moulding.yaml"


def sandbox_commands() -> list[str]:
    """The commands of the recipe's block without the demo, comments cut, as written."""
    section = RECIPE.read_text().split("**Without the demo.**", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def short_scenario(directory: Path) -> Path:
    data = yaml.safe_load((ROOT / SCENARIO).read_text())
    data.update(duration="20m", plant=str(ROOT / "examples" / "plant.yaml"))
    path = directory / "moulding-20m.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_sandbox_recipe_stores_a_replay_at_x60_with_its_oee(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    scenario = short_scenario(tmp_path)
    env = {**os.environ, "SHOPFLOOR_BROKER_URL": mosquitto.url, "PYTHONPATH": str(ROOT)}
    shopfloor = f"{shlex.quote(sys.executable)} -m launcher"
    background: list[subprocess.Popen[bytes]] = []
    commands = sandbox_commands()
    assert any("replay moulding-shift.jsonl --speed 60 --tenant trainee-1" in c for c in commands)
    try:
        for command in commands:
            if command.startswith("mosquitto ") or " dashboard " in command:
                continue  # the test's own broker; the dashboard is tested elsewhere
            line = command.replace(SCENARIO, str(scenario)).replace("shopfloor ", f"{shopfloor} ")
            if line.endswith("&"):
                log = (tmp_path / f"{len(background)}.log").open("wb")
                background.append(subprocess.Popen(
                    ["bash", "-c", line.removesuffix("&")], cwd=tmp_path, env=env,
                    stdout=log, stderr=subprocess.STDOUT,
                ))  # fmt: skip
                continue
            done = subprocess.run(
                ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                timeout=180,
            )  # fmt: skip
            assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        store = open_store(StoreSettings(url=f"sqlite:{tmp_path / '.shopfloor/trainee-1.db'}"))
        try:

            def oee() -> list[float]:
                points = store.latest(Scope("trainee-1"))
                return [float(p.value) for p in points if p.signal == "kpi.shift.oee"]

            wait_until(lambda: len(oee()) >= 3, 60, "the trainee's OEE from the analytics")
            assert all(0 < value <= 1 for value in oee())
            stored = {p.asset.asset for p in store.latest(Scope("trainee-1"))}
            assert {"imm-01", "cnc-01", "pack-01", "env-01"} <= stored
        finally:
            store.close()
        gateway_log = (tmp_path / "0.log").read_text()
        assert "dead-lettered" not in gateway_log, gateway_log[-2000:]
    finally:
        stop_all(background)
