"""The analytics service's counters, from a store written by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import pytest

from analytics.history import Series, machine_history, points_in_force
from analytics.kernels import counter_increase
from analytics.oee import OeeInputError, StateEvent, oee, oee_from_states
from analytics.service import (
    AnalyticsService,
    AnalyticsSettings,
    machine_report,
    machine_score,
    silence_events,
)
from shopfloor.plant import Plant
from shopfloor.states import MachineState
from shopfloor.store import Point, Scope, Store

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], 0.0),
        ([5.0], 0.0),
        ([0, 1, 2, 3], 3.0),
        ([10, 12, 3, 5], 4.0),  # reset to 3: the drop is skipped, not subtracted
        ([1, np.nan, 4], 3.0),
        ([7, 7, 7], 0.0),
        ([65_534, 65_535, 0, 2], 3.0),  # rollover: the step to 0 counts nothing
    ],
)
def test_counter_increase(values: list[float], expected: float) -> None:
    assert counter_increase(np.asarray(values, dtype=np.float64)) == expected


def test_window_kpis_from_cumulative_counters(example_plant: Plant, store: Store) -> None:
    path, machine = next(iter(example_plant.machines()))
    counters: dict[str, list[float]] = {
        "part_count": [100, 110, 120, 0, 30],  # counter reset mid-window: 20 + 30 = 50 parts
        "reject_count": [4, 5, 5, 0, 1],  # 1 + 1 = 2 rejects
        "energy": [12.0, 12.5, 13.0, 13.5, 14.0],  # 2 kWh
    }
    points = [Point(path, "state", T0 - timedelta(hours=3), "running")]  # in force all along
    points += [
        Point(path, signal, T0 + timedelta(minutes=i), float(v))
        for signal, values in counters.items()
        for i, v in enumerate(values)
    ]
    store.write(points)
    end = T0 + timedelta(hours=1)
    history = machine_history(partial(points_in_force, store), path, machine, T0, end)
    kpis = machine_report(example_plant, machine, history, T0.timestamp(), end.timestamp()).kpis()
    # The first readings baseline the counters: 10 + 10 + 30 parts counted after them.
    assert (kpis["parts"], kpis["rejects"], kpis["good_parts"]) == (50.0, 2.0, 48.0)
    assert kpis["energy"] == pytest.approx(2.0)
    assert kpis["energy_per_good_part"] == pytest.approx(2.0 / 48)
    assert kpis["availability"] == 1.0  # running since before the window opened


def test_service_writes_kpis_next_to_the_machine_signals(
    example_plant: Plant, store: Store
) -> None:
    path, _ = next(iter(example_plant.machines()))
    store.write([Point(path, "state", T0, "running")])
    store.write([Point(path, "part_count", T0 + timedelta(minutes=i), float(i)) for i in range(5)])
    settings = AnalyticsSettings(window=timedelta(hours=1))
    AnalyticsService(example_plant, store, settings).run_once(T0 + timedelta(minutes=30))
    kpis = {p.signal: p for p in store.latest(Scope.of(path)) if p.signal.startswith("kpi.")}
    assert kpis["kpi.parts"].value == 4.0
    assert kpis["kpi.good_parts"].unit == "pcs"
    assert kpis["kpi.parts"].ts == T0 + timedelta(minutes=30)
    # No energy samples: neither energy nor a ratio is invented.
    assert "kpi.energy" not in kpis and "kpi.energy_per_good_part" not in kpis


@pytest.mark.parametrize(
    ("planned_min", "run_min", "ideal_s", "total", "good", "expected"),
    [
        (420, 373, 1.0, 19_271, 18_848, (0.888095, 0.861081, 0.978050, 0.747937)),
        (480, 420, 60.0, 400, 380, (0.875, 0.952381, 0.95, 0.791667)),
    ],
)
def test_oee_matches_the_worked_examples(
    planned_min: float,
    run_min: float,
    ideal_s: float,
    total: int,
    good: int,
    expected: tuple[float, float, float, float],
) -> None:
    result = oee(planned_min * 60, run_min * 60, ideal_s, total, good)
    got = (result.availability, result.performance, result.quality, result.oee)
    assert got == pytest.approx(expected, abs=1e-6)


def test_oee_with_no_planned_time_is_a_clear_error() -> None:
    with pytest.raises(OeeInputError, match="planned busy time is zero"):
        oee(0, 0, 1.0, 0, 0)


def test_oee_from_states_follows_the_iso_22400_mapping() -> None:
    seconds = {
        MachineState.RUNNING: 3000.0,
        MachineState.MICRO_STOP: 200.0,  # stays in APT: a speed loss
        MachineState.STARVED: 400.0,
        MachineState.UNPLANNED_STOP: 400.0,
        MachineState.PLANNED_STOP: 600.0,  # leaves PBT
    }
    result = oee_from_states(seconds, ideal_cycle_s=10.0, produced=300, good=294)
    assert result.availability == pytest.approx(3200 / 4000)
    assert result.performance == pytest.approx(3000 / 3200)
    assert result.quality == pytest.approx(0.98)


def test_machine_score_sees_signals_parting_ways_that_each_look_normal() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(3000, dtype=np.float64)
    load = rng.normal(50.0, 5.0, t.size)
    vibration = 0.1 * load + rng.normal(0.0, 0.05, t.size)
    vibration[2500:] = 10.0 - 0.1 * load[2500:] + rng.normal(0.0, 0.05, 500)  # same range
    signals = {"load": Series(t, load), "vibration": Series(t - 0.5, vibration)}
    running = [StateEvent(0.0, MachineState.RUNNING)]
    found = machine_score(signals, running, AnalyticsSettings())
    assert found is not None
    score, level = found
    assert np.array_equal(score.t, t)  # on the busier signal's times (both equal: the first)
    assert np.nanmax(score.values[:2500]) < level < np.nanmax(score.values[2500:])
    stopped = [StateEvent(0.0, MachineState.UNPLANNED_STOP)]
    quiet = machine_score(signals, stopped, AnalyticsSettings())
    assert quiet is not None and np.isnan(quiet[0].values).all()  # scored while running only
    assert machine_score({"load": Series(t, load)}, running, AnalyticsSettings()) is None


def test_a_signal_silent_while_running_is_an_event_and_a_rate_change_is_not() -> None:
    t0 = T0.timestamp()
    running = [StateEvent(t0, MachineState.RUNNING)]
    settings = AnalyticsSettings()  # silent after 60 samples' worth
    steady = np.concatenate([t0 + np.arange(600.0), t0 + 900 + np.arange(300.0)])
    series = Series(steady, np.zeros(len(steady)))
    [gap] = silence_events("vibration", series, running, t0 + 1200, settings)
    assert (gap.start.timestamp(), gap.end and gap.end.timestamp()) == (t0 + 599, t0 + 900)
    assert gap.name == "silent_vibration"
    # A replay sped up from x1 to x60: one value every 30 s of data time from then on.
    faster = np.concatenate([t0 + np.arange(600.0), t0 + 630 + 30 * np.arange(200.0)])
    series = Series(faster, np.zeros(len(faster)))
    assert silence_events("vibration", series, running, faster[-1] + 30, settings) == []
    [still] = silence_events("vibration", series, running, faster[-1] + 3600, settings)
    assert still.end is None and still.start.timestamp() == faster[-1]
    stopped = [*running, StateEvent(t0 + 600, MachineState.PLANNED_STOP)]
    series = Series(steady, np.zeros(len(steady)))
    assert silence_events("vibration", series, stopped, t0 + 1200, settings) == []


def test_sparse_data_makes_the_detector_look_further_back_until_it_can_learn(
    example_plant: Plant, store: Store
) -> None:
    """A replay at x60 sends a value every 30 s of data time: two hours hold 240 samples, too
    few to learn from (660); the service doubles its lookback until they are enough."""
    path = next(p for p, m in example_plant.machines() if m.id == "cnc-01")
    rng = np.random.default_rng(5)
    times = [T0 + timedelta(seconds=30 * i) for i in range(1200)]  # 10 hours
    store.write([Point(path, "state", T0, "running")])
    store.write(
        [
            Point(path, "vibration", t, float(v))
            for t, v in zip(times, rng.normal(2, 0.1, 1200), strict=True)
        ]
    )
    service = AnalyticsService(example_plant, store, AnalyticsSettings())
    now = times[-1]
    scored = []
    for _ in range(3):
        written = service.run_once(now)
        scored.append(sum(p.signal == "anomaly.vibration" for p in written))
    assert scored[:2] == [0, 0] and scored[2] > 0
    first_score = min(
        p.ts for p in store.history(path, "anomaly.vibration", T0, now + timedelta(seconds=1))
    )
    assert first_score >= now - timedelta(hours=8)


def test_an_open_silence_that_more_data_shows_to_be_a_slower_rate_is_closed(
    example_plant: Plant, store: Store
) -> None:
    """A replay sped up to x60: the first slower step looks like a silence until more values
    arrive at the new rate; the event then ends instead of staying "ongoing"."""
    path = next(p for p, m in example_plant.machines() if m.id == "cnc-01")
    fast = [T0 + timedelta(seconds=i) for i in range(600)]
    store.write([Point(path, "state", T0, "running")])
    store.write([Point(path, "vibration", t, 2.0 + (i % 7) / 10) for i, t in enumerate(fast)])
    service = AnalyticsService(example_plant, store, AnalyticsSettings())
    service.run_once(fast[-1] + timedelta(seconds=90))
    [opened] = store.history(path, "event.silent_vibration", T0, T0 + timedelta(hours=1))
    assert opened.as_event().end is None
    slow = [fast[-1] + timedelta(seconds=30 * k) for k in range(1, 40)]
    store.write([Point(path, "vibration", t, 2.0 + (k % 7) / 10) for k, t in enumerate(slow)])
    service.run_once(slow[-1])
    [closed] = store.history(path, "event.silent_vibration", T0, T0 + timedelta(hours=1))
    assert closed.ts == opened.ts and closed.as_event().end == slow[-1]
