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
_BLOCK = 256  # rows the NumPy average advances by a matrix product at a time


def _parts(model: NormalModel) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """The four roots (a format 1 model's two padded), tolerances, 1 / still rows, and the
    average's weight on the row before."""
    k = len(model.signals)
    roots = np.zeros((4, k, k))
    roots[: len(model.root)] = model.root
    watched = len(model.stuck_rows) == k
    tolerance = model.tolerance if watched else np.zeros(k)
    per_row = 1.0 / model.stuck_rows if watched else np.zeros(k)
    keep = math.exp(-model.settings.sample_period_s / model.settings.smoothing_s)
    return roots, tolerance, per_row, keep


def normal_reference(
    model: NormalModel, values: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Row by row: the average and the still runs carried over, then each index of the row
    and of the average, the largest (the first on a tie) with its shares; the evidence by
    sorting the window (rows before the first are 0, NaN below everything)."""
    settings = model.settings
    roots, tolerance, per_row, keep = _parts(model)
    n, k = values.shape
    score, instant, shares = np.empty(n), np.empty(n), np.empty((n, k))
    window = [0.0] * settings.evidence_rows
    above = [False] * settings.evidence_rows
    state, last, runs = model.centre.copy(), np.full(k, np.nan), np.zeros(k)
    for i in range(n):
        row = values[i]
        missing = np.isnan(row)
        for j in range(k):
            if missing.all():
                runs[j], last[j] = 0.0, math.nan
            else:
                still = bool(missing[j]) or abs(row[j] - last[j]) <= tolerance[j]
                runs[j] = runs[j] + 1.0 if still else 0.0
                last[j] = last[j] if missing[j] else row[j]
        candidates = []
        for root in roots[:2]:
            y = root @ ((row - model.centre) / model.scale)
            candidates.append((float(y @ y), y * y))
        above = [*above[1:], max(candidates[0][0], candidates[1][0]) >= 1.0]
        if sum(above) >= settings.evidence_needed:
            state = model.centre.copy()
        elif not missing.any():  # held through a row with a missing signal
            state = keep * state + (1.0 - keep) * row
        smoothed = state + math.nan if missing.any() else state
        for root in roots[2:]:
            y = root @ ((smoothed - model.centre) / model.scale)
            candidates.append((float(y @ y), y * y))
        ratios = runs * per_row
        held = int(np.argmax(ratios))
        longest = math.nan if missing.all() or not per_row.any() else float(ratios[held])
        candidates.append((longest, np.eye(k)[held] * longest))
        finite = [c for c in candidates if not math.isnan(c[0])]
        index, y2 = max(finite, key=lambda c: c[0]) if finite else (math.nan, row * math.nan)
        instant[i] = index
        shares[i] = y2 / index if index > 0 else y2 * 0.0
        window = [*window[1:], -math.inf if math.isnan(index) else index]
        kth = sorted(window, reverse=True)[settings.evidence_needed - 1]
        score[i] = kth if kth > -math.inf else math.nan
    return score, instant, shares


def _still_runs(values: FloatArray, tolerance: FloatArray) -> FloatArray:
    """Rows x signals: how many rows in a row each signal has stayed within its tolerance of
    its last value (a missing one held), every run ended by a row with all missing."""
    n = len(values)
    missing: npt.NDArray[np.bool_] = np.isnan(values)
    empty = np.asarray(missing.all(axis=1))
    rows = np.arange(n)[:, None]
    reset = np.maximum.accumulate(np.where(empty, np.arange(n), -1))[:, None]
    seen = np.maximum.accumulate(np.where(~missing, rows, -1), axis=0)
    before = np.vstack((np.full((1, values.shape[1]), -1), seen[:-1]))
    last = np.where(
        before > reset, values[np.maximum(before, 0), np.arange(values.shape[1])], np.nan
    )
    with np.errstate(invalid="ignore"):
        still = (missing | (np.abs(values - last) <= tolerance)) & ~empty[:, None]
    counted = np.cumsum(still, axis=0)
    return (counted - np.maximum.accumulate(np.where(still, 0, counted), axis=0)).astype(float)


def _average(
    model: NormalModel, values: FloatArray, keep: float, restart: npt.NDArray[np.bool_]
) -> FloatArray:
    """The average of the complete rows, held through an incomplete one (NaN on it), from the
    centre again at each `restart` (the centre on it; on an incomplete row, from the next
    complete one's value). Over the complete rows alone, a block at a time: within a block it
    is a lower-triangular matrix of weights times the rows, masked where a restart lies
    between, plus the block before's last average decayed."""
    n, k = values.shape
    complete = np.flatnonzero(~np.isnan(values).any(axis=1))
    restarts = np.cumsum(restart)
    previous = np.concatenate(([0], restarts[complete[:-1]]))  # up to the complete row before
    fresh = restarts[complete] > previous  # a restart since the complete row before
    deviation = np.where(restart[complete, None], 0.0, values[complete] - model.centre)
    segment = np.cumsum(fresh)
    lag = np.subtract.outer(np.arange(_BLOCK), np.arange(_BLOCK))
    weights = np.where(lag >= 0, (1.0 - keep) * keep ** np.maximum(lag, 0), 0.0)
    decay = keep ** np.arange(1, _BLOCK + 1)
    average = np.empty((len(complete), k))
    carried, carried_segment = np.zeros(k), segment[0] if len(complete) else 0
    for first in range(0, len(complete), _BLOCK):
        rows = slice(first, min(first + _BLOCK, len(complete)))
        m, ids = rows.stop - first, segment[rows]
        mask = ids[:, None] == ids[None, :]
        carry = np.where(ids[:, None] == carried_segment, decay[:m, None] * carried, 0.0)
        average[rows] = (weights[:m, :m] * mask) @ deviation[rows] + carry
        carried, carried_segment = average[rows.stop - 1], ids[-1]
    out = np.full((n, k), np.nan)
    out[complete] = average + model.centre
    return out


def normal_numpy(
    model: NormalModel, values: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Whole arrays at a time: matrix products, running counts, and a partition of every row's
    window."""
    settings = model.settings
    roots, tolerance, per_row, keep = _parts(model)
    n, k = values.shape
    rows = np.arange(n)
    z = (values - model.centre) / model.scale
    squares = [np.square(z @ root.T) for root in roots[:2]]
    window, needed = settings.evidence_rows, settings.evidence_needed
    with np.errstate(invalid="ignore"):
        above = np.maximum(squares[0].sum(axis=1), squares[1].sum(axis=1)) >= 1.0
    counted = sliding_window_view(np.concatenate((np.zeros(window - 1), above)), window)
    restart = counted.sum(axis=1) >= needed
    smoothed = (_average(model, values, keep, restart) - model.centre) / model.scale
    squares += [np.square(smoothed @ root.T) for root in roots[2:]]
    ratios = _still_runs(values, tolerance) * per_row
    held = np.argmax(ratios, axis=1)
    unwatched = np.isnan(values).all(axis=1) | (not per_row.any())
    longest = np.where(unwatched, np.nan, ratios[rows, held])
    squares.append(np.eye(k)[held] * longest[:, None])
    indices = np.column_stack([part.sum(axis=1) for part in squares[:4]] + [longest])
    chosen = np.argmax(np.where(np.isnan(indices), -np.inf, indices), axis=1)
    instant = np.where(np.isnan(indices).all(axis=1), np.nan, indices[rows, chosen])
    larger = np.stack(squares)[chosen, rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(instant[:, None] > 0, larger / instant[:, None], larger * 0.0)
    ranked = np.concatenate((np.zeros(window - 1), np.where(np.isnan(instant), -np.inf, instant)))
    windows = sliding_window_view(ranked, window)
    kth = -np.partition(-windows, needed - 1, axis=1)[:, needed - 1]
    return np.where(kth > -np.inf, kth, np.nan), instant, shares
