"""Trainee sandboxes in a running demo: `replay --tenant` into the demo, its gateway and
analytics started by the supervisor, its OEE stored and its plant offered by the dashboard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dashboard.sandboxes import plant_choices, plant_label
from launcher.session import running_demo
from shopfloor.plant import load_plant
from shopfloor.sandboxes import write_tenant_plant
from shopfloor.store import Scope, StoreSettings, open_store
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import require_binary
from tests.test_demo import start_demo
from tests.test_end_to_end import wait_until
from tests.test_training_recipe import short_scenario


def test_a_sandbox_is_the_demo_plant_under_the_trainee_tenant(tmp_path: Path) -> None:
    write_tenant_plant(EXAMPLE_PLANT, "trainee-1", tmp_path)
    demo = load_plant(EXAMPLE_PLANT)
    choices = plant_choices(demo, tmp_path)
    assert list(choices) == [demo.tenant.id, "trainee-1"]
    sandbox = choices["trainee-1"]
    assert [plant_label(plant, demo) for plant in choices.values()] == [
        f"{demo.tenant.name} · {demo.site.name}",
        "trainee trainee-1",
    ]
    assert (sandbox.tenant.id, sandbox.shifts) == ("trainee-1", [])
    assert sandbox.catalogue().keys() == {
        path._replace(tenant="trainee-1") for path in demo.catalogue()
    }
    for bad, reason in [("Trainee 1", "is not an id"), ("../x", "is not an id"),
                        ("polimer", "is the demo's own")]:  # fmt: skip
        with pytest.raises(ValueError, match=reason):
            write_tenant_plant(EXAMPLE_PLANT, bad, tmp_path)


def test_a_replay_with_a_tenant_appears_in_the_running_demo(tmp_path: Path) -> None:
    require_binary("mosquitto")
    demo = start_demo(tmp_path, "mosquitto")
    try:
        demo.wait_for_line("dashboard:", 120)
        recording = tmp_path / "moulding-20m.jsonl"
        shopfloor = [sys.executable, "-m", "launcher"]
        scenario = short_scenario(tmp_path)
        simulated = subprocess.run(
            [*shopfloor, "simulate", "--scenario", str(scenario), "--fast", "--output",
             str(recording)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stderr
        replay = [*shopfloor, "replay", str(recording), "--speed", "60", "--data-dir",
                  str(demo.data_dir)]  # fmt: skip
        bad = subprocess.run([*replay, "--tenant", "Trainee 1"], capture_output=True, text=True)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert "is not an id" in bad.stderr
        done = subprocess.run([*replay, "--tenant", "trainee-1"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "trainee sandbox trainee-1" in done.stdout
        demo.wait_for_line("trainee sandbox trainee-1: gateway and analytics started", 10)
        running = running_demo(demo.data_dir)
        assert running is not None
        session = running.session_dir
        store = open_store(StoreSettings(url=f"sqlite:{session / 'store.db'}"))
        try:

            def oee() -> list[float]:
                points = store.latest(Scope("trainee-1"))
                return [float(p.value) for p in points if p.signal == "kpi.shift.oee"]

            # A machine's OEE is 0 until its first good part (the end of the line comes last).
            wait_until(
                lambda: len(oee()) >= 3 and all(0 < value <= 1 for value in oee()),
                90,
                "the trainee's OEE of every machine in the demo's store",
            )
        finally:
            store.close()
        plant = yaml.safe_load((session / "tenants" / "trainee-1.yaml").read_text())
        assert plant["tenant"]["id"] == "trainee-1"
        assert "dead-lettered" not in (session / "tenants/trainee-1-gateway.log").read_text()
        os.killpg(demo.process.pid, signal.SIGINT)
        assert demo.process.wait(30) == 0
    finally:
        if demo.process.poll() is None:
            os.killpg(demo.process.pid, signal.SIGKILL)
        demo.process.wait()
