"""Numba kernels: the inner loops of the KPI computations, compiled once per process."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit


@njit(cache=True)
def counter_increase(values: npt.NDArray[np.float64]) -> float:
    """How much a cumulative counter grew, ignoring resets and rollovers.

    Only non-negative steps count: when a counter drops (reset to zero, rollover, a replaced
    meter) the drop is skipped instead of subtracted, so a reset never yields negative output.
    NaN samples are skipped.
    """
    total = 0.0
    previous = np.nan
    for value in values:
        if np.isnan(value):
            continue
        if not np.isnan(previous) and value > previous:
            total += value - previous
        previous = value
    return total
