"""References for the kernels of `analytics.anomaly`, which the tests compare them with and the
kernel bench measures them against: for each, a line-by-line Python transcript (`*_reference`)
and an independent, vectorised NumPy formulation (`*_numpy`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from analytics.anomaly import DetectorSettings
from analytics.anomaly._intrinsics import _SNAPSHOT
from analytics.anomaly.settings import _equal_weight_count

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def level_shift_reference(
    t: FloatArray, x: FloatArray, settings: DetectorSettings, smooth: float = 0.05
) -> FloatArray:
    """The level-shift kernel as a plain Python loop; `smooth` 1 is the z-score."""
    s = settings
    keep, gain = 1.0 - s.alpha, (1.0 - s.alpha) * s.alpha
    out = np.full(x.size, np.nan)
    count, mean, var, level, last_t = 0, 0.0, 0.0, 0.0, 0.0
    for i, value in enumerate(x.tolist()):
        if math.isnan(value):
            continue
        if count > 0 and t[i] - last_t > s.max_gap:
            count = 0
        last_t = float(t[i])
        if count == 0:
            mean, level, var, count = value, value, 0.0, 1
            continue
        if smooth < 1.0:
            level = (1.0 - smooth) * level + smooth * value
            value = level
        d = value - mean
        sd = math.sqrt(max(var, s.var_floor))
        clipped = False
        if count >= s.warmup:
            out[i] = d / sd
            clipped = abs(d) > s.clip * sd
            d = max(-s.clip * sd, min(s.clip * sd, d))
        if 1.0 / (count + 1) > s.alpha:  # equal weights
            w = 1.0 / (count + 1)
            mean += w * d
            var = (1.0 - w) * (var + w * d * d)
        else:
            mean = mean + s.alpha * d if clipped else keep * mean + s.alpha * value
            var = keep * var + gain * d * d
        count += 1
    return out


def zscore_reference(t: FloatArray, x: FloatArray, settings: DetectorSettings) -> FloatArray:
    """The z-score kernel as a plain Python loop, for the tests and the benchmark."""
    return level_shift_reference(t, x, settings, 1.0)


def _snapshot_due(count: int, equal_until: int) -> bool:
    """Whether the row absorbed with `count` starts a block with a new snapshot: every row while
    the weights are equal (the estimate still moves fast), every _SNAPSHOT rows after."""
    return count < equal_until or (count - equal_until) % _SNAPSHOT == 0


def _shrunk(cov: FloatArray, shrink: float, var_floor: float) -> FloatArray:
    """The matrix T² inverts: (1 - shrink) C off the diagonal, max(C_jj, var_floor) on it.
    Works on one (k, k) or a stack (n, k, k)."""
    k = cov.shape[-1]
    reg = (1.0 - shrink) * cov
    diagonal = np.arange(k)
    reg[..., diagonal, diagonal] = np.maximum(cov[..., diagonal, diagonal], var_floor)
    return reg


def hotelling_reference(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings,
    shrink: float = 0.01,
) -> FloatArray:
    """The T² kernel with NumPy's linear algebra in a Python loop, for tests and benchmark."""
    s = settings
    n, k = x.shape
    out = np.full(n, np.nan)
    mean, cov = np.zeros(k), np.zeros((k, k))
    snapshot_mean, reg = mean, cov
    equal_until = int(_equal_weight_count(s.alpha))
    count, last_t = 0, 0.0
    for i in range(n):
        row = x[i]
        if np.isnan(row).any():
            continue
        if count > 0 and t[i] - last_t > s.max_gap:
            count = 0
        last_t = float(t[i])
        if count == 0:
            mean, cov, count = row.copy(), np.zeros((k, k)), 1
            continue
        if _snapshot_due(count, equal_until):
            snapshot_mean, reg = mean.copy(), _shrunk(cov, shrink, s.var_floor)
        f = row - snapshot_mean
        sigma = 1.0
        if count >= s.warmup:
            out[i] = t2 = float(f @ np.linalg.solve(reg, f))
            sigma = s.clip / math.sqrt(max(t2, s.clip**2))
        w = max(s.alpha, 1.0 / (count + 1))
        mean = (1.0 - w) * mean + w * (snapshot_mean + sigma * f)
        cov = (1.0 - w) * (cov + w * sigma**2 * np.outer(f, f))
        count += 1
    return out


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


def level_shift_numpy(
    t: FloatArray, x: FloatArray, settings: DetectorSettings, smooth: float = 0.05
) -> FloatArray:
    """The level-shift score of one series in vectorised NumPy; `smooth` 1 is the z-score."""
    out = np.full(x.size, np.nan)
    for rows in _segments(t, np.flatnonzero(~np.isnan(x)), settings.max_gap):
        out[rows] = _zscore_segment(x[rows], settings, smooth)
    return out


def zscore_numpy(t: FloatArray, x: FloatArray, settings: DetectorSettings) -> FloatArray:
    """The z-score of one series in vectorised NumPy, for the tests and the benchmark."""
    return level_shift_numpy(t, x, settings, 1.0)


def _snapshot_counts(n: int, settings: DetectorSettings) -> IntArray:
    """For each count of a run, the count whose estimate it is scored against (`_snapshot_due`)."""
    count = np.arange(n)
    equal_until = int(_equal_weight_count(settings.alpha))
    steady = equal_until + (count - equal_until) // _SNAPSHOT * _SNAPSHOT
    return np.where(count < equal_until, count, steady)


def _hotelling_segment(x: FloatArray, settings: DetectorSettings, shrink: float) -> FloatArray:
    """T² of one run without NaN or restart, iterating on the clipping as `_zscore_segment`."""
    v = x - x[0]
    n, k = v.shape
    kept = (1.0 - _past_weights(n, settings.alpha))[:, None, None]
    scored = np.arange(n) >= max(settings.warmup, 1)
    snapshot = _snapshot_counts(n, settings)
    diagonal = np.arange(k)
    absorbed = v
    for _ in range(n):
        mean = _past_mean(absorbed, settings.alpha)
        centre = mean[snapshot]
        step = absorbed - centre
        cov = _past_mean(kept * step[:, :, None] * step[:, None, :], settings.alpha)
        reg = _shrunk(cov[snapshot], shrink, settings.var_floor)
        f = v - centre
        t2 = np.einsum("ij,ij->i", f, np.linalg.solve(reg, f[:, :, None])[:, :, 0])
        shrunk = settings.clip / np.sqrt(np.maximum(t2, settings.clip**2))
        clipped = centre + f * np.where(scored, shrunk, 1.0)[:, None]
        spread = np.maximum(cov[:, diagonal, diagonal], settings.var_floor)
        if _converged(clipped, absorbed, np.sqrt(spread)):
            break
        absorbed = clipped
    return np.where(scored, t2, np.nan)


def hotelling_numpy(
    t: FloatArray,
    x: FloatArray,
    settings: DetectorSettings,
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
