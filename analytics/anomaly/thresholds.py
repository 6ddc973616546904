"""Alarms (`alarms`) and labelled events (`events`) from any detector's score, with hysteresis,
so that a flickering score raises one alarm or one event, not many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@njit(cache=True)
def _room(rows: IntArray, found: int) -> IntArray:
    """`rows` (lines, capacity), grown twofold when column `found` does not fit: events are
    few, so their kernel starts small instead of taking three slots per sample."""
    if found < rows.shape[1]:
        return rows
    grown = np.empty((rows.shape[0], 2 * found), dtype=np.int64)
    grown[:, :found] = rows
    return grown


_SCAN = 256  # samples searched at a time for a score reaching `on` between events


@njit(cache=True)
def _next_open(score: FloatArray, on: float, i: int) -> int:
    """The first row from `i` on whose score reaches `on` (NaN counts as below), or the size.

    Between events almost every score is below `on`: each chunk is counted in a loop without
    an early exit, which the compiler vectorises, and only a chunk with a hit is stepped through.
    """
    for first in range(i, score.size, _SCAN):
        chunk = score[first : first + _SCAN]  # indexed from 0: no wraparound check per load
        hits = 0
        for j in range(chunk.size):
            hits += chunk[j] >= on
        if hits:
            for j in range(chunk.size):
                if chunk[j] >= on:
                    return first + j
    return score.size


@njit(cache=True)
def _events(
    score: FloatArray, on: float, off: float, quiet: int, min_samples: int
) -> tuple[IntArray, IntArray, IntArray]:
    rows = np.empty((3, 64), dtype=np.int64)  # start, end and peak of each event
    found = 0
    n = score.size
    i = _next_open(score, on, 0)
    while i < n:
        start, last_high, peak = i, i, i
        i += 1
        while i < n:  # the event is open: step row by row until it closes or the data ends
            s = score[i]
            if s >= off:
                last_high = i
                if s > score[peak]:
                    peak = i
            elif i - last_high >= quiet:
                break
            i += 1
        if last_high - start + 1 >= min_samples:
            rows = _room(rows, found)
            rows[0, found], rows[1, found], rows[2, found] = start, last_high, peak
            found += 1
        i = _next_open(score, on, i + 1)  # the row that closed an event cannot open one
    return rows[0, :found], rows[1, :found], rows[2, :found]


@njit(cache=True)
def _alarms(score: FloatArray, on: float, off: float, refractory: int) -> IntArray:
    rows = np.empty(score.size, dtype=np.int64)
    found = 0
    armed = True
    last = -refractory
    for i in range(score.size):
        s = score[i]
        if not armed and not s >= off:
            armed = True
        if armed and s >= on and i - last >= refractory:
            rows[found] = i
            found += 1
            last = i
            armed = False
    return rows[:found]


def alarms(score: FloatArray, on: float, off: float | None = None, refractory: int = 0) -> IntArray:
    """Rows where an alarm is raised: the score reaches `on` while the detector is armed.

    An alarm disarms the detector until the score falls below `off` (default `on`; NaN counts
    as below) and no alarm follows within `refractory` rows of the last one. One alarm per
    incident is what an operator acts on, and what NAB rewards: it scores only the first
    detection in a window and charges every other one outside it as a false positive.
    """
    if refractory < 0:
        raise ValueError(f"refractory must be >= 0, not {refractory}")
    return _alarms(score, on, on if off is None else off, refractory)


@dataclass(frozen=True)
class Event:
    """An anomaly: first and last rows at or above the off level, and its peak."""

    label: str
    start: float
    end: float
    peak: float
    peak_score: float
    start_row: int
    end_row: int


def events(
    t: FloatArray,
    score: FloatArray,
    label: str,
    on: float,
    off: float | None = None,
    quiet: int = 1,
    min_samples: int = 1,
) -> list[Event]:
    """Threshold a score into labelled events with hysteresis.

    An event opens when the score reaches `on` and closes once it has stayed below `off`
    (default `on`; NaN counts as below) for `quiet` samples, so a flickering score yields one
    event, not many. Events with fewer than `min_samples` samples from first to last high are
    dropped; a streaming consumer can only confirm such an event `min_samples - 1` samples
    after it opens. Pass |z| for a z-score, T² for Hotelling.
    """
    level = on if off is None else off
    starts, ends, peaks = _events(score, on, level, quiet, min_samples)
    columns = (t[starts], t[ends], t[peaks], score[peaks], starts, ends)
    return [Event(label, *row) for row in zip(*(c.tolist() for c in columns), strict=True)]
