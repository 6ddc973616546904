"""References for the scoring kernel of `analytics.anomaly.normal`, which the tests compare it
with and the kernel bench measures it against: a line-by-line Python transcript
(`normal_reference`) and an independent, vectorised NumPy formulation (`normal_numpy`).
Both return (score, instant, contributions), as `score_normal` does.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from analytics.anomaly import NormalModel

FloatArray = npt.NDArray[np.float64]


def normal_reference(
    model: NormalModel, values: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Row by row: standardise, multiply by each root, square, take the larger index; the
    evidence by sorting the window (rows before the first are 0, NaN below everything)."""
    settings = model.settings
    n, k = values.shape
    score, instant, shares = np.empty(n), np.empty(n), np.empty((n, k))
    window = [0.0] * settings.evidence_rows
    for i in range(n):
        z = (values[i] - model.centre) / model.scale
        t2, spe = model.root[0] @ z, model.root[1] @ z
        y = t2 if t2 @ t2 >= spe @ spe else spe
        index = float(y @ y)
        instant[i] = index
        shares[i] = y * y / index if index > 0 else y * 0.0
        window = [*window[1:], -math.inf if math.isnan(index) else index]
        kth = sorted(window, reverse=True)[settings.evidence_needed - 1]
        score[i] = kth if kth > -math.inf else math.nan
    return score, instant, shares


def normal_numpy(
    model: NormalModel, values: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Whole arrays at a time: a matrix product, and a partition of every row's window."""
    settings = model.settings
    z = (values - model.centre) / model.scale
    squares = [np.square(z @ root.T) for root in model.root]
    indices = [part.sum(axis=1) for part in squares]
    first = indices[0] >= indices[1]
    larger = np.where(first[:, None], squares[0], squares[1])
    instant = np.where(first, indices[0], indices[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(instant[:, None] > 0, larger / instant[:, None], larger * 0.0)
    rows, needed = settings.evidence_rows, settings.evidence_needed
    ranked = np.concatenate((np.zeros(rows - 1), np.where(np.isnan(instant), -np.inf, instant)))
    windows = sliding_window_view(ranked, rows)
    kth = -np.partition(-windows, needed - 1, axis=1)[:, needed - 1]
    return np.where(kth > -np.inf, kth, np.nan), instant, shares
