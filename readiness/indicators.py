"""The ten indicator formulas of specification B3, as pure functions over plain inputs.

Inputs are what a store query returns: per machine a state log (time, state code), the times
of any data at all (heartbeats), part counts, meter energies, alarm events with their response
times, dashboard views and the shift calendar. Times are seconds since the epoch; a window is
[start, end). Each function returns the raw indicator, or None where the specification makes
it null.

Machine states use the United Manufacturing Hub's codes (open data model, docs/datamodel.md of
united-manufacturing-hub): each bucket covers its codes up to the next bucket's, so a vendor's
sub-code (40010) falls into its bucket (unspecified stop). The platform's own states map onto
one code each (`platform_state_code`):

    running 10000 (active); micro_stop 50000 (microstop);
    idle and off 40000 (unspecified stop: stopped in planned time, no reason given);
    starved 60000 and blocked 70000 (material: inlet and outlet);
    setup 130000 (setup, which counts as a captured changeover);
    unplanned_stop 180000 (technical) with a stop reason, 40000 without;
    planned_stop 160000 (planning): planned downtime leaves planned time in ISO 22400-2, and
    "operator break" (150000) would count in RC as a reason-coded unplanned stop.

Decisions where the specification is silent:

- NO_DATA: a silence longer than 10 minutes between any two data points of a machine (state
  records or heartbeats), or from the last one to the window's end, counts whole; so does the
  time before the machine's first state record.
- DC is 0, not null, when no machine is connected: nothing measured is the worst completeness.
- RC's stop intervals are runs of consecutive unplanned-stop states (a reason entered during a
  stop changes the code, not the stop); a run of 2 minutes or more counts, each part by its
  code. With a shift calendar, only stop time in planned time counts (nobody codes a stop at
  night). No such stop in the window makes RC null.
- ART counts events raised in the window; zero events while machines are connected is "no
  alarm logging" (score 0); an unanswered event runs to the window's end.
- OV: a machine without any counts in the window is not OEE-visible.
- CO: a product change is two consecutive count records of one machine with different
  products (records with no parts are skipped); it is captured when the changeover and setup
  time between the last part of the old and the first part of the new adds up to 1 minute.
- EC without a positive main-meter reading falls back to rated power; with neither, null.
- DU counts a day when a view falls on it in the plant's zone; working days are the days whose
  local midnight lies in the window and on which a shift starts (Monday to Friday without a
  calendar).
- Counts are parts made per record (the store derives them from cumulative counters).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from itertools import pairwise
from statistics import median

from readiness.evidence import MIN_RESPONSE_EVENTS, ResponseTime
from shopfloor.plant import Shift
from shopfloor.states import MachineState

MAX_SILENCE_S = 600.0  # gmax: 10 minutes without data is no data
CONNECTED_COMPLETENESS = 0.5
MIN_STOP_S = 120.0  # RC counts stops of 2 minutes or more
MIN_CHANGEOVER_S = 60.0
MIN_CHANGES = 5
ZONE_COMPLETENESS = 0.9
FAST_RESPONSE_MIN = 15.0
STANDARD_TIME_SHARE = 0.8  # OV: ideal cycle time known for 80 % of a machine's volume


class Bucket(StrEnum):
    ACTIVE = "active"
    NO_DATA = "no data"
    UNSPECIFIED_STOP = "unspecified stop"
    MICROSTOP = "microstop"
    MATERIAL = "material"
    CHANGEOVER = "changeover"
    SETUP = "setup"
    OPERATOR = "operator"
    PLANNING = "planning"
    TECHNICAL = "technical"
    PREVENTIVE_MAINTENANCE = "preventive maintenance"


ACTIVE, NO_DATA, UNSPECIFIED_STOP, MICROSTOP = 10000, 30000, 40000, 50000
STARVED, BLOCKED, SETUP, NO_SHIFT, EQUIPMENT_FAILURE = 60000, 70000, 130000, 160000, 180000
# First code of each bucket; a bucket runs up to the next one's first code.
_BUCKET_STARTS = (
    (10000, Bucket.ACTIVE),
    (30000, Bucket.NO_DATA),
    (40000, Bucket.UNSPECIFIED_STOP),
    (50000, Bucket.MICROSTOP),
    (60000, Bucket.MATERIAL),
    (100000, Bucket.CHANGEOVER),
    (130000, Bucket.SETUP),
    (140000, Bucket.OPERATOR),
    (160000, Bucket.PLANNING),
    (180000, Bucket.TECHNICAL),
    (210000, Bucket.PREVENTIVE_MAINTENANCE),
    (220000, Bucket.TECHNICAL),
)
_LAST_CODE = 229999
REASON_CODED = frozenset(
    {Bucket.MATERIAL, Bucket.CHANGEOVER, Bucket.SETUP, Bucket.OPERATOR, Bucket.TECHNICAL}
)
UNPLANNED_STOPS = REASON_CODED | {Bucket.UNSPECIFIED_STOP}
CHANGEOVERS = frozenset({Bucket.CHANGEOVER, Bucket.SETUP})

_PLATFORM_CODES = {
    MachineState.RUNNING: ACTIVE,
    MachineState.MICRO_STOP: MICROSTOP,
    MachineState.IDLE: UNSPECIFIED_STOP,
    MachineState.OFF: UNSPECIFIED_STOP,
    MachineState.STARVED: STARVED,
    MachineState.BLOCKED: BLOCKED,
    MachineState.SETUP: SETUP,
    MachineState.UNPLANNED_STOP: UNSPECIFIED_STOP,
    MachineState.PLANNED_STOP: NO_SHIFT,
}


def bucket(code: int) -> Bucket:
    """The bucket of a state code; ValueError for a code outside 10000-229999."""
    if not _BUCKET_STARTS[0][0] <= code <= _LAST_CODE:
        raise ValueError(f"state code {code} is outside 10000-{_LAST_CODE}")
    starts = [start for start, _ in _BUCKET_STARTS]
    return _BUCKET_STARTS[bisect.bisect_right(starts, code) - 1][1]


def platform_state_code(state: MachineState | str, reason: str = "") -> int:
    """The state code of a platform state; an unplanned stop with a reason is coded."""
    state = MachineState(state)
    if state is MachineState.UNPLANNED_STOP and reason:
        return EQUIPMENT_FAILURE
    return _PLATFORM_CODES[state]


@dataclass(frozen=True)
class StateRecord:
    """A machine is in state `code` from `time` until the next record."""

    time: float
    code: int


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    code: int

    @property
    def seconds(self) -> float:
        return self.end - self.start


Span = tuple[float, float]


def _silences(seen: Sequence[float], start: float, end: float, max_silence: float) -> list[Span]:
    """Spans of [start, end) longer than max_silence without a data point."""
    points = sorted(seen)
    before = bisect.bisect_right(points, start)
    inside = [t for t in points[before:] if t < end]
    edges = [points[before - 1] if before else start, *inside, end]
    return [(max(a, start), b) for a, b in pairwise(edges) if b - a > max_silence and b > start]


def _state_spans(records: Sequence[StateRecord], start: float, end: float) -> list[Interval]:
    ordered = sorted(records, key=lambda r: r.time)
    spans = []
    first = ordered[0].time if ordered else end
    if first > start:
        spans.append(Interval(start, min(first, end), NO_DATA))
    stops = [*(r.time for r in ordered[1:]), end] if ordered else []
    for record, stop in zip(ordered, stops, strict=True):
        lo, hi = max(record.time, start), min(stop, end)
        if hi > lo:
            spans.append(Interval(lo, hi, record.code))
    return spans


def _cut(intervals: Iterable[Interval], holes: Sequence[Span]) -> list[Interval]:
    """The intervals with the holes taken out."""
    pieces = list(intervals)
    for hole_start, hole_end in holes:
        kept = []
        for piece in pieces:
            if piece.end <= hole_start or piece.start >= hole_end:
                kept.append(piece)
                continue
            if piece.start < hole_start:
                kept.append(Interval(piece.start, hole_start, piece.code))
            if piece.end > hole_end:
                kept.append(Interval(hole_end, piece.end, piece.code))
        pieces = kept
    return pieces


def _merged(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for piece in sorted(intervals, key=lambda i: i.start):
        last = merged[-1] if merged else None
        if last and last.code == piece.code and last.end == piece.start:
            merged[-1] = Interval(last.start, piece.end, piece.code)
        else:
            merged.append(piece)
    return merged


def machine_timeline(
    records: Sequence[StateRecord],
    start: float,
    end: float,
    heartbeats: Sequence[float] = (),
    max_silence: float = MAX_SILENCE_S,
) -> list[Interval]:
    """The machine's states over [start, end), with NO_DATA where it was silent or unknown.

    Pass the record in force at `start` (the last one before it) with the others.
    """
    seen = sorted({*heartbeats, *(r.time for r in records)})
    silences = _silences(seen, start, end, max_silence)
    states = _cut(_state_spans(records, start, end), silences)
    return _merged([*states, *(Interval(a, b, NO_DATA) for a, b in silences)])


def no_data_seconds(timeline: Iterable[Interval]) -> float:
    return sum(i.seconds for i in timeline if bucket(i.code) is Bucket.NO_DATA)


@dataclass(frozen=True)
class Connectivity:
    """DC and CC of an asset register."""

    completeness: Mapping[str, float]  # DCm by machine
    connected: tuple[str, ...]
    data_completeness: float  # DC over the connected machines
    coverage: float | None  # CC; None without machines in scope


def connectivity(no_data_s: Mapping[str, float], window_s: float) -> Connectivity:
    """DC and CC from each in-scope machine's no-data seconds (the window's, if it sent none)."""
    completeness = {m: (window_s - s) / window_s for m, s in no_data_s.items()}
    connected = tuple(m for m, dc in completeness.items() if dc >= CONNECTED_COMPLETENESS)
    live = sum(window_s - no_data_s[m] for m in connected)
    return Connectivity(
        completeness=completeness,
        connected=connected,
        data_completeness=live / (len(connected) * window_s) if connected else 0.0,
        coverage=len(connected) / len(no_data_s) if no_data_s else None,
    )


@dataclass(frozen=True)
class PartCount:
    """Parts one machine made of one product since its previous record."""

    time: float
    machine: str
    product: str
    good: float
    reject: float | None = None  # None: the machine does not count rejects

    @property
    def total(self) -> float:
        return self.good + (self.reject or 0.0)


def _has_standard_time(product: str, ideal_cycle_s: Mapping[str, float]) -> bool:
    return ideal_cycle_s.get(product, 0.0) > 0


def oee_visible(
    connected: bool,
    counts: Sequence[PartCount],
    ideal_cycle_s: Mapping[str, float],
    timeline: Sequence[Interval],
    has_shift_calendar: bool,
) -> bool:
    """Can the machine's OEE be computed: connected, good and reject counts, ideal cycle time
    for 80 % of its volume, and planned time from a calendar or planning states."""
    volume = sum(c.total for c in counts)
    if not connected or volume <= 0 or all(c.reject is None for c in counts):
        return False
    standard = sum(c.total for c in counts if _has_standard_time(c.product, ideal_cycle_s))
    planned = has_shift_calendar or any(bucket(i.code) is Bucket.PLANNING for i in timeline)
    return standard / volume >= STANDARD_TIME_SHARE and planned


def share(flags: Iterable[bool]) -> float | None:
    """The share of true flags (OV from per-machine visibility), None without any."""
    values = list(flags)
    return sum(values) / len(values) if values else None


def working_days(
    start: datetime, end: datetime, zone: tzinfo, shifts: Sequence[Shift] = ()
) -> list[date]:
    """Days whose local midnight lies in [start, end) and on which a shift starts."""
    weekdays = {day for shift in shifts for day in shift.days} if shifts else None
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    day = start.astimezone(zone).date()
    days = []
    while (midnight := datetime.combine(day, time(), zone)) < end:
        is_working = day.weekday() < 5 if weekdays is None else names[day.weekday()] in weekdays
        if midnight >= start and is_working:
            days.append(day)
        day += timedelta(days=1)
    return days


@dataclass(frozen=True)
class DashboardView:
    time: datetime
    user: str
    page: str


SHOP_FLOOR_PAGES = frozenset({"shop_floor"})


def dashboard_use(
    views: Iterable[DashboardView],
    days: Collection[date],
    zone: tzinfo,
    sme_users: Collection[str] | None = None,
    pages: Collection[str] = SHOP_FLOOR_PAGES,
) -> float | None:
    """DU: working days with a shop-floor view by an SME user / working days.

    `sme_users` None counts every user (a plant without centre staff on its dashboard).
    """
    if not days:
        return None
    viewed = {
        v.time.astimezone(zone).date()
        for v in views
        if v.page in pages and (sme_users is None or v.user in sme_users)
    }
    return len(viewed & set(days)) / len(days)


def _clip(intervals: Iterable[Interval], planned: Sequence[Span] | None) -> list[Interval]:
    if planned is None:
        return list(intervals)
    clipped = []
    for i in intervals:
        for lo, hi in planned:
            a, b = max(i.start, lo), min(i.end, hi)
            if b > a:
                clipped.append(Interval(a, b, i.code))
    return sorted(clipped, key=lambda i: i.start)


def _stop_runs(timeline: Sequence[Interval]) -> list[list[Interval]]:
    runs: list[list[Interval]] = []
    for i in timeline:
        if bucket(i.code) not in UNPLANNED_STOPS:
            continue
        if runs and runs[-1][-1].end == i.start:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def reason_coverage(
    timelines: Iterable[Sequence[Interval]],
    planned: Sequence[Span] | None = None,
    min_stop_s: float = MIN_STOP_S,
) -> float | None:
    """RC: reason-coded / (coded + unspecified) time of unplanned stops of 2 min or more."""
    coded = unspecified = 0.0
    for timeline in timelines:
        for run in _stop_runs(_clip(timeline, planned)):
            if run[-1].end - run[0].start < min_stop_s:
                continue
            coded += sum(i.seconds for i in run if bucket(i.code) in REASON_CODED)
            unspecified += sum(i.seconds for i in run if bucket(i.code) not in REASON_CODED)
    total = coded + unspecified
    return coded / total if total > 0 else None


@dataclass(frozen=True)
class AlarmEvent:
    """An alarm or anomaly, with whichever responses were logged."""

    raised: float
    acknowledged: float | None = None
    reason_entered: float | None = None
    repair_started: float | None = None

    def response_s(self, window_end: float) -> float:
        """Seconds to the first response; unanswered, until the window's end."""
        answers = (self.acknowledged, self.reason_entered, self.repair_started)
        times = [t for t in answers if t is not None and t >= self.raised]
        return (min(times) if times else window_end) - self.raised


def anomaly_response(
    events: Iterable[AlarmEvent], start: float, end: float, machines_connected: bool
) -> ResponseTime | None:
    """ART: the median minutes from raise to first response; null below five events."""
    minutes = [e.response_s(end) / 60 for e in events if start <= e.raised < end]
    if not minutes:
        return ResponseTime(None, 0, None, logging=False) if machines_connected else None
    fast = sum(m <= FAST_RESPONSE_MIN for m in minutes) / len(minutes)
    middle = median(minutes) if len(minutes) >= MIN_RESPONSE_EVENTS else None
    return ResponseTime(middle, len(minutes), fast)


def energy_coverage(
    leaf_kwh: Sequence[float],
    main_kwh: float | None = None,
    rated_kw: Mapping[str, float] | None = None,
    metered: Collection[str] = (),
) -> float | None:
    """EC: sub-metered / main-meter energy, at most 1; without a main meter, the rated power
    of the metered assets / all rated power."""
    if main_kwh is not None and main_kwh > 0:
        return min(1.0, sum(leaf_kwh) / main_kwh)
    total = sum(rated_kw.values()) if rated_kw else 0.0
    if rated_kw and total > 0:
        return sum(kw for asset, kw in rated_kw.items() if asset in metered) / total
    return None


def signal_completeness(
    times: Sequence[float], start: float, end: float, max_silence: float = MAX_SILENCE_S
) -> float:
    """The share of [start, end) not inside a silence of a sensor longer than max_silence."""
    silent = sum(b - a for a, b in _silences(times, start, end, max_silence))
    return (end - start - silent) / (end - start)


def environment_coverage(
    zone_completeness: Mapping[str, float], required_zones: Collection[str]
) -> float | None:
    """EV: required zones with sensor completeness of 0.9 or more / required zones."""
    if not required_zones:
        return None
    covered = [z for z in required_zones if zone_completeness.get(z, 0.0) >= ZONE_COMPLETENESS]
    return len(covered) / len(required_zones)


def standard_time_coverage(
    counts: Iterable[PartCount], ideal_cycle_s: Mapping[str, float]
) -> float | None:
    """STD: parts of products with an ideal cycle time / all parts."""
    parts = list(counts)
    total = sum(c.total for c in parts)
    if total <= 0:
        return None
    return sum(c.total for c in parts if _has_standard_time(c.product, ideal_cycle_s)) / total


def _changeover_seconds(timeline: Sequence[Interval], lo: float, hi: float) -> float:
    return sum(
        max(0.0, min(i.end, hi) - max(i.start, lo))
        for i in timeline
        if bucket(i.code) in CHANGEOVERS
    )


def changeover_capture(
    counts: Iterable[PartCount],
    timelines: Mapping[str, Sequence[Interval]],
    min_changeover_s: float = MIN_CHANGEOVER_S,
) -> float | None:
    """CO: product changes with 1 min or more of changeover/setup state between the runs /
    product changes; null below five changes."""
    by_machine: dict[str, list[PartCount]] = {}
    for count in sorted(counts, key=lambda c: c.time):
        if count.total > 0:
            by_machine.setdefault(count.machine, []).append(count)
    changes = captured = 0
    for machine, records in by_machine.items():
        timeline = timelines.get(machine, ())
        for old, new in pairwise(records):
            if old.product != new.product:
                changes += 1
                seconds = _changeover_seconds(timeline, old.time, new.time)
                captured += seconds >= min_changeover_s
    return captured / changes if changes >= MIN_CHANGES else None
