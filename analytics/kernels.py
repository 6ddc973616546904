"""Numba kernels: the inner loops of the KPI computations, compiled once per process."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

_CHUNK = 2048  # samples summed at a time; a chunk redone step by step is still in the L1 cache


@njit(cache=True, fastmath={"reassoc"})
def counter_increase(values: npt.NDArray[np.float64]) -> float:
    """How much a cumulative counter grew, ignoring resets and rollovers.

    Only non-negative steps count: when a counter drops (reset to zero, rollover, a replaced
    meter) the drop is skipped instead of subtracted, so a reset never yields negative output.
    NaN samples are skipped. Each chunk's steps are summed in one loop the compiler vectorises
    (hence the reassociated sum, which still propagates NaN): a NaN sample, or a NaN before
    the chunk, makes its steps and so their sum NaN, and only such a chunk is redone step by
    step. The chunks are slices, indexed from 0, so no load needs a negative-index check.
    """
    total = 0.0
    previous = np.nan
    for first in range(0, values.size, _CHUNK):
        chunk = values[first : first + _CHUNK]
        steps = max(chunk[0] - previous, 0.0)  # max(NaN, 0.0) is NaN
        for j in range(1, chunk.size):
            steps += max(chunk[j] - chunk[j - 1], 0.0)
        if not np.isnan(steps):
            total += steps
            previous = chunk[-1]
            continue
        for value in chunk:
            if np.isnan(value):
                continue
            if not np.isnan(previous) and value > previous:
                total += value - previous
            previous = value
    return total
