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

Every kernel has two references that the tests compare it with: a line-by-line Python
transcript (`*_reference`) and an independent, vectorised NumPy formulation (`*_numpy`).
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
def _equal_weight_count(alpha: float) -> int:
    """The count from which samples are absorbed with weight alpha, not 1 / (count + 1)."""
    count = max(1, int(min(1.0 / alpha, 2.0**62)) - 2)
    while 1.0 / (count + 1) > alpha:
        count += 1
    return count


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
    # Mean and variance are the loop's dependency chain; the rest stays off it: the clip test
    # compares squares, so the square root is only taken for the score (and a clipped sample),
    # and the weight takes a division only while it is 1 / (count + 1).
    equal_until = _equal_weight_count(alpha)
    clip2 = clip * clip
    count = 0
    mean = 0.0
    var = 0.0
    level = 0.0
    last_t = 0.0
    for i in range(x.size):
        value = x[i]
        if np.isnan(value):
            out[i] = np.nan
            continue
        if count > 0 and t[i] - last_t > max_gap:
            count = 0
        last_t = t[i]
        if count == 0:
            mean = value
            level = value
            var = 0.0
            count = 1
            out[i] = np.nan
            continue
        if smooth < 1.0:
            level += smooth * (value - level)
            value = level
        d = value - mean
        floored = max(var, var_floor)
        if count >= warmup:
            out[i] = d / math.sqrt(floored)
            if d * d > clip2 * floored:
                d = math.copysign(clip * math.sqrt(floored), d)
        else:
            out[i] = np.nan
        w = 1.0 / (count + 1) if count < equal_until else alpha
        mean += w * d
        var = (1.0 - w) * (var + w * d * d)
        count += 1


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
    out: FloatArray,
) -> None:
    for s in prange(x.shape[0]):
        _zscore_series(t, x[s], alpha, warmup, max_gap, clip, var_floor, smooth, out[s])


def _zscore_run(
    t: FloatArray, x: FloatArray, settings: DetectorSettings, smooth: float
) -> FloatArray:
    args = (settings.alpha, settings.warmup, settings.max_gap, settings.clip, settings.var_floor)
    # NumPy allocates the scores and asks the OS for huge pages for them; an array allocated
    # inside a Numba function takes a page fault every 4 KiB, 512 times as many.
    out = np.empty(x.shape)
    if x.ndim == 1:
        _zscore_series(t, x, *args, smooth, out)
    else:
        _zscore_many(t, np.ascontiguousarray(x), *args, smooth, out)
    return out


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


_LINE = 8  # float64 in a cache line


@njit(cache=True)
def _mahalanobis(
    cov: FloatArray,
    shrink: float,
    var_floor: float,
    y: FloatArray,
    work: FloatArray,
    signals: tuple[int, ...],
) -> float:
    """d' reg^-1 d, reg being the lower triangle of `cov` shrunk towards its floored diagonal,
    d given in `y` (overwritten); `work` is k x k scratch.

    Right-looking LDL' factorisation with L y = d solved alongside, so that T² = sum y_j² / D_j:
    no square roots, one division per column, and the updates of a column independent of one
    another, which keeps the dependency chain k steps long. k is the length of `signals`, a
    tuple of that many zeros: known when compiling, it lets the compiler unroll the loops, which
    makes the factorisation about 3 times faster for 8 signals.
    """
    k = len(signals)
    for i in range(k):
        for m in range(i):
            work[i, m] = (1.0 - shrink) * cov[i, m]
        work[i, i] = max(cov[i, i], var_floor)
    t2 = 0.0
    for j in range(k):
        inverse = 1.0 / work[j, j]
        t2 += y[j] * y[j] * inverse
        for i in range(j + 1, k):
            factor = work[i, j] * inverse
            y[i] -= factor * y[j]
            for m in range(j + 1, i + 1):
                work[i, m] -= factor * work[m, j]
    return t2


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
    signals: tuple[int, ...],
    out: FloatArray,
) -> None:
    # The work arrays share one allocation, padded by a cache line at each end: small arrays
    # allocated by two threads can share a line, and writing it from both halves the speed.
    # Only the covariance's lower triangle is updated and factorised.
    k = len(signals)
    equal_until = _equal_weight_count(alpha)
    space = np.zeros(2 * _LINE + 3 * k + 2 * k * k)
    mean, d, y = space[_LINE : _LINE + 3 * k].reshape((3, k))
    cov, work = space[_LINE + 3 * k : _LINE + 3 * k + 2 * k * k].reshape((2, k, k))
    count = 0
    last_t = 0.0
    for i in range(x.shape[0]):
        out[i] = np.nan
        missing = False
        for a in range(k):
            missing |= np.isnan(x[i, a])
        if missing:
            continue
        if count > 0 and t[i] - last_t > max_gap:
            count = 0
        last_t = t[i]
        if count == 0:
            mean[:] = x[i]
            cov[:, :] = 0.0
            count = 1
            continue
        for a in range(k):
            d[a] = x[i, a] - mean[a]
            y[a] = d[a]
        t2 = _mahalanobis(cov, shrink, var_floor, y, work, signals)
        if count >= warmup:
            out[i] = t2
            if t2 > clip * clip:
                d *= clip / math.sqrt(t2)
        w = 1.0 / (count + 1) if count < equal_until else alpha
        for a in range(k):
            mean[a] += w * d[a]
            for b in range(a + 1):
                cov[a, b] = (1.0 - w) * (cov[a, b] + w * d[a] * d[b])
        count += 1


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
    signals: tuple[int, ...],
    out: FloatArray,
) -> None:
    for m in prange(x.shape[0]):
        args = (alpha, warmup, max_gap, clip, var_floor, shrink, signals)
        _hotelling_series(t, x[m], *args, out[m])


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
    x = np.asarray(x, dtype=np.float64)
    machines = x[np.newaxis] if x.ndim == 2 else x
    # Compiled once for each number of signals (see `_mahalanobis`) and for any strides, so
    # that a view of signal-major data (machines, k, samples) is read where it lies.
    signals = (0,) * machines.shape[2]
    out = np.empty(machines.shape[:2])  # allocated by NumPy: see _zscore_run
    _hotelling_many(t, machines, *args, shrink, signals, out)
    return out[0] if x.ndim == 2 else out


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
def _room(rows: IntArray, found: int) -> IntArray:
    """`rows` (lines, capacity), grown twofold when column `found` does not fit: events are
    few, so their kernel starts small instead of taking three slots per sample."""
    if found < rows.shape[1]:
        return rows
    grown = np.empty((rows.shape[0], 2 * found), dtype=np.int64)
    grown[:, :found] = rows
    return grown


@njit(cache=True)
def _events(
    score: FloatArray, on: float, off: float, quiet: int, min_samples: int
) -> tuple[IntArray, IntArray, IntArray]:
    rows = np.empty((3, 64), dtype=np.int64)  # start, end and peak of each event
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
                rows = _room(rows, found)
                rows[0, found], rows[1, found], rows[2, found] = start, last_high, peak
                found += 1
            start = -1
    if start >= 0 and last_high - start + 1 >= min_samples:
        rows = _room(rows, found)
        rows[0, found], rows[1, found], rows[2, found] = start, last_high, peak
        found += 1
    return rows[0, :found], rows[1, :found], rows[2, :found]


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
    columns = (t[starts], t[ends], t[peaks], score[peaks], starts, ends)
    return [Event(label, *row) for row in zip(*(c.tolist() for c in columns), strict=True)]


# --- vectorised NumPy references ------------------------------------------------------------


def _affine_scan(decay: float, inputs: FloatArray, first: FloatArray | float) -> FloatArray:
    """States s[0] = first, s[i + 1] = decay s[i] + inputs[i] along axis 0, all n + 1 of them.

    Closed form per block, s[j] = decay^j s[0] + decay^(j-1) cumsum(inputs decay^-l): the blocks
    are short enough for decay^-block to stay far below overflow, and the state carried from
    block to block keeps the relative error near eps / (1 - decay) however long the series.
    """
    n = inputs.shape[0]
    states = np.empty((n + 1, *inputs.shape[1:]))
    states[0] = first
    if decay == 0.0:
        states[1:] = inputs
        return states
    block = int(min(max(n, 1), max(1.0, 300.0 / -math.log(decay))))
    shape = (block,) + (1,) * (inputs.ndim - 1)
    powers = (decay ** np.arange(block)).reshape(shape)
    for start in range(0, n, block):
        part = inputs[start : start + block]
        size = part.shape[0]
        inner = np.cumsum(part / powers[:size], axis=0) * powers[:size]
        states[start + 1 : start + size + 1] = inner + decay * powers[:size] * states[start]
    return states


def _past_weights(n: int, alpha: float) -> FloatArray:
    """The weight each sample gets when absorbed: equal weights until they fall to alpha."""
    return np.maximum(alpha, 1.0 / np.arange(1.0, n + 1.0))


def _past_mean(values: FloatArray, alpha: float) -> FloatArray:
    """For each row i, the kernels' weighted mean of rows 0..i-1 (row 0 gets zeros).

    Row i is absorbed with weight max(alpha, 1 / (i + 1)): the plain running mean while that
    is above alpha, an exponential mean after.
    """
    n = values.shape[0]
    equal = min(n, int(np.count_nonzero(_past_weights(n, alpha) > alpha)))
    means = np.zeros_like(values)
    counts = np.arange(1.0, equal + 1.0).reshape((equal,) + (1,) * (values.ndim - 1))
    means[1 : equal + 1] = (np.cumsum(values[:equal], axis=0) / counts)[: n - 1]
    if equal < n:
        rest = _affine_scan(1.0 - alpha, alpha * values[equal:], means[equal])
        means[equal + 1 :] = rest[1 : n - equal]
    return means


def _segments(t: FloatArray, valid: IntArray, max_gap: float) -> list[IntArray]:
    """The valid rows split where the statistics restart after a gap."""
    restarts = np.flatnonzero(np.diff(t[valid]) > max_gap) + 1
    return [rows for rows in np.split(valid, restarts) if rows.size]


def _converged(clipped: FloatArray, absorbed: FloatArray, scale: FloatArray) -> bool:
    """Whether a pass moved no absorbed value by more than 1e-12 of its scale."""
    return bool(np.all(np.abs(clipped - absorbed) <= 1e-12 * scale))


def _zscore_segment(x: FloatArray, settings: DetectorSettings, smooth: float) -> FloatArray:
    """Scores of one run without NaN or restart, by fixed-point iteration on the clipping.

    Given the values absorbed after clipping, mean and variance are linear recurrences solved
    in closed form; the clipping depends on them in turn, so iterate from the unclipped
    values. Iteration m gets the first m clipped samples right, and in practice it settles
    after a few passes (more for long runs of clipped samples, such as a large step).
    """
    v = x - x[0]  # the scores do not depend on an offset; the sums then carry none
    if smooth < 1.0:
        v = _affine_scan(1.0 - smooth, smooth * v[1:], 0.0)
    kept = 1.0 - _past_weights(v.size, settings.alpha)
    scored = np.arange(v.size) >= max(settings.warmup, 1)
    absorbed = v
    for _ in range(v.size):
        mean = _past_mean(absorbed, settings.alpha)
        var = _past_mean(kept * (absorbed - mean) ** 2, settings.alpha)
        sd = np.sqrt(np.maximum(var, settings.var_floor))
        limit = settings.clip * sd
        clipped = np.where(scored, np.clip(v, mean - limit, mean + limit), v)
        if _converged(clipped, absorbed, sd):
            break
        absorbed = clipped
    return np.where(scored, (v - mean) / sd, np.nan)


def _zscore_numpy(
    t: FloatArray, x: FloatArray, settings: DetectorSettings, smooth: float
) -> FloatArray:
    out = np.full(x.size, np.nan)
    for rows in _segments(t, np.flatnonzero(~np.isnan(x)), settings.max_gap):
        out[rows] = _zscore_segment(x[rows], settings, smooth)
    return out


def zscore_numpy(
    t: FloatArray, x: FloatArray, settings: DetectorSettings = DetectorSettings()
) -> FloatArray:
    """The z-score of one series in vectorised NumPy, for the tests and the benchmark."""
    return _zscore_numpy(t, x, settings, 1.0)


def level_shift_numpy(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings = DetectorSettings(),
    smooth: float = 0.05,
) -> FloatArray:
    """The level-shift score of one series in vectorised NumPy, for tests and benchmark."""
    return _zscore_numpy(t, x, settings, smooth)


def _hotelling_segment(x: FloatArray, settings: DetectorSettings, shrink: float) -> FloatArray:
    """T² of one run without NaN or restart, iterating on the clipping as `_zscore_segment`."""
    v = x - x[0]
    n, k = v.shape
    kept = (1.0 - _past_weights(n, settings.alpha))[:, None, None]
    scored = np.arange(n) >= max(settings.warmup, 1)
    diagonal = np.arange(k)
    absorbed = v
    for _ in range(n):
        mean = _past_mean(absorbed, settings.alpha)
        step = absorbed - mean
        cov = _past_mean(kept * step[:, :, None] * step[:, None, :], settings.alpha)
        reg = (1.0 - shrink) * cov
        spread = np.maximum(cov[:, diagonal, diagonal], settings.var_floor)
        reg[:, diagonal, diagonal] = spread
        d = v - mean
        t2 = np.einsum("ij,ij->i", d, np.linalg.solve(reg, d[:, :, None])[:, :, 0])
        shrunk = settings.clip / np.sqrt(np.maximum(t2, settings.clip**2))
        clipped = mean + d * np.where(scored, shrunk, 1.0)[:, None]
        if _converged(clipped, absorbed, np.sqrt(spread)):
            break
        absorbed = clipped
    return np.where(scored, t2, np.nan)


def hotelling_numpy(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings = DetectorSettings(),
    shrink: float = 0.01,
) -> FloatArray:
    """Hotelling T² of one machine (samples, k) in vectorised NumPy, for tests and benchmark."""
    out = np.full(x.shape[0], np.nan)
    for rows in _segments(t, np.flatnonzero(~np.isnan(x).any(axis=1)), settings.max_gap):
        out[rows] = _hotelling_segment(x[rows], settings, shrink)
    return out


def _next_true(mask: npt.NDArray[np.bool_]) -> IntArray:
    """For each row (and one past the end), the first row at or after it where mask holds."""
    rows = np.where(mask, np.arange(mask.size), mask.size)
    return np.append(np.minimum.accumulate(rows[::-1])[::-1], mask.size)


def alarms_numpy(score: FloatArray, on: float, off: float, refractory: int) -> IntArray:
    """The alarm rows in NumPy: one step per alarm, found by lookup tables of the next row
    above `on` and the next row below `off`."""
    n = score.size
    next_high = _next_true(score >= on)
    next_low = _next_true(~(score >= off))
    found = []
    row = int(next_high[0])
    while row < n:
        found.append(row)
        row = int(next_high[max(next_low[min(row + 1, n)], min(row + refractory, n))])
    return np.array(found, dtype=np.int64)


def events_numpy(
    score: FloatArray, on: float, off: float, quiet: int, min_samples: int
) -> list[tuple[int, int, int]]:
    """The event rows in NumPy, one step per event: an event runs on through the rows at or
    above `off` until two of them are more than `quiet` rows apart."""
    n = score.size
    gap = max(quiet, 1)
    next_open = _next_true(score >= on)
    highs = np.flatnonzero(score >= off)
    breaks = np.flatnonzero(np.diff(np.append(highs, n + gap + 1)) > gap)
    found = []
    start = int(next_open[0])
    while start < n:
        first = int(np.searchsorted(highs, start, side="right"))
        end = start
        if first < highs.size and highs[first] - start <= gap:
            end = int(highs[breaks[np.searchsorted(breaks, first)]])
        rows = np.concatenate([[start], highs[first : np.searchsorted(highs, end, "right")]])
        if end - start + 1 >= min_samples:
            found.append((start, end, int(rows[np.argmax(score[rows])])))
        start = int(next_open[min(end + gap + 1, n)])
    return found


def t2_level(z: float, k: int) -> float:
    """The T² level of k signals as rare as |z| >= `z` of one, so one threshold serves both.

    T² of k Gaussian signals is chi-squared with k degrees of freedom: its quantile at the
    two-sided normal tail of z, by bisection on the chi-squared tail, closed-form for whole k.
    """

    def tail(x: float) -> float:
        total = math.erfc(math.sqrt(x / 2)) if k % 2 else math.exp(-x / 2)
        for m in range(3 if k % 2 else 4, k + 1, 2):
            total += math.exp((m / 2 - 1) * math.log(x / 2) - x / 2 - math.lgamma(m / 2))
        return total

    target = math.erfc(z / math.sqrt(2))
    low, high = z * z, 2 * z * z  # chi-squared with k >= 1 is at least the 1-signal level
    while tail(high) > target:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) > target else (low, middle)
    return high
