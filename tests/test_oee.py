"""OEE from a state timeline: ISO 22400-2 time elements, windows, counters, losses, streaming."""

from __future__ import annotations

import random
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics.kernels import _CHUNK, counter_increase
from analytics.oee import (
    IdealCycleTimes,
    OeeAccumulator,
    OeeReport,
    StateEvent,
    oee_timeline,
    pooled,
    shift_calendar,
)
from shopfloor.plant import Shift
from shopfloor.states import MachineState as S
from tests.references.energy import counter_increase_reference

MIN = 60.0


def run(
    events: list[StateEvent], start: float, end: float, ideal: IdealCycleTimes, **kw: Any
) -> OeeReport:
    """The batch result, checked against the accumulator fed the same events."""
    report = oee_timeline(events, start, end, ideal, **kw)
    accumulator = OeeAccumulator(start, end, ideal, **kw)
    for event in events:
        accumulator.add(event)
    assert accumulator.result() == report
    return report


VECTORS = [
    # planned min, run min, ideal cycle s, total, good, (A, P, Q, OEE)
    (420, 373, 1.0, 19_271, 18_848, (0.888095, 0.861081, 0.978050, 0.747937)),
    (480, 420, 60.0, 400, 380, (0.875, 0.952381, 0.95, 0.791667)),
]


@pytest.mark.parametrize("how", ["window", "planned busy time", "shift calendar"])
@pytest.mark.parametrize(("planned", "run_min", "ideal", "total", "good", "expected"), VECTORS)
def test_worked_examples_from_a_timeline(
    how: str,
    planned: float,
    run_min: float,
    ideal: float,
    total: int,
    good: int,
    expected: tuple[float, float, float, float],
) -> None:
    bad = total - good
    # Half an hour of planned stop first, then the run, then a breakdown until the planned end;
    # with a calendar or a given planned time, the machine is off for an hour after that.
    events = [
        StateEvent(0.0, S.PLANNED_STOP, 0, 0),
        StateEvent(30 * MIN, S.RUNNING),
        StateEvent((30 + run_min) * MIN, S.UNPLANNED_STOP, total, bad),
        StateEvent((30 + planned) * MIN, S.OFF, total, bad),
    ]
    end = (30 + planned) * MIN
    kw: dict[str, object] = {}
    if how == "planned busy time":
        end += 60 * MIN
        kw = {"planned_busy_s": planned * MIN}
    elif how == "shift calendar":
        end += 60 * MIN
        kw = {"planned": [(0.0, (30 + planned) * MIN)]}
    report = run(events, 0.0, end, ideal, **kw)
    got = (report.availability, report.performance, report.quality, report.oee)
    assert got == pytest.approx(expected, abs=1e-6)
    assert report.planned_busy_s == planned * MIN
    assert report.problems == ()


def test_a_state_across_a_window_edge_is_split() -> None:
    events = [
        StateEvent(0.0, S.RUNNING, 0, 0),
        StateEvent(100.0, S.UNPLANNED_STOP, 10, 0),
        StateEvent(200.0, S.RUNNING, 10, 0),
        StateEvent(300.0, S.RUNNING, 20, 1),
    ]
    first = run(events, 50.0, 150.0, 1.0)
    assert first.time_by_state["running"] == 50.0
    assert first.time_by_state["unplanned_stop"] == 50.0
    assert (first.failures, first.produced) == (1, 10)
    second = run(events, 150.0, 400.0, 1.0)
    assert second.time_by_state["unplanned_stop"] == 50.0
    assert second.time_by_state["running"] == 200.0  # the last state holds until the end
    assert second.failures == 0  # the breakdown began in the first window
    assert (second.produced, second.bad) == (10, 1)
    whole = run(events, 50.0, 400.0, 1.0)
    for state, seconds in whole.time_by_state.items():
        assert seconds == first.time_by_state[state] + second.time_by_state[state]


def test_a_counter_reset_counts_only_non_negative_steps() -> None:
    counts = [0, 100, 150, 20, 70]
    events = [StateEvent(i * 60.0, S.RUNNING, c, 0) for i, c in enumerate(counts)]
    report = run(events, 0.0, 300.0, 1.0)
    assert report.produced == 100 + 50 + 50
    assert report.problems == (
        "total_count fell from 150 to 20 at 1970-01-01T00:03:00Z: taken as a reset",
    )


@pytest.mark.parametrize("seed", range(3))
def test_counter_kernel_matches_numpy(seed: int) -> None:
    """Chunks of samples without NaN are summed vectorised, the others step by step."""
    rng = np.random.default_rng(seed)
    counts = np.cumsum(rng.exponential(2.0, 50_000)) % 5_000.0  # rolls over about 20 times
    counts[:3] = np.nan
    counts[rng.integers(0, counts.size, 10)] = np.nan
    got, want = counter_increase(counts), counter_increase_reference(counts)
    assert got == pytest.approx(want, rel=1e-12)
    assert counter_increase(np.full(5, np.nan)) == counter_increase_reference(np.full(5, np.nan))


@pytest.mark.parametrize("size", [1, _CHUNK - 1, _CHUNK, _CHUNK + 1, 3 * _CHUNK])
@pytest.mark.parametrize("missing", [(), (0,), (_CHUNK - 1,), (_CHUNK,), (_CHUNK - 1, _CHUNK)])
def test_counter_kernel_matches_numpy_at_the_edges_of_its_chunks(
    size: int, missing: tuple[int, ...]
) -> None:
    """A NaN on either side of a chunk's edge, or no value in a whole chunk, sends a chunk
    step by step; the increase must not change."""
    counts = (np.cumsum(np.random.default_rng(size).integers(0, 3, size)) % 700).astype(float)
    counts[[row for row in missing if row < size]] = np.nan
    assert counter_increase(counts) == counter_increase_reference(counts)
    counts[:_CHUNK] = np.nan  # no value before the second chunk: its first one starts the count
    assert counter_increase(counts) == counter_increase_reference(counts)


def test_counts_without_a_state_change_and_missing_readings() -> None:
    events = [
        StateEvent(0.0, S.RUNNING, 5, 0),
        StateEvent(60.0, S.RUNNING, None, None),  # a state event without counters
        StateEvent(120.0, S.IDLE, 65, 2),
    ]
    report = run(events, 0.0, 180.0, 1.0)
    assert (report.produced, report.bad, report.good) == (60, 2, 58)


@pytest.mark.parametrize(
    ("events", "kw"),
    [
        ([StateEvent(0.0, S.PLANNED_STOP, 0, 0)], {}),
        (
            [StateEvent(0.0, S.RUNNING, 0, 0), StateEvent(60.0, S.RUNNING, 30, 0)],
            {"planned_busy_s": 0.0},
        ),
        ([StateEvent(0.0, S.RUNNING, 0, 0)], {"planned": []}),
    ],
)
def test_planned_time_zero_is_a_problem_not_a_crash(
    events: list[StateEvent], kw: dict[str, object]
) -> None:
    report = run(events, 0.0, 60.0, 1.0, **kw)
    assert report.planned_busy_s == 0.0
    assert report.availability is None
    assert report.oee is None
    assert "planned busy time is zero: no availability, OEE or NEE" in report.problems


def test_performance_above_one_is_a_problem() -> None:
    events = [StateEvent(0.0, S.RUNNING, 0, 0), StateEvent(500.0, S.IDLE, 100, 0)]
    report = run(events, 0.0, 1000.0, 10.0)
    assert report.performance == pytest.approx(2.0)
    assert report.losses.reduced_speed == 0.0
    assert any(p.startswith("performance 2.000 is above 1") for p in report.problems)


def test_six_big_losses_of_a_hand_made_timeline() -> None:
    events = [
        StateEvent(0.0, S.SETUP, 0, 0, "mould change"),
        StateEvent(600.0, S.RUNNING, 0, 0),
        StateEvent(3000.0, S.MICRO_STOP),
        StateEvent(3100.0, S.RUNNING),
        StateEvent(4000.0, S.STARVED),
        StateEvent(4300.0, S.PLANNED_STOP),
        StateEvent(5200.0, S.UNPLANNED_STOP, reason="hydraulics"),
        StateEvent(5800.0, S.RUNNING),
        StateEvent(7200.0, S.IDLE, 300, 12),
    ]
    report = run(events, 0.0, 7500.0, 10.0)
    assert report.planned_downtime_s == 900.0
    assert report.planned_busy_s == 6600.0
    assert report.actual_production_s == 4800.0  # running and micro-stops
    losses = report.losses
    assert losses.six_big_losses == {
        "breakdowns": 600.0,
        "setup_and_adjustments": 600.0,
        "idling_and_minor_stops": 100.0 + 300.0 + 300.0,  # micro-stop, starved, idle
        "reduced_speed": 4800.0 - 100.0 - 3000.0,  # 300 parts at 10 s
        "rejects": 120.0,
    }
    fully_productive = 10.0 * report.good
    assert sum(losses.six_big_losses.values()) + fully_productive == report.planned_busy_s
    assert losses.availability_by_reason == {"hydraulics": 600.0, "mould change": 600.0}
    assert losses.availability_by_state["idle"] == 300.0
    assert report.oee == pytest.approx(fully_productive / 6600.0)
    assert report.nee == pytest.approx(fully_productive / 6000.0)  # setup leaves the base
    assert report.teep == pytest.approx(fully_productive / 7500.0)


def test_mtbf_and_mttr_from_unplanned_stops() -> None:
    events = [
        StateEvent(0.0, S.RUNNING),
        StateEvent(1000.0, S.UNPLANNED_STOP, reason="jam"),
        StateEvent(1030.0, S.UNPLANNED_STOP, reason="motor"),  # the same breakdown, diagnosed
        StateEvent(1060.0, S.RUNNING),
        StateEvent(2060.0, S.UNPLANNED_STOP),
        StateEvent(2180.0, S.RUNNING),
    ]
    report = run(events, 0.0, 3180.0, 1.0)
    assert report.failures == 2
    assert report.mtbf_s == pytest.approx(3000.0 / 2)
    assert report.mttr_s == pytest.approx(180.0 / 2)
    no_failures = run(events[:1], 0.0, 500.0, 1.0)
    assert (no_failures.mtbf_s, no_failures.mttr_s) == (None, None)


def test_time_before_the_first_event_is_unknown_not_downtime() -> None:
    report = run([StateEvent(100.0, S.RUNNING)], 0.0, 400.0, 1.0)
    assert report.unknown_s == 100.0
    assert report.planned_busy_s == 300.0
    assert report.availability == 1.0
    assert "no state known for the first 100 s of planned time" in report.problems


def test_production_outside_the_shift_calendar_is_flagged() -> None:
    events = [StateEvent(0.0, S.RUNNING, 0, 0), StateEvent(200.0, S.OFF, 200, 0)]
    report = run(events, 0.0, 200.0, 1.0, planned=[(0.0, 100.0)])
    assert report.planned_busy_s == 100.0
    assert report.performance == pytest.approx(2.0)
    assert "100 s of production outside planned operation time" in report.problems


def test_shift_calendar_with_a_night_shift_and_weekdays() -> None:
    zone = ZoneInfo("Europe/Berlin")
    night = Shift(name="night", start=time(22), end=time(6), days=["mon", "tue"])
    start = datetime(2026, 3, 2, tzinfo=zone).timestamp()  # a Monday
    end = datetime(2026, 3, 4, tzinfo=zone).timestamp()
    intervals = shift_calendar([night], "Europe/Berlin", start, end)
    assert intervals == [
        (
            datetime(2026, 3, 2, 22, tzinfo=zone).timestamp(),
            datetime(2026, 3, 3, 6, tzinfo=zone).timestamp(),
        ),
        (datetime(2026, 3, 3, 22, tzinfo=zone).timestamp(), end),  # cut at the window's end
    ]
    early = Shift(name="early", start=time(6), end=time(14))
    late = Shift(name="late", start=time(14), end=time(22))
    merged = shift_calendar([early, late], "Europe/Berlin", start, end)
    assert merged == [
        (
            datetime(2026, 3, 2, 6, tzinfo=zone).timestamp(),
            datetime(2026, 3, 2, 22, tzinfo=zone).timestamp(),
        ),
        (
            datetime(2026, 3, 3, 6, tzinfo=zone).timestamp(),
            datetime(2026, 3, 3, 22, tzinfo=zone).timestamp(),
        ),
    ]


def random_timeline(rng: random.Random, n: int) -> list[StateEvent]:
    events: list[StateEvent] = []
    t, total, bad = 0.0, 0, 0
    for _ in range(n):
        t += rng.choice([0.0, rng.uniform(1, 600)])
        total += rng.randint(0, 50)
        bad += rng.randint(0, 2)
        if rng.random() < 0.05:
            total = rng.randint(0, 10)  # a reset
        state = rng.choice(list(S))
        reason = rng.choice(["", "jam", "tooling"])
        read = rng.random() < 0.8
        events.append(StateEvent(t, state, total if read else None, bad if read else None, reason))
    return events


@pytest.mark.parametrize("seed", range(5))
def test_incremental_equals_batch_on_a_random_timeline(seed: int) -> None:
    rng = random.Random(seed)
    events = random_timeline(rng, 400)
    last = events[-1].time
    start, end = rng.uniform(-100, last / 4), rng.uniform(last * 3 / 4, last + 500)
    shifts = sorted(rng.uniform(start, end) for _ in range(8))
    planned = list(zip(shifts[::2], shifts[1::2], strict=True))
    for kw in ({}, {"planned": planned}, {"planned_busy_s": (end - start) / 2}):
        batch = oee_timeline(events, start, end, 2.0, **kw)
        accumulator = OeeAccumulator(start, end, 2.0, **kw)
        for index, event in enumerate(events):
            accumulator.add(event)
            if index == len(events) // 2:
                accumulator.result()  # a snapshot on the way changes nothing
        assert accumulator.result() == batch
        seconds = sum(batch.time_by_state.values()) + batch.unknown_s
        assert seconds == pytest.approx(batch.planned_operation_s)


def test_events_out_of_order_are_refused() -> None:
    events = [StateEvent(10.0, S.RUNNING), StateEvent(5.0, S.IDLE)]
    with pytest.raises(ValueError, match="time order"):
        oee_timeline(events, 0.0, 20.0, 1.0)
    accumulator = OeeAccumulator(0.0, 20.0, 1.0)
    accumulator.add(events[0])
    with pytest.raises(ValueError, match="time order"):
        accumulator.add(events[1])


def mixed_run() -> list[StateEvent]:
    """An hour of product a (10 s ideal), a 10-minute changeover to b, an hour of b (20 s)."""
    return [
        StateEvent(0.0, S.RUNNING, 0, 0, product="a"),
        StateEvent(3600.0, S.SETUP, 300, 6, reason="changeover", product="b"),
        StateEvent(4200.0, S.RUNNING, 300, 6, product="b"),
        StateEvent(7800.0, S.RUNNING, 450, 9, product="b"),
    ]


IDEAL = {"a": 10.0, "b": 20.0}


def test_each_product_counts_with_its_own_ideal_cycle_time() -> None:
    report = run(mixed_run(), 0.0, 7800.0, IDEAL)
    assert report.produced == 450 and report.bad == 9
    assert report.performance == pytest.approx((300 * 10 + 150 * 20) / 7200)
    assert report.ideal_cycle_s == pytest.approx(6000 / 450)
    assert report.fully_productive_s == pytest.approx(294 * 10 + 147 * 20)
    assert report.oee == pytest.approx(report.fully_productive_s / 7800)
    assert report.losses.rejects == pytest.approx(6 * 10 + 3 * 20)
    assert report.problems == ()


def test_a_product_report_takes_only_the_time_it_was_loaded() -> None:
    a = run(mixed_run(), 0.0, 7800.0, IDEAL, product="a")
    b = run(mixed_run(), 0.0, 7800.0, IDEAL, product="b")
    assert (a.planned_busy_s, a.actual_production_s, a.produced, a.good) == (3600, 3600, 300, 294)
    assert a.performance == pytest.approx(3000 / 3600)
    # The changeover counts to the product it prepares.
    assert (b.planned_busy_s, b.actual_production_s, b.produced, b.good) == (4200, 3600, 150, 147)
    assert b.losses.six_big_losses["setup_and_adjustments"] == 600
    assert b.availability == pytest.approx(3600 / 4200)
    assert b.performance == pytest.approx(3000 / 3600)


def test_pooled_product_reports_add_up_to_the_machine() -> None:
    whole = run(mixed_run(), 0.0, 7800.0, IDEAL)
    parts = pooled([run(mixed_run(), 0.0, 7800.0, IDEAL, product=p) for p in IDEAL])
    for name in ("planned_busy_s", "actual_production_s", "availability", "performance"):
        assert getattr(parts, name) == pytest.approx(getattr(whole, name)), name
    for name in ("quality", "oee", "nee", "fully_productive_s", "ideal_cycle_s"):
        assert getattr(parts, name) == pytest.approx(getattr(whole, name)), name
    assert (parts.produced, parts.good, parts.bad) == (whole.produced, whole.good, whole.bad)
    assert parts.losses.six_big_losses == pytest.approx(whole.losses.six_big_losses)


def test_pooling_machines_weighs_them_by_time_and_output() -> None:
    fast = run([StateEvent(0.0, S.RUNNING, 0, 0), StateEvent(3600.0, S.IDLE, 360, 0)], 0, 7200, 10)
    slow = run(
        [StateEvent(0.0, S.RUNNING, 0, 0), StateEvent(7200.0, S.RUNNING, 120, 12)], 0, 7200, 60
    )
    line = pooled([fast, slow])
    assert line.availability == pytest.approx((3600 + 7200) / 14400)
    assert line.performance == pytest.approx((3600 + 7200) / (3600 + 7200))
    assert line.quality == pytest.approx(468 / 480)
    assert line.oee == pytest.approx((3600 + 108 * 60) / 14400)
    assert line.teep == pytest.approx(line.oee)
    with pytest.raises(ValueError, match="no reports"):
        pooled([])


def test_parts_of_a_product_without_ideal_time_are_a_problem() -> None:
    events = [*mixed_run()[:3], StateEvent(7800.0, S.RUNNING, 450, 9, product="c")]
    events[2] = StateEvent(4200.0, S.RUNNING, 300, 6, product="c")
    report = run(events, 0.0, 7800.0, IDEAL)
    assert report.produced == 450
    assert report.performance == pytest.approx(3000 / 7200)
    assert any("150 parts of product 'c' have no ideal cycle time" in p for p in report.problems)


def test_a_product_report_cannot_take_a_planned_busy_time() -> None:
    with pytest.raises(ValueError, match="product"):
        oee_timeline(mixed_run(), 0.0, 7800.0, IDEAL, planned_busy_s=100.0, product="a")
