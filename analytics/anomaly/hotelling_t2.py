"""Hotelling T² of a machine's signals together against their past (`hotelling`), which sees
signals that usually move together parting ways; the T² level as rare as a z-score is
`analytics.levels.t2_level`. Settings and conventions: `analytics.anomaly.settings`; the
kernels that factorise the estimate and score and absorb a block of rows, written in LLVM IR:
`analytics.anomaly._intrinsics`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from analytics.anomaly._intrinsics import (
    _LINE,
    _SNAPSHOT,
    _absorb_block,
    _factorise,
    _padded,
    _prefetch_for_writing,
    _score_block,
    _take_four,
)
from analytics.anomaly.settings import DetectorSettings, _equal_weight_count

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


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
        _factorise(s, cov, factor, inverse_d, shrink, var_floor, signals)
        for a in range(k):
            s[centre + a] = s[reference + a] + s[mean + a]
        room = 1 if count < equal_until else block - (count - equal_until) % block
        i, m, restart, last_t = _block_rows(
            t, x, i, room, last_t, max_gap, s, deviation, centre, rows, out, layout, signals
        )
        # The lines the scores of two blocks on go to are fetched now: written to lines not in
        # the cache, the scores took 8 % of the kernel's time; fetched ahead, half that.
        for line in range(0, block + _LINE, _LINE):
            _prefetch_for_writing(out, i + 2 * block + line)
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


@njit(cache=True, nogil=True, parallel=True)
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
    # Compiled once for each number of signals (see `analytics.anomaly._intrinsics`) and for
    # any strides, so that a view of signal-major data (machines, k, samples) is read where it
    # lies.
    signals = (0,) * machines.shape[2]
    out = np.empty(machines.shape[:2])  # allocated by NumPy: see standard_score._zscore_run
    if x.ndim == 2:  # one machine: on this thread, not waiting for the pool's others to join
        _hotelling_series(t, x, *args, shrink, signals, out[0])
    else:
        _hotelling_many(t, machines, *args, shrink, signals, out)
    return out[0] if x.ndim == 2 else out
