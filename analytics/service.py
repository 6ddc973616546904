"""The analytics service: KPIs, energy and anomalies recomputed from the store, written back.

Every `interval_s` it reads each machine's recent history and writes, next to the machine's own
signals (so every store reader finds them):

- `kpi.<name>` over a rolling window, stamped with the window's end: OEE and its factors,
  parts, energy, energy per good part and the like (`KPI_UNITS`);
- `kpi.shift.<name>` and `report.shift` (the whole OEE loss tree, the OEE of each product made
  and the energy breakdown, as JSON) for the shift in progress and the one before, stamped
  with the shift's start: rewritten as the shift goes on, final once it is over, so a shift's
  history is one point per shift;
- `anomaly.<signal>`: the anomaly score of every process sample, and `event.anomaly_<signal>`
  events, linked to the stop that followed them when one did (`LossLink`).

Its clock is the data's: "now" is the newest reading of the plant, so a replay at x60 or a
backfilled day is analysed like a live line.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from analytics.anomaly import (
    DetectorSettings,
    RelativeEntropySettings,
    events,
    hotelling,
    relative_entropy,
    t2_level,
)
from analytics.anomaly.normal import NormalEvent, Scored
from analytics.energy import (
    EU_GRID_FACTOR_KG_PER_KWH,
    StateEnergy,
    co2_kg,
    energy_by_state,
    energy_from_meter,
    peak_demand,
)
from analytics.history import (
    FloatArray,
    HistoryCache,
    MachineHistory,
    Series,
    machine_history,
    points_in_force,
    process_signals,
    running_rows,
    state_log,
    state_rows,
    while_running,
)
from analytics.learning import ALIGN_S, LearnError, MachineNormal, learn_machine, normal_model
from analytics.levels import SIGNAL_OFF, SIGNAL_ON, T2_Z
from analytics.oee import OeeReport, ShiftOccurrence, StateEvent, oee_timeline, shift_calendar
from analytics.oee import shift_occurrences as occurrences_of
from shopfloor.kpis import KPI_PREFIX, KPI_UNITS, SHIFT_KPI_PREFIX, SHIFT_REPORT, ShiftReportDoc
from shopfloor.learning import NormalModelDoc, model_point, read_model, read_request, request_point
from shopfloor.messages import AssetPath, Event, EventType, LossLink
from shopfloor.plant import Machine, Plant
from shopfloor.states import STATE, STOP_REASON, MachineState
from shopfloor.store import (
    ANOMALY_EVENT_PREFIX,
    EVENT_PREFIX,
    SCORE_PREFIX,
    SILENT_EVENT_PREFIX,
    Point,
    Store,
    StoreError,
    anomaly_event_name,
    data_clock,
)

log = logging.getLogger(__name__)

MACHINE = "machine"  # the score and events of all a machine's process signals together
PREFIXES = (ANOMALY_EVENT_PREFIX, SILENT_EVENT_PREFIX)  # of the events found in one signal
NO_SAMPLES = Series(np.empty(0), np.empty(0))


# Learns a signal's range and shapes from 600 samples taken while running (10 min at 1 Hz), then
# scores each 60-sample window against every shape seen; restarts after 10 min without data.
# Chosen on the simulator's labelled faults (bench/faults.py), where it found more faults with
# fewer false events than the z-score detectors.
LIVE_DETECTOR = RelativeEntropySettings(window=60, learning=600, max_gap=600.0)


# Slower forgetting than a single signal's: a covariance of several signals needs more samples.
MACHINE_DETECTOR = DetectorSettings(alpha=0.002, warmup=300, max_gap=600.0)


@dataclass(frozen=True)
class AnalyticsSettings:
    """Rolling KPI window, recomputation interval, anomaly detection and loss linking."""

    window: timedelta = timedelta(hours=1)
    interval_s: float = 10.0
    lookback: timedelta = timedelta(hours=2)  # of history the detector is run over, at least
    max_lookback: timedelta = timedelta(hours=24)  # when sparse data needs more to warm up
    detector: RelativeEntropySettings = LIVE_DETECTOR
    on: float = SIGNAL_ON  # score that opens an anomaly event (the detector's confidence)
    off: float = SIGNAL_OFF  # score under which it closes, after `quiet` samples
    quiet: int = 30
    min_samples: int = 3
    silent_after: float = 60.0  # typical sampling intervals without a value while running
    machine_detector: DetectorSettings = MACHINE_DETECTOR  # Hotelling T² over all signals
    align_s: float = ALIGN_S  # how old a signal's value may be to sit next to the others
    t2_z: float = T2_Z  # T² events at the rarity of an 8-sigma single-signal value
    link_horizon: timedelta = timedelta(hours=2)  # an anomaly is linked to a stop this soon
    grid_factor_kg_per_kwh: float = EU_GRID_FACTOR_KG_PER_KWH


# --- KPIs and energy of a window ------------------------------------------------------------


@dataclass(frozen=True)
class MachineReport:
    """OEE (None for a machine that makes no parts) and energy of one machine over a window."""

    start: float
    end: float
    oee: OeeReport | None
    energy_kwh: float | None
    energy: StateEnergy | None
    peak_kw: float | None
    co2_kg: float | None
    by_product: dict[str, OeeReport] = field(default_factory=dict)  # machines reporting one

    def kpis(self) -> dict[str, float]:
        """The headline figures by KPI name; the undefined ones are left out."""
        o = self.oee
        good = o.good if o else None
        values: dict[str, float | None] = {
            "energy": self.energy_kwh,
            "idle_energy_share": self.energy.idle_share if self.energy else None,
            "peak_demand": self.peak_kw,
            "co2": self.co2_kg,
            "energy_per_good_part": self.energy_kwh / good if self.energy_kwh and good else None,
        }
        if o:
            values |= {
                "availability": o.availability, "performance": o.performance,
                "quality": o.quality, "oee": o.oee, "teep": o.teep, "nee": o.nee,
                "mtbf": o.mtbf_s, "mttr": o.mttr_s, "parts": float(o.produced),
                "rejects": float(o.bad), "good_parts": float(o.good),
            }  # fmt: skip
        return {name: v for name, v in values.items() if v is not None and math.isfinite(v)}

    def document(self, shift: str, day: date) -> ShiftReportDoc:
        """The report as a shift's `report.shift` point holds it: the loss tree and the energy
        of each state, for the dashboard."""
        energy = self.energy
        return ShiftReportDoc.model_validate(
            {
                "shift": shift,
                "day": day,
                "oee": self.oee.to_dict() if self.oee else None,
                "by_product": {p: r.to_dict() for p, r in self.by_product.items()},
                "energy_kwh": self.energy_kwh,
                "energy_by_state_kwh": {s.value: v for s, v in energy.by_state.items()}
                if energy
                else {},
                "energy_by_group_kwh": {g.value: v for g, v in energy.by_group.items()}
                if energy
                else {},
                "kpis": self.kpis(),
            }
        )


def ideal_cycle_times(plant: Plant, machine: Machine) -> dict[str, float] | None:
    """The machine's ideal cycle time per product; parts of no known product (a machine that
    does not report its product) count at that of the first plant product it makes. None for
    a machine that makes no parts."""
    first = plant.default_product(machine)
    if first is None:
        return None
    return {**machine.ideal_cycle_time, "": machine.ideal_cycle_time[first]}


def products_made(log_: list[StateEvent], start: float, end: float) -> list[str]:
    """The products loaded at some time in [start, end), in order of first loading."""
    in_force = [e for e in log_ if e.time < end]
    first = max((i for i, e in enumerate(in_force) if e.time <= start), default=0)
    return list(dict.fromkeys(e.product for e in in_force[first:] if e.product))


def _intervals(
    history: MachineHistory, start: float, end: float
) -> Iterator[tuple[float, float, MachineState]]:
    """The state log as (start, end, state) spans clipped to [start, end)."""
    log_ = history.events  # none yet, while a machine's first state is on its way
    for event, until in zip(log_, [e.time for e in log_[1:]] + [end][: len(log_)], strict=True):
        a, b = max(event.time, start), min(until, end)
        if a < b:
            yield a, b, event.state


def _energy(
    history: MachineHistory, start: float, end: float
) -> tuple[float | None, StateEnergy | None, float | None]:
    """Meter kWh of the window, kWh by state from the power signal, and the 15-min peak."""
    power, meter = history.power, history.meter
    kwh = energy_from_meter(meter.values).kwh if meter is not None and len(meter) >= 2 else None
    if power is None or len(power) < 2:
        return kwh, None, None
    inside = (power.t >= start) & (power.t < end)
    by_state = energy_by_state(_intervals(history, start, end), power.t, power.values)
    peak = peak_demand(power.t[inside], power.values[inside]) if inside.sum() >= 2 else None
    return (kwh if kwh is not None else by_state.kwh), by_state, peak.kw if peak else None


def machine_report(
    plant: Plant, machine: Machine, history: MachineHistory, start: float, end: float,
    grid_factor: float = EU_GRID_FACTOR_KG_PER_KWH,
) -> MachineReport:  # fmt: skip
    """OEE (shift calendar as planned time when the plant has shifts) and energy of [start, end)."""
    ideal = ideal_cycle_times(plant, machine)
    oee, by_product = None, {}
    if ideal is not None:
        planned = (
            shift_calendar(plant.shifts, plant.site.timezone, start, end) if plant.shifts else None
        )
        log_ = history.events
        oee = oee_timeline(log_, start, end, ideal, planned)
        by_product = {
            product: oee_timeline(log_, start, end, ideal, planned, product=product)
            for product in products_made(log_, start, end)
        }
    kwh, by_state, peak = _energy(history, start, end)
    co2 = co2_kg(kwh, grid_factor) if kwh is not None else None
    return MachineReport(start, end, oee, kwh, by_state, peak, co2, by_product)


def kpi_points(report: MachineReport, path: AssetPath, at: datetime, prefix: str) -> list[Point]:
    return [
        Point(path, f"{prefix}{name}", at, value, unit=KPI_UNITS[name])
        for name, value in report.kpis().items()
    ]


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def shifts_to_report(plant: Plant, now: float, lookback_s: float) -> list[ShiftOccurrence]:
    """The shift in progress and those that ended within `lookback_s` (to finish them); a plant
    without shifts reports calendar days in its own time zone."""
    if plant.shifts:
        return occurrences_of(plant.shifts, plant.site.timezone, now - lookback_s, now)
    zone = ZoneInfo(plant.site.timezone)
    today = datetime.fromtimestamp(now, zone).date()
    days = [today - timedelta(days=1), today]
    spans = [datetime.combine(d, datetime.min.time(), zone).timestamp() for d in days]
    return [
        ShiftOccurrence("day", d, s, s + 86_400.0)
        for d, s in zip(days, spans, strict=True)
        if s + 86_400.0 > now - lookback_s
    ]


# --- anomalies ------------------------------------------------------------------------------


def anomaly_score(series: Series, settings: AnalyticsSettings) -> FloatArray:
    """How confidently the recent shape of the signal is new, in [0, 1]; NaN in warm-up."""
    return relative_entropy(series.t, series.values, settings.detector)


def machine_score(
    signals: dict[str, Series], log_: list[StateEvent], settings: AnalyticsSettings
) -> tuple[Series, float] | None:
    """Hotelling T² of a machine's process signals together while it runs, and the level that
    is as rare as `t2_z` standard deviations of one signal; None with fewer than two signals.

    It sees what no single signal shows: signals that usually move together parting ways."""
    if sum(len(s) > 0 for s in signals.values()) < 2:
        return None
    grid, x = running_rows({k: s for k, s in signals.items() if len(s)}, log_, settings.align_s)
    t2 = hotelling(grid, np.ascontiguousarray(x), settings.machine_detector)
    return Series(grid, t2), t2_level(settings.t2_z, x.shape[1])


def score_events(
    signal: str, series: Series, score: FloatArray, settings: AnalyticsSettings
) -> list[Event]:
    """The anomaly score thresholded into events; one still high near the end is open."""
    s = settings
    found = events(series.t, np.nan_to_num(score), signal, s.on, s.off, s.quiet, s.min_samples)
    return [
        Event(
            type=EventType.ANOMALY,
            name=anomaly_event_name(signal),
            start=_utc(a.start),
            end=None if a.end_row >= len(series) - s.quiet else _utc(a.end),
            note=f"{signal}: score {a.peak_score:.3f} at {_utc(a.peak):%H:%M:%S}Z",
        )
        for a in found
    ]


def silence_events(
    signal: str, series: Series, log_: list[StateEvent], now: float, settings: AnalyticsSettings
) -> list[Event]:
    """Spans in which a signal sent nothing for `silent_after` samples' worth of running time.

    Values are reported by exception (OPC UA sends a value when it changes), so a stuck sensor
    and a dropped-out one look alike: a noisy signal that stops arriving while its machine runs.
    A sample's worth is the signal's own sampling interval around the gap (the larger of the
    typical step before and after it), so a stream that changes rate (a replay sped up from
    x1 to x60) is not taken for a silent one. A silence still going on at `now` is open.
    """
    if len(series) < 2:
        return []
    edges = np.append(series.t, now)
    steps = np.diff(edges)
    # No gap shorter than this can be a silence, whatever the rate around it.
    floor = settings.silent_after * float(np.percentile(steps[:-1], 5))
    found = []
    for i in np.flatnonzero(steps > floor).tolist():
        limit = settings.silent_after * _typical_step(steps, i)
        a, b = float(edges[i]), float(edges[i + 1])
        if b - a <= limit or _running_s(log_, a, b) <= limit:
            continue  # within the signal's rhythm, or stopped for most of it
        found.append(
            Event(
                type=EventType.ANOMALY,
                name=anomaly_event_name(signal, SILENT_EVENT_PREFIX),
                start=_utc(a),
                end=None if i + 1 == len(series) else _utc(b),
                note=f"{signal}: no value for {(b - a) / 60:.0f} min while running",
            )
        )
    return found


def _typical_step(steps: FloatArray, gap: int, around: int = 60) -> float:
    """The median sampling step before the gap, or after it when larger (the last step, up to
    `now`, has no after)."""
    before = steps[max(0, gap - around) : gap]
    after = steps[gap + 1 : min(len(steps) - 1, gap + 1 + around)]
    medians = [float(np.median(part)) for part in (before, after) if len(part)]
    return max(medians, default=float(steps[gap]))


def _running_s(log_: list[StateEvent], a: float, b: float) -> float:
    """Seconds of [a, b) the machine spent running."""
    ends = [e.time for e in log_[1:]] + [math.inf]
    return sum(
        max(0.0, min(end, b) - max(e.time, a))
        for e, end in zip(log_, ends, strict=True)
        if e.state is MachineState.RUNNING
    )


def learnt_score(
    model: MachineNormal,
    signals: dict[str, Series],
    log_: list[StateEvent],
    settings: AnalyticsSettings,
) -> tuple[Series, Scored] | None:
    """A machine's rows scored by its learnt model, each in its state (the series holds the
    evidence that opens events); None when there are none."""
    chosen = {s: signals.get(s, NO_SAMPLES) for s in model.signals}
    t, x, states = state_rows(chosen, log_, settings.align_s)
    if len(t) == 0:
        return None
    scored = model.score(x, states)
    return Series(t, scored.score), scored


def learnt_events(
    model: MachineNormal, rows: Series, scored: Scored, settings: AnalyticsSettings
) -> list[Event]:
    """The learnt model's events as stored, one still reaching the newest rows open."""
    quiet_s = settings.quiet * _step(rows)
    return [normal_event(e, rows.t[-1], quiet_s) for e in model.events(scored, rows.t)]


def normal_event(found: NormalEvent, last_row: float, quiet_s: float) -> Event:
    """A learnt model's event as stored: open while it reaches the newest rows, with its peak
    and each signal's share of the score over it (to 0.1 %, plenty for people)."""
    return Event(
        type=EventType.ANOMALY,
        name=anomaly_event_name(MACHINE),
        start=_utc(found.start),
        end=None if found.end >= last_row - quiet_s else _utc(found.end),
        note=f"{MACHINE}: score {found.peak_score:.3f} at {_utc(found.peak):%H:%M:%S}Z",
        contributions={s: round(share, 3) for s, share in found.contributions.items()},
    )


def shift_key(shift: ShiftOccurrence) -> str:
    return f"shift {shift.name} {shift.start}"


@dataclass
class _Known:
    """The anomaly events of one machine already written, by name, so that a recomputation
    extends an event instead of starting a second one."""

    events: dict[str, list[Event]] = field(default_factory=dict)
    found_now: set[tuple[str, datetime]] = field(default_factory=set)  # (name, start) this cycle

    def merge(self, found: Event, tolerance_s: float) -> Event | None:
        """`found` as it should be stored (keeping an earlier start), or None if unchanged."""
        known = self.events.setdefault(found.name, [])
        for i, old in enumerate(known):
            old_end = (old.end or found.start).timestamp() + tolerance_s
            if old.start.timestamp() - tolerance_s <= found.start.timestamp() <= old_end:
                update = {
                    "end": found.end,
                    "note": found.note,
                    "contributions": found.contributions,
                }
                merged = old.model_copy(update=update)
                self.found_now.add((old.name, old.start))
                if merged == old:
                    return None
                known[i] = merged
                return merged
        known.append(found)
        self.found_now.add((found.name, found.start))
        return found

    def keep_open(self, names: list[str]) -> None:
        """Leave these events as they are this cycle: nothing was there to look at (a signal
        with no data in the window, silent all along)."""
        self.found_now |= {(n, e.start) for n in names for e in self.events.get(n, [])}

    def close_vanished(self, now: datetime) -> list[Event]:
        """Open events this recomputation no longer found, closed at `now`: a silence that
        more data showed to be the signal slowing down (a replay sped up), a score that fell
        back unseen. Left open, they would be "ongoing" for ever."""
        closed = []
        for name, known in self.events.items():
            for i, old in enumerate(known):
                if old.end is None and (name, old.start) not in self.found_now:
                    known[i] = old.model_copy(update={"end": max(now, old.start)})
                    closed.append(known[i])
        self.found_now.clear()
        return closed

    def replace(self, event: Event) -> None:
        self.events[event.name] = [
            event if e.start == event.start else e for e in self.events[event.name]
        ]

    def forget_before(self, ts: datetime) -> None:
        for name, known in self.events.items():
            self.events[name] = [e for e in known if e.end is None or e.end >= ts]


def _link(
    store: Store, path: AssetPath, event: Event, until: datetime, horizon: timedelta
) -> LossLink | None:
    """The first unplanned stop that began within `horizon` of the anomaly's start."""
    end = min(event.start + horizon, until)
    by_signal = {s: points_in_force(store, path, s, event.start, end) for s in (STATE, STOP_REASON)}
    spans = state_log(by_signal)
    for current, following in zip(spans, [*spans[1:], None], strict=True):
        if current.state is MachineState.UNPLANNED_STOP and current.time >= event.start.timestamp():
            stop_end = following.time if following else until.timestamp()
            return LossLink(
                state=current.state.value,
                reason=current.reason,
                start=_utc(current.time),
                lead_s=current.time - event.start.timestamp(),
                duration_s=max(0.0, stop_end - current.time),
            )
    return None


# --- the service ----------------------------------------------------------------------------


class AnalyticsService:
    """Recomputes every machine's KPIs, energy and anomalies into the store."""

    def __init__(
        self,
        plant: Plant,
        store: Store,
        settings: AnalyticsSettings = AnalyticsSettings(),
        after_cycle: Sequence[Callable[[datetime], None]] = (),
    ):
        """`after_cycle` is called with the data clock after each recomputation has been
        written: how the start-up layer has the readiness assessment rescored, without the
        analytics knowing of it."""
        self.plant, self.store, self.settings = plant, store, settings
        self.after_cycle = list(after_cycle)
        self.stopping = threading.Event()
        self._known: dict[AssetPath, _Known] = {}
        self._models: dict[AssetPath, tuple[NormalModelDoc, MachineNormal]] = {}
        self._scored_until: dict[tuple[AssetPath, str], float] = {}
        self._lookback: dict[AssetPath, timedelta] = {}
        self._cache = HistoryCache(store)

    @staticmethod
    def warm_up() -> float:
        """Compile (or load from Numba's cache) every kernel the service uses, once at start,
        so that no recomputation pays for it; returns the seconds it took."""
        began = time.perf_counter()
        t = np.arange(64, dtype=np.float64)
        series = Series(t, np.sin(t))
        score = anomaly_score(
            series, AnalyticsSettings(detector=RelativeEntropySettings(learning=8, window=4))
        )
        events(t, np.nan_to_num(score), "warm", 1.0, 0.5, 2, 1)
        energy_by_state([(0.0, 63.0, MachineState.RUNNING)], t, np.ones_like(t))
        peak_demand(t * 60.0, np.ones_like(t))
        energy_from_meter(t)
        return time.perf_counter() - began

    def run_once(self, now: datetime | None = None) -> list[Point]:
        """One recomputation at `now` (default: the data clock); returns what it wrote."""
        now = now or data_clock(self.plant, self.store)
        if now is None:
            return []
        points: list[Point] = []
        shifts = shifts_to_report(self.plant, now.timestamp(), self._finish_s)
        self._cache.forget({"rolling", "anomalies", *map(shift_key, shifts)})
        for path, machine in self.plant.machines():
            points += self._kpis(path, machine, now, shifts)
            points += self._anomalies(path, machine, now)
        self.store.write(points)
        for hook in self.after_cycle:
            hook(now)
        return points

    @property
    def _finish_s(self) -> float:
        """How long after its end a shift is still recomputed, to take its last data in."""
        return 2 * self.settings.interval_s + 60.0

    def _kpis(
        self, path: AssetPath, machine: Machine, now: datetime, shifts: list[ShiftOccurrence]
    ) -> list[Point]:
        end = now.timestamp()
        start = end - self.settings.window.total_seconds()
        read = self._cache.reader("rolling")
        history = machine_history(read, path, machine, _utc(start), now)
        grid = self.settings.grid_factor_kg_per_kwh
        report = machine_report(self.plant, machine, history, start, end, grid)
        points = kpi_points(report, path, now, KPI_PREFIX)
        for shift in shifts:
            shift_end = min(shift.end, end)
            if shift_end <= shift.start:
                continue
            at = _utc(shift.start)
            read = self._cache.reader(shift_key(shift))
            history = machine_history(read, path, machine, at, _utc(shift_end))
            report = machine_report(self.plant, machine, history, shift.start, shift_end, grid)
            detail = report.document(shift.name, shift.day)
            points += kpi_points(report, path, at, SHIFT_KPI_PREFIX)
            points.append(Point(path, SHIFT_REPORT, at, detail.model_dump_json()))
        return points

    def _anomalies(self, path: AssetPath, machine: Machine, now: datetime) -> list[Point]:
        settings = self.settings
        known = self._known.get(path)
        if known is None:
            known = self._known[path] = self._load_known(path, machine, now)
        points: list[Point] = []
        since = now - self._lookback.get(path, settings.lookback)
        read = self._cache.reader("anomalies")
        states = state_log({STATE: read(path, STATE, since, now)})
        signals = {s: Series.of(read(path, s, since, now)) for s in process_signals(machine)}
        running = {s: while_running(series, states) for s, series in signals.items()}
        self._fit_lookback(path, running)
        points += self._answer_request(path, machine, now)
        model = self._model(path, now)
        for signal, series in signals.items():
            if len(series) == 0:
                known.keep_open([anomaly_event_name(signal, prefix) for prefix in PREFIXES])
                continue
            found = silence_events(signal, series, states, now.timestamp(), settings)
            if model is None:
                score = anomaly_score(running[signal], settings)
                points += self._score_points(path, signal, series, score)
                found += score_events(signal, series, score, settings)
            points += self._event_points(path, found, known, settings.quiet * _step(series))
        joint = machine_score(signals, states, settings)
        if model is not None:
            points += self._normal_points(path, model, signals, states, known)
        elif joint is None:
            known.keep_open([anomaly_event_name(MACHINE)])
        else:
            t2, level = joint
            points += self._score_points(path, MACHINE, t2, t2.values)
            found = score_events(MACHINE, t2, t2.values, replace(settings, on=level, off=level))
            points += self._event_points(path, found, known, settings.quiet * _step(t2))
        points += self._link_points(path, known, now)
        points += [Point.from_event(path, event) for event in known.close_vanished(now)]
        known.forget_before(now - settings.link_horizon)
        return points

    def _normal_points(
        self,
        path: AssetPath,
        model: MachineNormal,
        signals: dict[str, Series],
        states: list[StateEvent],
        known: _Known,
    ) -> list[Point]:
        """Scores and events of the machine's learnt model: the machine's score (a ratio to its
        alarm level), each signal's part of it as the signal's score, and events that carry
        each signal's share."""
        learnt = learnt_score(model, signals, states, self.settings)
        if learnt is None:
            known.keep_open([anomaly_event_name(MACHINE)])
            return []
        rows, scored = learnt
        points = self._score_points(path, MACHINE, rows, scored.score)
        for signal, share in zip(model.signals, scored.contributions.T, strict=True):
            points += self._score_points(path, signal, rows, scored.instant * share)
        found = learnt_events(model, rows, scored, self.settings)
        return points + self._event_points(path, found, known, self.settings.quiet * _step(rows))

    def _model(self, path: AssetPath, now: datetime) -> MachineNormal | None:
        """The machine's model in force, read again only when another was stored."""
        doc = read_model(self.store, path, now)
        if doc is None:
            return None
        cached = self._models.get(path)
        if cached is None or cached[0] != doc:
            try:
                cached = self._models[path] = (doc, normal_model(doc))
            except ValueError as exc:
                log.warning("%s: unreadable normal model, streaming instead: %s", path.asset, exc)
                return None
        return cached[1]

    def _answer_request(self, path: AssetPath, machine: Machine, now: datetime) -> list[Point]:
        """Learn the period the dashboard declared normal, if one waits: the model (stamped
        now, so it is the one in force from the next cycle on) and the request marked learnt,
        or marked with the error that stopped it."""
        found = read_request(self.store, path, now)
        if found is None or not found[1].pending:
            return []
        at, request = found
        try:
            doc = learn_machine(
                self.store, path, machine, request.start, request.end, align_s=self.settings.align_s
            )
        except LearnError as exc:
            log.warning("learning normal: %s", exc)
            failed = {"error": str(exc), "cause": exc.cause, "cause_values": exc.values}
            return [request_point(path, at, request.model_copy(update=failed))]
        log.info("learnt normal of %s from %d rows", machine.name, doc.rows)
        answered = request.model_copy(update={"learnt": True})
        return [model_point(path, now, doc), request_point(path, at, answered)]

    def _fit_lookback(self, path: AssetPath, running: dict[str, Series]) -> None:
        """Look further back next time when even the busiest signal has too few samples taken
        while running for the detector to learn (data arriving every 30 s at x60, not every
        second); come back towards `lookback` once it has plenty."""
        settings = self.settings
        needed = settings.detector.learning + settings.detector.window
        samples = max((int(np.count_nonzero(~np.isnan(s.values))) for s in running.values()),
                      default=0)  # fmt: skip
        current = self._lookback.get(path, settings.lookback)
        if samples < needed:
            self._lookback[path] = min(2 * current, settings.max_lookback)
        elif samples > 4 * needed:
            self._lookback[path] = max(current / 2, settings.lookback)

    def _score_points(
        self, path: AssetPath, signal: str, series: Series, score: FloatArray
    ) -> list[Point]:
        """Scores of the samples not scored yet: earlier ones keep the score they were given,
        and a sample left unscored (the detector still learning) may get one later, once the
        detector looks further back."""
        key = (path, signal)
        new = (series.t > self._scored_until.get(key, -math.inf)) & np.isfinite(score)
        if new.any():
            self._scored_until[key] = float(series.t[new][-1])
        return [
            Point(path, f"{SCORE_PREFIX}{signal}", _utc(t), float(s))
            for t, s in zip(series.t[new], score[new], strict=True)
        ]

    def _event_points(
        self, path: AssetPath, found: list[Event], known: _Known, tolerance_s: float
    ) -> list[Point]:
        """The events that are new or changed since they were last written."""
        stored = [known.merge(event, tolerance_s) for event in found]
        return [Point.from_event(path, event) for event in stored if event is not None]

    def _link_points(self, path: AssetPath, known: _Known, now: datetime) -> list[Point]:
        points = []
        for event in [e for found in known.events.values() for e in found if e.loss is None]:
            link = _link(self.store, path, event, now, self.settings.link_horizon)
            if link is not None:
                linked = event.model_copy(update={"loss": link})
                known.replace(linked)
                points.append(Point.from_event(path, linked))
        return points

    def _load_known(self, path: AssetPath, machine: Machine, now: datetime) -> _Known:
        """The anomaly events already stored (by a previous run of the service)."""
        known = _Known()
        since = now - self.settings.link_horizon - self.settings.lookback
        for signal in [*process_signals(machine), MACHINE]:
            name = anomaly_event_name(signal)
            silent = anomaly_event_name(signal, SILENT_EVENT_PREFIX)
            for event_name in (name, silent):
                for point in self.store.history(path, f"{EVENT_PREFIX}{event_name}", since, now):
                    known.events.setdefault(event_name, []).append(point.as_event())
        return known

    def run(self) -> None:
        log.info("kernels ready in %.2f s", self.warm_up())
        while not self.stopping.is_set():
            began = time.perf_counter()
            try:
                written = self.run_once()
                log.info("wrote %d points in %.2f s", len(written), time.perf_counter() - began)
            except StoreError as exc:
                log.warning("recomputation skipped: %s", exc)
            self.stopping.wait(self.settings.interval_s)


def _step(series: Series) -> float:
    """The typical sampling interval of a series, in seconds."""
    return float(np.median(np.diff(series.t))) if len(series) > 1 else 1.0
