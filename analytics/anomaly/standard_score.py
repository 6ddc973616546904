"""The z-score of each sample of a signal against its past (`zscore`), and the same score of a
short mean of the signal, which sees the level shifts single samples hide (`level_shift`).
Settings and conventions: `analytics.anomaly.settings`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from analytics.anomaly._intrinsics import _LINE, _divide_four, _fma
from analytics.anomaly.settings import DetectorSettings, _equal_weight_count

FloatArray = npt.NDArray[np.float64]

_BLOCK = 512  # samples a steady block runs between the checks that pick its loop
_LAG = 16  # samples a steady loop's divisions run behind it, so that they read stored values


@njit(cache=True, error_model="numpy")
def _divide_by_sd(out: FloatArray, spread: FloatArray) -> None:
    """out /= sqrt(spread), vectorised: four square roots and divisions an instruction."""
    for i in range(out.size):
        out[i] = out[i] / math.sqrt(spread[i])


@njit(cache=True, error_model="numpy", inline="always")
def _divide_behind(out: FloatArray, spread: FloatArray, i: int) -> None:
    """At every fourth sample i, the scores of four samples `_LAG` before: the divider works
    beside the recurrences, which do not wait for it."""
    lagging = i - 3 - _LAG
    if i % 4 == 3 and lagging >= 0:
        _divide_four(out, spread, lagging)


@njit(cache=True, error_model="numpy")
def _divided(size: int) -> int:
    """The samples of a steady block of `size` whose scores `_divide_behind` made."""
    return max(size // 4 * 4 - _LAG, 0)


@njit(cache=True, error_model="numpy")
def _steady_point(
    t: FloatArray,
    x: FloatArray,
    out: FloatArray,
    spread: FloatArray,
    state: tuple[float, float, float],
    alpha: float,
    max_gap: float,
    clip: float,
    var_floor: float,
) -> tuple[float, float]:
    """The z-score's recurrences over a block past warm-up: the deviation of each sample goes
    to `out` and its floored variance to `spread`, and `_divide_behind` makes the scores of
    all but the last few (`_divided`; `_divide_by_sd` makes the others). From
    (mean, variance, time of the sample before) to (mean, variance), the variance NaN if the
    block has a NaN sample or a gap. Same operations, in the same order, as `_zscore_samples`.
    """
    mean, var, before = state
    keep = 1.0 - alpha
    gain = keep * alpha
    clip2 = clip * clip
    gaps = 0
    for i in range(x.size):
        if max_gap < math.inf:  # the same for all samples: no branch in the compiled loop
            gaps += t[i] - before > max_gap  # a count, not `or`, which would be a branch
            before = t[i]
        value = x[i]
        d = value - mean
        floored = max(var, var_floor)
        out[i] = d
        spread[i] = floored
        _divide_behind(out, spread, i)
        if d * d > clip2 * floored:
            d = math.copysign(clip * math.sqrt(floored), d)
            mean += alpha * d
        else:
            mean = _fma(keep, mean, alpha * value)
        var = _fma(keep, var, gain * (d * d))
    return mean, np.nan if gaps else var


@njit(cache=True, error_model="numpy")
def _steady_level(
    t: FloatArray,
    x: FloatArray,
    out: FloatArray,
    spread: FloatArray,
    state: tuple[float, float, float, float],
    alpha: float,
    max_gap: float,
    clip: float,
    var_floor: float,
    smooth: float,
) -> tuple[float, float, float]:
    """`_steady_point` on the short exponential mean of the samples (the level shift), from
    and to (mean, variance, level[, time])."""
    mean, var, level, before = state
    keep = 1.0 - alpha
    gain = keep * alpha
    clip2 = clip * clip
    keep_level = 1.0 - smooth
    gaps = 0
    for i in range(x.size):
        if max_gap < math.inf:
            gaps += t[i] - before > max_gap
            before = t[i]
        level = _fma(keep_level, level, smooth * x[i])
        d = level - mean
        floored = max(var, var_floor)
        out[i] = d
        spread[i] = floored
        _divide_behind(out, spread, i)
        if d * d > clip2 * floored:
            d = math.copysign(clip * math.sqrt(floored), d)
            mean += alpha * d
        else:
            mean = _fma(keep, mean, alpha * level)
        var = _fma(keep, var, gain * (d * d))
    return mean, np.nan if gaps else var, level


@njit(cache=True, error_model="numpy")
def _zscore_samples(
    t: FloatArray,
    x: FloatArray,
    out: FloatArray,
    state: tuple[int, float, float, float, float],
    alpha: float,
    warmup: int,
    max_gap: float,
    clip: float,
    var_floor: float,
    smooth: float,
) -> tuple[int, float, float, float, float]:
    """`_zscore_series` sample by sample, from and to (count, mean, variance, level, time)."""
    count, mean, var, level, last_t = state
    equal_until = _equal_weight_count(alpha)
    keep = 1.0 - alpha
    gain = keep * alpha
    clip2 = clip * clip
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
            level = _fma(1.0 - smooth, level, smooth * value)
            value = level
        d = value - mean
        floored = max(var, var_floor)
        clipped = False
        if count >= warmup:
            out[i] = d / math.sqrt(floored)
            if d * d > clip2 * floored:
                d = math.copysign(clip * math.sqrt(floored), d)
                clipped = True
        else:
            out[i] = np.nan
        if count < equal_until:
            w = 1.0 / (count + 1)
            mean += w * d
            var = (1.0 - w) * (var + w * d * d)
        elif clipped:
            mean += alpha * d
            var = _fma(keep, var, gain * (d * d))
        else:
            mean = _fma(keep, mean, alpha * value)
            var = _fma(keep, var, gain * (d * d))
        count += 1
    return count, mean, var, level, last_t


@njit(cache=True, error_model="numpy")
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
    # Mean, variance and level are the dependency chains, one fused multiply-add each per
    # sample once the weight is alpha (keep * mean + alpha * value is the same convex
    # combination as mean + alpha * (value - mean), one operation shorter). Past warm-up a
    # block runs through a loop that carries only them (`_steady_point`, `_steady_level`): no
    # scalar square root or division in it (they share one slow unit and bounded the kernel),
    # both done by vector instructions four samples at a time, a few samples behind the
    # recurrences and beside them (`_divide_behind`), not after the block. A block
    # with a NaN or a gap comes back with a NaN variance and is run again sample by sample
    # (`_zscore_samples`); both do the same operations in the same order, so which loop ran a
    # sample never shows in its score.
    steady_from = max(warmup, _equal_weight_count(alpha))
    # Padded by a cache line at each end, as threads share the heap (see
    # hotelling_t2._hotelling_series).
    spread = np.empty(2 * _LINE + _BLOCK)[_LINE : _LINE + _BLOCK]
    state = (0, 0.0, 0.0, 0.0, 0.0)  # count, mean, variance, level, time of the last sample
    for start in range(0, x.size, _BLOCK):
        stop = min(start + _BLOCK, x.size)
        count, mean, var, level, last_t = state
        if count >= steady_from:
            size = stop - start
            block = (t[start:stop], x[start:stop], out[start:stop], spread[:size])
            if smooth < 1.0:
                mean, var, level = _steady_level(
                    *block, (mean, var, level, last_t), alpha, max_gap, clip, var_floor, smooth
                )
            else:
                mean, var = _steady_point(
                    *block, (mean, var, last_t), alpha, max_gap, clip, var_floor
                )
            if not np.isnan(var):
                state = (count + size, mean, var, level, t[stop - 1])
                done = _divided(size)
                _divide_by_sd(out[start + done : stop], spread[done:size])
                continue
        state = _zscore_samples(
            t[start:stop], x[start:stop], out[start:stop], state,
            alpha, warmup, max_gap, clip, var_floor, smooth,
        )  # fmt: skip


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
