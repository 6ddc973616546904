"""Alarm levels from a score's own distribution on a normal period, for a stated false-alarm
rate: peaks over threshold (POT) with a generalised Pareto tail.

A false alarm is an event, not a row: scores of neighbouring rows move together, so rows above
a level come in clusters, and one cluster is one alarm. The normal period's scores are
declustered (runs above a high threshold u, apart by at least `separation` rows, each kept as
its peak); the peaks' excesses over u are fitted with a generalised Pareto distribution
(shape xi, scale sigma), and the level is its return level for the target rate:

    level = u + sigma / xi * ((rate_u / rate) ** xi - 1)     (u + sigma * log(...) at xi = 0)

where rate_u is the clusters above u per second. A week at 1 Hz is 604,800 rows: an
empirical quantile cannot reach one alarm a week from a few hours of data, the fitted tail can,
and it follows the data where a chi-square level assumes a Gaussian that process signals are
not (a heavy tail gets xi > 0 and a level far above the chi-square one).

The fit is Hosking and Wallis's probability-weighted moments (1987): closed-form, no solver,
unbiased enough from a few tens of peaks, valid for xi < 1/2. xi is kept within [0, 1/2]: a
sum of squares such as T² has no upper end, so a negative xi (a bounded tail) is the noise of
a short period, and its level would sit just above the largest score seen, so that the next
day's maximum raises an alarm; 1/2 keeps a handful of peaks from extrapolating to absurd
levels.

Heavy tails. Near the 95th percentile, where the excesses are, a sum of squares of
heavy-tailed signals still looks exponential (xi fitted at 0), and the rarer scores of a week
lie beyond: on independent Student-t noise (4 degrees of freedom) the levels so fitted gave 14
events a week for a target of 1. The caller can floor xi (`shape_floor`) by what the signals'
kurtosis implies, which leaves a Gaussian signal's level alone (kurtosis 3: floor 0). On
synthetic fault-free processes (8 signals, independent or strongly autocorrelated, Gaussian or
Student-t noise) learnt on 1 to 8 hours, the normal model's levels then give a median of 0
events in a week for a target of 1, 3 at worst (14 without the floor; `python -m
bench.normal`). The trade-off: on heavy-tailed noise the levels are higher, so a fault there
is seen later (a step of one spread 33 s instead of 12 s, learnt on 1 h); a longer normal
period tells the tail better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MIN_PEAKS = 50  # cluster peaks the tail is fitted on; fewer, and u is lowered to find them
SHAPE_BOUNDS = (0.0, 0.5)


@dataclass(frozen=True)
class TailFit:
    """The fitted tail: threshold u, clusters above u per second, GPD shape and scale."""

    threshold: float
    rate: float
    shape: float
    scale: float

    def level(self, rate: float) -> float:
        """The score exceeded by `rate` clusters per second."""
        if rate >= self.rate:
            return self.threshold
        ratio = self.rate / rate
        if abs(self.shape) < 1e-9:
            return self.threshold + self.scale * math.log(ratio)
        return self.threshold + self.scale / self.shape * (float(ratio**self.shape) - 1.0)


def cluster_peaks(score: FloatArray, threshold: float, separation: int) -> FloatArray:
    """The peak of each run of rows above `threshold`; runs fewer than `separation` rows apart
    are one cluster. NaN counts as below."""
    above = np.flatnonzero(score > threshold)
    if not above.size:
        return np.empty(0)
    starts = np.flatnonzero(np.diff(above) > separation) + 1
    bounds = np.concatenate(([0], starts))
    return np.maximum.reduceat(score[above], bounds)


def gpd_pwm(excess: FloatArray, floor: float = 0.0) -> tuple[float, float]:
    """Shape xi and scale sigma of a generalised Pareto fitted to positive excesses by
    probability-weighted moments, xi within SHAPE_BOUNDS and at least `floor` (sigma then
    fitted to the mean)."""
    ordered = np.sort(excess)
    n = ordered.size
    a0 = float(ordered.mean())
    plotting = (np.arange(1, n + 1) - 0.35) / n
    a1 = float(np.mean((1.0 - plotting) * ordered))
    low, high = SHAPE_BOUNDS
    shape = 2.0 - a0 / (a0 - 2.0 * a1) if a0 > 2.0 * a1 else high
    shape = min(max(shape, low, floor), high)
    return shape, a0 * (1.0 - shape)  # the GPD mean is sigma / (1 - xi)


def fit_tail(score: FloatArray, seconds: float, separation: int, min_shape: float = 0.0) -> TailFit:
    """POT fit of a normal period's scores lasting `seconds`: the threshold is lowered from the
    95th percentile until MIN_PEAKS clusters lie above it (or the median is reached); the
    shape is at least `min_shape` (see `shape_floor`)."""
    finite = score[np.isfinite(score)]
    if not finite.size:
        raise ValueError("no finite score to calibrate on")
    for quantile in (0.95, 0.9, 0.8, 0.65, 0.5):
        threshold = float(np.quantile(finite, quantile))
        peaks = cluster_peaks(score, threshold, separation)
        if peaks.size >= MIN_PEAKS:
            break
    excess = peaks - threshold
    excess = excess[excess > 0]
    if excess.size < 3:
        raise ValueError("the normal period's scores are too flat to calibrate a level on")
    shape, scale = gpd_pwm(excess, min_shape)
    return TailFit(threshold, peaks.size / seconds, shape, scale)


def shape_floor(z: FloatArray, needed: int) -> float:
    """The least tail shape of the k-of-n evidence of a sum of squares of the columns of `z`
    (rows x signals, complete), from their kurtosis.

    A Student-t with nu degrees of freedom has kurtosis 3 + 6 / (nu - 4) and its square a
    tail of shape 2 / nu; the `needed`-th largest of rows independent of each other has a tail
    that many times lighter. The heaviest-tailed signal sets it; a Gaussian one (kurtosis 3)
    sets 0. The fitted shape can be below the floor: near the 95th percentile, where the
    excesses are, the tail of a heavy-tailed sum of squares still looks exponential, and the
    rarer scores of a week lie beyond."""
    centred = z - z.mean(axis=0)
    kurtosis = float(np.max(np.mean(centred**4, axis=0) / np.mean(centred**2, axis=0) ** 2))
    if kurtosis <= 3.0:
        return 0.0
    return 2.0 / (4.0 + 6.0 / (kurtosis - 3.0)) / needed
