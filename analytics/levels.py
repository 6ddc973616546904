"""The score levels at which the analytics service opens anomaly events, in plain Python
without Numba, so that the dashboard badges a machine at the levels the service uses.

A signal's score is the detector's confidence (0 to 1) that its recent shape is unusual; a
machine's score is the Hotelling T² of its signals together, thresholded at the level as rare
as a `T2_Z`-sigma value of one signal.
"""

from __future__ import annotations

import math

SIGNAL_ON = 0.99  # a signal's score that opens an anomaly event
SIGNAL_OFF = 0.9  # under which it closes again
T2_Z = 8.0  # a machine's T² events at the rarity of an 8-sigma single-signal value


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
