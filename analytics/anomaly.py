"""Causal, streaming anomaly detectors: a robust z-score per signal, the same score on a short
mean of the signal for level shifts, Hotelling T² per machine, and alarms or events from a score.

Both keep exponentially forgotten statistics: the mean a weighted average of the samples, the
variance (covariance) updated Welford-style on the difference from the mean (for T², the mean
at the start of the sample's block of rows), never from raw sums of squares, so a signal
riding on a 1e6 offset scores like the same signal without it. Shared conventions:

- timestamps are float64 seconds; each value is scored against the statistics of the samples
  before it (for T², of the samples before its block), then absorbed, so a score never
  depends on the future;
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

The tests compare every kernel with two references (`tests/references/anomaly.py`): a
line-by-line Python transcript and an independent, vectorised NumPy formulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


_SNAPSHOT = 32  # rows of a block that share a snapshot of T²'s estimate (see `hotelling`)


# Vector kernels over a block of _SNAPSHOT rows of k signals, for T². The block's deviations
# are stored signal after signal, so that a vector holds four rows of one signal and the rows
# are processed side by side. Numba leaves LLVM's SLP vectoriser off, and its loop vectoriser
# unrolls or vectorises short loops as its heuristics decide (a 32-row reduction came out
# scalar), so these emit LLVM vector operations themselves: vectors of four float64, which
# become AVX instructions where the CPU has them (SSE2 or NEON elsewhere). All data lives in
# one array `s`, at offsets in float64 given as arguments; k is the length of `signals`, a
# tuple of that many zeros, so that the code is generated for the number of signals.

_DOUBLES = ir.VectorType(ir.DoubleType(), 4)
_LANES = ir.VectorType(ir.IntType(32), 4)  # to pick lanes of vectors


def _lane(index: int) -> Any:
    return ir.Constant(ir.IntType(32), index)


def _at(builder: Any, data: Any, offset: Any, start: int) -> Any:
    """A pointer to data[offset + start]."""
    return builder.gep(data, [builder.add(offset, ir.Constant(offset.type, start))])


def _load(builder: Any, data: Any, offset: Any, start: int) -> Any:
    """The four float64 at data[offset + start]."""
    pointer = builder.bitcast(_at(builder, data, offset, start), _DOUBLES.as_pointer())
    return builder.load(pointer, typ=_DOUBLES, align=8)


def _store(builder: Any, value: Any, data: Any, offset: Any, start: int) -> None:
    pointer = builder.bitcast(_at(builder, data, offset, start), _DOUBLES.as_pointer())
    builder.store(value, pointer, align=8)


def _splat_value(builder: Any, value: Any) -> Any:
    """Four copies of a float64."""
    single = builder.insert_element(ir.Constant(_DOUBLES, ir.Undefined), value, _lane(0))
    return builder.shuffle_vector(single, single, ir.Constant(_LANES, [0] * 4))


def _splat(builder: Any, data: Any, offset: Any, start: int) -> Any:
    """Four copies of the float64 at data[offset + start]."""
    return _splat_value(builder, builder.load(_at(builder, data, offset, start)))


def _vector_fma(builder: Any, a: Any, b: Any, c: Any) -> Any:
    """a * b + c per lane, rounded once."""
    module = builder.module
    fma = module.globals.get("llvm.fma.v4f64") or ir.Function(
        module, ir.FunctionType(_DOUBLES, [_DOUBLES] * 3), "llvm.fma.v4f64"
    )
    return builder.call(fma, [a, b, c])


def _reload_barrier(builder: Any) -> None:
    """Make the code after this load from memory again what the code before loaded: otherwise
    the compiler keeps every loaded vector of a block in registers, and with 16 of them spills
    most to the stack and back."""
    barrier = ir.InlineAsm(ir.FunctionType(ir.VoidType(), []), "", "~{memory}", side_effect=True)
    builder.call(barrier, [])


def _array_data(context: Any, builder: Any, array_type: Any, array: Any) -> Any:
    return context.make_array(array_type)(context, builder, array).data


@contextmanager
def _each_group(builder: Any, index_type: Any) -> Iterator[Any]:
    """A loop over the block's groups of four rows, yielding the first row of the group: a loop,
    not unrolled code, so that what each group loads is loaded again for the next instead of
    kept in registers through the block."""
    entry = builder.block
    body = builder.append_basic_block("group")
    done = builder.append_basic_block("groups_done")
    builder.branch(body)
    builder.position_at_end(body)
    group = builder.phi(index_type)
    group.add_incoming(ir.Constant(index_type, 0), entry)
    yield group
    following = builder.add(group, ir.Constant(index_type, 4))
    group.add_incoming(following, builder.block)
    more = builder.icmp_signed("<", following, ir.Constant(index_type, _SNAPSHOT))
    builder.cbranch(more, body, done)
    builder.position_at_end(done)


@intrinsic
def _score_block_intrinsic(
    typingctx: object, s: Any, deviation: object, factor: object, inverse_d: object,
    t2: object, signals: Any,
) -> tuple[object, object]:  # fmt: skip
    """T² of the block's rows, four rows at a time: with f the rows' deviations from the
    snapshot's mean, s[deviation + a * _SNAPSHOT + j] for row j's signal a, and L and 1/D of
    the snapshot's LDL' in s[factor + a * k + b] and s[inverse_d + a], L z = f is solved for
    four rows at once and T² = sum z_a² / D_a stored in s[t2 + j]: `_score_block`."""
    signature = types.void(s, types.intp, types.intp, types.intp, types.intp, signals)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        array, deviation, factor, inverse_d, t2, _ = args
        data = _array_data(context, builder, signature.args[0], array)
        k = signals.count
        with _each_group(builder, deviation.type) as group:
            rows = builder.add(deviation, group)
            z: list[Any] = []
            total = ir.Constant(_DOUBLES, [0.0] * 4)
            for a in range(k):
                f = _load(builder, data, rows, a * _SNAPSHOT)
                for b in range(a):
                    lab = builder.fneg(_splat(builder, data, factor, a * k + b))
                    f = _vector_fma(builder, lab, z[b], f)
                z.append(f)
                scaled = builder.fmul(f, _splat(builder, data, inverse_d, a))
                total = _vector_fma(builder, scaled, f, total)
            _store(builder, total, data, builder.add(t2, group), 0)

    return signature, codegen


@njit(cache=True)
def _padded(k: int) -> int:
    """k rounded up to whole vectors: the row length of T²'s covariance, the length of its
    mean (`_absorb_block` updates them a vector at a time)."""
    return -(-k // 4) * 4


def _totals(builder: Any, vectors: list[Any]) -> Any:
    """The sums of four vectors' lanes, as one vector."""

    def pairs(a: Any, b: Any) -> Any:  # [a0 + a1, b0 + b1, a2 + a3, b2 + b3]
        even = builder.shuffle_vector(a, b, ir.Constant(_LANES, [0, 4, 2, 6]))
        odd = builder.shuffle_vector(a, b, ir.Constant(_LANES, [1, 5, 3, 7]))
        return builder.fadd(even, odd)

    low, high = pairs(vectors[0], vectors[1]), pairs(vectors[2], vectors[3])
    halves = builder.shuffle_vector(low, high, ir.Constant(_LANES, [0, 1, 4, 5]))
    others = builder.shuffle_vector(low, high, ir.Constant(_LANES, [2, 3, 6, 7]))
    return builder.fadd(halves, others)


def _dot(builder: Any, a: list[Any], b: list[Any]) -> Any:
    """Lane by lane, the sum of a[g] * b[g] over the groups."""
    total = builder.fmul(a[0], b[0])
    for ag, bg in zip(a[1:], b[1:], strict=True):
        total = _vector_fma(builder, ag, bg, total)
    return total


@intrinsic
def _absorb_block_intrinsic(
    typingctx: object, s: Any, deviation: object, gain: object, weight: object,
    kept: object, mean: object, cov: object, signals: Any,
) -> tuple[object, object]:  # fmt: skip
    """Absorb the block's rows, given their deviations f_j from the snapshot's mean
    (s[deviation:], as `_score_block` reads them): the mean s[mean:] moves by
    sum_j s[gain + j] f_j, and the lower triangle of the covariance (rows of `_padded(k)` at
    s[cov:]) becomes kept C + sum_j s[weight + j] f_j f_j' (what lies above the diagonal is
    scratch): `_absorb_block`. Each sum runs over the rows four at a time in one vector; four
    sums are added up together and stored as one vector."""
    signature = types.void(
        s, types.intp, types.intp, types.intp, types.float64, types.intp, types.intp, signals
    )

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        array, deviation, gain, weight, kept, mean, cov, _ = args
        data = _array_data(context, builder, signature.args[0], array)
        k = signals.count
        groups = range(0, _SNAPSHOT, 4)
        zero_vector = ir.Constant(_DOUBLES, [0.0] * 4)
        zero = [zero_vector] * len(groups)

        def rows(a: int) -> list[Any]:
            if a >= k:
                return zero
            return [_load(builder, data, deviation, a * _SNAPSHOT + g) for g in groups]

        def update(offset: Any, start: int, scale: Any, sums: list[Any]) -> None:
            old = _load(builder, data, offset, start)
            _store(
                builder,
                _vector_fma(builder, scale, old, _totals(builder, sums)),
                data,
                offset,
                start,
            )

        gains = [_load(builder, data, gain, g) for g in groups]
        one = ir.Constant(_DOUBLES, [1.0] * 4)
        for a0 in range(0, k, 4):
            update(mean, a0, one, [_dot(builder, gains, rows(a)) for a in range(a0, a0 + 4)])
        kept_vector = _splat_value(builder, kept)
        for a in range(k):
            _reload_barrier(builder)
            weights = [_load(builder, data, weight, g) for g in groups]
            weighted = [builder.fmul(w, f) for w, f in zip(weights, rows(a), strict=True)]
            for b0 in range(0, a + 1, 4):
                sums = [
                    _dot(builder, weighted, rows(b)) if b <= a else zero_vector
                    for b in range(b0, b0 + 4)
                ]
                update(cov, a * _padded(k) + b0, kept_vector, sums)

    return signature, codegen


@intrinsic(prefer_literal=True)
def _take_four_intrinsic(
    typingctx: object, s: Any, x: Any, i: object, m: object, deviation: object,
    centre: object, by_rows: Any, signals: Any,
) -> tuple[object, object]:  # fmt: skip
    """Rows i to i + 3 of x as columns m to m + 3 of the block, their deviations from the
    snapshot's mean s[centre:]; whether none has a NaN (they are written either way).
    `by_rows` (known when compiling) says how x lies: True, each row's k values one after the
    other, read a row at a time and transposed in registers; False, each signal's rows one
    after the other, read four rows of a signal at a time: `_take_four`."""
    signature = types.boolean(
        s, x, types.intp, types.intp, types.intp, types.intp, by_rows, signals
    )
    k = signals.count
    rowwise = by_rows.literal_value

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array, values, i, m, deviation, centre, _, _ = args
        data = _array_data(context, builder, signature.args[0], array)
        rows = context.make_array(x)(context, builder, values)

        def element(row: int, column: int) -> Any:
            index = [builder.add(i, ir.Constant(i.type, row)), ir.Constant(i.type, column)]
            return cgutils.get_item_pointer(context, builder, x, rows, index)  # type: ignore[no-untyped-call]

        def vector_at(pointer: Any) -> Any:
            return builder.load(
                builder.bitcast(pointer, _DOUBLES.as_pointer()), typ=_DOUBLES, align=8
            )

        if rowwise:
            lanes = []
            whole = k - k % 4  # signals read as vectors of four, the rest one by one
            for r in range(4):
                vectors = [vector_at(element(r, start)) for start in range(0, whole, 4)]
                row = [
                    builder.extract_element(v, _lane(lane)) for v in vectors for lane in range(4)
                ]
                lanes.append(row + [builder.load(element(r, a)) for a in range(whole, k)])
            columns = []
            for a in range(k):
                column = ir.Constant(_DOUBLES, ir.Undefined)
                for r in range(4):
                    column = builder.insert_element(column, lanes[r][a], _lane(r))
                columns.append(column)
        else:
            columns = [vector_at(element(0, a)) for a in range(k)]
        missing = None
        for a, column in enumerate(columns):
            nan = builder.fcmp_unordered("uno", column, column)
            missing = nan if missing is None else builder.or_(missing, nan)
            f = builder.fsub(column, _splat(builder, data, centre, a))
            _store(builder, f, data, builder.add(deviation, m), a * _SNAPSHOT)
        flags = builder.bitcast(missing, ir.IntType(4))
        return builder.icmp_unsigned("==", flags, ir.Constant(ir.IntType(4), 0))

    return signature, codegen


# as compiled code calls them
_score_block = cast(
    Callable[[FloatArray, int, int, int, int, tuple[int, ...]], None],
    _score_block_intrinsic,
)
_absorb_block = cast(
    Callable[[FloatArray, int, int, int, float, int, int, tuple[int, ...]], None],
    _absorb_block_intrinsic,
)
_take_four = cast(
    Callable[[FloatArray, FloatArray, int, int, int, int, bool, tuple[int, ...]], bool],
    _take_four_intrinsic,
)


@njit(cache=True, error_model="numpy", inline="always")
def _factorise(
    s: FloatArray,
    cov: int,
    factor: int,
    inverse_d: int,
    shrink: float,
    var_floor: float,
    stride: int,
    signals: tuple[int, ...],
) -> None:
    """LDL' of the shrunk covariance (see `hotelling`), from the lower triangle of the k x k
    s[cov:] (rows `stride` apart): the unit lower L into s[factor:] (k x k, below the
    diagonal), 1 / D into s[inverse_d:]. Right-looking, so that the updates of a column do
    not wait for one another. k is the length of `signals` (see `_score_block`)."""
    k = len(signals)
    for a in range(k):
        for b in range(a):
            s[factor + a * k + b] = (1.0 - shrink) * s[cov + a * stride + b]
        s[factor + a * k + a] = max(s[cov + a * stride + a], var_floor)
    for j in range(k):
        inverse = 1.0 / s[factor + j * k + j]
        s[inverse_d + j] = inverse
        for a in range(j + 1, k):
            scaled = s[factor + a * k + j] * inverse
            for b in range(j + 1, a + 1):
                s[factor + a * k + b] -= scaled * s[factor + b * k + j]
        for a in range(j + 1, k):
            s[factor + a * k + j] *= inverse


@njit(cache=True, error_model="numpy", inline="always")
def _steady_weights(
    t2: FloatArray, gain: FloatArray, weight: FloatArray, later: FloatArray, alpha: float,
    clip2: float,
) -> None:  # fmt: skip
    """Gains and weights of a whole scored block past the equal weights (see `_absorb_block`),
    later[j] being (1 - alpha)^(block - 1 - j): a loop without a chain, which the compiler
    vectorises (it does not where the arrays are one array at offsets)."""
    for j in range(t2.size):
        squeeze = clip2 / max(t2[j], clip2)  # sigma², the clip
        gain[j] = alpha * later[j] * math.sqrt(squeeze)
        weight[j] = alpha * later[j] * (1.0 - alpha) * squeeze


@njit(cache=True, error_model="numpy", inline="always")
def _block_weights(
    t2: FloatArray, gain: FloatArray, weight: FloatArray, m: int, count: int, equal_until: int,
    warmup: int, alpha: float, clip2: float,
) -> float:  # fmt: skip
    """Gains and weights of any block (see `_absorb_block`), its rows j < m absorbed with counts
    count + j; returns the factor the block keeps of the covariance. Row j moves the mean by
    w_j sigma_j times (1 - w) of every later row, and adds w_j sigma_j² times (1 - w) of
    itself and every later row to the covariance (sigma_j the clip, 1 before warm-up ends)."""
    later = 1.0  # the product of 1 - w of the rows after j
    for j in range(t2.size - 1, -1, -1):
        if j >= m:
            gain[j] = weight[j] = 0.0
            continue
        c = count + j
        w = alpha if c >= equal_until else 1.0 / (c + 1)
        squeeze = clip2 / max(t2[j], clip2) if c >= warmup else 1.0  # sigma², the clip
        gain[j] = w * later * math.sqrt(squeeze)
        later *= 1.0 - w
        weight[j] = w * later * squeeze
    return later


@njit(cache=True, error_model="numpy", inline="always")
def _block_rows(
    t: FloatArray,
    x: FloatArray,
    i: int,
    room: int,
    last_t: float,
    max_gap: float,
    s: FloatArray,
    deviation: int,
    centre: int,
    rows: IntArray,
    out: FloatArray,
    layout: int,
    signals: tuple[int, ...],
) -> tuple[int, int, bool, float]:
    """Collect up to `room` rows from row i on into a block: their deviations from the
    snapshot's mean s[centre:] into s[deviation:] (signal-major), their indices into `rows`.
    Four rows at a time where x lies one of the two ways `_take_four` reads (`layout` 1 or 2)
    and the four have no NaN and no gap. A row with a NaN is skipped (its score NaN); a gap
    longer than max_gap ends the block before it. Returns the next row, the number collected,
    whether a gap ended the block, and the last row's time."""
    k = len(signals)
    m = 0
    while i < x.shape[0] and m < room:
        if layout and m + 4 <= room and i + 4 <= x.shape[0]:
            if layout == 1:
                finite = _take_four(s, x, i, m, deviation, centre, True, signals)
            else:
                finite = _take_four(s, x, i, m, deviation, centre, False, signals)
            gap = max(t[i] - last_t, t[i + 1] - t[i], t[i + 2] - t[i + 1], t[i + 3] - t[i + 2])
            if finite and gap <= max_gap:
                for q in range(4):
                    rows[m + q] = i + q
                last_t = t[i + 3]
                m += 4
                i += 4
                continue
        missing = False
        for a in range(k):
            value = x[i, a]
            missing |= np.isnan(value)
            s[deviation + a * _SNAPSHOT + m] = value - s[centre + a]
        if missing:
            out[i] = np.nan
            i += 1
            continue
        if t[i] - last_t > max_gap:
            return i, m, True, last_t
        last_t = t[i]
        rows[m] = i
        m += 1
        i += 1
    for a in range(k):  # rows left over: finite, and absorbed with weight 0
        for j in range(m, _SNAPSHOT):
            s[deviation + a * _SNAPSHOT + j] = 0.0
    return i, m, False, last_t


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
    # Blocks start where a snapshot is due and end before the next one (or at a gap): their
    # rows are taken as deviations from the snapshot's mean, scored, and absorbed together,
    # side by side in vector registers. The mean is kept relative to the run's first row, so
    # that its updates carry no offset. State and scratch live in one array at fixed offsets,
    # padded by a cache line at each end: small arrays allocated by two threads can share a
    # line, and writing it from both halves the speed. The helpers are inlined: called, each
    # call costs about as much as the work of the block.
    k = len(signals)
    block = _SNAPSHOT
    deviation = _LINE  # the block's rows, signal after signal
    t2 = deviation + k * block
    gain = t2 + block
    weight = gain + block
    later = weight + block  # (1 - alpha)^(block - 1 - j) for row j
    stride = _padded(k)
    reference = later + block  # the run's first row
    mean = reference + k  # relative to the reference
    centre = mean + stride  # the mean itself, for the deviations
    cov = centre + k  # rows of `stride`: see `_absorb_block`
    factor = cov + k * stride
    inverse_d = factor + k * k
    s = np.zeros(inverse_d + k + _LINE)
    t2_rows, gain_rows = s[t2 : t2 + block], s[gain : gain + block]
    weight_rows, later_rows = s[weight : weight + block], s[later : later + block]
    for j in range(block):
        later_rows[j] = (1.0 - alpha) ** (block - 1 - j)
    kept_steady = (1.0 - alpha) ** block
    rows = np.empty(block, dtype=np.int64)
    # how x lies: 1 each row's values together, 2 each signal's rows together, 0 otherwise
    layout = 1 if x.strides[1] == 8 else 2 if x.strides[0] == 8 else 0
    equal_until = _equal_weight_count(alpha)
    clip2 = clip * clip
    count = 0
    last_t = 0.0
    i = 0
    while i < x.shape[0]:
        if count == 0:  # a run starts: its first row is the reference, its mean
            i, m, _, last_t = _block_rows(
                t, x, i, 1, last_t, math.inf, s, deviation, centre, rows, out, layout, signals
            )
            if m == 1:
                out[rows[0]] = np.nan
                for a in range(k):
                    s[reference + a] = s[centre + a] = x[rows[0], a]
                    s[mean + a] = 0.0
                    for b in range(stride):
                        s[cov + a * stride + b] = 0.0
                count = 1
            continue
        # The snapshot: factorised before the block's rows are read, which do not depend on
        # it, so that reading them overlaps the factorisation's chain of divisions.
        _factorise(s, cov, factor, inverse_d, shrink, var_floor, stride, signals)
        for a in range(k):
            s[centre + a] = s[reference + a] + s[mean + a]
        room = 1 if count < equal_until else block - (count - equal_until) % block
        i, m, restart, last_t = _block_rows(
            t, x, i, room, last_t, max_gap, s, deviation, centre, rows, out, layout, signals
        )
        if m > 0:
            _score_block(s, deviation, factor, inverse_d, t2, signals)
            if m == block and count >= max(equal_until, warmup):
                _steady_weights(t2_rows, gain_rows, weight_rows, later_rows, alpha, clip2)
                kept = kept_steady
            else:
                kept = _block_weights(
                    t2_rows, gain_rows, weight_rows, m, count, equal_until, warmup, alpha, clip2
                )
            first = rows[0]
            if count >= warmup and rows[m - 1] - first == m - 1:  # no row skipped: a copy
                for j in range(m):
                    out[first + j] = t2_rows[j]
            else:
                for j in range(m):
                    out[rows[j]] = t2_rows[j] if count + j >= warmup else np.nan
            _absorb_block(s, deviation, gain, weight, kept, mean, cov, signals)
            count += m
        if restart:
            count = 0


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

    Rows are taken in blocks that share a snapshot of the mean m and covariance C: a block of
    one row while the weights are equal (the estimate still moves fast), then blocks of 32. A
    row's deviation f is from the snapshot's mean, its score f' R^-1 f with R = (1 - shrink) C
    off the diagonal and max(C_jj, var_floor) on it, and it is absorbed with that deviation,
    clipped by its score: m += w (sigma f - (m - m_snapshot)) and C = (1 - w)(C + w sigma² f f')
    row by row, the running recursion with the snapshot's mean in place of the running one.
    So each row is scored against the rows before its block, at most 31 rows older than its
    own; at alpha = 0.01 the estimate averages over about 100 rows, and the lag changes the
    scores little. In exchange the rows of a block are independent of one another: they are
    scored and absorbed side by side in vector registers, with one factorisation of R per
    block instead of an update of its inverse per row.
    """
    if not 0.0 < shrink <= 1.0:
        raise ValueError(f"shrink must be in (0, 1], not {shrink}")
    args = (settings.alpha, settings.warmup, settings.max_gap, settings.clip, settings.var_floor)
    x = np.asarray(x, dtype=np.float64)
    machines = x[np.newaxis] if x.ndim == 2 else x
    # Compiled once for each number of signals (see `_factorise`) and for any strides, so
    # that a view of signal-major data (machines, k, samples) is read where it lies.
    signals = (0,) * machines.shape[2]
    out = np.empty(machines.shape[:2])  # allocated by NumPy: see _zscore_run
    _hotelling_many(t, machines, *args, shrink, signals, out)
    return out[0] if x.ndim == 2 else out


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
