"""The `shopfloor` command as a user runs it: a real process, its output and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLANT, ROOT

SUBCOMMANDS = [
    "demo", "simulate", "edge", "gateway", "analytics", "dashboard", "plant", "record", "replay",
    "control", "kpi",
]  # fmt: skip


def shopfloor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_top_level_help_lists_every_component() -> None:
    result = shopfloor("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["demo"], "--dashboard-port"),
        (["simulate"], "SHOPFLOOR_BROKER_URL"),
        (["edge", "run"], "SHOPFLOOR_OPCUA_HOST"),
        (["edge", "browse"], "starter edge config"),
        (["edge", "check"], "Edge config file"),
        (["edge", "status"], "health"),
        (["edge", "certificate"], "OPC UA certificate"),
        (["gateway"], "SHOPFLOOR_STORE_URL"),
        (["analytics"], "--window"),
        (["dashboard"], "SHOPFLOOR_DASHBOARD_PORT"),
        (["plant", "check"], "Plant file to validate"),
        (["record"], "--duration"),
        (["replay"], "--tenant"),
        (["control", "inject"], "bearing_wear"),
        (["control", "breakdown"], "--reason"),
        (["control", "speed"], "Simulated seconds per second"),
        (["control", "reset-shift"], "shift"),
        (["control", "scenario"], "same plant"),
    ],
)
def test_every_subcommand_has_help(args: list[str], expected: str) -> None:
    result = shopfloor(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_plant_check_accepts_the_example() -> None:
    result = shopfloor("plant", "check", str(EXAMPLE_PLANT))
    assert result.returncode == 0, result.stderr
    assert "ok: Polimer Moulding (demo SME) / Brest demonstration centre" in result.stdout
    assert "areas 1, machines 3, sensor kits 1, signals 30" in result.stdout


def test_plant_check_reports_a_malformed_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "plant.yaml"
    bad.write_text(EXAMPLE_PLANT.read_text().replace("type: packaging", "type: boxing"))
    result = shopfloor("plant", "check", str(bad))
    assert result.returncode != 0
    assert result.stdout == ""
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "type: boxing" in t)
    assert result.stderr.startswith(
        f"error: {bad}:{line}: site.areas[0].lines[0].machines[2].type: Input should be"
    )
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_missing_plant_file_is_one_line(tmp_path: Path) -> None:
    result = shopfloor("plant", "check", str(tmp_path / "nowhere.yaml"))
    assert result.returncode != 0
    assert result.stderr == f"error: {tmp_path / 'nowhere.yaml'}: cannot read file: " + (
        "No such file or directory\n"
    )


def test_resume_is_a_flag_and_session_names_one(tmp_path: Path) -> None:
    """`demo --resume` takes no value (the latest session), so an option after it is read as
    an option; `--session` names a session."""
    latest = shopfloor("demo", "--resume", "--data-dir", str(tmp_path))
    assert latest.stderr == f"error: no demo session in {tmp_path / 'sessions'} to resume\n"
    named = shopfloor("demo", "--session", "nope", "--data-dir", str(tmp_path))
    assert named.stderr == (
        f"error: no demo session 'nope' in {tmp_path / 'sessions'} (known: none)\n"
    )


@pytest.mark.parametrize("command", ["simulate", "edge run", "gateway", "analytics", "dashboard"])
def test_components_refuse_a_bad_plant_file_without_a_traceback(
    tmp_path: Path, command: str
) -> None:
    bad = tmp_path / "plant.yaml"
    bad.write_text("tenant: {id: Bad Id, name: x}\n")
    result = shopfloor(*command.split(), "--plant", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {bad}:1: ")
    assert "Traceback" not in result.stderr


def test_gateway_refuses_an_unreachable_store_in_one_line() -> None:
    result = shopfloor(
        "gateway", "--plant", str(EXAMPLE_PLANT), "--store-url", "http://127.0.0.1:9"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: InfluxDB at http://127.0.0.1:9 unreachable")
    assert "Traceback" not in result.stderr


def test_replay_of_a_bad_recording_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"shopfloor_recording": 1, "tenant": "polimer", "started": "2026-11-02T06:00:00Z"}\nnot json\n'
    )
    result = shopfloor("replay", str(bad), "--broker", "mqtt://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {bad}:2: ")
    assert result.stderr.count("\n") == 1


def test_control_with_an_unreachable_broker_is_one_line() -> None:
    result = shopfloor("control", "speed", "60", "--broker", "mqtt://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr == "error: cannot reach the broker at mqtt://127.0.0.1:9\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["cnc-99", "--reason", "mechanical"], "error: no machine 'cnc-99' in polimer/brest\n"),
        (
            ["cnc-01", "--reason", "Bad Reason!"],
            "error: --reason 'Bad Reason!': a reason code is lower case, digits and _\n",
        ),
    ],
)
def test_control_breakdown_refuses_bad_input_in_one_line(args: list[str], error: str) -> None:
    result = shopfloor("control", "breakdown", *args, "--broker", "mqtt://127.0.0.1:9")
    assert (result.returncode, result.stderr) == (2, error)


def test_broker_password_never_shows_in_an_error() -> None:
    result = shopfloor("control", "speed", "60", "--broker", "mqtt://demo:s3cret@127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr == "error: cannot reach the broker at mqtt://demo:***@127.0.0.1:9\n"


def test_simulate_fast_prints_the_run_and_its_ground_truth(tmp_path: Path) -> None:
    output = tmp_path / "run.jsonl"
    scenario = ROOT / "examples" / "scenarios" / "machining.yaml"
    result = shopfloor("simulate", "--scenario", str(scenario), "--fast", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "fault tool_wear on cnc-02" in result.stdout
    assert "x" in result.stdout and "real time" in result.stdout
    assert output.read_text().startswith('{"shopfloor_recording":1,"tenant":"metalform"')


def test_simulate_with_a_bad_scenario_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "scenario.yaml"
    bad.write_text("name: x\nplant: nowhere.yaml\nproduct: p\n")
    result = shopfloor("simulate", "--scenario", str(bad), "--fast")
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: {(tmp_path / 'nowhere.yaml').resolve()}: cannot read file"
    )


def test_control_takes_the_running_demos_broker_and_plant(tmp_path: Path) -> None:
    """Given nothing, a command drives the demo running from the data folder; given a broker
    or a plant, those; with no demo running, the defaults, and an error that says so."""
    from launcher.cli.simulation import DemoTarget, demo_target
    from launcher.session import RunningDemo

    nothing = demo_target(None, None, tmp_path)
    assert nothing == DemoTarget(
        "mqtt://127.0.0.1:1883",
        Path("examples/plant.yaml"),
        f" (no demo runs from {tmp_path}; start one or give --broker)",
    )
    assert demo_target("mqtt://elsewhere:1884", None, tmp_path).hint == ""
    demo = RunningDemo(
        tmp_path / "sessions" / "1", "mqtt://127.0.0.1:4321", "http://127.0.0.1:8081",
        "http://127.0.0.1:8502", EXAMPLE_PLANT, None, os.getpid(),
    )  # fmt: skip
    demo.write(tmp_path)
    assert demo_target(None, None, tmp_path) == DemoTarget(
        "mqtt://127.0.0.1:4321", EXAMPLE_PLANT, ""
    )
    other = tmp_path / "other.yaml"
    assert demo_target("mqtt://h:1", other, tmp_path) == DemoTarget("mqtt://h:1", other, "")


def test_a_settled_heap_is_frozen_and_collected_less_often() -> None:
    """What start-up made is frozen out of the collector's walks, and the young generation is
    collected every YOUNG_COLLECTION_EVERY allocations; a cycle made after it is still freed."""
    script = """
import gc, weakref
from launcher.cli.common import OLDER_COLLECTION_EVERY, YOUNG_COLLECTION_EVERY, settle_heap

class Node:
    pass

def service():
    print(gc.get_freeze_count() > 1000, gc.get_threshold())
    print(gc.get_threshold() == (YOUNG_COLLECTION_EVERY, OLDER_COLLECTION_EVERY, OLDER_COLLECTION_EVERY))
    cycle = Node()
    cycle.me = cycle
    gone = weakref.ref(cycle)
    del cycle
    gc.collect()
    print(gone() is None)

settle_heap()
service()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    frozen, tuned, freed = done.stdout.splitlines()
    assert frozen.startswith("True (10000, 10, 10)")
    assert tuned == "True" and freed == "True"
