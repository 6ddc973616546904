"""What the detectors' kernels ask of the machine beyond what Numba generates: LLVM intrinsics,
the fused multiply-add of every recurrence and T²'s block kernels in vectors of four float64,
and the cache line their scratch arrays are padded by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

FloatArray = npt.NDArray[np.float64]

_LINE = 8  # float64 in a cache line


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
def _each_eight(builder: Any, index_type: Any) -> Iterator[Any]:
    """A loop over the block's rows eight at a time, yielding the first: a loop, not unrolled
    code, so that what each step loads is loaded again for the next instead of kept in
    registers through the block."""
    entry = builder.block
    body = builder.append_basic_block("eight")
    done = builder.append_basic_block("eights_done")
    builder.branch(body)
    builder.position_at_end(body)
    first = builder.phi(index_type)
    first.add_incoming(ir.Constant(index_type, 0), entry)
    yield first
    following = builder.add(first, ir.Constant(index_type, 8))
    first.add_incoming(following, builder.block)
    more = builder.icmp_signed("<", following, ir.Constant(index_type, _SNAPSHOT))
    builder.cbranch(more, body, done)
    builder.position_at_end(done)


@intrinsic
def _score_block_intrinsic(
    typingctx: object, s: Any, deviation: object, factor: object, inverse_d: object,
    t2: object, signals: Any,
) -> tuple[object, object]:  # fmt: skip
    """T² of the block's rows, eight at a time in two vectors of four: with f the rows'
    deviations from the snapshot's mean, s[deviation + a * _SNAPSHOT + j] for row j's signal a,
    and L and 1/D of the snapshot's LDL' in s[factor + a * k + b] and s[inverse_d + a], L z = f
    is solved for the rows at once and T² = sum z_a² / D_a stored in s[t2 + j]: `_score_block`.
    Two vectors side by side, so that each entry of L loaded serves eight rows and the two
    chains of multiply-adds interleave (four rows at a time, the loop took 2 % longer)."""
    signature = types.void(s, types.intp, types.intp, types.intp, types.intp, signals)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        array, deviation, factor, inverse_d, t2, _ = args
        data = _array_data(context, builder, signature.args[0], array)
        k = signals.count
        with _each_eight(builder, deviation.type) as first:
            groups = [first, builder.add(first, ir.Constant(first.type, 4))]
            rows = [builder.add(deviation, group) for group in groups]
            z: list[list[Any]] = [[], []]
            totals = [ir.Constant(_DOUBLES, [0.0] * 4)] * 2
            for a in range(k):
                f = [_load(builder, data, four, a * _SNAPSHOT) for four in rows]
                for b in range(a):
                    lab = builder.fneg(_splat(builder, data, factor, a * k + b))
                    f = [_vector_fma(builder, lab, z[h][b], f[h]) for h in range(2)]
                inverse = _splat(builder, data, inverse_d, a)
                for h in range(2):
                    z[h].append(f[h])
                    totals[h] = _vector_fma(builder, builder.fmul(f[h], inverse), f[h], totals[h])
            for total, group in zip(totals, groups, strict=True):
                _store(builder, total, data, builder.add(t2, group), 0)

    return signature, codegen


@intrinsic
def _factorise_intrinsic(
    typingctx: object, s: Any, cov: object, factor: object, inverse_d: object, shrink: object,
    var_floor: object, signals: Any,
) -> tuple[object, object]:  # fmt: skip
    """LDL' of the shrunk covariance (see `hotelling`), from the lower triangle of the k x k
    s[cov:] (rows `_padded(k)` apart): the unit lower L below the diagonal of s[factor:] (k x k),
    1 / D into s[inverse_d:]: `_factorise`. Right-looking, so that the updates of a column do not
    wait for one another; unrolled, every value in a register, as its k divisions in turn lie on
    the chain of every block: written as loops over `s`, the compiler made them gathers and
    scatters through memory, about four times slower."""
    signature = types.void(
        s, types.intp, types.intp, types.intp, types.float64, types.float64, signals
    )

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        array, cov, factor, inverse_d, shrink, var_floor, _ = args
        data = _array_data(context, builder, signature.args[0], array)
        k, stride = signals.count, _padded(signals.count)
        keep = builder.fsub(ir.Constant(ir.DoubleType(), 1.0), shrink)
        lower: list[list[Any]] = []
        for a in range(k):
            row = [builder.fmul(keep, builder.load(_at(builder, data, cov, a * stride + b)))
                   for b in range(a)]  # fmt: skip
            variance = builder.load(_at(builder, data, cov, a * stride + a))
            floored = builder.fcmp_ordered(">", var_floor, variance)  # as max() compiles
            lower.append([*row, builder.select(floored, var_floor, variance)])
        for j in range(k):
            inverse = builder.fdiv(ir.Constant(ir.DoubleType(), 1.0), lower[j][j])
            builder.store(inverse, _at(builder, data, inverse_d, j))
            for a in range(j + 1, k):
                scaled = builder.fmul(lower[a][j], inverse)
                builder.store(scaled, _at(builder, data, factor, a * k + j))
                for b in range(j + 1, a + 1):  # lower[b][j] not yet scaled
                    product = builder.fmul(scaled, lower[b][j])
                    lower[a][b] = builder.fsub(lower[a][b], product)

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


def _transposed(builder: Any, rows: list[Any]) -> list[Any]:
    """The columns of four vectors of four: pairs of rows interleaved, then their halves
    exchanged: eight shuffles, where built lane by lane the compiler made about 30 shuffles,
    blends and broadcasts."""

    def shuffle(a: Any, b: Any, lanes: list[int]) -> Any:
        return builder.shuffle_vector(a, b, ir.Constant(_LANES, lanes))

    even = [shuffle(rows[r], rows[r + 1], [0, 4, 2, 6]) for r in (0, 2)]
    odd = [shuffle(rows[r], rows[r + 1], [1, 5, 3, 7]) for r in (0, 2)]
    low, high = [0, 1, 4, 5], [2, 3, 6, 7]
    return [
        shuffle(even[0], even[1], low),
        shuffle(odd[0], odd[1], low),
        shuffle(even[0], even[1], high),
        shuffle(odd[0], odd[1], high),
    ]


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
            whole = k - k % 4  # signals transposed four by four, the rest one by one
            columns = []
            for start in range(0, whole, 4):
                four = [vector_at(element(r, start)) for r in range(4)]
                columns += _transposed(builder, four)
            for a in range(whole, k):
                column = ir.Constant(_DOUBLES, ir.Undefined)
                for r in range(4):
                    column = builder.insert_element(column, builder.load(element(r, a)), _lane(r))
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
_factorise = cast(
    Callable[[FloatArray, int, int, int, float, float, tuple[int, ...]], None],
    _factorise_intrinsic,
)
_absorb_block = cast(
    Callable[[FloatArray, int, int, int, float, int, int, tuple[int, ...]], None],
    _absorb_block_intrinsic,
)
_take_four = cast(
    Callable[[FloatArray, FloatArray, int, int, int, int, bool, tuple[int, ...]], bool],
    _take_four_intrinsic,
)


@intrinsic
def _divide_four_intrinsic(
    typingctx: object, out: Any, spread: Any, start: object
) -> tuple[object, object]:
    """out[start:start + 4] /= sqrt(spread[start:start + 4]) as one vector: `_divide_four`.

    The z-score's steady loops call it every fourth sample on samples a few before, so that the
    divider's vector operations run beside the recurrences instead of after them; correctly
    rounded like their scalar forms, so the scores keep their bits.
    """
    signature = types.void(out, spread, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        out_array, spread_array, start = args
        out_data = _array_data(context, builder, signature.args[0], out_array)
        spread_data = _array_data(context, builder, signature.args[1], spread_array)
        module = builder.module
        sqrt = module.globals.get("llvm.sqrt.v4f64") or ir.Function(
            module, ir.FunctionType(_DOUBLES, [_DOUBLES]), "llvm.sqrt.v4f64"
        )
        sd = builder.call(sqrt, [_load(builder, spread_data, start, 0)])
        scores = builder.fdiv(_load(builder, out_data, start, 0), sd)
        _store(builder, scores, out_data, start, 0)

    return signature, codegen


_divide_four = cast(Callable[[FloatArray, FloatArray, int], None], _divide_four_intrinsic)


@intrinsic
def _prefetch_for_writing_intrinsic(
    typingctx: object, array: Any, index: object
) -> tuple[object, object]:
    """Ask for the cache line of array[index] to be fetched for writing, without waiting for
    it: `_prefetch_for_writing`. A hint: an index past the end fetches nothing and is no
    error."""
    signature = types.void(array, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        values, index = args
        data = _array_data(context, builder, signature.args[0], values)
        pointer = builder.bitcast(builder.gep(data, [index]), ir.IntType(8).as_pointer())
        word = ir.IntType(32)
        prefetch = builder.module.globals.get("llvm.prefetch.p0") or ir.Function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [pointer.type, word, word, word]),
            "llvm.prefetch.p0",
        )
        write, keep_close, data_cache = (ir.Constant(word, 1), ir.Constant(word, 3),
                                         ir.Constant(word, 1))  # fmt: skip
        builder.call(prefetch, [pointer, write, keep_close, data_cache])

    return signature, codegen


_prefetch_for_writing = cast(Callable[[FloatArray, int], None], _prefetch_for_writing_intrinsic)
