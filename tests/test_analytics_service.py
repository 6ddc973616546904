"""The analytics service on a simulated shift written to a store, as the gateway would write it:
the declared KPIs come out of the store, anomalies are found and linked to the stop after them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from analytics.history import machine_history, points_in_force
from analytics.oee import shift_occurrences
from analytics.service import AnalyticsService, AnalyticsSettings, machine_report
from shopfloor.messages import (
    EventType,
    MessageKind,
    decode_events,
    decode_readings,
    parse_topic,
)
from shopfloor.store import Point, Store
from shopfloor.store.embedded import EmbeddedStore
from simulators.fast import run_fast
from simulators.scenario import LoadedScenario, load_scenario
from tests.conftest import ROOT

SCENARIOS = ROOT / "examples" / "scenarios"


def backfill(recording: Path, store: Store) -> None:
    """Every message of a recording into the store, with its own timestamps."""
    points: list[Point] = []
    for line in recording.read_text(encoding="utf-8").splitlines()[1:]:
        message = json.loads(line)
        path, kind = parse_topic(message["topic"])
        payload = json.dumps(message["payload"]).encode()
        if kind is MessageKind.DATA:
            points += [Point.from_reading(path, r) for r in decode_readings(payload)]
        elif kind is MessageKind.EVENT:
            points += [Point.from_event(path, e) for e in decode_events(payload)]
    store.write(points)


Backfilled = tuple[LoadedScenario, Store, datetime]
# The moulding shift is sampled at 1 Hz, as it runs live; the two longer runs every 5 s, as an
# edge agent polling every 5 s reports them, which keeps the suite short.
SAMPLE_INTERVAL_S = {"moulding": 1.0, "machining": 5.0, "packaging": 5.0}


@pytest.fixture(scope="module")
def backfills(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Backfilled]:
    """Each scenario's whole run in an embedded store, made once for the module."""
    made: dict[str, Backfilled] = {}

    def backfilled(name: str) -> Backfilled:
        if name not in made:
            loaded = load_scenario(SCENARIOS / f"{name}.yaml")
            update = {"sample_interval": SAMPLE_INTERVAL_S[name]}
            loaded = loaded.model_copy(
                update={"scenario": loaded.scenario.model_copy(update=update)}
            )
            folder = tmp_path_factory.mktemp(name)
            floor = run_fast(loaded, folder / "run.jsonl")
            store = EmbeddedStore(folder / "store.db")
            backfill(folder / "run.jsonl", store)
            made[name] = (loaded, store, floor.start)
        return made[name]

    return backfilled


@pytest.fixture(scope="module", params=["moulding", "machining", "packaging"])
def backfilled(
    request: pytest.FixtureRequest, backfills: Callable[[str], Backfilled]
) -> Backfilled:
    return backfills(request.param)


@pytest.fixture(scope="module")
def analysed(backfills: Callable[[str], Backfilled]) -> Backfilled:
    """The moulding shift analysed every 10 simulated minutes, as live."""
    loaded, store, start = backfills("moulding")
    end = start + timedelta(seconds=loaded.scenario.duration)
    service = AnalyticsService(loaded.plant, store, AnalyticsSettings())
    now = start + timedelta(minutes=10)
    while now < end:
        service.run_once(now)
        now += timedelta(minutes=10)
    service.run_once(end)
    return loaded, store, start


def test_declared_kpis_come_out_of_the_store(
    backfilled: tuple[LoadedScenario, Store, datetime],
) -> None:
    """The scenario's whole run, read back from the store, yields what the scenario declares."""
    loaded, store, start = backfilled
    end = start + timedelta(seconds=loaded.scenario.duration)
    paths = {machine.id: (path, machine) for path, machine in loaded.plant.machines()}
    tolerance = loaded.scenario.tolerance
    for machine_id, expected in loaded.scenario.expected.items():
        path, machine = paths[machine_id]
        history = machine_history(partial(points_in_force, store), path, machine, start, end)
        # The scenario's own KPIs count its whole duration as planned time.
        got = machine_report(loaded.plant.model_copy(update={"shifts": []}), machine, history,
                             start.timestamp(), end.timestamp()).kpis()  # fmt: skip
        assert got["availability"] == pytest.approx(expected.availability, abs=tolerance)
        assert got["performance"] == pytest.approx(expected.performance, abs=tolerance)
        assert got["quality"] == pytest.approx(expected.quality, abs=tolerance)
        assert got["oee"] == pytest.approx(expected.oee, abs=tolerance)
        assert got["energy_per_good_part"] == pytest.approx(
            expected.energy_per_good_part_kwh, rel=tolerance
        )


def test_each_shift_is_one_final_point_per_kpi(
    analysed: tuple[LoadedScenario, Store, datetime],
) -> None:
    """kpi.shift.* is stamped at the shift's start and equals a report over that shift."""
    loaded, store, start = analysed
    end = start + timedelta(seconds=loaded.scenario.duration)
    plant = loaded.plant
    shifts = shift_occurrences(
        plant.shifts, plant.site.timezone, start.timestamp(), end.timestamp()
    )
    assert shifts
    for path, machine in plant.machines():
        stored = store.history(path, "kpi.shift.oee", start - timedelta(days=1), end)
        if not machine.ideal_cycle_time:
            assert stored == []
            continue
        assert [p.ts.timestamp() for p in stored] == [s.start for s in shifts]
        for shift, point in zip(shifts, stored, strict=True):
            a, b = max(shift.start, start.timestamp()), min(shift.end, end.timestamp())
            history = machine_history(partial(points_in_force, store), path, machine,
                                      datetime.fromtimestamp(shift.start, UTC),
                                      datetime.fromtimestamp(b, UTC))  # fmt: skip
            report = machine_report(plant, machine, history, shift.start, b)
            assert point.value == pytest.approx(report.kpis()["oee"], abs=1e-9), (shift, a)
        detail = json.loads(str(store.history(path, "report.shift", start, end)[-1].value))
        assert detail["shift"] == shifts[-1].name
        assert detail["oee"]["losses"]["six_big_losses"]


def test_bearing_wear_is_found_and_linked_to_the_breakdown_after_it(
    analysed: tuple[LoadedScenario, Store, datetime],
) -> None:
    loaded, store, start = analysed
    fault = next(f for f in loaded.scenario.faults if f.kind == "bearing_wear")
    path = next(p for p, m in loaded.plant.machines() if m.id == fault.machine)
    end = start + timedelta(seconds=loaded.scenario.duration)
    found = [
        p.as_event()
        for signal in ("event.anomaly_vibration",)
        for p in store.history(path, signal, start, end)
    ]
    fault_start = start + timedelta(seconds=fault.at)
    fault_end = fault_start + timedelta(seconds=fault.duration)
    during = [e for e in found if fault_start <= e.start <= fault_end]
    assert during, f"no vibration anomaly during the bearing wear: {found}"
    assert all(e.type is EventType.ANOMALY for e in found)
    linked = during[0].loss
    assert linked is not None and linked.state == "unplanned_stop"
    assert fault_start < linked.start <= fault_end + timedelta(minutes=5)
    assert linked.lead_s > 0 and linked.duration_s > 0
    scores = store.history(path, "anomaly.vibration", start, end)
    # Scored while running only (a stopped spindle is not an anomaly), in [0, 1].
    assert len(scores) > 0.4 * loaded.scenario.duration
    assert all(0.0 <= float(p.value) <= 1.0 for p in scores)


def test_a_stuck_sensor_is_found_as_a_silence(
    analysed: tuple[LoadedScenario, Store, datetime],
) -> None:
    """Values come by exception: a stuck sensor sends nothing while its machine runs."""
    loaded, store, start = analysed
    fault = next(f for f in loaded.scenario.faults if f.kind == "sensor_stuck")
    assert fault.signal is not None
    path = next(p for p, m in loaded.plant.machines() if m.id == fault.machine)
    end = start + timedelta(seconds=loaded.scenario.duration)
    found = [p.as_event() for p in store.history(path, f"event.silent_{fault.signal}", start, end)]
    fault_start = start + timedelta(seconds=fault.at)
    stuck = [e for e in found if abs((e.start - fault_start).total_seconds()) <= 2]
    assert stuck, found
    assert stuck[0].end is not None and stuck[0].end >= fault_start + timedelta(minutes=25)
