"""Energy KPIs: kWh from power samples and cumulative meters, split by state and OEE loss,
15-minute peak demand, time-of-use cost and CO2.

Timestamps are POSIX seconds (float64), power is kW, energy kWh.

Power between two samples is held at the earlier sample's value (step-hold) by default: the
edge reports a signal by exception (OPC UA subscriptions, or a deadband on polled nodes), so a
value stands until the next report, and a machine's power jumps with its state instead of
ramping. Trapezoid integration (`Hold.LINEAR`) suits a meter polled on a fixed period. Either
way, a stretch between two samples longer than `max_gap_s` is not integrated: the data is
missing there, and its seconds are reported as uncovered instead of guessed.

The kernels are Numba (`cache=True`); each has a plain NumPy reference (`*_reference`) written
another way, which the tests compare with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from numba import njit, prange
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, model_validator

from shopfloor.plant import ClockTime, TimeZoneName, Weekday
from shopfloor.states import TIME_ELEMENT, MachineState, TimeElement

Array = npt.NDArray[np.float64]

DEFAULT_MAX_GAP_S = 300.0
"""Longer silences are missing data. A deadbanded signal that may stay unreported for longer
while it is constant needs a larger value."""

DEFAULT_MAX_STEP_KWH = 10.0
"""The most a meter can plausibly count between two samples (an 18 kW press over half an hour):
a drop followed by less than this is a reset or a rollover, anything else a glitch."""

DEMAND_INTERVAL_S = 900.0
"""Utilities bill demand as the mean power over 15-minute intervals aligned to the clock."""

EU_GRID_FACTOR_KG_PER_KWH = 0.251
"""EU-27 greenhouse-gas intensity of electricity generation, about 251 g CO2e/kWh in 2022
(European Environment Agency). Use the supplier's or country's own factor where known."""

WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Hold(StrEnum):
    """How power is taken to move between two samples."""

    STEP = "step"  # held at the earlier sample: report-by-exception data, state-driven power
    LINEAR = "linear"  # trapezoid: a smooth signal polled on a fixed period


# --- kernels ------------------------------------------------------------------------------


_RUN = 4096  # samples a steady run sums at most: redone step by step, it is still in the L2 cache
_CHUNK = 2048  # meter readings checked at a time


@njit(cache=True, fastmath={"reassoc", "contract"})
def _run_kws(ts: Array, ps: Array, max_gap_s: float, linear: bool) -> tuple[float, int]:
    """kW s of the intervals between consecutive samples of ts and ps (all in one bin), and how
    many intervals are plain: to a sample not NaN, a step in (0, max_gap_s].

    One loop without a branch and with a reassociated sum, which the compiler vectorises; the
    sum differs from a step-by-step one only in rounding, and a NaN propagates either way.
    """
    kws = 0.0
    plain = 0
    for j in range(1, ts.size):
        dt = ts[j] - ts[j - 1]
        plain += (dt > 0.0) & (dt <= max_gap_s) & (ps[j] == ps[j])
        kws += (0.5 * (ps[j - 1] + ps[j]) if linear else ps[j - 1]) * dt
    return kws, plain


@njit(cache=True)
def _steps(
    t: Array,
    p: Array,
    first: int,
    stop: int,
    edges: Array,
    max_gap_s: float,
    linear: bool,
    kws: Array,
    covered: Array,
    state: tuple[float, float, int, float, float, float, float],
) -> tuple[float, float, int, float, float, float, float]:
    """Samples first to stop - 1 one by one, from and to the state (t0, p0, k, low, high,
    bin_kws, bin_s) of `integrate_bins`."""
    m = len(edges) - 1
    t0, p0, k, low, high, bin_kws, bin_s = state
    for i in range(first, stop):
        p1 = p[i]
        if np.isnan(p1):
            continue
        t1 = t[i]
        dt = t1 - t0
        if 0.0 < dt <= max_gap_s:
            if low <= t0 and t1 <= high:
                bin_kws += (0.5 * (p0 + p1) if linear else p0) * dt
                bin_s += dt
            else:
                if k < m:
                    kws[k] += bin_kws
                    covered[k] += bin_s
                bin_kws = bin_s = 0.0
                k = _split(t0, p0, t1, p1, edges, k, linear, kws, covered)
                if k < m:
                    low, high = edges[k], edges[k + 1]
        t0, p0 = t1, p1
    return t0, p0, k, low, high, bin_kws, bin_s


@njit(cache=True)
def integrate_bins(
    t: Array, p: Array, edges: Array, max_gap_s: float, linear: bool
) -> tuple[Array, Array]:
    """kWh and covered seconds of a power series in each bin [edges[k], edges[k+1]).

    One pass over samples and bins together; NaN samples are skipped as missing. A sample
    interval inside the current bin, the usual case, adds to two running sums in kW s; one
    that crosses edges is split over the bins it overlaps (`_steps`). Where the sample before
    is in the current bin and not NaN, the samples up to the bin's end (at most `_RUN`) are
    first summed at once (`_run_kws`), and stepped through only if one of them is NaN or
    follows a gap or a repeated timestamp.
    """
    m = max(len(edges) - 1, 0)
    kws = np.zeros(m)
    covered = np.zeros(m)
    low, high = (edges[0], edges[1]) if m > 0 else (np.inf, -np.inf)
    state = (np.nan, np.nan, 0, low, high, 0.0, 0.0)
    i = 0
    while i < len(t):
        if i == 0 or np.isnan(p[i - 1]) or not state[3] <= t[i - 1] or t[i] > state[4]:
            state = _steps(t, p, i, i + 1, edges, max_gap_s, linear, kws, covered, state)
            i += 1
            continue
        t0, _, k, low, high, bin_kws, bin_s = state
        stop = i + int(np.searchsorted(t[i : i + _RUN], high, side="right"))
        run_kws, plain = _run_kws(t[i - 1 : stop], p[i - 1 : stop], max_gap_s, linear)
        if plain == stop - i:
            state = (t[stop - 1], p[stop - 1], k, low, high, bin_kws + run_kws,
                     bin_s + (t[stop - 1] - t0))  # fmt: skip
        else:
            state = _steps(t, p, i, stop, edges, max_gap_s, linear, kws, covered, state)
        i = stop
    _, _, k, _, _, bin_kws, bin_s = state
    if k < m:
        kws[k] += bin_kws
        covered[k] += bin_s
    return kws / 3600.0, covered


@njit(cache=True)
def _split(
    t0: float,
    p0: float,
    t1: float,
    p1: float,
    edges: Array,
    k: int,
    linear: bool,
    kws: Array,
    covered: Array,
) -> int:
    """Add the interval [t0, t1) to each bin it overlaps; returns the bin t1 falls in."""
    m = len(edges) - 1
    slope = (p1 - p0) / (t1 - t0) if linear else 0.0
    while k < m and edges[k + 1] <= t0:
        k += 1
    j = k
    while j < m and edges[j] < t1:
        a = max(t0, edges[j])
        b = min(t1, edges[j + 1])
        if b > a:
            kws[j] += (p0 + slope * (0.5 * (a + b) - t0)) * (b - a)
            covered[j] += b - a
        j += 1
    while k < m and edges[k + 1] <= t1:
        k += 1
    return k


@njit(cache=True)
def meter_increase(values: Array, maximum: float, max_step: float) -> tuple[float, int, int, int]:
    """Energy counted by a cumulative meter, with its resets, rollovers and other drops.

    A drop is a rollover when the meter's `maximum` is known and wrapping past it explains the
    reading with at most `max_step` (maximum - previous + current is added); else a reset when
    the new reading is at most `max_step` (the meter restarted from zero: the reading is
    added); else a glitch or a replaced meter, which is skipped. NaN samples are skipped.

    A meter mostly only rises: each chunk's rises are counted in a loop the compiler
    vectorises, and a chunk that only rises adds its last reading minus the one before it
    (the sum of its steps, rounded once); only a chunk with a NaN or a drop is stepped through.
    """
    state = (0.0, 0, 0, 0, np.nan)  # total, resets, rollovers, drops, previous reading
    for first in range(0, values.size, _CHUNK):
        chunk = values[first : first + _CHUNK]  # indexed from 0: no wraparound check per load
        total, resets, rollovers, drops, previous = state
        rises = int(chunk[0] >= previous)  # 0 after a NaN
        for j in range(1, chunk.size):
            rises += chunk[j] >= chunk[j - 1]
        if rises == chunk.size:
            state = (total + (chunk[-1] - previous), resets, rollovers, drops, chunk[-1])
        else:
            state = _meter_steps(chunk, maximum, max_step, state)
    total, resets, rollovers, drops, _ = state
    return total, resets, rollovers, drops


@njit(cache=True)
def _meter_steps(
    values: Array, maximum: float, max_step: float, state: tuple[float, int, int, int, float]
) -> tuple[float, int, int, int, float]:
    """`meter_increase` reading by reading, from and to (total, resets, rollovers, drops,
    previous reading)."""
    total, resets, rollovers, drops, previous = state
    for value in values:
        if np.isnan(value):
            continue
        if not np.isnan(previous):
            if value >= previous:
                total += value - previous
            elif not np.isnan(maximum) and maximum - previous + value <= max_step:
                total += maximum - previous + value
                rollovers += 1
            elif value <= max_step:
                total += value
                resets += 1
            else:
                drops += 1
        previous = value
    return total, resets, rollovers, drops, previous


@njit(cache=True, parallel=True)
def integrate_many(
    t: Array, p: Array, offsets: npt.NDArray[np.int64], max_gap_s: float, linear: bool
) -> tuple[Array, Array]:
    """kWh and uncovered seconds of many series stored end to end, in parallel over series.

    Series s is t[offsets[s]:offsets[s + 1]]: one machine each, so a plant's day is one call.
    """
    n = len(offsets) - 1
    kwh = np.zeros(n)
    uncovered = np.zeros(n)
    for s in prange(n):
        ts = t[offsets[s] : offsets[s + 1]]
        if len(ts) < 2:
            continue
        edges = np.array([ts[0], ts[-1]])
        e, c = integrate_bins(ts, p[offsets[s] : offsets[s + 1]], edges, max_gap_s, linear)
        kwh[s] = e[0]
        uncovered[s] = ts[-1] - ts[0] - c[0]
    return kwh, uncovered


# --- kWh from power and from meters ---------------------------------------------------------


def _series(t: npt.ArrayLike, power_kw: npt.ArrayLike) -> tuple[Array, Array]:
    ts = np.ascontiguousarray(t, dtype=np.float64)
    ps = np.ascontiguousarray(power_kw, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != ps.shape:
        raise ValueError("timestamps and power must be 1-D arrays of the same length")
    if np.isnan(ts).any() or (np.diff(ts) < 0).any():
        raise ValueError("timestamps must be sorted and not NaN")
    return ts, ps


@dataclass(frozen=True)
class Integrated:
    """Energy over the span of a power series, and how much of the span had data."""

    kwh: float
    covered_s: float
    uncovered_s: float


def energy_from_power(
    t: npt.ArrayLike,
    power_kw: npt.ArrayLike,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    hold: Hold = Hold.STEP,
) -> Integrated:
    """kWh from first to last sample; gaps over `max_gap_s` count as uncovered, not as energy."""
    ts, ps = _series(t, power_kw)
    if len(ts) < 2:
        return Integrated(0.0, 0.0, 0.0)
    edges = ts[[0, -1]]
    kwh, covered = integrate_bins(ts, ps, edges, max_gap_s, hold is Hold.LINEAR)
    span = float(ts[-1] - ts[0])
    return Integrated(float(kwh[0]), float(covered[0]), span - float(covered[0]))


@dataclass(frozen=True)
class MeterIncrease:
    """What a cumulative meter counted, and the discontinuities it went through."""

    kwh: float
    resets: int
    rollovers: int
    drops: int  # neither reset nor rollover: skipped


def energy_from_meter(
    readings_kwh: npt.ArrayLike,
    maximum_kwh: float | None = None,
    max_step_kwh: float = DEFAULT_MAX_STEP_KWH,
) -> MeterIncrease:
    """kWh a cumulative meter counted; `maximum_kwh` is where it rolls over (e.g. 99,999.9).

    Unlike `kernels.counter_increase`, which skips every drop, a reset adds what the meter
    counted since restarting and a rollover adds the wrap, so neither loses energy.
    """
    values = np.ascontiguousarray(readings_kwh, dtype=np.float64)
    maximum = np.nan if maximum_kwh is None else float(maximum_kwh)
    total, resets, rollovers, drops = meter_increase(values, maximum, max_step_kwh)
    return MeterIncrease(float(total), int(resets), int(rollovers), int(drops))


# --- per state, per OEE loss, per good part -------------------------------------------------


class StateGroup(StrEnum):
    """Coarse energy groups: is the machine making parts, powered but not, or switched off?"""

    RUNNING = "running"
    IDLE = "idle"
    OFF = "off"


STATE_GROUP = {state: StateGroup.IDLE for state in MachineState} | {
    MachineState.RUNNING: StateGroup.RUNNING,
    MachineState.OFF: StateGroup.OFF,
}
"""Every powered state that makes no parts is idle energy: micro-stops, waiting (idle,
starved, blocked), setups, breakdowns and planned stops (a machine left on over a break or the
night is the classic waste). ISO 22400 keeps micro-stops in production time; `EnergyByLoss`
follows ISO instead."""


@dataclass(frozen=True)
class EnergyByLoss:
    """Energy in each ISO 22400-2 time element: what production, each lost state and planned
    downtime cost."""

    production_kwh: float  # APT: running and micro-stops
    availability_loss_kwh: dict[MachineState, float]
    planned_downtime_kwh: float


@dataclass(frozen=True)
class StateEnergy:
    """kWh in each machine state over a timeline, and the timeline's seconds without data."""

    by_state: dict[MachineState, float]
    uncovered_s: float

    @property
    def kwh(self) -> float:
        return sum(self.by_state.values())

    @property
    def by_group(self) -> dict[StateGroup, float]:
        groups = dict.fromkeys(StateGroup, 0.0)
        for state, kwh in self.by_state.items():
            groups[STATE_GROUP[state]] += kwh
        return groups

    @property
    def idle_share(self) -> float | None:
        """The share of energy spent powered but making nothing; None without any energy."""
        total = self.kwh
        return self.by_group[StateGroup.IDLE] / total if total > 0 else None

    def by_loss(self) -> EnergyByLoss:
        production = planned = 0.0
        lost: dict[MachineState, float] = {}
        for state, kwh in self.by_state.items():
            element = TIME_ELEMENT[state]
            if element is TimeElement.ACTUAL_PRODUCTION:
                production += kwh
            elif element is TimeElement.PLANNED_DOWNTIME:
                planned += kwh
            else:
                lost[state] = kwh
        return EnergyByLoss(production, lost, planned)


def energy_by_state(
    intervals: Iterable[tuple[float, float, MachineState]],
    t: npt.ArrayLike,
    power_kw: npt.ArrayLike,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    hold: Hold = Hold.STEP,
) -> StateEnergy:
    """kWh of the power series inside each state interval (start, end, state), per state.

    Intervals must not overlap (a state log never does); time outside every interval is left
    out, and seconds inside an interval without power data count as uncovered.
    """
    spans = list(intervals)
    ts, ps = _series(t, power_kw)
    starts = np.array([s[0] for s in spans], dtype=np.float64)
    ends = np.array([s[1] for s in spans], dtype=np.float64)
    if (ends < starts).any():
        raise ValueError("a state interval ends before it starts")
    edges = np.unique(np.concatenate([starts, ends]))
    kwh, covered = integrate_bins(ts, ps, edges, max_gap_s, hold is Hold.LINEAR)
    cum_kwh = np.concatenate([[0.0], np.cumsum(kwh)])
    cum_s = np.concatenate([[0.0], np.cumsum(covered)])
    first, last = np.searchsorted(edges, starts), np.searchsorted(edges, ends)
    interval_kwh = cum_kwh[last] - cum_kwh[first]
    interval_covered = cum_s[last] - cum_s[first]
    by_state: dict[MachineState, float] = {}
    for (_, _, state), e in zip(spans, interval_kwh, strict=True):
        by_state[state] = by_state.get(state, 0.0) + float(e)
    uncovered = float(np.sum(ends - starts) - np.sum(interval_covered))
    return StateEnergy(by_state, uncovered)


@dataclass(frozen=True)
class PerGoodPart:
    """kWh per good part, or None with the reason it cannot be given."""

    kwh: float | None
    reason: str | None = None


def energy_per_good_part(kwh: float, good_parts: float) -> PerGoodPart:
    """A window without good parts has no energy per part: that is reported, not divided."""
    if good_parts <= 0:
        return PerGoodPart(None, f"no good parts ({good_parts:g}) for {kwh:g} kWh")
    return PerGoodPart(kwh / good_parts)


# --- demand, cost, CO2 ----------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalMeans:
    """Mean power in fixed clock-aligned intervals: their starts, means and data coverage."""

    starts: Array  # POSIX seconds
    mean_kw: Array  # over the covered part of each interval; NaN where none is
    coverage: Array  # covered share of each interval, 0 to 1


def interval_means(
    t: npt.ArrayLike,
    power_kw: npt.ArrayLike,
    interval_s: float = DEMAND_INTERVAL_S,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    hold: Hold = Hold.STEP,
) -> IntervalMeans:
    """Mean power in intervals aligned to multiples of `interval_s` since the epoch.

    For 15 minutes that is the local clock in every time zone: all UTC offsets in use are
    whole quarter hours.
    """
    ts, ps = _series(t, power_kw)
    if len(ts) < 2:
        return IntervalMeans(np.zeros(0), np.zeros(0), np.zeros(0))
    first = np.floor(ts[0] / interval_s) * interval_s
    count = max(int(np.ceil((ts[-1] - first) / interval_s)), 1)
    edges = first + interval_s * np.arange(count + 1, dtype=np.float64)
    kwh, covered = integrate_bins(ts, ps, edges, max_gap_s, hold is Hold.LINEAR)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(covered > 0, kwh * 3600.0 / covered, np.nan)
    return IntervalMeans(edges[:-1], mean, covered / interval_s)


@dataclass(frozen=True)
class PeakDemand:
    kw: float
    start: datetime  # of the interval, UTC
    coverage: float  # share of the interval with data


def peak_demand(
    t: npt.ArrayLike,
    power_kw: npt.ArrayLike,
    interval_s: float = DEMAND_INTERVAL_S,
    min_coverage: float = 0.9,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    hold: Hold = Hold.STEP,
) -> PeakDemand | None:
    """The highest interval mean, as a utility bills it; None when no interval has enough data.

    Intervals covered less than `min_coverage` (the series' cut first and last ones, long
    gaps) are left out, so a few seconds' spike cannot pose as a quarter hour's demand.
    """
    means = interval_means(t, power_kw, interval_s, max_gap_s, hold)
    eligible = np.flatnonzero((means.coverage >= min_coverage) & (means.coverage > 0))
    if len(eligible) == 0:
        return None
    best = int(eligible[np.argmax(means.mean_kw[eligible])])
    start = datetime.fromtimestamp(float(means.starts[best]), UTC)
    return PeakDemand(float(means.mean_kw[best]), start, float(means.coverage[best]))


BASE_BAND = "base"


class TariffBand(BaseModel):
    """A price for the hours from `start` to `end` local time on `days`; an `end` at or before
    `start` runs past midnight into the next day (a Friday night band covers Saturday
    morning)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    days: list[Weekday] = list(WEEKDAYS)
    start: ClockTime
    end: ClockTime
    price_per_kwh: NonNegativeFloat


class Tariff(BaseModel):
    """A time-of-use tariff: bands (the first listed wins where they overlap), a base price for
    all other hours, and an optional demand charge per kW of the 15-minute peak."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName
    bands: list[TariffBand] = Field(default_factory=list)
    base_price_per_kwh: NonNegativeFloat
    demand_charge_per_kw: NonNegativeFloat | None = None

    @model_validator(mode="after")
    def _names_unique(self) -> Tariff:
        names = [band.name for band in self.bands]
        if len(set(names)) != len(names) or BASE_BAND in names:
            raise ValueError(f"band names must be unique and not {BASE_BAND!r}")
        return self

    def windows(self, start_s: float, end_s: float) -> list[tuple[int, float, float]]:
        """(band index, begin, end) in POSIX seconds of every band occurrence near a span."""
        tz = ZoneInfo(self.timezone)
        day = datetime.fromtimestamp(start_s, tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end_s, tz).date()
        found = []
        while day <= last:
            for index, band in enumerate(self.bands):
                if WEEKDAYS[day.weekday()] not in band.days:
                    continue
                begin = datetime.combine(day, band.start, tz)
                end = datetime.combine(day, band.end, tz)
                if end <= begin:
                    end += timedelta(days=1)
                found.append((index, begin.timestamp(), end.timestamp()))
            day += timedelta(days=1)
        return found


@dataclass(frozen=True)
class EnergyCost:
    kwh_by_band: dict[str, float]  # BASE_BAND for hours no band covers
    cost_by_band: dict[str, float]
    peak: PeakDemand | None  # when the tariff has a demand charge
    demand_charge: float

    @property
    def energy_cost(self) -> float:
        return sum(self.cost_by_band.values())

    @property
    def total(self) -> float:
        return self.energy_cost + self.demand_charge


def energy_cost(
    t: npt.ArrayLike,
    power_kw: npt.ArrayLike,
    tariff: Tariff,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    hold: Hold = Hold.STEP,
) -> EnergyCost:
    """Cost of the energy in a series under a time-of-use tariff, plus its demand charge.

    Sample intervals are split where a band begins or ends, so each part is priced by the band
    it falls in. The demand charge applies to the series' peak: pass one billing period.
    """
    ts, ps = _series(t, power_kw)
    names = [band.name for band in tariff.bands] + [BASE_BAND]
    kwh_by_band = dict.fromkeys(names, 0.0)
    if len(ts) >= 2:
        windows = tariff.windows(float(ts[0]), float(ts[-1]))
        bounds = [x for _, a, b in windows for x in (a, b) if ts[0] < x < ts[-1]]
        edges = np.unique(np.concatenate([ts[[0, -1]], np.array(bounds, dtype=np.float64)]))
        kwh, _ = integrate_bins(ts, ps, edges, max_gap_s, hold is Hold.LINEAR)
        band = np.full(len(kwh), len(tariff.bands))
        middle = (edges[:-1] + edges[1:]) / 2
        # The first listed band is written last, so it wins where bands overlap.
        for index, a, b in sorted(windows, key=lambda window: -window[0]):
            band[(middle >= a) & (middle < b)] = index
        for index, e in zip(band, kwh, strict=True):
            kwh_by_band[names[index]] += float(e)
    prices = [band.price_per_kwh for band in tariff.bands] + [tariff.base_price_per_kwh]
    cost = {name: kwh_by_band[name] * price for name, price in zip(names, prices, strict=True)}
    peak = None
    charge = 0.0
    if tariff.demand_charge_per_kw is not None:
        peak = peak_demand(ts, ps, max_gap_s=max_gap_s, hold=hold)
        charge = peak.kw * tariff.demand_charge_per_kw if peak else 0.0
    return EnergyCost(kwh_by_band, cost, peak, charge)


def co2_kg(kwh: float, grid_factor_kg_per_kwh: float = EU_GRID_FACTOR_KG_PER_KWH) -> float:
    """Scope-2 emissions of the energy: kWh times the grid's emission factor."""
    if grid_factor_kg_per_kwh < 0:
        raise ValueError("a grid emission factor cannot be negative")
    return kwh * grid_factor_kg_per_kwh
