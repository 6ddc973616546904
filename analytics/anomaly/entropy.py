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


@njit(cache=True)
def _test_window(
    hist: IntArray,
    log_expected: FloatArray,
    matches: IntArray,
    known: int,
    confidence: float,
    stats: FloatArray,
    log_count: FloatArray,
) -> tuple[float, int, int]:
    """Score the window's histogram and learn from it; returns the score, the hypotheses known
    and the one matched (-1 when the window was novel and became one).

    `log_expected[k, h]` is the log of hypothesis h's count in bin k, or _UNSEEN where it has
    none: a window with a value there gets a statistic so large that its chi-square CDF is 1,
    as for the infinite statistic it stands for. `log_count[c]` is log(c) for every count a bin
    can hold (0 for none: 0 log 0 = 0); `stats` is scratch space for every hypothesis. The sum
    runs bin by bin over all hypotheses at once, along contiguous memory and without a branch
    per hypothesis, in the same order as a sum per hypothesis: the same statistics to the bit."""
    bins = hist.size
    stats[:known] = 0.0
    for k in range(bins):
        c = hist[k]
        if c == 0:
            continue
        log_c = log_count[c]
        for h in range(known):
            stats[h] += c * (log_c - log_expected[k, h])
    best = math.inf
    best_index = -1
    for h in range(known):
        stat = 2.0 * stats[h]
        if stat < best:
            best = stat
            best_index = h
    score = _chi_square_cdf(best, bins - 1)
    if score < confidence:
        matches[best_index] += 1
        return score, known, best_index
    slot = known
    if known == matches.size:
        slot = int(np.argmin(matches))
    else:
        known += 1
    for k in range(bins):
        log_expected[k, slot] = log_count[hist[k]] if hist[k] > 0 else _UNSEEN
    matches[slot] = 1
    return score, known, -1


@njit(cache=True)
def _memo_slot(key: int, size: int) -> int:
    """Slot of a histogram's key in the memo, or -1 when there is none (`size` 0): Fibonacci
    hashing, so that keys differing in any digit spread over the slots."""
    if size == 0:
        return -1
    return int(np.int64((np.uint64(key) * np.uint64(_FIBONACCI)) >> np.uint64(64 - _MEMO_BITS)))


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
    learned = np.empty(learning)
    recent = np.empty(window, dtype=np.int64)
    hist = np.zeros(bins, dtype=np.int64)
    log_expected = np.empty((bins, max_hypotheses))
    matches = np.zeros(max_hypotheses, dtype=np.int64)
    stats = np.empty(max_hypotheses)
    log_count = np.log(np.maximum(np.arange(window + 1.0), 1.0))
    # A window's test depends only on its histogram and the hypotheses, which change only when
    # a window is novel (a new generation). Tests of the current generation are memoised by
    # histogram: the window moves back and forth between a few hundred histograms. A histogram
    # is keyed exactly by its counts as digits in base window + 1, kept up to date as values
    # enter and leave; where that key would overflow there is no memo.
    memo_size = _MEMO if (window + 1.0) ** bins < 2.0**62 else 0
    digit = (window + 1) ** np.arange(bins) if memo_size else np.zeros(bins, dtype=np.int64)
    memo_key = np.full(memo_size, -1, dtype=np.int64)
    memo_generation = np.zeros(memo_size, dtype=np.int64)
    memo_score = np.empty(memo_size)
    memo_matched = np.empty(memo_size, dtype=np.int64)
    generation = 0
    key = 0
    count = 0
    known = 0
    low = 0.0
    width = 1.0
    last_t = 0.0
    oldest = 0  # the position in `recent` of the value that leaves the window next
    matched = -1
    score = np.nan
    for i in range(x.size):
        value = x[i]
        if not np.isfinite(value):
            continue
        if count > 0 and t[i] - last_t > max_gap:
            count = 0
        last_t = t[i]
        if count < learning:
            learned[count] = value
            count += 1
            if count < learning:
                continue
            span = max(learned.max() - learned.min(), min_range)
            low = learned.min() - margin * span
            width = span * (1.0 + 2.0 * margin) / bins
            hist[:] = 0
            known = 0
            generation += 1
            for j in range(learning):
                b = _bin_of(learned[j], low, width, bins)
                if j >= window:
                    hist[recent[j % window]] -= 1
                recent[j % window] = b
                hist[b] += 1
                if j >= window - 1:
                    score, known, matched = _test_window(
                        hist, log_expected, matches, known, confidence, stats, log_count
                    )
                    generation += matched < 0
            key = 0
            for k in range(bins):
                key += hist[k] * digit[k]
            oldest = learning % window
            continue
        b = _bin_of(value, low, width, bins)
        leaving = recent[oldest]
        recent[oldest] = b
        oldest = oldest + 1 if oldest + 1 < window else 0
        if b == leaving and matched >= 0:  # the same histogram, the same hypotheses
            matches[matched] += 1
            out[i] = score
            continue
        hist[leaving] -= 1
        hist[b] += 1
        key += digit[b] - digit[leaving]
        slot = _memo_slot(key, memo_size)
        if slot >= 0 and memo_key[slot] == key and memo_generation[slot] == generation:
            score, matched = memo_score[slot], memo_matched[slot]
            matches[matched] += 1
        else:
            score, known, matched = _test_window(
                hist, log_expected, matches, known, confidence, stats, log_count
            )
            if matched < 0:
                generation += 1
            elif slot >= 0:
                memo_key[slot], memo_generation[slot] = key, generation
                memo_score[slot], memo_matched[slot] = score, matched
        out[i] = score
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
