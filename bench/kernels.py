"""Streaming kernels on 10M samples: samples/s, as a multiple of each kernel's NumPy reference
and as a share of the memory-copy bandwidth measured in the same run (`python -m bench.kernels`).

A kernel's bytes per sample are what it must read and write per sample (8 B per float64 read or
written, shared timestamps counted for every series that reads them), so the share of copy
bandwidth says how close it runs to streaming memory. The first call of each kernel is left out
of its timing; compile and cache-load times are measured apart, in fresh processes with an
empty and then a filled Numba cache, as a service pays them once when it starts.

The z-score, level-shift and T² recursions clip what they absorb by a deviation that depends on
their own past, so their vectorised NumPy formulations iterate to a fixed point (about 10 passes
for a z-score, about 100 for T² of 8 signals, which clips a third of its rows): their multiples
are large and the share of copy bandwidth tells more. T² is compared with NumPy's solver called
row by row instead, the faster of its two references.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from analytics.anomaly import (
    DetectorSettings,
    alarms,
    events,
    hotelling,
    learn_normal,
    level_shift,
    score_normal,
    zscore,
)
from analytics.energy import (
    DEMAND_INTERVAL_S,
    integrate_bins,
    integrate_many,
    meter_increase,
)
from analytics.kernels import counter_increase
from tests.references.anomaly import (
    alarms_numpy,
    events_numpy,
    hotelling_reference,
    level_shift_numpy,
    zscore_numpy,
)
from tests.references.energy import (
    counter_increase_reference,
    integrate_bins_reference,
    integrate_many_reference,
    meter_increase_reference,
)
from tests.references.normal import normal_numpy

FloatArray = npt.NDArray[np.float64]

SAMPLES = 10_000_000
SERIES = 16  # signals sharing one clock, for the kernels that run in parallel over series
SIGNALS = 8  # per machine, for Hotelling T²; its samples are values, rows x signals
REFERENCE_SAMPLES = 1_000_000  # for the references that iterate: 10M would take minutes
HOTELLING_REFERENCE_SAMPLES = 200_000
DETECTOR = DetectorSettings(max_gap=600.0)  # a gap check per sample, as in service
GOAL_MULTIPLE = 10.0
GOAL_SHARE = 0.3


@dataclass(frozen=True)
class Case:
    """A kernel on SAMPLES samples, its NumPy reference on `reference_samples` of the same."""

    name: str
    bytes_per_sample: float
    kernel: Callable[[], object]
    reference: Callable[[], object]
    reference_samples: int


@dataclass(frozen=True)
class Figure:
    """What the table shows of one kernel."""

    name: str
    samples_per_s: float
    multiple: float  # of the NumPy reference's samples/s
    share: float  # of copy bandwidth
    bandwidth: float  # bytes/s copied, measured just before


def best_seconds(work: Callable[[], object], repeats: int = 3) -> float:
    """Best of `repeats` timed calls after one untimed call (compile or cache load, page-in)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(n: int = SAMPLES) -> float:
    """Bytes read plus written per second by np.copyto of n float64."""
    source = np.random.default_rng(0).random(n)
    target = np.empty_like(source)
    return 2 * source.nbytes / best_seconds(lambda: np.copyto(target, source), repeats=5)


def series(n: int) -> tuple[FloatArray, FloatArray]:
    """Timestamps about 1 s apart and noisy values with a spike every 10^5 samples or so."""
    rng = np.random.default_rng(1)
    t = 1.7e9 + np.cumsum(rng.exponential(1.0, n))
    x = 20.0 + rng.normal(0.0, 1.0, n)
    x[rng.integers(0, n, max(n // 100_000, 1))] += 8.0
    return t, x


def anomaly_cases(n: int) -> list[Case]:
    t, x = series(n)
    many = x.reshape(SERIES, -1)
    t_many = t[: many.shape[1]]
    rows = n // SIGNALS
    machine = x[: rows * SIGNALS].reshape(rows, SIGNALS)
    machines = machine[: rows // SERIES * SERIES].reshape(SERIES, -1, SIGNALS)
    score = np.abs(x - 20.0)
    m, h = min(n, REFERENCE_SAMPLES), min(rows, HOTELLING_REFERENCE_SAMPLES // SIGNALS)
    d = DETECTOR
    hotelling_bytes = 8.0 + 16.0 / SIGNALS  # each value, and per row a timestamp and a T²
    normal = learn_normal(machine[: min(rows, 20_000)], [f"s{j}" for j in range(SIGNALS)])
    normal_bytes = 16.0 + 16.0 / SIGNALS  # each value and its share, per row two scores
    return [
        Case("z-score, 1 series", 24.0, lambda: zscore(t, x, d),
             lambda: zscore_numpy(t[:m], x[:m], d), m),
        Case(f"z-score, {SERIES} series", 24.0, lambda: zscore(t_many, many, d),
             lambda: zscore_numpy(t[:m], x[:m], d), m),
        Case("level shift, 1 series", 24.0, lambda: level_shift(t, x, d),
             lambda: level_shift_numpy(t[:m], x[:m], d), m),
        Case(f"level shift, {SERIES} series", 24.0, lambda: level_shift(t_many, many, d),
             lambda: level_shift_numpy(t[:m], x[:m], d), m),
        Case(f"Hotelling T², 1 machine x {SIGNALS}", hotelling_bytes,
             lambda: hotelling(t[:rows], machine, d),
             lambda: hotelling_reference(t[:h], machine[:h], d), h * SIGNALS),
        Case(f"Hotelling T², {SERIES} machines x {SIGNALS}", hotelling_bytes,
             lambda: hotelling(t[: machines.shape[1]], machines, d),
             lambda: hotelling_reference(t[:h], machine[:h], d), h * SIGNALS),
        Case(f"normal model, 1 machine x {SIGNALS}", normal_bytes,
             lambda: score_normal(normal, machine),
             lambda: normal_numpy(normal, machine[: m // SIGNALS]), m // SIGNALS * SIGNALS),
        Case("alarms", 8.0, lambda: alarms(score, 4.0, 3.0, 60),
             lambda: alarms_numpy(score, 4.0, 3.0, 60), n),
        Case("events", 8.0, lambda: events(t, score, "bench", 4.0, 3.0, 5),
             lambda: events_numpy(score, 4.0, 3.0, 5, 1), n),
    ]  # fmt: skip


def energy_cases(n: int) -> list[Case]:
    t, x = series(n)
    p = np.abs(x)
    whole = t[[0, -1]]
    first = np.floor(t[0] / DEMAND_INTERVAL_S) * DEMAND_INTERVAL_S
    quarters = np.arange(first, t[-1] + DEMAND_INTERVAL_S, DEMAND_INTERVAL_S)
    offsets = np.linspace(0, n, 101).astype(np.int64)
    meter = np.cumsum(p / 3600.0) % 99_999.9
    counter = (np.cumsum(x > 20.5) % 65_536).astype(np.float64)
    return [
        Case("energy integration", 16.0, lambda: integrate_bins(t, p, whole, 300.0, False),
             lambda: integrate_bins_reference(t, p, whole, 300.0, False), n),
        Case("energy integration, 100 series", 16.0,
             lambda: integrate_many(t, p, offsets, 300.0, False),
             lambda: integrate_many_reference(t, p, offsets, 300.0, False), n),
        Case("15-min means", 16.0, lambda: integrate_bins(t, p, quarters, 300.0, False),
             lambda: integrate_bins_reference(t, p, quarters, 300.0, False), n),
        Case("meter increase", 8.0, lambda: meter_increase(meter, 99_999.9, 10.0),
             lambda: meter_increase_reference(meter, 99_999.9, 10.0), n),
        Case("counter increase", 8.0, lambda: counter_increase(counter),
             lambda: counter_increase_reference(counter), n),
    ]  # fmt: skip


def cases(n: int = SAMPLES) -> list[Case]:
    return anomaly_cases(n) + energy_cases(n)


def figures(n: int = SAMPLES) -> list[Figure]:
    """Each kernel's figures, the copy bandwidth measured again just before it: on a shared
    machine the load changes from one kernel to the next."""
    found = []
    for case in cases(n):
        bandwidth = copy_bandwidth(n)
        rate = n / best_seconds(case.kernel, repeats=5)
        reference = case.reference_samples / best_seconds(case.reference, repeats=3)
        share = rate * case.bytes_per_sample / bandwidth
        found.append(Figure(case.name, rate, rate / reference, share, bandwidth))
    return found


def first_calls() -> dict[str, float]:
    """Seconds of each kernel's first call on small data: compiling, or loading from cache."""
    seconds = {}
    for case in cases(SERIES * SIGNALS * 64):
        start = time.perf_counter()
        case.kernel()
        seconds[case.name] = time.perf_counter() - start
    return seconds


def startup_seconds() -> tuple[dict[str, float], dict[str, float]]:
    """First-call seconds with an empty Numba cache (compiling), then with the cache it filled."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "NUMBA_CACHE_DIR": folder}
        command = [sys.executable, "-m", "bench.kernels", "--first-calls"]
        runs = [subprocess.run(command, env=env, check=True, capture_output=True, text=True)]
        runs.append(subprocess.run(command, env=env, check=True, capture_output=True, text=True))
    compiled, loaded = (json.loads(run.stdout) for run in runs)
    return compiled, loaded


def verdict(value: float, goal: float) -> str:
    return "met" if value >= goal else "missed"


def main() -> None:
    compiled, loaded = startup_seconds()
    table = Table(title=f"streaming kernels, {SAMPLES / 1e6:.0f}M samples (first call excluded)")
    for column in ("kernel", "samples/s", "x NumPy", "% copy bw", "copy GB/s",
                   "goal ≥10x, ≥30 %", "compile s", "cache load s"):  # fmt: skip
        table.add_column(column, justify="left" if column == "kernel" else "right")
    for f in figures():
        table.add_row(
            f.name,
            f"{f.samples_per_s / 1e6:,.0f}M",
            f"{f.multiple:,.0f}x",
            f"{f.share:.0%}",
            f"{f.bandwidth / 1e9:.1f}",
            f"{verdict(f.multiple, GOAL_MULTIPLE)}, {verdict(f.share, GOAL_SHARE)}",
            f"{compiled[f.name]:.2f}",
            f"{loaded[f.name]:.3f}",
        )
    Console(width=140).print(table)
    print(
        f"copy bandwidth: np.copyto of {SAMPLES / 1e6:.0f}M float64, bytes read + written; "
        f"first calls of all kernels: {sum(compiled.values()):.1f} s compiling, "
        f"{sum(loaded.values()):.2f} s from the cache"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--first-calls"]:
        print(json.dumps(first_calls()))
    else:
        main()
