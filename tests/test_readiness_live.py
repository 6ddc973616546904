"""The ten indicators measured from a hand-written store, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from analytics.oee import StateEvent
from analytics.service import AnalyticsService, AnalyticsSettings
from launcher.cli import app
from readiness.answers import load_answers
from readiness.assessment import run_assessment
from readiness.evidence import Evidence
from readiness.indicator_file import indicators_from_dict
from readiness.indicators import PartCount, StateRecord
from readiness.live import (
    MachineData,
    PlantData,
    live_evidence,
    part_counts,
    plant_indicators,
    record_view,
    rescore,
    rescorer,
)
from readiness.persistence import ReadinessStore
from shopfloor.messages import AssetPath, Event, EventType
from shopfloor.plant import Plant
from shopfloor.states import MachineState
from shopfloor.store import Point, Store, StoreSettings, open_store

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)  # a Monday, 07:00 in Minsk: the early shift
END = T0 + timedelta(hours=2)


def minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def paths(plant: Plant) -> dict[str, AssetPath]:
    return {machine.id: path for path, machine in plant.machines()}


def every_minute(path: AssetPath, signal: str, first: float, last: float) -> list[Point]:
    return [Point(path, signal, minute(m), 1.0) for m in range(int(first), int(last))]


def states(path: AssetPath, changes: list[tuple[float, str, str]]) -> list[Point]:
    """State and stop reason written together at each change, as the edge reports them."""
    return [
        point
        for at, state, reason in changes
        for point in (
            Point(path, "state", minute(at), state),
            Point(path, "stop_reason", minute(at), reason),
        )
    ]


def anomaly(path: AssetPath, raised: float, answered: float | None) -> list[Point]:
    event = Event(type=EventType.ANOMALY, name="anomaly_melt_temperature", start=minute(raised))
    points = [Point.from_event(path, event)]
    if answered is not None:
        points.append(Point.acknowledgement(path, event, minute(answered)))
    return points


def write_plant(store: Store, plant: Plant) -> None:
    """The press is connected throughout with one coded and one unspecified stop, the trimming
    centre falls silent after 80 minutes and counts no rejects, packaging sends nothing."""
    press, trimmer = paths(plant)["imm-01"], paths(plant)["cnc-01"]
    points = states(
        press,
        [(-60, "running", ""), (30, "unplanned_stop", "mould_jam"), (40, "running", ""),
         (60, "unplanned_stop", ""), (65, "running", ""), (90, "unplanned_stop", ""),
         (91, "running", "")],
    )  # fmt: skip
    points += every_minute(press, "power", -60, 120)
    points += [
        Point(press, "part_count", minute(m), v) for m, v in ((-60, 100), (10, 200), (100, 400))
    ]
    points += [Point(press, "reject_count", minute(m), v) for m, v in ((-60, 5), (100, 11))]
    points += states(trimmer, [(0, "running", "")])
    points += every_minute(trimmer, "power", 0, 80)
    points += [Point(trimmer, "part_count", minute(m), v) for m, v in ((0, 0), (50, 50))]
    for raised, answered in ((-30, -20), (5, 7), (15, 19), (25, 31), (35, 43), (45, None)):
        points += anomaly(press, raised, answered)
    sensor_path = next(path for path, _ in plant.sensors())
    points += every_minute(sensor_path, "temperature", -60, 120)
    store.write(points)


def test_indicators_from_the_store(store: Store, example_plant: Plant) -> None:
    write_plant(store, example_plant)
    evidence = live_evidence(example_plant, store, ["hall-a"], end=END, window=timedelta(hours=2))
    got = evidence.indicators.to_dict()
    assert (evidence.window_start, evidence.window_end) == (T0, END)
    assert got["CC"] == pytest.approx(2 / 3, abs=1e-12)
    # the trimming centre's last data is at minute 79: no data from there to 120
    assert got["DC"] == pytest.approx((120 + 79) / 240, abs=1e-12)
    assert got["OV"] == pytest.approx(1 / 3, abs=1e-12)  # the trimming centre counts no rejects
    # the one-minute stop is too short to count
    assert got["RC"] == pytest.approx(10 / 15, abs=1e-12)
    # answered after 2, 4, 6 and 8 minutes; the last is unanswered (75 min to the window's end)
    assert got["ART"] == {
        "median_minutes": pytest.approx(6.0, abs=1e-12),
        "events": 5,
        "within_15_min": pytest.approx(4 / 5, abs=1e-12),
        "logging": True,
    }
    assert got["EV"] == 1.0
    assert got["STD"] == 1.0
    # the press (22 kW) and the trimming centre (11 kW) are metered and connected, not the
    # packaging station (3 kW)
    assert got["EC"] == pytest.approx(33 / 36, abs=1e-12)
    assert (got["DU"], got["CO"]) == (None, None)


def example_plant_with(changes: dict[str, dict[str, object]]) -> Plant:
    """The example plant with fields of its machines changed, by machine (None drops one)."""
    data = yaml.safe_load((ROOT / "examples" / "plant.yaml").read_text())
    for machine in data["site"]["areas"][0]["lines"][0]["machines"]:
        machine.update(changes.get(machine["id"], {}))
        for field in [f for f, value in machine.items() if value is None]:
            del machine[field]
    return Plant.model_validate(data)


def energy_coverage(plant: Plant, silent: str = "") -> float | None:
    """EC over an hour in which every machine but `silent` sends data each minute."""
    beats = [60.0 * k for k in range(61)]
    machines = {
        m.id: MachineData([StateRecord(0.0, 10000)], [] if m.id == silent else beats, [])
        for _, m in plant.machines()
    }
    data = PlantData(0.0, 3600.0, machines, alarms=[], zone_seen={}, views=None)
    return plant_indicators(plant, data, ()).EC


def test_energy_coverage_weighs_the_metered_machines_by_rated_power() -> None:
    """Press 22 kW, trimming centre 11 kW, packaging station 3 kW, each with a meter."""
    assert energy_coverage(example_plant_with({})) == 1.0
    unmetered = example_plant_with({"cnc-01": {"energy_meter": None}})
    assert energy_coverage(unmetered) == pytest.approx(25 / 36, abs=1e-12)
    # a meter counts only while its machine is connected: one that sends nothing measures nothing
    assert energy_coverage(example_plant_with({}), silent="imm-01") == pytest.approx(14 / 36)


def test_energy_coverage_is_unknown_until_every_machine_declares_its_rated_power() -> None:
    """Counting only the declared machines would make an unmetered, undeclared packaging
    station vanish: 33/33 instead of at most 33/36."""
    partial = example_plant_with({"pack-01": {"rated_power_kw": None, "energy_meter": None}})
    assert energy_coverage(partial) is None


def test_the_window_ends_at_the_newest_reading_and_starts_with_the_data(
    store: Store, example_plant: Plant
) -> None:
    """A plant whose data began an hour ago is judged on that hour, not on 28 days."""
    press = paths(example_plant)["imm-01"]
    store.write([*states(press, [(0, "running", "")]), *every_minute(press, "power", 0, 60)])
    evidence = live_evidence(example_plant, store)
    assert (evidence.window_start, evidence.window_end) == (T0, minute(59))
    assert evidence.indicators.to_dict()["CC"] == pytest.approx(1 / 3, abs=1e-12)
    assert evidence.indicators.to_dict()["DC"] == 1.0


def test_dashboard_use_from_the_view_log(store: Store, example_plant: Plant) -> None:
    """Wednesday to Friday are working days; the shop floor was viewed on Wednesday only."""
    end = datetime(2026, 11, 6, 12, tzinfo=UTC)
    window = timedelta(days=3)
    press = paths(example_plant)["imm-01"]
    store.write([Point(press, "power", end - window, 1.0), Point(press, "power", end, 1.0)])
    assert live_evidence(example_plant, store, end=end, window=window).indicators.DU is None
    for at in (datetime(2026, 11, 4, 6, tzinfo=UTC), datetime(2026, 11, 4, 9, tzinfo=UTC)):
        record_view(store, example_plant, user="operator", at=at)
    record_view(store, example_plant, page="controls", at=datetime(2026, 11, 5, 6, tzinfo=UTC))
    evidence = live_evidence(example_plant, store, end=end, window=window)
    assert evidence.indicators.to_dict()["DU"] == pytest.approx(1 / 3, abs=1e-12)


def test_assess_measures_the_evidence_from_the_store(
    store_settings: StoreSettings, example_plant: Plant, tmp_path: Path
) -> None:
    store = open_store(store_settings)
    write_plant(store, example_plant)
    store.close()
    args = [
        str(ROOT / "examples" / "readiness" / "moulding.yaml"),
        "--store-url", store_settings.url, "--store-database", store_settings.database,
        "--plant", str(ROOT / "examples" / "plant.yaml"), "--window-days", "1",
        "--db", str(tmp_path / "r.db"), "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(app, ["assess", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # one day back from the newest reading, the window starts with the data, an hour before
    # T0, when the trimming centre had sent nothing yet: it is not connected over that window
    assert data["window"]["start"] == minute(-60).isoformat()
    assert data["indicators"]["CC"]["value"] == pytest.approx(1 / 3, abs=1e-12)
    assert data["indicators"]["RC"]["value"] == pytest.approx(10 / 15, abs=1e-12)
    missing_plant = CliRunner().invoke(app, ["assess", *args[:3], "--no-save"])
    assert missing_plant.exit_code == 2
    assert "--store-url needs --plant" in missing_plant.stderr


def test_the_analytics_service_rescores_the_sme_daily_from_the_store(
    store: Store, example_plant: Plant, tmp_path: Path
) -> None:
    database = tmp_path / "readiness.db"
    answers = load_answers(ROOT / "examples" / "readiness" / "moulding.yaml")
    assert answers.sme == example_plant.tenant.id
    with ReadinessStore(database) as saved:  # assessed on answers alone two days earlier
        saved.save(run_assessment(answers, None, taken_at=minute(120) - timedelta(days=2)))
    write_plant(store, example_plant)
    hook = rescorer(example_plant, store, database)  # as the `analytics` command wires it
    service = AnalyticsService(example_plant, store, AnalyticsSettings(), after_cycle=[hook])
    service.run_once(minute(120))
    service.run_once(minute(130))  # the latest snapshot is not a day old: no third one
    with ReadinessStore(database) as saved:
        snapshots = saved.snapshots(answers.sme)
    assert len(snapshots) == 2 and not snapshots[-1].questionnaire_only
    assert snapshots[-1].result["indicators"]["CC"]["value"] == pytest.approx(1 / 3, abs=1e-9)


def test_a_rescore_names_the_gates_that_newly_fail(
    store: Store, example_plant: Plant, tmp_path: Path
) -> None:
    database = tmp_path / "readiness.db"
    answers = load_answers(ROOT / "examples" / "readiness" / "moulding.yaml")
    full = {name: 1.0 for name in ("DC", "CC", "OV", "RC", "STD")}
    evidence = Evidence(indicators_from_dict(full), minute(-60), minute(120), source="test")
    with ReadinessStore(database) as saved:
        saved.save(run_assessment(answers, evidence, taken_at=minute(0)))
    write_plant(store, example_plant)  # only one machine in three connected: CC 1/3
    rescored = rescore(example_plant, store, database, minute(120))
    assert rescored is not None
    assert any(a.gate == "G1" and a.indicator == "CC" for a in rescored.fallen)
    assert rescore(example_plant.model_copy(update={"tenant": example_plant.tenant.model_copy(
        update={"id": "nobody"})}), store, database) is None  # fmt: skip


def test_changeovers_and_standard_times_from_the_products_in_the_store(
    store: Store, example_plant: Plant
) -> None:
    """Six 10-minute runs of alternating sizes on the press: three changeovers logged as a
    2-minute setup, two only seen as the press standing idle without a reason."""
    press = paths(example_plant)["imm-01"]
    points: list[Point] = []
    parts = 0
    for run in range(6):
        begin = run * 12.0
        product = ("cap-28mm", "cap-38mm")[run % 2]
        if run:
            change = "setup" if run in (1, 2, 4) else "idle"
            points += states(
                press, [(begin - 2, change, "size_change" if change == "setup" else "")]
            )
            points.append(Point(press, "product", minute(begin - 2), product))
        else:
            points.append(Point(press, "product", minute(begin), product))
        points += states(press, [(begin, "running", "")])
        for m in range(1, 11):
            parts += 5
            points.append(Point(press, "part_count", minute(begin + m - 0.5), parts))
    points.append(Point(press, "part_count", minute(-1), 0))
    store.write(points)
    evidence = live_evidence(example_plant, store, [], end=minute(72), window=timedelta(hours=2))
    got = evidence.indicators.to_dict()
    assert got["CO"] == pytest.approx(3 / 5, abs=1e-12)
    assert got["STD"] == 1.0


def test_part_counts_are_per_minute_and_product_with_resets() -> None:
    t = T0.timestamp()
    log_ = [
        StateEvent(t, MachineState.RUNNING, 0, 0, product="a"),
        StateEvent(t + 10, MachineState.RUNNING, 3, 1, product="a"),
        StateEvent(t + 50, MachineState.RUNNING, 5, 1, product="a"),
        StateEvent(t + 70, MachineState.SETUP, 8, 1, product="b"),  # made under a
        StateEvent(t + 130, MachineState.RUNNING, 2, 0, product="b"),  # a reset: nothing counted
        StateEvent(t + 190, MachineState.RUNNING, 6, 0, product="b"),
    ]
    assert part_counts(log_, t, "imm-01", "x") == [
        PartCount(t + 50, "imm-01", "a", 4.0, 1.0),
        PartCount(t + 70, "imm-01", "a", 3.0, 0.0),
        PartCount(t + 190, "imm-01", "b", 4.0, 0.0),
    ]
    unnamed = [StateEvent(t, MachineState.RUNNING, 0), StateEvent(t + 10, MachineState.RUNNING, 2)]
    assert part_counts(unnamed, t, "imm-01", "x") == [PartCount(t + 10, "imm-01", "x", 2.0, None)]
