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
`analytics.anomaly.events` for labelled events. The kernel has a plain Python reference,
`relative_entropy_reference`, that the tests compare it with.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TINY = 1e-300
_EPSILON = 4e-16


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
        if self.window < 2 or self.bins < 2:
            raise ValueError(f"window and bins must be >= 2, not {self.window}, {self.bins}")
        if self.learning < self.window:
            raise ValueError(f"learning ({self.learning}) must cover a window ({self.window})")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), not {self.confidence}")
        if self.margin < 0.0 or self.max_hypotheses < 1:
            raise ValueError("margin must be >= 0 and max_hypotheses >= 1")


def chi_square_cdf(stat: float, dof: int) -> float:
    """P(chi-square with `dof` degrees of freedom <= stat): the regularised lower incomplete
    gamma function, by its series below the mean and its continued fraction above."""
    if stat <= 0.0:
        return 0.0
    if stat == math.inf:
        return 1.0
    a = 0.5 * dof
    x = 0.5 * stat
    scale = math.exp(a * math.log(x) - x - math.lgamma(a))
    if x < a + 1.0:
        term = 1.0 / a
        total = term
        for n in range(1, 1000):
            term *= x / (a + n)
            total += term
            if term < total * _EPSILON:
                break
        return min(1.0, total * scale)
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    fraction = d
    for n in range(1, 1000):
        an = -n * (n - a)
        b += 2.0
        d = an * d + b
        d = d if abs(d) > _TINY else _TINY
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        d = 1.0 / d
        change = d * c
        fraction *= change
        if abs(change - 1.0) < _EPSILON:
            break
    return max(0.0, 1.0 - scale * fraction)


_chi_square_cdf = njit(cache=True)(chi_square_cdf)


@njit(cache=True)
def _bin_of(value: float, low: float, width: float, bins: int) -> int:
    position = math.floor((value - low) / width)
    return int(min(max(position, 0.0), bins - 1.0))


@njit(cache=True)
def _test_window(
    hist: IntArray,
    log_hypotheses: FloatArray,
    matches: IntArray,
    known: int,
    confidence: float,
    occupied: IntArray,
    log_hist: FloatArray,
) -> tuple[float, int]:
    """Score the window's histogram and learn from it; returns (score, hypotheses known).
    `occupied` and `log_hist` are scratch space of `bins` entries."""
    bins = hist.size
    used = 0
    for k in range(bins):
        if hist[k] > 0:
            occupied[used] = k
            log_hist[used] = math.log(hist[k])
            used += 1
    best = math.inf
    best_index = -1
    for h in range(known):
        stat = 0.0
        for j in range(used):
            k = occupied[j]
            if log_hypotheses[h, k] == -math.inf:
                stat = math.inf
                break
            stat += hist[k] * (log_hist[j] - log_hypotheses[h, k])
        stat *= 2.0
        if stat < best:
            best = stat
            best_index = h
    score = _chi_square_cdf(best, bins - 1)
    if score < confidence:
        matches[best_index] += 1
        return score, known
    slot = known
    if known == matches.size:
        slot = int(np.argmin(matches))
    else:
        known += 1
    for k in range(bins):
        log_hypotheses[slot, k] = math.log(hist[k]) if hist[k] > 0 else -math.inf
    matches[slot] = 1
    return score, known


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
    log_hypotheses = np.empty((max_hypotheses, bins))
    matches = np.zeros(max_hypotheses, dtype=np.int64)
    occupied = np.empty(bins, dtype=np.int64)
    log_hist = np.empty(bins)
    count = 0
    known = 0
    low = 0.0
    width = 1.0
    last_t = 0.0
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
            for j in range(learning):
                b = _bin_of(learned[j], low, width, bins)
                if j >= window:
                    hist[recent[j % window]] -= 1
                recent[j % window] = b
                hist[b] += 1
                if j >= window - 1:
                    known = _test_window(
                        hist, log_hypotheses, matches, known, confidence, occupied, log_hist
                    )[1]
            continue
        b = _bin_of(value, low, width, bins)
        hist[recent[count % window]] -= 1
        recent[count % window] = b
        hist[b] += 1
        count += 1
        out[i], known = _test_window(
            hist, log_hypotheses, matches, known, confidence, occupied, log_hist
        )
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


class _Hypotheses:
    """Known window histograms as count vectors, with how often each was matched."""

    def __init__(self, settings: RelativeEntropySettings) -> None:
        self.settings = settings
        self.counts: list[list[int]] = []
        self.matches: list[int] = []

    def test(self, hist: list[int]) -> float:
        best, best_index = math.inf, -1
        for index, counts in enumerate(self.counts):
            stat = 0.0
            for h, g in zip(hist, counts, strict=True):
                if h > 0:
                    if g == 0:
                        stat = math.inf
                        break
                    stat += h * (math.log(h) - math.log(g))
            if 2.0 * stat < best:
                best, best_index = 2.0 * stat, index
        score = chi_square_cdf(best, len(hist) - 1)
        if score < self.settings.confidence:
            self.matches[best_index] += 1
        elif len(self.counts) < self.settings.max_hypotheses:
            self.counts.append(list(hist))
            self.matches.append(1)
        else:
            slot = self.matches.index(min(self.matches))
            self.counts[slot], self.matches[slot] = list(hist), 1
        return score


def relative_entropy_reference(
    t: FloatArray, x: FloatArray, settings: RelativeEntropySettings = RelativeEntropySettings()
) -> FloatArray:
    """The kernel as a plain Python loop, for the tests and the benchmark."""
    s = settings
    out = np.full(x.size, np.nan)
    learned: list[float] = []
    recent: deque[int] = deque(maxlen=s.window)
    hypotheses = _Hypotheses(s)
    low, width, last_t = 0.0, 1.0, -math.inf

    def histogram() -> list[int]:
        return [sum(1 for b in recent if b == k) for k in range(s.bins)]

    for i, value in enumerate(x.tolist()):
        if not math.isfinite(value):
            continue
        if t[i] - last_t > s.max_gap:
            learned = []
        last_t = float(t[i])
        if len(learned) < s.learning:
            learned.append(value)
            if len(learned) < s.learning:
                continue
            span = max(max(learned) - min(learned), s.min_range)
            low = min(learned) - s.margin * span
            width = span * (1.0 + 2.0 * s.margin) / s.bins
            recent.clear()
            hypotheses = _Hypotheses(s)
            for v in learned:
                recent.append(min(max(math.floor((v - low) / width), 0), s.bins - 1))
                if len(recent) == s.window:
                    hypotheses.test(histogram())
            continue
        recent.append(min(max(math.floor((value - low) / width), 0), s.bins - 1))
        out[i] = hypotheses.test(histogram())
    return out
