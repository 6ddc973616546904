"""Products through the platform: a changeover in the simulator, the product signal in the
store's state log, and the OEE of each product a machine made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.history import MachineHistory, state_log
from analytics.oee import StateEvent, pooled
from analytics.service import machine_report, products_made
from shopfloor.messages import AssetPath
from shopfloor.plant import load_plant
from shopfloor.states import PRODUCT, STATE, MachineState
from shopfloor.store import Point
from simulators.fast import run_fast
from simulators.machines import Station
from simulators.scenario import PlannedStop, load_scenario
from tests.conftest import ROOT

PATH = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)


def test_a_changeover_loads_the_next_product_at_its_ideal_cycle_time() -> None:
    loaded = load_scenario(ROOT / "examples" / "scenarios" / "moulding.yaml")
    stop = PlannedStop(at=3600, duration=600, kind="setup", reason="size_change", machine="imm-01",
                       product="cap-38mm")  # fmt: skip
    changed = loaded.scenario.model_copy(update={"planned_stops": [stop], "faults": []})
    floor = run_fast(loaded.model_copy(update={"scenario": changed}))
    press = floor.machines["imm-01"]
    assert isinstance(press, Station)
    assert [(r.start, r.product) for r in press.runs] == [(0.0, "cap-28mm"), (3600.0, "cap-38mm")]
    assert press.product == "cap-38mm" and press.ideal_cycle_s == 15.0
    assert 0 < press.runs[1].part_count < press.part_count
    setup = [i for i in press.log if i.state is MachineState.SETUP]
    assert [(i.start, i.end, i.reason) for i in setup] == [(3600.0, 4200.0, "size_change")]
    trimmer = floor.machines["cnc-01"]
    assert isinstance(trimmer, Station) and trimmer.product == "cap-28mm"


def point(signal: str, minutes: float, value: float | str) -> Point:
    return Point(PATH, signal, T0 + timedelta(minutes=minutes), value)


def test_the_state_log_carries_the_product_in_force() -> None:
    log_ = state_log({
        STATE: [point(STATE, 0, "running"), point(STATE, 60, "setup"), point(STATE, 70, "running")],
        PRODUCT: [point(PRODUCT, 0, "cap-28mm"), point(PRODUCT, 60, "cap-38mm")],
    })  # fmt: skip
    assert [(e.state, e.product) for e in log_] == [
        (MachineState.RUNNING, "cap-28mm"),
        (MachineState.SETUP, "cap-38mm"),
        (MachineState.RUNNING, "cap-38mm"),
    ]


def test_a_machine_report_has_the_oee_of_each_product() -> None:
    plant = load_plant(ROOT / "examples" / "plant.yaml")
    machine = next(m for _, m in plant.machines() if m.id == "imm-01")
    start = T0.timestamp()
    log_ = [
        StateEvent(start, MachineState.RUNNING, 0, 0, product="cap-28mm"),
        StateEvent(start + 3600, MachineState.SETUP, 280, 5, product="cap-38mm"),
        StateEvent(start + 4200, MachineState.RUNNING, 280, 5, product="cap-38mm"),
        StateEvent(start + 7800, MachineState.RUNNING, 500, 9, product="cap-38mm"),
    ]
    assert products_made(log_, start + 4000, start + 7800) == ["cap-38mm"]
    report = machine_report(plant, machine, MachineHistory(log_, None, None), start, start + 7800)
    assert report.oee is not None
    assert list(report.by_product) == ["cap-28mm", "cap-38mm"]
    small, large = report.by_product["cap-28mm"], report.by_product["cap-38mm"]
    assert small.performance == pytest.approx(280 * 12.0 / 3600)
    assert large.performance == pytest.approx(220 * 15.0 / 3600)
    assert large.losses.six_big_losses["setup_and_adjustments"] == 600
    assert pooled([small, large]).oee == pytest.approx(report.oee.oee)
    by_product = report.document("early", T0.date()).by_product
    assert by_product["cap-38mm"].produced == 220


def test_parts_of_a_machine_that_reports_no_product_count_at_its_first_products_time() -> None:
    plant = load_plant(ROOT / "examples" / "plant.yaml")
    machine = next(m for _, m in plant.machines() if m.id == "imm-01")
    start = T0.timestamp()
    log_ = [
        StateEvent(start, MachineState.RUNNING, 0, 0),
        StateEvent(start + 3600, MachineState.RUNNING, 270, 0),
    ]
    report = machine_report(plant, machine, MachineHistory(log_, None, None), start, start + 3600)
    assert report.oee is not None and report.by_product == {}
    assert report.oee.performance == pytest.approx(270 * 12.0 / 3600)
    assert report.oee.problems == ()
