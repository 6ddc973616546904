"""The reference for the relative-entropy kernel of `analytics.anomaly.entropy`: the detector as
a plain Python loop, which the tests compare the kernel with and the NAB bench measures it
against.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from analytics.anomaly import RelativeEntropySettings, chi_square_cdf

FloatArray = npt.NDArray[np.float64]


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
    t: FloatArray, x: FloatArray, settings: RelativeEntropySettings
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
