"""The settings of the z-score (`standard_score`) and T² (`hotelling_t2`) detectors, and the
conventions they share.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numba import njit


@dataclass(frozen=True)
class DetectorSettings:
    """Forgetting factor (per sample), warm-up samples, longest gap (s), clip (in sd), var floor."""

    alpha: float = 0.01
    warmup: int = 30
    max_gap: float = math.inf
    clip: float = 3.0
    var_floor: float = 1e-12


@njit(cache=True)
def _equal_weight_count(alpha: float) -> int:
    """The count from which samples are absorbed with weight alpha, not 1 / (count + 1)."""
    count = max(1, int(min(1.0 / alpha, 2.0**62)) - 2)
    while 1.0 / (count + 1) > alpha:
        count += 1
    return count
