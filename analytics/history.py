"""A machine's history in the store, as the inputs of the analytics core.

The store holds what the edge reported: a state or a counter when it changed, a process signal
at its sampling rate. A value holds until the next one, so the reading in force when a window
opens is asked of the store (`Store.before`) however long ago it was written.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from analytics.oee import StateEvent
from shopfloor.messages import AssetPath
from shopfloor.plant import Machine
from shopfloor.states import (
    PART_COUNT,
    PRODUCT,
    REJECT_COUNT,
    STANDARD_SIGNALS,
    STATE,
    STOP_REASON,
    MachineState,
)
from shopfloor.store import Point, Store

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    """A numeric signal: POSIX seconds and values, in time order."""

    t: FloatArray
    values: FloatArray

    @classmethod
    def of(cls, points: list[Point]) -> Series:
        numeric = [p for p in points if not isinstance(p.value, str)]
        t = np.array([p.ts.timestamp() for p in numeric], dtype=np.float64)
        return cls(t, np.array([p.value for p in numeric], dtype=np.float64))

    def __len__(self) -> int:
        return len(self.t)


def points_in_force(
    store: Store, path: AssetPath, signal: str, start: datetime, end: datetime
) -> list[Point]:
    """The points of [start, end), preceded by the one still in force at `start` if any."""
    before = store.before(path, signal, start)
    return ([before] if before else []) + store.history(path, signal, start, end)


class Reader(Protocol):
    def __call__(
        self, path: AssetPath, signal: str, start: datetime, end: datetime
    ) -> list[Point]: ...


@dataclass
class _Cached:
    start: datetime
    end: datetime
    points: list[Point]
    reads: int = 0


class HistoryCache:
    """`points_in_force` that reads each series once and then only what is new.

    A recomputation every few seconds over a whole shift would otherwise read the shift again
    each time. Each window kind (the rolling window, one shift) has its own entry, whose start
    only moves forward. Data may arrive late (an edge agent flushing its buffer after an
    outage): the last `settle` of a series is read again each time, and all of it every
    `reload_every` reads.
    """

    def __init__(
        self, store: Store, settle: timedelta = timedelta(minutes=5), reload_every: int = 30
    ) -> None:
        self.store, self.settle, self.reload_every = store, settle, reload_every
        self._entries: dict[tuple[str, AssetPath, str], _Cached] = {}

    def reader(self, kind: str) -> Reader:
        """A reader for one window kind, e.g. "rolling" or a shift's start."""

        def read(path: AssetPath, signal: str, start: datetime, end: datetime) -> list[Point]:
            return self._read((kind, path, signal), start, end)

        return read

    def forget(self, keep_kinds: set[str]) -> None:
        """Drop the entries of window kinds no longer asked for (a shift that is over)."""
        self._entries = {k: v for k, v in self._entries.items() if k[0] in keep_kinds}

    def _read(self, key: tuple[str, AssetPath, str], start: datetime, end: datetime) -> list[Point]:
        _, path, signal = key
        entry = self._entries.get(key)
        if entry is None or start < entry.start or entry.reads >= self.reload_every:
            entry = _Cached(start, end, points_in_force(self.store, path, signal, start, end))
            self._entries[key] = entry
        else:
            since = max(start, entry.end - self.settle)
            kept = [p for p in entry.points if p.ts < since]
            entry.points = kept + self.store.history(path, signal, since, end)
            entry.start, entry.end, entry.reads = start, end, entry.reads + 1
        entry.points = _from(entry.points, start)
        return entry.points


def _from(points: list[Point], start: datetime) -> list[Point]:
    """The points at or after `start`, and the one in force at `start`."""
    first = bisect_left([p.ts for p in points], start)
    return points[max(first - 1, 0) :]


def process_signals(machine: Machine) -> list[str]:
    """The signals anomalies are looked for in: neither state, counters nor the energy meter."""
    meter = machine.energy_meter
    metered = {meter.power_signal, meter.energy_signal} if meter else set()
    return [s.id for s in machine.signals if s.id not in STANDARD_SIGNALS | metered]


def log_signals(machine: Machine) -> list[str]:
    """The signals a machine's state log is made of: the product only where it is reported."""
    declared = {s.id for s in machine.signals}
    return [STATE, STOP_REASON, PART_COUNT, REJECT_COUNT] + [PRODUCT] * (PRODUCT in declared)


def _state(value: float | str) -> MachineState | None:
    try:
        return MachineState(str(value))
    except ValueError:
        return None


def state_log(by_signal: dict[str, list[Point]]) -> list[StateEvent]:
    """One StateEvent at every instant something changed: the state, stop reason and product in
    force then, and the counters read at that very instant (None when not read then)."""
    at: dict[datetime, dict[str, float | str]] = {}
    for signal, points in by_signal.items():
        for point in points:
            at.setdefault(point.ts, {})[signal] = point.value
    events: list[StateEvent] = []
    state: MachineState | None = None
    reason = product = ""
    for ts in sorted(at):
        values = at[ts]
        if STATE in values:
            state = _state(values[STATE]) or state
        reason = str(values.get(STOP_REASON, reason))
        product = str(values.get(PRODUCT, product))
        if state is None:
            continue  # counters before the first known state baseline nothing useful
        counts = [values.get(name) for name in (PART_COUNT, REJECT_COUNT)]
        total, bad = (None if c is None or isinstance(c, str) else int(c) for c in counts)
        events.append(StateEvent(ts.timestamp(), state, total, bad, reason, product))
    return events


@dataclass(frozen=True)
class MachineHistory:
    """What the store holds of one machine for a window (readings in force at its start too)."""

    events: list[StateEvent]
    power: Series | None
    meter: Series | None


def machine_history(
    read: Reader, path: AssetPath, machine: Machine, start: datetime, end: datetime
) -> MachineHistory:
    """Read with `partial(points_in_force, store)` or a `HistoryCache` reader."""
    by_signal = {signal: read(path, signal, start, end) for signal in log_signals(machine)}
    meter = machine.energy_meter
    if meter is None:
        return MachineHistory(state_log(by_signal), None, None)
    power, energy = (
        Series.of(read(path, signal, start, end))
        for signal in (meter.power_signal, meter.energy_signal)
    )
    return MachineHistory(state_log(by_signal), power, energy)


def while_running(series: Series, log_: list[StateEvent]) -> Series:
    """The series with every sample taken while the machine was not running set to NaN.

    A process signal follows the machine's state (a spindle's load drops when it stops), so
    scored across states every stop and restart would be an anomaly; a NaN sample is skipped
    and leaves the detector's statistics as they were, so running is compared with running.
    """
    return Series(series.t, np.where(_running(series.t, log_), series.values, np.nan))


def _entry(t: FloatArray, log_: list[StateEvent]) -> npt.NDArray[np.intp]:
    """For each of the times `t`, 1 + the index of the log's entry in force (0 before any)."""
    return np.searchsorted(np.array([e.time for e in log_]), t, side="right")


def _running(t: FloatArray, log_: list[StateEvent]) -> npt.NDArray[np.bool_]:
    running = np.array([False, *(e.state is MachineState.RUNNING for e in log_)])
    return np.asarray(running[_entry(t, log_)], dtype=bool)


def states_at(t: FloatArray, log_: list[StateEvent]) -> npt.NDArray[np.str_]:
    """The machine's state (its value) at each of the times `t`; "" before its first logged
    one."""
    return np.array(["", *(e.state.value for e in log_)])[_entry(t, log_)]


def aligned(signals: dict[str, Series], within_s: float) -> tuple[FloatArray, FloatArray]:
    """A machine's signals side by side on the sampling times of its busiest one: each column
    holds the latest value at most `within_s` old, else NaN (a row with a NaN is skipped)."""
    grid = max(signals.values(), key=len).t
    columns = []
    for series in signals.values():
        at = np.searchsorted(series.t, grid, side="right") - 1
        held = np.maximum(at, 0)
        fresh = (at >= 0) & (grid - series.t[held] <= within_s)
        columns.append(np.where(fresh, series.values[held], np.nan))
    return grid, np.column_stack(columns)


def running_rows(
    signals: dict[str, Series], log_: list[StateEvent], within_s: float
) -> tuple[FloatArray, FloatArray]:
    """The signals `aligned`, with every row taken while the machine was not running all NaN:
    a machine is compared with itself running (see `while_running`)."""
    grid, x = aligned(signals, within_s)
    x[~_running(grid, log_)] = np.nan
    return grid, x


def state_rows(
    signals: dict[str, Series], log_: list[StateEvent], within_s: float
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.str_]]:
    """The signals `aligned`, with the machine's state at each row (`states_at`; a row before
    the first logged state all NaN). A learnt model compares a machine running with itself
    running and at rest with itself at rest."""
    grid, x = aligned(signals, within_s)
    states = states_at(grid, log_)
    x[states == ""] = np.nan
    return grid, x, states
