"""Energy kernels: samples/s of each Numba kernel and of its NumPy reference on 10M samples.

Run with `python -m bench.energy`. The first call of each kernel compiles it (or loads it from
Numba's cache) and is left out of the timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from analytics.energy import (
    DEMAND_INTERVAL_S,
    integrate_bins,
    integrate_bins_reference,
    integrate_many,
    integrate_many_reference,
    meter_increase,
    meter_increase_reference,
)

SAMPLES = 10_000_000
SERIES = 100  # machines, for the kernel that is parallel over series


def best_seconds(work: Callable[[], object], repeats: int = 3) -> float:
    work()  # compile or load from cache, warm the memory
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def data(n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(1)
    t = 1.7e9 + np.cumsum(rng.exponential(1.0, n))
    return t, rng.uniform(0.0, 30.0, n)


def figures(n: int = SAMPLES) -> list[tuple[str, float, float]]:
    """(kernel, Numba samples/s, NumPy samples/s) for each kernel."""
    t, p = data(n)
    meter = np.cumsum(p) % 99_999.9
    whole = t[[0, -1]]
    first = np.floor(t[0] / DEMAND_INTERVAL_S) * DEMAND_INTERVAL_S
    quarters = np.arange(first, t[-1] + DEMAND_INTERVAL_S, DEMAND_INTERVAL_S)
    offsets = np.linspace(0, n, SERIES + 1).astype(np.int64)
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("integration", lambda: integrate_bins(t, p, whole, 300.0, False),
         lambda: integrate_bins_reference(t, p, whole, 300.0, False)),
        ("15-min means", lambda: integrate_bins(t, p, quarters, 300.0, False),
         lambda: integrate_bins_reference(t, p, quarters, 300.0, False)),
        ("meter increase", lambda: meter_increase(meter, 99_999.9, 10.0),
         lambda: meter_increase_reference(meter, 99_999.9, 10.0)),
        (f"integration, {SERIES} series", lambda: integrate_many(t, p, offsets, 300.0, False),
         lambda: integrate_many_reference(t, p, offsets, 300.0, False)),
    ]  # fmt: skip
    return [
        (name, n / best_seconds(numba_kernel), n / best_seconds(numpy_kernel))
        for name, numba_kernel, numpy_kernel in cases
    ]


if __name__ == "__main__":
    for name, fast, reference in figures():
        print(f"{name:<28} {fast / 1e6:8.1f} M/s  numpy {reference / 1e6:8.1f} M/s")
