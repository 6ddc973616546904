"""NumPy references of the energy and counter kernels: what the tests compare them with and
what the kernel benchmark measures them against. Not part of the product."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def integrate_bins_reference(
    t: Array, p: Array, edges: Array, max_gap_s: float, linear: bool
) -> tuple[Array, Array]:
    """NumPy reference: cumulative energy at every edge by binary search, then differences."""
    keep = ~np.isnan(p)
    t, p = t[keep], p[keep]
    if len(t) < 2:
        m = max(len(edges) - 1, 0)
        return np.zeros(m), np.zeros(m)
    dt = np.diff(t)
    used = (dt > 0) & (dt <= max_gap_s)
    p0 = p[:-1]
    slope = np.zeros_like(dt)
    if linear:
        slope[used] = (p[1:][used] - p0[used]) / dt[used]
    step_kwh = np.where(used, (p0 + 0.5 * slope * dt) * dt / 3600.0, 0.0)
    cum_kwh = np.concatenate([[0.0], np.cumsum(step_kwh)])
    cum_s = np.concatenate([[0.0], np.cumsum(np.where(used, dt, 0.0))])
    i = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, len(dt) - 1)
    h = np.where(used[i], np.clip(edges - t[i], 0.0, dt[i]), 0.0)
    at_kwh = cum_kwh[i] + (p0[i] * h + 0.5 * slope[i] * h * h) / 3600.0
    at_s = cum_s[i] + h
    return np.diff(at_kwh), np.diff(at_s)


def meter_increase_reference(
    values: Array, maximum: float, max_step: float
) -> tuple[float, int, int, int]:
    """NumPy reference: every step classified at once."""
    v = values[~np.isnan(values)]
    previous, current = v[:-1], v[1:]
    rises = current >= previous
    wrapped = maximum - previous + current
    rollover = ~rises & ~np.isnan(maximum) & (wrapped <= max_step)
    reset = ~rises & ~rollover & (current <= max_step)
    total = np.sum((current - previous)[rises]) + np.sum(wrapped[rollover]) + np.sum(current[reset])
    drops = ~rises & ~rollover & ~reset
    return float(total), int(reset.sum()), int(rollover.sum()), int(drops.sum())


def integrate_many_reference(
    t: Array, p: Array, offsets: npt.NDArray[np.int64], max_gap_s: float, linear: bool
) -> tuple[Array, Array]:
    """Reference: the NumPy integration, one series after the other."""
    kwh, uncovered = [], []
    for a, b in itertools.pairwise(offsets):
        ts = t[a:b]
        if len(ts) < 2:
            kwh.append(0.0)
            uncovered.append(0.0)
            continue
        e, c = integrate_bins_reference(ts, p[a:b], ts[[0, -1]], max_gap_s, linear)
        kwh.append(float(e[0]))
        uncovered.append(float(ts[-1] - ts[0] - c[0]))
    return np.array(kwh), np.array(uncovered)


def counter_increase_reference(values: npt.NDArray[np.float64]) -> float:
    """NumPy reference: the positive steps between the samples that are not NaN, summed."""
    steps = np.diff(values[~np.isnan(values)])
    return float(steps[steps > 0].sum())
