"""Causal, streaming relative-entropy anomaly score per signal (Wang et al., "Statistical
techniques for online anomaly detection in data centers", 2011, the detector NAB calls
"relativeEntropy").

The last `window` values are quantised into `bins` and their histogram is tested against every
histogram seen before (the hypotheses) with the G-test: 2 * window * the relative entropy of the
window to the hypothesis, which follows a chi-square law with `bins - 1` degrees of freedom when
the hypothesis holds. The
score is that law's CDF at the smallest statistic: the confidence with which even the closest
known behaviour is rejected. A window rejected at `confidence` is novel: it scores at least
`confidence` and becomes a hypothesis itself, so a new regime alarms once and is then known.

Unlike NAB's version, which quantises with the minimum and maximum of the whole file (a look into
the future), the range here is learned causally:

- warm-up: the first `learning` valid samples fix the range and seed the hypotheses (NAB's
  probation), and score NaN. The range is widened by `margin` times itself on each side, so the
  normal behaviour spans a few bins and a departure has room to show; values beyond fall in the
  end bins;
- NaN: a NaN or infinite sample scores NaN and is skipped;
- gaps: after more than `max_gap` seconds without a valid sample everything restarts, warm-up
  included, since the machine may have been restarted or re-tooled;
- offset: bins are positions within the learned range, so a 1e6 offset changes nothing;
- a learned range narrower than `min_range` (an absolute floor, like a flat-lining sensor) is
  widened to it, so any later movement is novel;
- at most `max_hypotheses` are kept: when full, a novel window replaces the least-matched one,
  which bounds memory and time per sample on a service that runs for months.

A fixed threshold of `confidence` on the score, one alarm per rest period, is the recommended
use: `analytics.anomaly.alarms(score, settings.confidence, refractory=rest)`, or
`analytics.anomaly.events` for labelled events. The tests compare the kernel with a plain Python
reference (`tests/references/entropy.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_MEMO_BITS = 12
_MEMO = 1 << _MEMO_BITS  # memoised window tests per signal
_FIBONACCI = 0x9E3779B97F4A7C15  # 2^64 / the golden ratio
_UNSEEN = -1e300  # the log of a count of zero, finite so that 0 times it is 0


@dataclass(frozen=True)
class RelativeEntropySettings:
    """Histogram window and bins, warm-up samples, range margin, chi-square confidence, longest
    gap (s), absolute range floor and hypothesis cap (see the module docstring).

    The defaults were chosen on NAB's development folders (see `bench.anomaly`).
    """

    window: int = 39
    bins: int = 10
    learning: int = 750
    margin: float = 1.0
    confidence: float = 0.99
    max_gap: float = math.inf
    min_range: float = 1e-9
    max_hypotheses: int = 1024

    def __post_init__(self) -> None:
        if self.window < 2 or not 2 <= self.bins <= 1000:
            raise ValueError(
                f"window must be >= 2 and bins in [2, 1000], not {self.window}, {self.bins}"
            )
        if self.learning < self.window:
            raise ValueError(f"learning ({self.learning}) must cover a window ({self.window})")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), not {self.confidence}")
        if self.margin < 0.0 or self.max_hypotheses < 1:
            raise ValueError("margin must be >= 0 and max_hypotheses >= 1")


def chi_square_cdf(stat: float, dof: int) -> float:
    """P(chi-square with `dof` degrees of freedom <= stat), in closed form for a whole `dof`
    (the detector's bins - 1): with x = stat / 2 and m = dof // 2, 1 - e^-x sum_{j<m} x^j / j!
    for an even `dof`, erf(sqrt x) - e^-x sum_{j=1..m} x^(j-1/2) / Gamma(j+1/2) for an odd one.
    A few terms instead of an iterated series: the detector calls it for every sample."""
    if stat <= 0.0:
        return 0.0
    if stat == math.inf:
        return 1.0
    x = 0.5 * stat
    if dof % 2 == 0:
        term = math.exp(-x)
        total = term
        for j in range(1, dof // 2):
            term *= x / j
            total += term
        return max(0.0, 1.0 - total)
    root = math.sqrt(x)
    term = math.exp(-x) * root * _TWO_OVER_SQRT_PI
    total = 0.0
    for j in range(1, dof // 2 + 1):
        total += term
        term *= x / (j + 0.5)
    return min(1.0, max(0.0, math.erf(root) - total))


_chi_square_cdf = njit(cache=True)(chi_square_cdf)


@njit(cache=True)
def _bin_of(value: float, low: float, width: float, bins: int) -> int:
    position = math.floor((value - low) / width)
    return int(min(max(position, 0.0), bins - 1.0))


@njit(cache=True, inline="always")
def _closest(
    hist: IntArray,
    log_expected: FloatArray,
    first: int,
    known: int,
    log_count: FloatArray,
    best: float,
    best_index: int,
) -> tuple[float, int]:
    """The smallest G statistic of the window's histogram, and its hypothesis, over
    hypotheses `first` to `known` - 1 and the `best` of those before them.

    `log_expected[h, k]` is the log of hypothesis h's count in bin k, or _UNSEEN where it has
    none: a window with a value there gets a statistic so large that its chi-square CDF is 1,
    as for the infinite statistic it stands for. `log_count[c]` is log(c) for every count a bin
    can hold. Each statistic is summed bin by bin and the first of equal ones wins, so that
    resuming from `best` gives what a scan of all the hypotheses gives, to the bit."""
    for h in range(first, known):
        stat = 0.0
        for k in range(hist.size):
            c = hist[k]
            if c > 0:
                stat += c * (log_count[c] - log_expected[h, k])
        if 2.0 * stat < best:
            best = 2.0 * stat
            best_index = h
    return best, best_index


@njit(cache=True, inline="always")
def _learn(
    hist: IntArray, log_expected: FloatArray, matches: IntArray, known: int, log_count: FloatArray
) -> tuple[int, bool]:
    """The novel window's histogram made a hypothesis, in place of the least-matched one when
    all `matches.size` are taken; returns the hypotheses known and whether one was replaced."""
    slot = known
    replaced = known == matches.size
    if replaced:
        slot = int(np.argmin(matches))
    else:
        known += 1
    for k in range(hist.size):
        log_expected[slot, k] = log_count[hist[k]] if hist[k] > 0 else _UNSEEN
    matches[slot] = 1
    return known, replaced


@njit(cache=True)
def _memo_slot(key: int, size: int) -> int:
    """Slot of a histogram's key in the memo, or -1 when there is none (`size` 0): Fibonacci
    hashing, so that keys differing in any digit spread over the slots."""
    if size == 0:
        return -1
    return int(np.int64((np.uint64(key) * np.uint64(_FIBONACCI)) >> np.uint64(64 - _MEMO_BITS)))


@njit(cache=True, inline="always")
def _test_window(
    key: int,
    epoch: int,
    memo: IntArray,
    memo_test: FloatArray,
    hist: IntArray,
    log_expected: FloatArray,
    matches: IntArray,
    known: int,
    confidence: float,
    log_count: FloatArray,
) -> tuple[float, int, int, int]:
    """Score the window's histogram (keyed `key`), which the memo does not hold as tested
    against every hypothesis known, and learn from it; returns the score, the hypotheses known,
    the one matched (-1 when the window was novel and became one) and the epoch, one more when
    a hypothesis was replaced.

    Hypotheses are only added within an epoch (a learnt range, until one is replaced), so a
    test is memoised by key: the closest hypothesis among the first `memo[slot, 2]` with its
    statistic and score (`memo_test[slot]`), and a window seen before is tested against the
    hypotheses added since only. The window moves back and forth between a few hundred
    histograms and new hypotheses are rare: most tests are a look-up, which the caller makes
    in its own loop (the look-up here made the detector a third slower)."""
    slot = _memo_slot(key, memo.shape[0])
    seen = slot >= 0 and memo[slot, 0] == key and memo[slot, 1] == epoch
    tested, best_index, best, score = 0, -1, math.inf, math.nan
    if seen:
        tested, best_index = memo[slot, 2], memo[slot, 3]
        best, score = memo_test[slot, 0], memo_test[slot, 1]
    best, closest = _closest(hist, log_expected, tested, known, log_count, best, best_index)
    if closest != best_index or not seen:
        score = _chi_square_cdf(best, hist.size - 1)
    best_index = closest
    if score >= confidence:
        known, replaced = _learn(hist, log_expected, matches, known, log_count)
        return score, known, -1, epoch + replaced
    matches[best_index] += 1
    if slot >= 0:
        memo[slot, 0], memo[slot, 1], memo[slot, 2], memo[slot, 3] = key, epoch, known, best_index
        memo_test[slot, 0], memo_test[slot, 1] = best, score
    return score, known, best_index, epoch


@njit(cache=True)
def _score_segment(
    x: FloatArray,
    rows: IntArray,
    settings: tuple[int, int, int, float, float, float],
    scratch: tuple[IntArray, FloatArray, IntArray, FloatArray, IntArray, IntArray, FloatArray],
    epoch: int,
    out: FloatArray,
) -> int:
    """Score the valid samples `rows` of x, a run without a gap, into `out`: the first
    `learning` fix the range and seed the hypotheses, the rest are scored. Returns the epoch.

    The bins and the histograms' keys depend on the values only, not on the scores: they are
    computed first, in loops without a branch, so that the scoring loop waits on nothing but
    its look-ups."""
    window, bins, learning, margin, confidence, min_range = settings
    hist, log_expected, matches, log_count, memo, digit, memo_test = scratch
    learned = x[rows[:learning]]
    span = max(learned.max() - learned.min(), min_range)
    low = learned.min() - margin * span
    width = span * (1.0 + 2.0 * margin) / bins
    binned = np.empty(rows.size, dtype=np.int64)
    for j in range(rows.size):
        binned[j] = _bin_of(x[rows[j]], low, width, bins)
    hist[:] = 0
    key = 0
    known = 0
    epoch += 1
    matched = -1
    score = np.nan
    for j in range(rows.size):
        b = binned[j]
        if j >= window:
            leaving = binned[j - window]
            if b == leaving and matched >= 0:  # the same histogram, the same hypotheses
                matches[matched] += 1
                if j >= learning:
                    out[rows[j]] = score
                continue
            hist[leaving] -= 1
            key -= digit[leaving]
        hist[b] += 1
        key += digit[b]
        if j < window - 1:
            continue
        slot = _memo_slot(key, memo.shape[0])
        if slot >= 0 and memo[slot, 0] == key and memo[slot, 1] == epoch and memo[slot, 2] == known:
            matched = memo[slot, 3]  # tested against every hypothesis known
            matches[matched] += 1
            score = memo_test[slot, 1]
            if j >= learning:
                out[rows[j]] = score
            continue
        score, known, matched, epoch = _test_window(
            key, epoch, memo, memo_test, hist, log_expected, matches, known, confidence, log_count
        )
        if j >= learning:
            out[rows[j]] = score
    return epoch


# Without the GIL: a service or a recomputation scores its signals on every core in threads.
@njit(cache=True, nogil=True)
def _relative_entropy(
    t: FloatArray,
    x: FloatArray,
    window: int,
    bins: int,
    learning: int,
    margin: float,
    confidence: float,
    max_gap: float,
    min_range: float,
    max_hypotheses: int,
) -> FloatArray:
    out = np.full(x.size, np.nan)
    # A histogram is keyed exactly by its counts as digits in base window + 1, kept up to date
    # as values enter and leave; where that key would overflow there is no memo.
    memo_size = _MEMO if (window + 1.0) ** bins < 2.0**62 else 0
    scratch = (
        np.zeros(bins, dtype=np.int64),  # the window's histogram
        np.empty((max_hypotheses, bins)),  # log of each hypothesis's counts
        np.zeros(max_hypotheses, dtype=np.int64),  # windows each hypothesis matched
        np.log(np.maximum(np.arange(window + 1.0), 1.0)),  # log of each count, 0 for none
        np.full((memo_size, 4), -1, dtype=np.int64),  # key, epoch, tested, closest
        (window + 1) ** np.arange(bins) if memo_size else np.zeros(bins, dtype=np.int64),
        np.empty((memo_size, 2)),  # statistic, score
    )
    settings = (window, bins, learning, margin, confidence, min_range)
    valid = np.flatnonzero(np.isfinite(x))
    epoch = 0
    start = 0
    while start < valid.size:  # runs of valid samples without a gap: each restarts
        end = start + 1
        while end < valid.size and not t[valid[end]] - t[valid[end - 1]] > max_gap:
            end += 1
        if end - start >= learning:
            epoch = _score_segment(x, valid[start:end], settings, scratch, epoch, out)
        start = end
    return out


def relative_entropy(
    t: FloatArray, x: FloatArray, settings: RelativeEntropySettings = RelativeEntropySettings()
) -> FloatArray:
    """Anomaly score in [0, 1] of each sample of one signal against its past; NaN during warm-up
    and for NaN or infinite samples. `t` is in seconds and only matters for `max_gap`."""
    if t.shape != x.shape or x.ndim != 1:
        raise ValueError(f"t {t.shape} and x {x.shape} must be one series of the same length")
    result: FloatArray = _relative_entropy(
        np.asarray(t, dtype=np.float64),
        np.asarray(x, dtype=np.float64),
        settings.window,
        settings.bins,
        settings.learning,
        settings.margin,
        settings.confidence,
        settings.max_gap,
        settings.min_range,
        settings.max_hypotheses,
    )
    return result
