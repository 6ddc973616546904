"""Energy KPIs: hand-computed cases, kernels against their NumPy references, and the demo
scenarios' declared energy per good part computed from the signals the edge would see."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from analytics.energy import (
    _CHUNK,
    _RUN,
    DEMAND_INTERVAL_S,
    EU_GRID_FACTOR_KG_PER_KWH,
    Hold,
    StateGroup,
    Tariff,
    TariffBand,
    co2_kg,
    energy_by_state,
    energy_cost,
    energy_from_meter,
    energy_from_power,
    energy_per_good_part,
    integrate_bins,
    integrate_many,
    interval_means,
    meter_increase,
    peak_demand,
)
from shopfloor.states import MachineState
from simulators.plant_sim import PlantSim
from simulators.scenario import load_scenario
from tests.conftest import ROOT
from tests.references.energy import (
    integrate_bins_reference,
    integrate_many_reference,
    meter_increase_reference,
)

Array = npt.NDArray[np.float64]
S = MachineState


def steady(kw: float, start: float, end: float, every: float = 60.0) -> tuple[Array, Array]:
    t = np.arange(start, end + every / 2, every)
    return t, np.full_like(t, kw)


# --- kWh from power ------------------------------------------------------------------------


@pytest.mark.parametrize("hold", list(Hold))
def test_constant_10_kw_for_an_hour_is_10_kwh(hold: Hold) -> None:
    got = energy_from_power(*steady(10.0, 0, 3600, every=1.0), hold=hold)
    assert got.kwh == pytest.approx(10.0, abs=1e-9)
    assert (got.covered_s, got.uncovered_s) == (3600.0, 0.0)


def test_step_holds_the_earlier_sample_and_linear_ramps() -> None:
    t, p = np.array([0.0, 3600.0]), np.array([0.0, 10.0])
    assert energy_from_power(t, p, max_gap_s=3600).kwh == 0.0
    assert energy_from_power(t, p, max_gap_s=3600, hold=Hold.LINEAR).kwh == pytest.approx(5.0)


def test_a_gap_is_not_integrated_but_reported() -> None:
    before, after = steady(10.0, 0, 1800), steady(10.0, 3600, 5400)
    t, p = np.concatenate([before[0], after[0]]), np.concatenate([before[1], after[1]])
    got = energy_from_power(t, p, max_gap_s=300)
    assert got.kwh == pytest.approx(10.0, abs=1e-9)  # 2 x 30 min at 10 kW
    assert got.uncovered_s == pytest.approx(1800.0, abs=1e-9)


def test_a_nan_sample_is_a_missing_one() -> None:
    t, p = np.array([0.0, 60.0, 120.0]), np.array([10.0, np.nan, 10.0])
    assert energy_from_power(t, p, max_gap_s=300).kwh == pytest.approx(10 * 120 / 3600, abs=1e-12)
    short = energy_from_power(t, p, max_gap_s=100)
    assert (short.kwh, short.uncovered_s) == (0.0, 120.0)


def test_unsorted_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        energy_from_power([0.0, 60.0, 30.0], [1.0, 1.0, 1.0])


# --- kWh from a cumulative meter ------------------------------------------------------------


def test_meter_reset_starts_counting_again() -> None:
    got = energy_from_meter([100.0, 102.5, 104.0, 0.0, 0.75, 2.0])
    assert got.kwh == pytest.approx(4.0 + 2.0, abs=1e-9)
    assert (got.resets, got.rollovers, got.drops) == (1, 0, 0)


def test_meter_rollover_adds_the_wrap() -> None:
    got = energy_from_meter([99_998.0, 99_999.5, 0.6, 1.6], maximum_kwh=99_999.9)
    assert got.kwh == pytest.approx(1.5 + 0.4 + 0.6 + 1.0, abs=1e-9)
    assert (got.resets, got.rollovers, got.drops) == (0, 1, 0)


def test_meter_tells_a_reset_from_a_rollover() -> None:
    got = energy_from_meter([500.0, 0.2, 0.3, 99_999.0, 0.5], maximum_kwh=99_999.9)
    # 500 -> 0.2 is far from the maximum: a reset; 99,999.0 -> 0.5 wraps by 1.4 kWh.
    assert got.kwh == pytest.approx(0.2 + 0.1 + 99_998.7 + 1.4, abs=1e-9)
    assert (got.resets, got.rollovers, got.drops) == (1, 1, 0)
    unknown_maximum = energy_from_meter([99_999.0, 0.5])
    assert (unknown_maximum.kwh, unknown_maximum.resets) == (0.5, 1)


def test_meter_glitches_and_gaps_are_skipped() -> None:
    got = energy_from_meter([100.0, np.nan, 50.0, 60.0, np.nan, 61.0])
    assert got.kwh == pytest.approx(11.0, abs=1e-9)  # 100 -> 50 is neither reset nor rollover
    assert (got.resets, got.rollovers, got.drops) == (0, 0, 1)


# --- per state, per loss, per part ----------------------------------------------------------

TIMELINE = [
    (0.0, 600.0, S.RUNNING, 12.0),
    (600.0, 900.0, S.IDLE, 4.0),
    (900.0, 1200.0, S.MICRO_STOP, 5.0),
    (1200.0, 1800.0, S.UNPLANNED_STOP, 2.0),
    (1800.0, 2400.0, S.PLANNED_STOP, 1.0),
    (2400.0, 3000.0, S.OFF, 0.0),
]


def timeline_power() -> tuple[Array, Array]:
    t = np.arange(0.0, 3000.0 + 1, 60.0)
    p = np.zeros_like(t)
    for start, end, _, kw in TIMELINE:
        p[(t >= start) & (t < end)] = kw
    return t, p


def test_energy_per_state_of_a_hand_made_timeline() -> None:
    got = energy_by_state([(a, b, s) for a, b, s, _ in TIMELINE], *timeline_power())
    expected = {S.RUNNING: 2.0, S.IDLE: 1 / 3, S.MICRO_STOP: 5 / 12, S.UNPLANNED_STOP: 1 / 3,
                S.PLANNED_STOP: 1 / 6, S.OFF: 0.0}  # fmt: skip
    assert got.by_state == pytest.approx(expected, abs=1e-9)
    assert got.kwh == pytest.approx(3.25, abs=1e-9)
    assert got.by_group == pytest.approx(
        {StateGroup.RUNNING: 2.0, StateGroup.IDLE: 1.25, StateGroup.OFF: 0.0}, abs=1e-9
    )
    assert got.idle_share == pytest.approx(1.25 / 3.25, abs=1e-9)
    assert got.uncovered_s == 0.0
    loss = got.by_loss()
    assert loss.production_kwh == pytest.approx(2.0 + 5 / 12, abs=1e-9)
    assert loss.availability_loss_kwh == pytest.approx(
        {S.IDLE: 1 / 3, S.UNPLANNED_STOP: 1 / 3, S.OFF: 0.0}, abs=1e-9
    )
    assert loss.planned_downtime_kwh == pytest.approx(1 / 6, abs=1e-9)


def test_a_state_change_between_samples_splits_the_held_power() -> None:
    t, p = np.array([0.0, 60.0, 120.0]), np.array([12.0, 4.0, 4.0])
    got = energy_by_state([(0.0, 30.0, S.RUNNING), (30.0, 150.0, S.IDLE)], t, p)
    assert got.by_state[S.RUNNING] == pytest.approx(12 * 30 / 3600, abs=1e-12)
    assert got.by_state[S.IDLE] == pytest.approx((12 * 30 + 4 * 60) / 3600, abs=1e-12)
    assert got.uncovered_s == pytest.approx(30.0)  # 120 s to 150 s has no sample after it


def test_no_energy_has_no_idle_share() -> None:
    t = np.array([0.0, 60.0])
    assert energy_by_state([(0.0, 60.0, S.OFF)], t, np.zeros(2)).idle_share is None


def test_energy_per_good_part() -> None:
    assert energy_per_good_part(10.0, 4).kwh == 2.5
    none = energy_per_good_part(10.0, 0)
    assert none.kwh is None and none.reason is not None and "no good parts" in none.reason


# --- demand, cost, CO2 ----------------------------------------------------------------------


def test_peak_demand_uses_clock_aligned_quarter_hours() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+5:30: quarter hours are still on the local clock
    start = datetime(2026, 11, 3, 15, 37, tzinfo=kolkata).timestamp()
    t, p = steady(10.0, start, start + 3600)
    p[(t >= start + 13 * 60) & (t < start + 28 * 60)] = 20.0  # 15:50 to 16:05 local
    peak = peak_demand(t, p)
    assert peak is not None
    # 15:45-16:00 holds 5 min at 10 kW and 10 at 20 kW; a sliding window would find 20 kW.
    assert peak.kw == pytest.approx((5 * 10 + 10 * 20) / 15, abs=1e-9)
    assert peak.start == datetime(2026, 11, 3, 15, 45, tzinfo=kolkata)
    assert peak.coverage == 1.0
    means = interval_means(t, p)
    assert means.coverage[0] == pytest.approx(8 / 15)  # 15:37 to 15:45: left out of the peak
    assert means.mean_kw[2] == pytest.approx((5 * 20 + 10 * 10) / 15, abs=1e-9)


def test_no_peak_without_a_covered_interval() -> None:
    assert peak_demand(*steady(50.0, 0, 300)) is None


BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = TariffBand(name="night", days=["mon", "tue", "wed", "thu", "fri"], start=time(22),
                   end=time(6), price_per_kwh=0.10)  # fmt: skip
WEEKEND = TariffBand(name="weekend", days=["sat", "sun"], start=time(0), end=time(0),
                     price_per_kwh=0.12)  # fmt: skip


def friday_evening_to_saturday_morning() -> tuple[Array, Array]:
    start = datetime(2026, 11, 6, 20, tzinfo=BERLIN).timestamp()  # a Friday
    return steady(10.0, start, start + 12 * 3600)


def test_tariff_across_midnight_and_into_a_weekend() -> None:
    tariff = Tariff(timezone="Europe/Berlin", bands=[NIGHT, WEEKEND], base_price_per_kwh=0.25)
    got = energy_cost(*friday_evening_to_saturday_morning(), tariff)
    # Fri 20-22 base, Fri 22 - Sat 06 night (listed first, so it wins over the weekend), then
    # Sat 06-08 weekend; 10 kW throughout.
    assert got.kwh_by_band == pytest.approx({"night": 80.0, "weekend": 20.0, "base": 20.0})
    assert got.energy_cost == pytest.approx(8.0 + 2.4 + 5.0, abs=1e-9)
    assert (got.peak, got.demand_charge, got.total) == (None, 0.0, got.energy_cost)


def test_the_first_listed_band_wins_and_demand_is_charged() -> None:
    tariff = Tariff(timezone="Europe/Berlin", bands=[WEEKEND, NIGHT], base_price_per_kwh=0.25,
                    demand_charge_per_kw=5.0)  # fmt: skip
    got = energy_cost(*friday_evening_to_saturday_morning(), tariff)
    assert got.kwh_by_band == pytest.approx({"weekend": 80.0, "night": 20.0, "base": 20.0})
    assert got.peak is not None and got.peak.kw == pytest.approx(10.0, abs=1e-9)
    assert got.total == pytest.approx(9.6 + 2.0 + 5.0 + 50.0, abs=1e-9)


def test_tariff_files_are_checked() -> None:
    with pytest.raises(ValidationError, match="unique"):
        Tariff(timezone="Europe/Berlin", bands=[NIGHT, NIGHT], base_price_per_kwh=0.2)
    with pytest.raises(ValidationError, match="unknown time zone"):
        Tariff(timezone="Europe/Nowhere", base_price_per_kwh=0.2)


def test_co2_from_a_grid_factor() -> None:
    assert co2_kg(100.0) == pytest.approx(100 * EU_GRID_FACTOR_KG_PER_KWH, abs=1e-9)
    assert co2_kg(100.0, grid_factor_kg_per_kwh=0.4) == pytest.approx(40.0, abs=1e-9)
    with pytest.raises(ValueError, match="negative"):
        co2_kg(1.0, -0.1)


# --- kernels against their NumPy references -------------------------------------------------


def random_power(rng: np.random.Generator, n: int) -> tuple[Array, Array]:
    steps = rng.exponential(20.0, n)
    steps[rng.random(n) < 0.02] = 0.0  # repeated timestamps
    steps[rng.random(n) < 0.01] *= 50  # gaps longer than max_gap_s
    p = rng.uniform(0.0, 30.0, n)
    p[rng.random(n) < 0.03] = np.nan
    return 1.7e9 + np.cumsum(steps), p


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("linear", [False, True])
def test_integration_kernel_matches_numpy(seed: int, linear: bool) -> None:
    rng = np.random.default_rng(seed)
    t, p = random_power(rng, 5000)
    edges = np.sort(rng.uniform(t[0] - 500, t[-1] + 500, 300))
    edges[5:10] = edges[4]  # empty bins
    got = integrate_bins(t, p, edges, 120.0, linear)
    want = integrate_bins_reference(t, p, edges, 120.0, linear)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("linear", [False, True])
def test_integration_kernel_matches_numpy_with_samples_outside_the_bins(linear: bool) -> None:
    """Samples before the first edge and after the last are left out, also from the bins'
    running sums; 1 s steps make most intervals fall inside one bin."""
    rng = np.random.default_rng(11)
    t = 1.7e9 + np.arange(20_000.0)
    p = rng.uniform(0.0, 30.0, t.size)
    p[rng.random(t.size) < 0.01] = np.nan
    edges = np.sort(rng.uniform(t[2000], t[-2000], 40))
    got = integrate_bins(t, p, edges, 120.0, linear)
    want = integrate_bins_reference(t, p, edges, 120.0, linear)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_meter_kernel_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    maximum = 9_999.9
    readings = (np.cumsum(rng.exponential(0.5, 20_000)) + 9_000.0) % maximum
    readings[rng.random(len(readings)) < 0.001] = 0.0  # resets
    readings[rng.random(len(readings)) < 0.001] -= 300.0  # glitches
    readings[rng.random(len(readings)) < 0.02] = np.nan
    got = meter_increase(readings, maximum, 5.0)
    want = meter_increase_reference(readings, maximum, 5.0)
    assert got[0] == pytest.approx(want[0], rel=1e-9)
    assert got[1:] == want[1:]
    assert min(want[1:]) > 0  # every kind of discontinuity was exercised


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("odd", [(), (1,), (_RUN - 1,), (_RUN,), (_RUN, 2 * _RUN + 5)])
def test_integration_kernel_matches_numpy_at_the_edges_of_its_runs(
    linear: bool, odd: tuple[int, ...]
) -> None:
    """Runs within a bin without a NaN, a gap or a repeated timestamp are summed vectorised,
    the others step by step: an odd sample on either side of a run's end, in one bin longer
    than a run (the whole span) or in quarter hours, must not change the result."""
    rng = np.random.default_rng(len(odd))
    t = 1.7e9 + np.arange(3 * _RUN + 17.0)
    p = rng.uniform(0.0, 30.0, t.size)
    for kind, row in enumerate(odd):
        p[row] = np.nan if kind == 0 else p[row]
        t[row:] += 500.0 if kind == 1 else 0.0  # a gap before the row
    t[_RUN + 100] = t[_RUN + 99]  # a repeated timestamp
    first = np.floor(t[0] / DEMAND_INTERVAL_S) * DEMAND_INTERVAL_S
    quarters = np.arange(first, t[-1] + DEMAND_INTERVAL_S, DEMAND_INTERVAL_S)
    for edges in (t[[0, -1]], quarters, quarters + 0.5):
        got = integrate_bins(t, p, edges, 120.0, linear)
        want = integrate_bins_reference(t, p, edges, 120.0, linear)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("size", [1, _CHUNK, _CHUNK + 1, 3 * _CHUNK])
@pytest.mark.parametrize("odd", [(), (0,), (_CHUNK - 1,), (_CHUNK,), (_CHUNK - 1, _CHUNK)])
def test_meter_kernel_matches_numpy_at_the_edges_of_its_chunks(
    size: int, odd: tuple[int, ...]
) -> None:
    """Chunks that only rise add their last reading minus the one before; a NaN or a drop on
    either side of a chunk's edge sends a chunk reading by reading."""
    readings = 99_000.0 + np.cumsum(np.random.default_rng(size).exponential(0.5, size))
    readings %= 99_999.9  # rolls over once in the longest
    for kind, row in enumerate(row for row in odd if row < size):
        readings[row] = np.nan if kind == 0 else 1.0  # a NaN, then a reset
    got = meter_increase(readings, 99_999.9, 5.0)
    want = meter_increase_reference(readings, 99_999.9, 5.0)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    assert got[1:] == want[1:]


def test_parallel_integration_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    t, p = random_power(rng, 20_000)
    offsets = np.array([0, 0, 1, 3000, 9000, 9001, 20_000], dtype=np.int64)
    got = integrate_many(t, p, offsets, 120.0, False)
    want = integrate_many_reference(t, p, offsets, 120.0, False)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-6)


# --- the demo scenarios ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["moulding", "moulding-bad-day", "machining", "packaging"])
def test_scenarios_yield_their_declared_energy_per_good_part(name: str) -> None:
    """Sample every machine's power and meter as the edge would, every 10 s, through a run."""
    loaded = load_scenario(ROOT / "examples" / "scenarios" / f"{name}.yaml")
    scenario = loaded.scenario
    floor = PlantSim(loaded, scenario.start or datetime(2026, 1, 5, tzinfo=UTC))
    samples: dict[str, list[tuple[float, float, float]]] = {m: [] for m in scenario.expected}
    for t in np.arange(0.0, scenario.duration + 1, 10.0):
        floor.run_until(float(t))
        values = floor.sample()
        for machine_id, rows in samples.items():
            meter = floor.machines[machine_id].machine.energy_meter
            assert meter is not None
            got = values.get(floor.paths[machine_id], {})
            power, energy = got.get(meter.power_signal, np.nan), got.get(meter.energy_signal)
            assert isinstance(power, float) and isinstance(energy, float)
            rows.append((floor.wall(float(t)).timestamp(), power, energy))
    floor.finish()
    for machine_id, expected in scenario.expected.items():
        machine = floor.machines[machine_id]
        rows_array = np.array(samples[machine_id])
        ts, power, energy = rows_array.T
        good = machine.part_count - machine.reject_count
        declared = expected.energy_per_good_part_kwh
        metered = energy_per_good_part(energy_from_meter(energy).kwh, good).kwh
        integrated = energy_from_power(ts, power)
        assert metered == pytest.approx(declared, rel=scenario.tolerance), machine_id
        assert integrated.kwh / good == pytest.approx(declared, rel=scenario.tolerance)
        assert integrated.uncovered_s == pytest.approx(0.0, abs=1e-6)
        origin = floor.start.timestamp()
        log = [(origin + i.start, origin + i.end, i.state) for i in machine.log]
        by_state = energy_by_state(log, ts, power)
        assert by_state.kwh == pytest.approx(integrated.kwh, rel=1e-9)
        assert by_state.by_group[StateGroup.RUNNING] > by_state.by_group[StateGroup.IDLE] > 0
