"""Causal, streaming anomaly detectors: a robust z-score per signal, the same score on a short
mean of the signal for level shifts, Hotelling T² per machine, and alarms or events from a score.

Both keep exponentially forgotten statistics updated Welford-style (on the difference from the
running mean, never on raw sums), so a signal riding on a 1e6 offset scores like the same signal
without it. Shared conventions:

- timestamps are float64 seconds; each value is scored against the statistics of the samples
  before it, then absorbed, so a score never depends on the future;
- warm-up: the first `warmup` valid samples only build the statistics (plain equal-weight means,
  so a short warm-up is not dominated by its first sample) and are scored NaN;
- NaN: a sample with a NaN is scored NaN and skipped, the statistics are left untouched;
- gaps: when more than `max_gap` seconds pass between valid samples the statistics restart
  (with a new warm-up): after a long outage the machine may have been restarted, re-tooled or
  re-calibrated, and stale statistics would flag its normal behaviour;
- robustness: once warmed up, the innovation absorbed into the statistics is clipped at `clip`
  standard deviations (Huber style), so an outlier moves the baseline by a bounded amount and a
  spike cannot inflate the variance that would hide the next one;
- `var_floor` keeps a perfectly constant signal from dividing by zero; it is an absolute floor,
  so set it below the variance of the quietest signal that matters.

Every kernel has a pure-Python reference (`*_reference`) that the tests compare it with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit, prange

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DetectorSettings:
    """Forgetting factor (per sample), warm-up samples, longest gap (s), clip (in sd), var floor."""

    alpha: float = 0.01
    warmup: int = 30
    max_gap: float = math.inf
    clip: float = 3.0
    var_floor: float = 1e-12


@njit(cache=True)
def _zscore_series(
    t: FloatArray,
    x: FloatArray,
    alpha: float,
    warmup: int,
    max_gap: float,
    clip: float,
    var_floor: float,
    smooth: float,
    out: FloatArray,
) -> None:
    count = 0
    mean = 0.0
    var = 0.0
    level = 0.0
    last_t = 0.0
    for i in range(x.size):
        value = x[i]
        out[i] = np.nan
        if np.isnan(value):
            continue
        if count > 0 and t[i] - last_t > max_gap:
            count = 0
        last_t = t[i]
        if count == 0:
            mean = value
            level = value
            var = 0.0
            count = 1
            continue
        if smooth < 1.0:
            level += smooth * (value - level)
            value = level
        d = value - mean
        sd = math.sqrt(max(var, var_floor))
        if count >= warmup:
            out[i] = d / sd
            if abs(d) > clip * sd:
                d = math.copysign(clip * sd, d)
        w = max(alpha, 1.0 / (count + 1))
        mean += w * d
        var = (1.0 - w) * (var + w * d * d)
        count += 1


@njit(cache=True)
def _zscore_one(
    t: FloatArray,
    x: FloatArray,
    alpha: float,
    warmup: int,
    max_gap: float,
    clip: float,
    var_floor: float,
    smooth: float,
) -> FloatArray:
    out = np.empty(x.size)
    _zscore_series(t, x, alpha, warmup, max_gap, clip, var_floor, smooth, out)
    return out


@njit(cache=True, parallel=True)
def _zscore_many(
    t: FloatArray,
    x: FloatArray,
    alpha: float,
    warmup: int,
    max_gap: float,
    clip: float,
    var_floor: float,
    smooth: float,
) -> FloatArray:
    out = np.empty_like(x)
    for s in prange(x.shape[0]):
        _zscore_series(t, x[s], alpha, warmup, max_gap, clip, var_floor, smooth, out[s])
    return out


def _zscore_run(
    t: FloatArray, x: FloatArray, settings: DetectorSettings, smooth: float
) -> FloatArray:
    args = (settings.alpha, settings.warmup, settings.max_gap, settings.clip, settings.var_floor)
    if x.ndim == 1:
        result: FloatArray = _zscore_one(t, x, *args, smooth)
    else:
        result = _zscore_many(t, np.ascontiguousarray(x), *args, smooth)
    return result


def zscore(
    t: FloatArray, x: FloatArray, settings: DetectorSettings = DetectorSettings()
) -> FloatArray:
    """Signed z of each sample against its past; `x` is one series or (series, samples).

    Several series share the time axis `t` and run in parallel, one per thread.
    """
    return _zscore_run(t, x, settings, 1.0)


def level_shift(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings = DetectorSettings(),
    smooth: float = 0.05,
) -> FloatArray:
    """Signed z of a short exponential mean of `x` (weight `smooth`) against its own past.

    A step of one noise sd hides among single samples but moves a mean of about 2/smooth
    samples by several of that mean's own sd, so this channel sees level shifts the point
    z-score misses; scoring the mean against its own history (not against the noise's sd)
    keeps an autocorrelated signal from looking like a shift. Same conventions as `zscore`;
    the mean restarts with the statistics after a gap. `smooth` must be in (0, 1]; 1 is `zscore`.
    """
    if not 0.0 < smooth <= 1.0:
        raise ValueError(f"smooth must be in (0, 1], not {smooth}")
    return _zscore_run(t, x, settings, smooth)


def _zscore_python(
    t: FloatArray, x: FloatArray, settings: DetectorSettings, smooth: float
) -> FloatArray:
    out = np.full(x.size, np.nan)
    count, mean, var, level, last_t = 0, 0.0, 0.0, 0.0, 0.0
    for i, value in enumerate(x.tolist()):
        if math.isnan(value):
            continue
        if count > 0 and t[i] - last_t > settings.max_gap:
            count = 0
        last_t = float(t[i])
        if count == 0:
            mean, level, var, count = value, value, 0.0, 1
            continue
        if smooth < 1.0:
            level += smooth * (value - level)
            value = level
        d = value - mean
        sd = math.sqrt(max(var, settings.var_floor))
        if count >= settings.warmup:
            out[i] = d / sd
            d = max(-settings.clip * sd, min(settings.clip * sd, d))
        w = max(settings.alpha, 1.0 / (count + 1))
        mean += w * d
        var = (1.0 - w) * (var + w * d * d)
        count += 1
    return out


def zscore_reference(
    t: FloatArray, x: FloatArray, settings: DetectorSettings = DetectorSettings()
) -> FloatArray:
    """The z-score kernel written as a plain Python loop, for the tests and the benchmark."""
    return _zscore_python(t, x, settings, 1.0)


def level_shift_reference(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings = DetectorSettings(),
    smooth: float = 0.05,
) -> FloatArray:
    """The level-shift kernel as a plain Python loop, for the tests."""
    return _zscore_python(t, x, settings, smooth)


@njit(cache=True)
def _cholesky_solve(a: FloatArray, b: FloatArray) -> FloatArray:
    """Solve a y = b for a small symmetric positive definite a (no SciPy/LAPACK needed)."""
    k = b.size
    low = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1):
            s = a[i, j]
            for m in range(j):
                s -= low[i, m] * low[j, m]
            if i == j:
                low[i, i] = math.sqrt(s)
            else:
                low[i, j] = s / low[j, j]
    y = np.empty(k)
    for i in range(k):
        s = b[i]
        for m in range(i):
            s -= low[i, m] * y[m]
        y[i] = s / low[i, i]
    for i in range(k - 1, -1, -1):
        s = y[i]
        for m in range(i + 1, k):
            s -= low[m, i] * y[m]
        y[i] = s / low[i, i]
    return y


@njit(cache=True)
def _hotelling_series(
    t: FloatArray,
    x: FloatArray,
    alpha: float,
    warmup: int,
    max_gap: float,
    clip: float,
    var_floor: float,
    shrink: float,
    out: FloatArray,
) -> None:
    n, k = x.shape
    mean = np.zeros(k)
    cov = np.zeros((k, k))
    reg = np.empty((k, k))
    count = 0
    last_t = 0.0
    for i in range(n):
        row = x[i]
        out[i] = np.nan
        if np.any(np.isnan(row)):
            continue
        if count > 0 and t[i] - last_t > max_gap:
            count = 0
        last_t = t[i]
        if count == 0:
            mean[:] = row
            cov[:, :] = 0.0
            count = 1
            continue
        d = row - mean
        for a in range(k):
            for b in range(k):
                reg[a, b] = (1.0 - shrink) * cov[a, b]
            reg[a, a] = max(cov[a, a], var_floor)
        t2 = float(np.sum(d * _cholesky_solve(reg, d)))
        if count >= warmup:
            out[i] = t2
            if t2 > clip * clip:
                d *= clip / math.sqrt(t2)
        w = max(alpha, 1.0 / (count + 1))
        mean += w * d
        for a in range(k):
            for b in range(k):
                cov[a, b] = (1.0 - w) * (cov[a, b] + w * d[a] * d[b])
        count += 1


@njit(cache=True)
def _hotelling_one(
    t: FloatArray,
    x: FloatArray,
    alpha: float,
    warmup: int,
    max_gap: float,
    clip: float,
    var_floor: float,
    shrink: float,
) -> FloatArray:
    out = np.empty(x.shape[0])
    _hotelling_series(t, x, alpha, warmup, max_gap, clip, var_floor, shrink, out)
    return out


@njit(cache=True, parallel=True)
def _hotelling_many(
    t: FloatArray,
    x: FloatArray,
    alpha: float,
    warmup: int,
    max_gap: float,
    clip: float,
    var_floor: float,
    shrink: float,
) -> FloatArray:
    out = np.empty(x.shape[:2])
    for m in prange(x.shape[0]):
        _hotelling_series(t, x[m], alpha, warmup, max_gap, clip, var_floor, shrink, out[m])
    return out


def hotelling(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings = DetectorSettings(),
    shrink: float = 0.01,
) -> FloatArray:
    """Hotelling T² of each sample of a machine's k signals against their past.

    `x` is (samples, k) for one machine or (machines, samples, k), machines in parallel. A row
    with any NaN is skipped. The covariance is shrunk towards its diagonal by `shrink` so that
    strongly correlated or briefly constant signals cannot make it singular; shrinking towards
    the diagonal rather than the identity keeps the score independent of each signal's unit.
    `clip` applies to √T², the multivariate analogue of the z clip. Without anomalies T² has
    mean about k, so thresholds scale with k (the χ²_k quantiles are a starting point).
    `shrink` must be in (0, 1]: without it two samples already make a singular covariance.
    """
    if not 0.0 < shrink <= 1.0:
        raise ValueError(f"shrink must be in (0, 1], not {shrink}")
    args = (settings.alpha, settings.warmup, settings.max_gap, settings.clip, settings.var_floor)
    if x.ndim == 2:
        result: FloatArray = _hotelling_one(t, np.ascontiguousarray(x), *args, shrink)
    else:
        result = _hotelling_many(t, np.ascontiguousarray(x), *args, shrink)
    return result


def hotelling_reference(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings = DetectorSettings(),
    shrink: float = 0.01,
) -> FloatArray:
    """The T² kernel with NumPy's linear algebra in a Python loop, for tests and benchmark."""
    n, k = x.shape
    out = np.full(n, np.nan)
    mean, cov = np.zeros(k), np.zeros((k, k))
    count, last_t = 0, 0.0
    for i in range(n):
        row = x[i]
        if np.isnan(row).any():
            continue
        if count > 0 and t[i] - last_t > settings.max_gap:
            count = 0
        last_t = float(t[i])
        if count == 0:
            mean, cov, count = row.copy(), np.zeros((k, k)), 1
            continue
        d = row - mean
        reg = (1.0 - shrink) * cov
        np.fill_diagonal(reg, np.maximum(np.diag(cov), settings.var_floor))
        t2 = float(d @ np.linalg.solve(reg, d))
        if count >= settings.warmup:
            out[i] = t2
            if t2 > settings.clip**2:
                d = d * settings.clip / math.sqrt(t2)
        w = max(settings.alpha, 1.0 / (count + 1))
        mean = mean + w * d
        cov = (1.0 - w) * (cov + w * np.outer(d, d))
        count += 1
    return out


@njit(cache=True)
def _events(
    score: FloatArray, on: float, off: float, quiet: int, min_samples: int
) -> tuple[IntArray, IntArray, IntArray]:
    starts = np.empty(score.size, dtype=np.int64)
    ends = np.empty(score.size, dtype=np.int64)
    peaks = np.empty(score.size, dtype=np.int64)
    found = 0
    start = -1
    last_high = -1
    peak = -1
    for i in range(score.size):
        s = score[i]
        if start < 0:
            if s >= on:
                start, last_high, peak = i, i, i
            continue
        if s >= off:
            last_high = i
            if s > score[peak]:
                peak = i
        elif i - last_high >= quiet:
            if last_high - start + 1 >= min_samples:
                starts[found], ends[found], peaks[found] = start, last_high, peak
                found += 1
            start = -1
    if start >= 0 and last_high - start + 1 >= min_samples:
        starts[found], ends[found], peaks[found] = start, last_high, peak
        found += 1
    return starts[:found], ends[:found], peaks[:found]


def events_reference(
    score: FloatArray, on: float, off: float, quiet: int, min_samples: int
) -> list[tuple[int, int, int]]:
    """The event kernel as a plain Python loop: (start, end, peak) row numbers."""
    found: list[tuple[int, int, int]] = []
    open_: list[int] | None = None  # [start, last high, peak]
    for i, s in enumerate(score.tolist()):
        if open_ is None:
            if s >= on:
                open_ = [i, i, i]
        elif s >= off:
            open_[1] = i
            open_[2] = i if s > score[open_[2]] else open_[2]
        elif i - open_[1] >= quiet:
            if open_[1] - open_[0] + 1 >= min_samples:
                found.append((open_[0], open_[1], open_[2]))
            open_ = None
    if open_ is not None and open_[1] - open_[0] + 1 >= min_samples:
        found.append((open_[0], open_[1], open_[2]))
    return found


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


def alarms_reference(score: FloatArray, on: float, off: float, refractory: int) -> list[int]:
    """The alarm kernel as a plain Python loop: the rows that raise an alarm."""
    found: list[int] = []
    armed = True
    for i, s in enumerate(score.tolist()):
        armed = armed or not s >= off
        if armed and s >= on and (not found or i - found[-1] >= refractory):
            found.append(i)
            armed = False
    return found


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
    return [
        Event(label, float(t[a]), float(t[b]), float(t[p]), float(score[p]), int(a), int(b))
        for a, b, p in zip(starts.tolist(), ends.tolist(), peaks.tolist(), strict=True)
    ]
