"""OEE per ISO 22400-2 from time elements and counts, and from a machine's state timeline.

The timeline functions turn a state log (each state holds until the next event) into the
ISO 22400-2 time elements of a window [start, end), splitting states that span an edge:

- planned operation time (POT): the shift calendar's time in the window, or the whole window;
- planned busy time (PBT) = POT - planned downtime (`planned_stop`) - time with no known state,
  unless a planned busy time is given outright;
- actual production time (APT): `running` and `micro_stop` time within POT (see states.py).

KPIs, with produced and good counts taken as non-negative steps of cumulative counters:

- availability A = APT / PBT; effectiveness (performance) P = ideal cycle time x produced / APT;
  quality ratio Q = good / produced;
- OEE = A x P x Q, computed as ideal cycle time x good / PBT, which is the same product and
  stays defined when nothing was produced;
- NEE (ISO 22400-2 net equipment effectiveness index, as in VDMA 66412-1) is OEE with setup
  time taken out of the base: APT / (PBT - setup) x P x Q = ideal cycle time x good /
  (PBT - setup);
- TEEP is not an ISO 22400-2 KPI (its "allocation ratio" relates busy time to order execution
  time, another question); we use the usual definition, OEE x PBT / calendar time, with the
  window as calendar time: ideal cycle time x good / window length;
- MTBF = APT / failures and MTTR = unplanned-stop time / failures, a failure being an entry
  into `unplanned_stop` within the window (maintenance practice, e.g. EN 15341; ISO 22400-2's
  MTBF spreads the operating time over failures + 1 intervals instead). Repair time counts in
  full, shifts or not: a repair takes as long as it takes.

Counts read at time t were made before t, so a window takes the steps read in (start, end],
and a step belongs to the product in force before it. With several products the ideal cycle time
is per product: the ideal output time is the sum over products of ideal cycle time x parts, and
the report's `ideal_cycle_s` is that sum per part. A report for one product (`product=`) takes
only the time that product was loaded as its planned operation time, so the reports of all
products of a machine add up to the machine's (`pooled` adds reports: a line, a product across
machines, a group).
Input that makes a KPI meaningless (no planned busy time, performance above 1, a counter that
went down) is reported in `problems`, never raised: an export from a real machine has gaps.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from shopfloor.i18n import N_
from shopfloor.plant import Shift
from shopfloor.states import TIME_ELEMENT, MachineState, TimeElement


class OeeInputError(ValueError):
    """Inputs that make a KPI meaningless, e.g. no planned busy time."""


@dataclass(frozen=True)
class Oee:
    availability: float
    performance: float
    quality: float

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality


def oee(
    planned_busy_s: float,
    actual_production_s: float,
    ideal_cycle_s: float,
    produced: float,
    good: float,
) -> Oee:
    """A = APT/PBT, effectiveness = ideal cycle time x produced / APT, quality = good/produced."""
    if planned_busy_s <= 0:
        raise OeeInputError("planned busy time is zero: no KPI can be computed")
    if actual_production_s <= 0 or produced <= 0:
        return Oee(actual_production_s / planned_busy_s, 0.0, 0.0)
    return Oee(
        availability=actual_production_s / planned_busy_s,
        performance=ideal_cycle_s * produced / actual_production_s,
        quality=good / produced,
    )


def oee_from_states(
    seconds_by_state: dict[MachineState, float], ideal_cycle_s: float, produced: float, good: float
) -> Oee:
    """OEE from the time a machine spent in each state of the platform's taxonomy."""
    planned_busy = sum(
        s
        for state, s in seconds_by_state.items()
        if TIME_ELEMENT[state] is not TimeElement.PLANNED_DOWNTIME
    )
    production = sum(
        s
        for state, s in seconds_by_state.items()
        if TIME_ELEMENT[state] is TimeElement.ACTUAL_PRODUCTION
    )
    return oee(planned_busy, production, ideal_cycle_s, produced, good)


Interval = tuple[float, float]
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PRODUCING = frozenset({MachineState.RUNNING, MachineState.MICRO_STOP})
# Nakajima's "idling and minor stoppages": micro-stops, and a machine idle, starved, blocked or
# switched off while it should work. Micro-stops are a performance loss and these four an
# availability loss in ISO 22400-2 (states.py), so this big loss straddles the two.
_IDLING = (MachineState.IDLE, MachineState.STARVED, MachineState.BLOCKED, MachineState.OFF)


@dataclass(frozen=True)
class StateEvent:
    """One row of a machine's log: its state from `time` (seconds) on, and its counters then.

    Counters are cumulative (they may reset); None means not read at this event.
    """

    time: float
    state: MachineState
    total_count: int | None = None
    bad_count: int | None = None
    reason: str = ""
    product: str = ""  # the product loaded from `time` on; "" when the machine reports none


# One ideal cycle time for every product, or one per product id.
IdealCycleTimes = float | Mapping[str, float]


@dataclass(frozen=True)
class ShiftOccurrence:
    """One shift on one day: its name, its local start date and its span (POSIX seconds)."""

    name: str
    day: date
    start: float
    end: float


def shift_occurrences(
    shifts: Sequence[Shift], timezone: str, start: float, end: float
) -> list[ShiftOccurrence]:
    """Every shift occurrence that overlaps [start, end), in time order, not clipped."""
    zone = ZoneInfo(timezone)
    day = datetime.fromtimestamp(start, zone).date() - timedelta(days=1)  # a night shift's eve
    last = datetime.fromtimestamp(end, zone).date()
    found: list[ShiftOccurrence] = []
    while day <= last:
        for shift in shifts:
            if _WEEKDAYS[day.weekday()] in shift.days:
                begin, finish = _occurrence(shift, day, zone)
                if begin < end and finish > start:
                    found.append(ShiftOccurrence(shift.name, day, begin, finish))
        day += timedelta(days=1)
    return sorted(found, key=lambda o: o.start)


def shift_calendar(
    shifts: Sequence[Shift], timezone: str, start: float, end: float
) -> list[Interval]:
    """Planned operation time of [start, end) as merged intervals: every shift on its days."""
    occurrences = shift_occurrences(shifts, timezone, start, end)
    return _merged(((o.start, o.end) for o in occurrences), start, end)


def _occurrence(shift: Shift, day: date, zone: ZoneInfo) -> Interval:
    ends_next_day = shift.end <= shift.start
    begin = datetime.combine(day, shift.start, zone)
    finish = datetime.combine(day + timedelta(days=int(ends_next_day)), shift.end, zone)
    return begin.timestamp(), finish.timestamp()


def _merged(intervals: Iterable[Interval], start: float, end: float) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted((max(a, start), min(b, end)) for a, b in intervals):
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


class _Calendar:
    """Planned operation time of a window, with the planned part of any span in O(log n)."""

    def __init__(self, start: float, end: float, planned: Sequence[Interval] | None) -> None:
        intervals = _merged([(start, end)] if planned is None else planned, start, end)
        self._starts = [a for a, _ in intervals]
        self._ends = [b for _, b in intervals]
        self._before = [0.0]
        for a, b in intervals:
            self._before.append(self._before[-1] + b - a)

    def _covered(self, t: float) -> float:
        i = bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(t, self._ends[i]) - self._starts[i]

    def overlap(self, a: float, b: float) -> float:
        return max(0.0, self._covered(b) - self._covered(a))


@dataclass
class _Totals:
    """What a window's events add up to, before any ratio is taken."""

    by_state: dict[MachineState, float] = field(default_factory=dict)  # within POT
    by_reason: dict[str, float] = field(default_factory=dict)  # availability losses
    operation_s: float = 0.0  # POT covered by the spans added
    unknown_s: float = 0.0  # POT before the first event
    producing_outside_s: float = 0.0  # producing outside POT
    repair_s: float = 0.0
    failures: int = 0
    produced: int = 0
    bad: int = 0
    ideal_output_s: float = 0.0  # ideal cycle time x parts, summed over products
    ideal_bad_s: float = 0.0
    unrated: dict[str, int] = field(default_factory=dict)  # parts of products with no ideal time
    unrated_parts: int = 0
    problems: list[tuple[float, str]] = field(default_factory=list)  # (time, message)

    def add_span(
        self, calendar: _Calendar, state: MachineState | None, reason: str, a: float, b: float
    ) -> None:
        """Add the state that held over [a, b), already clipped to the window."""
        if a >= b:
            return
        planned = calendar.overlap(a, b)
        self.operation_s += planned
        if state is None:
            self.unknown_s += planned
            return
        self.by_state[state] = self.by_state.get(state, 0.0) + planned
        if state in _PRODUCING:
            self.producing_outside_s += b - a - planned
        elif state is MachineState.UNPLANNED_STOP:
            self.repair_s += b - a
        if reason and TIME_ELEMENT[state] is TimeElement.AVAILABILITY_LOSS and planned > 0:
            self.by_reason[reason] = self.by_reason.get(reason, 0.0) + planned

    def count(self, name: str, previous: int | None, value: int | None, t: float) -> int:
        """A counter's non-negative step at `t`; a step down is a reset, noted as a problem."""
        if previous is None or value is None:
            return 0
        if value < previous:
            when = _when(t)
            reset = COUNTER_RESET.format(counter=name, previous=previous, value=value, when=when)
            self.problems.append((t, reset))
            return 0
        return value - previous

    def add_parts(self, ideal: IdealCycleTimes, product: str, produced: int, bad: int) -> None:
        """Count parts of `product`, with their ideal time when the product has one."""
        self.produced += produced
        self.bad += bad
        seconds = ideal.get(product) if isinstance(ideal, Mapping) else ideal
        if seconds is None:
            if produced:
                self.unrated[product] = self.unrated.get(product, 0) + produced
                self.unrated_parts += produced
            return
        self.ideal_output_s += seconds * produced
        self.ideal_bad_s += seconds * bad


# What the analysis found wrong in a report's data, in English for the JSON output and the logs;
# the dashboard shows each in the visitor's language (shopfloor.i18n.reword reads the values
# back), so a problem is only ever written through one of these templates.
COUNTER_RESET = N_("{counter} fell from {previous} to {value} at {when}: taken as a reset")
UNKNOWN_STATE = N_("no state known for the first {seconds} s of planned time")
BAD_ABOVE_COUNTED = N_("{bad} bad parts but only {produced} counted in all")
NO_IDEAL_CYCLE = N_(
    "{parts} parts of product {product} have no ideal cycle time: left out of performance and OEE"
)
NO_PLANNED_BUSY_TIME = N_("planned busy time is zero: no availability, OEE or NEE")
AVAILABILITY_ABOVE_1 = N_("availability {availability} is above 1: planned time too short")
PERFORMANCE_ABOVE_1 = N_(
    "performance {performance} is above 1: ideal cycle time too long, or parts counted outside "
    "planned production time"
)
PARTS_WITHOUT_PRODUCTION = N_("{parts} parts counted but no production time")
PRODUCTION_OUTSIDE_PLANNED = N_("{seconds} s of production outside planned operation time")
PROBLEMS = (
    COUNTER_RESET, UNKNOWN_STATE, BAD_ABOVE_COUNTED, NO_IDEAL_CYCLE, NO_PLANNED_BUSY_TIME,
    AVAILABILITY_ABOVE_1, PERFORMANCE_ABOVE_1, PARTS_WITHOUT_PRODUCTION,
    PRODUCTION_OUTSIDE_PLANNED,
)  # fmt: skip


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class LossTree:
    """Where planned busy time went, in seconds; the six big losses regroup the same time."""

    availability_by_state: dict[str, float]
    availability_by_reason: dict[str, float]
    micro_stops: float
    reduced_speed: float
    rejects: float  # ideal cycle time x bad parts
    six_big_losses: dict[str, float]


@dataclass(frozen=True)
class OeeReport:
    """ISO 22400-2 time elements, counts and KPIs of one window; None where undefined."""

    start: float
    end: float
    planned_operation_s: float
    planned_downtime_s: float
    planned_busy_s: float
    actual_production_s: float
    unknown_s: float
    time_by_state: dict[str, float]
    ideal_cycle_s: float | None  # per part, over the products made; None: no parts, mixed
    fully_productive_s: float  # ideal cycle time x good parts
    produced: int
    good: int
    bad: int
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    nee: float | None
    teep: float | None
    failures: int
    mtbf_s: float | None
    mttr_s: float | None
    losses: LossTree
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times as ISO 8601 UTC."""
        return {**asdict(self), "start": _when(self.start), "end": _when(self.end)}


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _ideal_per_part(totals: _Totals, ideal: IdealCycleTimes) -> float | None:
    if totals.produced > totals.unrated_parts and totals.produced > 0:
        return totals.ideal_output_s / (totals.produced - totals.unrated_parts)
    return None if isinstance(ideal, Mapping) else ideal


def _report(
    totals: _Totals,
    start: float,
    end: float,
    ideal: IdealCycleTimes,
    planned_busy_s: float | None,
) -> OeeReport:
    seconds = {state: totals.by_state.get(state, 0.0) for state in MachineState}
    problems = [message for _, message in sorted(totals.problems)]
    operation = totals.operation_s
    downtime = seconds[MachineState.PLANNED_STOP]
    if planned_busy_s is None:
        planned_busy_s = max(0.0, operation - downtime - totals.unknown_s)
    if totals.unknown_s > 0:
        problems.append(UNKNOWN_STATE.format(seconds=f"{totals.unknown_s:g}"))
    production = seconds[MachineState.RUNNING] + seconds[MachineState.MICRO_STOP]
    good = max(0, totals.produced - totals.bad)
    if totals.bad > totals.produced:
        problems.append(BAD_ABOVE_COUNTED.format(bad=totals.bad, produced=totals.produced))
    availability = _ratio(production, planned_busy_s)
    performance = _ratio(totals.ideal_output_s, production)
    for product, parts in sorted(totals.unrated.items()):
        problems.append(NO_IDEAL_CYCLE.format(parts=parts, product=repr(product or "(none)")))
    if planned_busy_s <= 0:
        problems.append(NO_PLANNED_BUSY_TIME)
    elif availability is not None and availability > 1 + 1e-9:
        problems.append(AVAILABILITY_ABOVE_1.format(availability=f"{availability:.3f}"))
    if performance is not None and performance > 1 + 1e-9:
        problems.append(PERFORMANCE_ABOVE_1.format(performance=f"{performance:.3f}"))
    elif performance is None and totals.produced > 0:
        problems.append(PARTS_WITHOUT_PRODUCTION.format(parts=totals.produced))
    if totals.producing_outside_s > 0:
        problems.append(
            PRODUCTION_OUTSIDE_PLANNED.format(seconds=f"{totals.producing_outside_s:g}")
        )
    fully_productive = max(0.0, totals.ideal_output_s - totals.ideal_bad_s)
    net_run = totals.ideal_output_s
    micro = seconds[MachineState.MICRO_STOP]
    availability_losses = {
        str(state): s
        for state, s in seconds.items()
        if TIME_ELEMENT[state] is TimeElement.AVAILABILITY_LOSS
    }
    reduced_speed = max(0.0, production - micro - net_run)
    losses = LossTree(
        availability_by_state=availability_losses,
        availability_by_reason=dict(sorted(totals.by_reason.items())),
        micro_stops=micro,
        reduced_speed=reduced_speed,
        rejects=totals.ideal_bad_s,
        six_big_losses={
            "breakdowns": seconds[MachineState.UNPLANNED_STOP],
            "setup_and_adjustments": seconds[MachineState.SETUP],
            "idling_and_minor_stops": micro + sum(seconds[s] for s in _IDLING),
            "reduced_speed": reduced_speed,
            # Startup and production rejects together: a cumulative bad counter can't tell them.
            "rejects": totals.ideal_bad_s,
        },
    )
    failures = totals.failures
    return OeeReport(
        start=start,
        end=end,
        planned_operation_s=operation,
        planned_downtime_s=downtime,
        planned_busy_s=planned_busy_s,
        actual_production_s=production,
        unknown_s=totals.unknown_s,
        time_by_state={str(state): s for state, s in seconds.items()},
        ideal_cycle_s=_ideal_per_part(totals, ideal),
        fully_productive_s=fully_productive,
        produced=totals.produced,
        good=good,
        bad=totals.bad,
        availability=availability,
        performance=performance,
        quality=_ratio(good, totals.produced),
        oee=_ratio(fully_productive, planned_busy_s),
        nee=_ratio(fully_productive, planned_busy_s - seconds[MachineState.SETUP]),
        teep=_ratio(fully_productive, end - start),
        failures=failures,
        mtbf_s=production / failures if failures else None,
        mttr_s=totals.repair_s / failures if failures else None,
        losses=losses,
        problems=tuple(problems),
    )


def _check_window(start: float, end: float, ideal: IdealCycleTimes) -> None:
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise ValueError("the window's end must come after its start")
    seconds = ideal.values() if isinstance(ideal, Mapping) else [ideal]
    if not all(s > 0 for s in seconds):
        raise ValueError("the ideal cycle time must be above zero")


def oee_timeline(
    events: Sequence[StateEvent],
    start: float,
    end: float,
    ideal_cycle_s: IdealCycleTimes,
    planned: Sequence[Interval] | None = None,
    planned_busy_s: float | None = None,
    product: str | None = None,
) -> OeeReport:
    """KPIs of [start, end) from a time-ordered state log; the last state holds until `end`.

    `planned` is the planned operation time (see `shift_calendar`; default the whole window);
    `planned_busy_s` replaces the planned busy time derived from it and the planned stops.
    With `product`, only the time that product was loaded and the parts made of it count.
    """
    if any(b.time < a.time for a, b in pairwise(events)):
        raise ValueError("events must be in time order")
    accumulator = OeeAccumulator(start, end, ideal_cycle_s, planned, planned_busy_s, product)
    for event in events:
        accumulator.add(event)
    return accumulator.result()


class OeeAccumulator:
    """The KPIs of `oee_timeline`, fed one event at a time (e.g. from a live stream)."""

    def __init__(
        self,
        start: float,
        end: float,
        ideal_cycle_s: IdealCycleTimes,
        planned: Sequence[Interval] | None = None,
        planned_busy_s: float | None = None,
        product: str | None = None,
    ) -> None:
        _check_window(start, end, ideal_cycle_s)
        if product is not None and planned_busy_s is not None:
            raise ValueError("a product's planned busy time follows from its own time")
        self._start, self._end, self._ideal = start, end, ideal_cycle_s
        self._only = product
        self._calendar = _Calendar(start, end, planned)
        self._planned_busy_s = planned_busy_s
        self._totals = _Totals()
        self._state: MachineState | None = None
        self._reason = ""
        self._product: str | None = None
        self._since = start
        self._total: int | None = None
        self._bad: int | None = None

    def _counts(self, product: str | None) -> bool:
        return self._only is None or product == self._only

    def add(self, event: StateEvent) -> None:
        """Take the next event; they must come in time order."""
        if self._state is not None and event.time < self._since:
            raise ValueError("events must be in time order")
        totals = self._totals
        self._close(totals, event.time)
        if (
            self._start <= event.time < self._end
            and event.state is MachineState.UNPLANNED_STOP
            and self._state is not MachineState.UNPLANNED_STOP
            and self._counts(event.product)
        ):
            totals.failures += 1
        made_under = event.product if self._product is None else self._product
        if self._start < event.time <= self._end and self._counts(made_under):
            produced = totals.count("total_count", self._total, event.total_count, event.time)
            bad = totals.count("bad_count", self._bad, event.bad_count, event.time)
            totals.add_parts(self._ideal, made_under, produced, bad)
        if event.total_count is not None:
            self._total = event.total_count
        if event.bad_count is not None:
            self._bad = event.bad_count
        self._state, self._reason, self._since = event.state, event.reason, event.time
        self._product = event.product

    def _close(self, totals: _Totals, until: float) -> None:
        """Add the current state's span up to `until` to `totals`."""
        if self._only is not None and self._product != self._only:
            return
        a, b = max(self._since, self._start), min(until, self._end)
        totals.add_span(self._calendar, self._state, self._reason, a, b)

    def result(self) -> OeeReport:
        """The window's KPIs so far, the last state holding until the window's end."""
        totals = copy.deepcopy(self._totals)
        self._close(totals, self._end)
        return _report(totals, self._start, self._end, self._ideal, self._planned_busy_s)


def sum_by_key(mappings: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Figures by name (seconds by state, kWh by state...) of several reports, added up."""
    total: dict[str, float] = {}
    for mapping in mappings:
        for key, value in mapping.items():
            total[key] = total.get(key, 0.0) + value
    return total


def pooled(reports: Sequence[OeeReport]) -> OeeReport:
    """Several reports as one: a line of machines, a product across machines, any group.

    Time elements, counts and ideal times add up, and the KPIs are the ratios of the sums, so
    a machine weighs by its planned busy time (availability) and its output (performance): the
    pooled OEE is the group's fully productive time over its planned busy time. TEEP takes the
    machines' calendar time together.
    """
    if not reports:
        raise ValueError("no reports to pool")
    busy = sum(r.planned_busy_s for r in reports)
    production = sum(r.actual_production_s for r in reports)
    produced = sum(r.produced for r in reports)
    good = sum(r.good for r in reports)
    ideal_output = sum(r.fully_productive_s + r.losses.rejects for r in reports)
    fully_productive = sum(r.fully_productive_s for r in reports)
    by_state = sum_by_key(r.time_by_state for r in reports)
    failures = sum(r.failures for r in reports)
    repair = sum((r.mttr_s or 0.0) * r.failures for r in reports)
    losses = [r.losses for r in reports]
    return OeeReport(
        start=min(r.start for r in reports),
        end=max(r.end for r in reports),
        planned_operation_s=sum(r.planned_operation_s for r in reports),
        planned_downtime_s=sum(r.planned_downtime_s for r in reports),
        planned_busy_s=busy,
        actual_production_s=production,
        unknown_s=sum(r.unknown_s for r in reports),
        time_by_state=by_state,
        ideal_cycle_s=ideal_output / produced if produced else None,
        fully_productive_s=fully_productive,
        produced=produced,
        good=good,
        bad=sum(r.bad for r in reports),
        availability=_ratio(production, busy),
        performance=_ratio(ideal_output, production),
        quality=_ratio(good, produced),
        oee=_ratio(fully_productive, busy),
        nee=_ratio(fully_productive, busy - by_state.get(MachineState.SETUP.value, 0.0)),
        teep=_ratio(fully_productive, sum(r.end - r.start for r in reports)),
        failures=failures,
        mtbf_s=production / failures if failures else None,
        mttr_s=repair / failures if failures else None,
        losses=LossTree(
            availability_by_state=sum_by_key(x.availability_by_state for x in losses),
            availability_by_reason=sum_by_key(x.availability_by_reason for x in losses),
            micro_stops=sum(x.micro_stops for x in losses),
            reduced_speed=sum(x.reduced_speed for x in losses),
            rejects=sum(x.rejects for x in losses),
            six_big_losses=sum_by_key(x.six_big_losses for x in losses),
        ),
        problems=tuple(p for r in reports for p in r.problems),
    )
