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
    """Row by row: standardise, multiply by the root, square; the evidence by sorting the
    window (rows before the first are 0, NaN below everything)."""
    settings = model.settings
    n, k = values.shape
    score, instant, shares = np.empty(n), np.empty(n), np.empty((n, k))
    window = [0.0] * settings.evidence_rows
    for i in range(n):
        z = (values[i] - model.centre) / model.scale
        y = model.root @ z
        phi = float(y @ y)
        instant[i] = phi / model.level
        shares[i] = y * y / phi if phi > 0 else y * 0.0
        window = [*window[1:], -math.inf if math.isnan(phi) else instant[i]]
        kth = sorted(window, reverse=True)[settings.evidence_needed - 1]
        score[i] = kth if kth > -math.inf else math.nan
    return score, instant, shares


def normal_numpy(
    model: NormalModel, values: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Whole arrays at a time: a matrix product, and a partition of every row's window."""
    settings = model.settings
    y = ((values - model.centre) / model.scale) @ model.root.T
    squares = y * y
    phi = squares.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(phi[:, None] > 0, squares / phi[:, None], squares * 0.0)
    instant = phi / model.level
    rows, needed = settings.evidence_rows, settings.evidence_needed
    ranked = np.concatenate((np.zeros(rows - 1), np.where(np.isnan(instant), -np.inf, instant)))
    windows = sliding_window_view(ranked, rows)
    kth = -np.partition(-windows, needed - 1, axis=1)[:, needed - 1]
    return np.where(kth > -np.inf, kth, np.nan), instant, shares
