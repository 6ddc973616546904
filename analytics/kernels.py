"""Numba kernels: the inner loops of the KPI computations, compiled once per process."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

_CHUNK = 2048  # samples checked for NaN, then summed from the cache, at a time


@njit(cache=True, fastmath={"reassoc"})
def counter_increase(values: npt.NDArray[np.float64]) -> float:
    """How much a cumulative counter grew, ignoring resets and rollovers.

    Only non-negative steps count: when a counter drops (reset to zero, rollover, a replaced
    meter) the drop is skipped instead of subtracted, so a reset never yields negative output.
    NaN samples are skipped. A chunk without NaN is summed in a loop the compiler vectorises
    (hence the reassociated sum); a chunk with one takes the step-by-step path.
    """
    total = 0.0
    previous = np.nan
    for start in range(0, values.size, _CHUNK):
        chunk = values[start : start + _CHUNK]
        missing = 0
        for value in chunk:
            missing += np.isnan(value)
        if missing == 0 and not np.isnan(previous):
            total += max(chunk[0] - previous, 0.0)
            for j in range(1, chunk.size):
                total += max(chunk[j] - chunk[j - 1], 0.0)
            previous = chunk[-1]
            continue
        for value in chunk:
            if np.isnan(value):
                continue
            if not np.isnan(previous) and value > previous:
                total += value - previous
            previous = value
    return total


def counter_increase_reference(values: npt.NDArray[np.float64]) -> float:
    """NumPy reference: the positive steps between the samples that are not NaN, summed."""
    steps = np.diff(values[~np.isnan(values)])
    return float(steps[steps > 0].sum())
