"""Causal, streaming anomaly detectors: a robust z-score per signal, the same score on a short
mean of the signal for level shifts, Hotelling T² per machine, and alarms or events from a score.

Both keep exponentially forgotten statistics: the mean a weighted average of the samples, the
variance (covariance) updated Welford-style on the difference from the running mean, never from
raw sums of squares, so a signal riding on a 1e6 offset scores like the same signal without it.
Shared conventions:

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

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


_LINE = 8  # float64 in a cache line
_BLOCK = 512  # samples a steady block runs between the checks that pick its loop


@intrinsic
def _fma_intrinsic(typingctx: object, a: object, b: object, c: object) -> tuple[object, object]:
    """a * b + c rounded once (the CPU's fused multiply-add), for compiled code: `_fma`.

    One instruction instead of two on a recurrence's dependency chain, and, unlike letting the
    compiler contract `a * b + c` where it sees fit, the same rounding wherever it is called:
    the steady loop and the sample-by-sample loop of a kernel must give identical bits.
    """
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: object, builder: Any, signature: object, args: Any) -> Any:
        double = args[0].type
        function = builder.module.declare_intrinsic("llvm.fma", [double, double, double])
        return builder.call(function, args)

    return signature, codegen


_fma = cast(Callable[[float, float, float], float], _fma_intrinsic)  # as compiled code calls it


@njit(cache=True)
def _equal_weight_count(alpha: float) -> int:
    """The count from which samples are absorbed with weight alpha, not 1 / (count + 1)."""
    count = max(1, int(min(1.0 / alpha, 2.0**62)) - 2)
    while 1.0 / (count + 1) > alpha:
        count += 1
    return count


@njit(cache=True, error_model="numpy")
def _divide_by_sd(out: FloatArray, spread: FloatArray) -> None:
    """out /= sqrt(spread), vectorised: four square roots and divisions an instruction."""
    for i in range(out.size):
        out[i] = out[i] / math.sqrt(spread[i])


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
    to `out` and its floored variance to `spread` (`_divide_by_sd` makes the scores). From
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
    # square root or division in it, both done for the whole block afterwards by vectorised
    # instructions (in scalar code they share one slow unit and bounded the kernel). A block
    # with a NaN or a gap comes back with a NaN variance and is run again sample by sample
    # (`_zscore_samples`); both do the same operations in the same order, so which loop ran a
    # sample never shows in its score.
    steady_from = max(warmup, _equal_weight_count(alpha))
    # Padded by a cache line at each end, as threads share the heap (see _hotelling_series).
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
                _divide_by_sd(out[start:stop], spread[:size])
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


def _zscore_python(
    t: FloatArray, x: FloatArray, settings: DetectorSettings, smooth: float
) -> FloatArray:
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


_REFRESH = 256  # rows between exact refactorisations of T²'s running inverse


@njit(cache=True, error_model="numpy")
def _shrink_target(c: float, shrink: float, var_floor: float) -> float:
    """lam of a signal of variance `c`: what (1 - shrink) c needs to reach max(c, var_floor)."""
    return max(c, var_floor) - (1.0 - shrink) * c


@njit(cache=True, error_model="numpy")
def _mahalanobis(
    cov: FloatArray,
    lam: FloatArray,
    keep_s: float,
    y: FloatArray,
    work: FloatArray,
    signals: tuple[int, ...],
) -> float:
    """d' reg^-1 d with reg = keep_s cov + diag(lam), from the lower triangle of `cov`, d given
    in `y` (overwritten); `work` is k x k scratch.

    Right-looking LDL' factorisation with L y = d solved alongside, so that T² = sum y_j² / D_j:
    no square roots, one division per column, and the updates of a column independent of one
    another, which keeps the dependency chain k steps long. k is the length of `signals`, a
    tuple of that many zeros: known when compiling, it lets the compiler unroll the loops, which
    makes the factorisation about 3 times faster for 8 signals.
    """
    k = len(signals)
    for i in range(k):
        for m in range(i):
            work[i, m] = keep_s * cov[i, m]
        work[i, i] = keep_s * cov[i, i] + lam[i]
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


@njit(cache=True, error_model="numpy")
def _invert(a: FloatArray, signals: tuple[int, ...]) -> None:
    """Inverse of a symmetric positive definite k x k `a` in place, by Gauss-Jordan elimination
    (no pivoting needed: every pivot is a Schur complement of a positive definite matrix)."""
    k = len(signals)
    for p in range(k):
        pivot = 1.0 / a[p, p]
        a[p, p] = 1.0
        for c in range(k):
            a[p, c] *= pivot
        for r in range(k):
            if r != p:
                factor = a[r, p]
                a[r, p] = 0.0
                for c in range(k):
                    a[r, c] -= factor * a[p, c]


# Vector kernels over rows of k float64 in one array, for the T² updates. Numba leaves LLVM's
# SLP vectoriser off, and a loop of the constant length k is unrolled before its loop vectoriser
# would see it, so loops over k compile to scalar code; these emit LLVM vector operations
# themselves, which become AVX instructions where the CPU has them (SSE2 or NEON elsewhere):
# k = 8 is two 4-wide vectors, other k a 2- and a 1-wide remainder. Offsets are in float64
# from the start of the array, k is the length of `signals` (see `_mahalanobis`).


def _chunks(k: int) -> list[tuple[int, int]]:
    """(start, width) of the vectors a row of k float64 is processed in."""
    chunks = []
    start = 0
    while start < k:
        width = 4 if k - start >= 4 else 2 if k - start >= 2 else 1
        chunks.append((start, width))
        start += width
    return chunks


def _lane(index: int) -> Any:
    return ir.Constant(ir.IntType(32), index)


def _gather(builder: Any, values: list[Any]) -> Any:
    """A vector of the given float64 values."""
    vector = ir.Constant(ir.VectorType(ir.DoubleType(), len(values)), ir.Undefined)
    for lane, value in enumerate(values):
        vector = builder.insert_element(vector, value, _lane(lane))
    return vector


def _vector_at(builder: Any, data: Any, offset: Any, start: int, vector: Any) -> Any:
    """A pointer to the `vector`-typed run of float64 at data[offset + start]."""
    element = builder.gep(data, [builder.add(offset, ir.Constant(offset.type, start))])
    return builder.bitcast(element, vector.as_pointer())


def _load(builder: Any, data: Any, offset: Any, start: int, width: int) -> Any:
    vector = ir.VectorType(ir.DoubleType(), width)
    return builder.load(_vector_at(builder, data, offset, start, vector), typ=vector, align=8)


def _store(builder: Any, value: Any, data: Any, offset: Any, start: int) -> None:
    builder.store(value, _vector_at(builder, data, offset, start, value.type), align=8)


def _vector_fma(builder: Any, a: Any, b: Any, c: Any) -> Any:
    """a * b + c per lane, rounded once as `_fma` rounds it."""
    name = f"llvm.fma.v{a.type.count}f64"
    module = builder.module
    fma = module.globals.get(name) or ir.Function(
        module, ir.FunctionType(a.type, [a.type] * 3), name
    )
    return builder.call(fma, [a, b, c])


def _add_halves(builder: Any, vector: Any) -> Any:
    """The sum of a vector's low and high halves, a vector of half its width."""
    half = vector.type.count // 2
    lanes = ir.VectorType(ir.IntType(32), half)
    low = builder.shuffle_vector(vector, vector, ir.Constant(lanes, list(range(half))))
    high = builder.shuffle_vector(vector, vector, ir.Constant(lanes, list(range(half, 2 * half))))
    return builder.fadd(low, high)


@intrinsic
def _axpy_intrinsic(
    typingctx: object, s: Any, out: object, a: object, x: object, y: object, signals: Any
) -> tuple[object, object]:
    """s[out + c] = a * s[x + c] + s[y + c] for c < k, rounded once as by `_fma`: `_axpy`."""
    signature = types.void(s, types.intp, types.float64, types.intp, types.intp, signals)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        array, out, a, x, y, _ = args
        data = context.make_array(signature.args[0])(context, builder, array).data
        for start, width in _chunks(signals.count):
            xs = _load(builder, data, x, start, width)
            ys = _load(builder, data, y, start, width)
            result = _vector_fma(builder, _gather(builder, [a] * width), xs, ys)
            _store(builder, result, data, out, start)

    return signature, codegen


@intrinsic
def _dot_intrinsic(
    typingctx: object, s: Any, x: object, y: object, signals: Any
) -> tuple[object, object]:
    """The sum of s[x + c] * s[y + c] for c < k, as a tree (lane by lane over the vectors, then
    the lanes pairwise): log2(k) additions after the products, where a loop has k: `_dot`."""
    signature = types.float64(s, types.intp, types.intp, signals)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array, x, y, _ = args
        data = context.make_array(signature.args[0])(context, builder, array).data
        (start, width), *rest = _chunks(signals.count)
        total = builder.fmul(
            _load(builder, data, x, start, width), _load(builder, data, y, start, width)
        )
        for start, width in rest:
            while total.type.count > width:
                total = _add_halves(builder, total)
            xs = _load(builder, data, x, start, width)
            ys = _load(builder, data, y, start, width)
            total = _vector_fma(builder, xs, ys, total)
        while total.type.count > 1:
            total = _add_halves(builder, total)
        return builder.extract_element(total, _lane(0))

    return signature, codegen


@intrinsic
def _deviation_intrinsic(
    typingctx: object, s: Any, out: object, x: Any, i: object, mean: object, signals: Any
) -> tuple[object, object]:
    """s[out + c] = x[i, c] - s[mean + c] for c < k, x two-dimensional of any strides (a
    C-contiguous row is one vector load): `_deviation`."""
    signature = types.void(s, types.intp, x, types.intp, types.intp, signals)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        array, out, values, i, mean, _ = args
        data = context.make_array(signature.args[0])(context, builder, array).data
        rows = context.make_array(x)(context, builder, values)
        for start, width in _chunks(signals.count):
            row = []
            for column in range(start, start + width):
                pointer = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
                    context, builder, x, rows, [i, ir.Constant(i.type, column)]
                )
                row.append(builder.load(pointer))
            means = _load(builder, data, mean, start, width)
            _store(builder, builder.fsub(_gather(builder, row), means), data, out, start)

    return signature, codegen


# as compiled code calls them
_axpy = cast(Callable[[FloatArray, int, float, int, int, tuple[int, ...]], None], _axpy_intrinsic)
_dot = cast(Callable[[FloatArray, int, int, tuple[int, ...]], float], _dot_intrinsic)
_deviation = cast(
    Callable[[FloatArray, int, FloatArray, int, int, tuple[int, ...]], None], _deviation_intrinsic
)


@njit(cache=True, error_model="numpy")
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
    # reg = (1 - shrink) C + diag(lam), C the covariance, lam the shrinkage (see `hotelling`).
    # While the weights are equal, T² comes from a factorisation of reg per row. Past them,
    # reg changes per row by (1 - alpha) times itself, a multiple of d d' and one diagonal
    # element, so its inverse is updated instead, with Woodbury's identity for that rank-2
    # change: O(k²), and two divisions that do not wait for each other where the
    # factorisation has a chain of k. The forgetting is kept out of the stored matrices as a
    # common factor gamma: C = gamma D, lam = gamma L, reg^-1 = Q / gamma, so that only the
    # rank-2 change touches them. Every _REFRESH rows Q is recomputed from D and L and gamma
    # folded into them, which bounds the rounding the updates accumulate (the tests compare
    # with a solve per row to 1e-9; the updates stay within 1e-11 of it).
    #
    # Q, D and the vectors live in one array `s` at fixed offsets, which lets the compiler
    # see that they do not overlap; it is padded by a cache line at each end, as small arrays
    # allocated by two threads can share a line, and writing it from both halves the speed.
    # Past the equal weights Q and D are kept whole (symmetric, row-major), so that every step
    # of a row is a vector operation on contiguous rows of k (`_axpy`, `_dot`, `_deviation`):
    # Q d as a sum of Q's rows weighted by d, the rank-2 and rank-1 updates row by row. That
    # does twice the arithmetic of the triangles, in vectors of four at a time. The
    # factorisations read the lower triangles; each refresh copies them to the upper ones.
    k = len(signals)
    equal_until = _equal_weight_count(alpha)
    keep = 1.0 - alpha
    # Updates only where the shrinkage stays above half its value between refreshes, so reg
    # stays well conditioned (alpha up to 0.09 for 8 signals), and gamma cannot underflow.
    updates = keep ** (k - 1) >= 0.5 and keep**_REFRESH > 1e-250
    keep_s = 1.0 - shrink
    clip2 = clip * clip
    mean, d, u, col, lam = 0, k, 2 * k, 3 * k, 4 * k
    part, cu, cc, gd, zero = 5 * k, 6 * k, 7 * k, 8 * k, 9 * k  # scratch, and zeros
    q = 10 * k
    cov = q + k * k
    s = np.zeros(2 * _LINE + 10 * k + 2 * k * k)[_LINE:]
    space = np.zeros(2 * _LINE + 2 * k + k * k)
    y, lam_now = space[_LINE : _LINE + 2 * k].reshape((2, k))
    work = space[_LINE + 2 * k : _LINE + 2 * k + k * k].reshape((k, k))
    count = 0
    last_t = 0.0
    gamma = 1.0
    inverse_gamma = 1.0
    until_refresh = 0
    checked = False  # whether this row is known to have no NaN and to follow without a gap
    n = x.shape[0]
    for i in range(n):
        out[i] = np.nan
        if not checked:
            missing = False
            for a in range(k):
                missing |= np.isnan(x[i, a])
            if missing:
                continue
            if count > 0 and t[i] - last_t > max_gap:
                count = 0
        last_t = t[i]
        if count == 0:
            for a in range(k):
                s[mean + a] = x[i, a]
                s[lam + a] = var_floor  # the shrinkage of a zero covariance
                for b in range(a + 1):
                    s[cov + a * k + b] = 0.0
            gamma = inverse_gamma = 1.0
            until_refresh = 0
            count = 1
            checked = False
            continue
        w = alpha if count >= equal_until else 1.0 / (count + 1)
        j = count % k  # the signal whose shrinkage is refreshed past the equal weights
        if count < equal_until or not updates:
            # reg from D and L (gamma is 1 until the updates start), one factorisation
            for a in range(k):
                s[d + a] = x[i, a] - s[mean + a]
                y[a] = s[d + a]
                lam_now[a] = (
                    _shrink_target(s[cov + a * k + a], shrink, var_floor)
                    if count < equal_until
                    else s[lam + a]
                )  # the equal-weight rows refresh every signal's shrinkage
            cov_view = s[cov : cov + k * k].reshape((k, k))
            t2 = _mahalanobis(cov_view, lam_now, keep_s, y, work, signals)
            sigma = 1.0
            if count >= warmup:
                out[i] = t2
                sigma = math.sqrt(clip2 / max(t2, clip2))
            lam_now[j] = _shrink_target(s[cov + j * k + j], shrink, var_floor)
            for a in range(k):
                s[mean + a] += w * sigma * s[d + a]
                f = w * sigma * sigma * s[d + a]
                for b in range(a + 1):
                    s[cov + a * k + b] = (1.0 - w) * (s[cov + a * k + b] + f * s[d + b])
                s[lam + a] = (1.0 - w) * lam_now[a]
            count += 1
            if count == equal_until:
                for a in range(k):
                    s[lam + a] = _shrink_target(s[cov + a * k + a], shrink, var_floor)
                until_refresh = 0
            checked = False
            continue
        if until_refresh == 0:
            until_refresh = _REFRESH
            for a in range(k):
                s[lam + a] *= gamma
                for b in range(a + 1):
                    s[cov + a * k + b] *= gamma
                    s[cov + b * k + a] = s[cov + a * k + b]
                    work[a, b] = work[b, a] = keep_s * s[cov + a * k + b]
                work[a, a] += s[lam + a]
            _invert(work, signals)
            for a in range(k):
                for b in range(a + 1):
                    s[q + a * k + b] = s[q + b * k + a] = work[a, b]
            gamma = inverse_gamma = 1.0
        _deviation(s, d, x, i, mean, signals)
        # u = Q d, the rows of even and of odd index summed apart: half the chain of additions
        _axpy(s, u, s[d], q, zero, signals)
        if k > 1:
            _axpy(s, part, s[d + 1], q + k, zero, signals)
        for b in range(2, k, 2):
            _axpy(s, u, s[d + b], q + b * k, u, signals)
        for b in range(3, k, 2):
            _axpy(s, part, s[d + b], q + b * k, part, signals)
        if k > 1:
            _axpy(s, u, 1.0, part, u, signals)
        dqd = _dot(s, d, u, signals)
        # Signal j's shrinkage is refreshed from the covariance this row is scored with, so
        # its change delta does not wait for T², and the two divisions below run together.
        target = _shrink_target(gamma * s[cov + j * k + j], shrink, var_floor) * inverse_gamma
        delta = target - s[lam + j]
        s[lam + j] = target
        _axpy(s, col, 0.0, zero, q + j * k, signals)  # a copy: Q's row j changes below
        one_d = 1.0 + delta * s[col + j]
        u_j = s[u + j]
        t2 = dqd * inverse_gamma
        top = 1.0  # the clip multiplies d d' by clip² / max(T², clip²), sigma²
        bottom = 1.0
        if count >= warmup:
            out[i] = t2
            top = clip2
            bottom = max(t2, clip2)
        # reg / gamma gains a_w sigma² d d' and delta e_j e_j'. Woodbury:
        # Q -= [u, col] M [u, col]', M = W (I + G W)^-1, W = diag(a_w sigma², delta),
        # G = [d, e_j]' Q [d, e_j] = [[d'Q d, u_j], [u_j, Q_jj]] (u = Q d, col = Q e_j);
        # numerators and determinant are multiplied by `bottom` to leave sigma² out
        a_w = keep_s * w * inverse_gamma
        a_top = a_w * top
        one_a = _fma(a_top, dqd, bottom)
        inverse = 1.0 / _fma(one_a, one_d, -a_top * delta * u_j * u_j)
        if one_a > 4.0 * bottom or not 0.25 < one_d < 4.0:
            # A change this large relative to reg (an unclipped outlier in warm-up, or the
            # first rows when the weights are never equal) would cancel most digits of Q:
            # factorise again for the next row instead.
            until_refresh = 1
        shrunk = top / bottom
        m11 = a_top * one_d * inverse
        m12 = -a_top * delta * u_j * inverse
        m22 = delta * one_a * inverse
        sigma = math.sqrt(shrunk)
        g = w * inverse_gamma * shrunk
        _axpy(s, mean, w * sigma, d, mean, signals)
        gamma *= keep
        inverse_gamma /= keep
        until_refresh -= 1
        # -[u, col] M, and g d: the factors of the rows' updates
        _axpy(s, cu, -m11, u, zero, signals)
        _axpy(s, cu, -m12, col, cu, signals)
        _axpy(s, cc, -m12, u, zero, signals)
        _axpy(s, cc, -m22, col, cc, signals)
        _axpy(s, gd, g, d, zero, signals)
        for r in range(k):
            _axpy(s, q + r * k, s[cc + r], col, q + r * k, signals)
            _axpy(s, q + r * k, s[cu + r], u, q + r * k, signals)
            _axpy(s, cov + r * k, s[gd + r], d, cov + r * k, signals)
        count += 1
        after = i + 1  # checked here, the next row's checks overlap this row's updates
        checked = after < n and t[after] - last_t <= max_gap
        if checked:
            for a in range(k):
                checked &= not np.isnan(x[after, a])


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

    The matrix inverted is (1 - shrink) C + diag(lam), C the covariance and lam the shrinkage:
    lam_j = shrink C_jj, or var_floor - (1 - shrink) C_jj where C_jj is below var_floor (so
    that signal's diagonal is var_floor). While the weights are equal lam is computed from the
    C a row is scored with. Past them, a row absorbed with count c (rows absorbed since the
    start or a restart) computes it for signal c mod k only, from the C it was scored with,
    and lam is forgotten with the covariance: each lam_j is 1 - alpha to (1 - alpha)^k times
    its value from the covariance of 1 to k rows before (0.99 to 0.92 for 8 signals at alpha
    = 0.01). That keeps the change of the matrix from row to row to rank 2, so its inverse is
    updated in O(k²) instead of factorised anew (see `_hotelling_series`).
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
    s = settings
    n, k = x.shape
    out = np.full(n, np.nan)
    mean, cov, lam = np.zeros(k), np.zeros((k, k)), np.zeros(k)
    count, last_t = 0, 0.0

    def shrinkage(c: FloatArray) -> FloatArray:
        return np.asarray(np.maximum(c, s.var_floor) - (1.0 - shrink) * c, dtype=np.float64)

    for i in range(n):
        row = x[i]
        if np.isnan(row).any():
            continue
        if count > 0 and t[i] - last_t > s.max_gap:
            count = 0
        last_t = float(t[i])
        if count == 0:
            mean, cov, count = row.copy(), np.zeros((k, k)), 1
            lam = shrinkage(np.diag(cov))
            continue
        d = row - mean
        reg = (1.0 - shrink) * cov + np.diag(lam)
        t2 = float(d @ np.linalg.solve(reg, d))
        if count >= s.warmup:
            out[i] = t2
            if t2 > s.clip**2:
                d = d * s.clip / math.sqrt(t2)
        w = max(s.alpha, 1.0 / (count + 1))
        lam[count % k] = shrinkage(np.diag(cov))[count % k]  # one signal's, in turn
        mean = mean + w * d
        cov = (1.0 - w) * (cov + w * np.outer(d, d))
        lam = (1.0 - w) * lam
        if w > s.alpha:  # equal weights: every signal's, from the new covariance
            lam = shrinkage(np.diag(cov))
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


def _shrinkage_numpy(cov: FloatArray, settings: DetectorSettings, shrink: float) -> FloatArray:
    """The shrinkage lam (n, k) each row is scored with, from the covariances (n, k, k) of the
    rows before it. While the weights are equal, row c's is computed from its covariance. Past
    them, signal j's was last computed from the covariance of the row absorbed with count
    b = c - 1 - ((c - 1 - j) mod k) (or of the first row past them, if that is later) and has
    been forgotten c - b times since."""
    n, k = cov.shape[:2]
    diagonal = cov[:, np.arange(k), np.arange(k)]
    targets = np.maximum(diagonal, settings.var_floor) - (1.0 - shrink) * diagonal
    equal_until = int(_equal_weight_count(settings.alpha))
    count = np.arange(n)[:, None]
    signals = np.arange(k)[None, :]
    last = count - 1 - (count - 1 - signals) % k
    base = np.where(count <= equal_until, count, np.maximum(last, equal_until))
    lam: FloatArray = targets[base, signals] * (1.0 - settings.alpha) ** (count - base)
    return lam


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
        reg[:, diagonal, diagonal] += _shrinkage_numpy(cov, settings, shrink)
        spread = np.maximum(cov[:, diagonal, diagonal], settings.var_floor)
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
