"""Streaming kernels on 10M samples: samples/s, as a multiple of each kernel's NumPy reference
and as a share of the memory-copy bandwidth measured in the same run (`python -m bench.kernels`).

A kernel's bytes per sample are what it must read and write per sample (8 B per float64 read or
written, shared timestamps counted for every series that reads them), so the share of copy
bandwidth says how close it runs to streaming memory. The first call of each kernel is left out
of its timing; compile and cache-load times are measured apart, in fresh processes with an
empty and then a filled Numba cache, as a service pays them once when it starts. Each kernel is
timed in turns with the copy of SAMPLES float64 (the baseline) and with its bound if it has
one, best of five each: on a shared machine the load changes from moment to moment, and timed
in turns the kernel and its baselines see the same.

Each kernel that is not bound by memory is also timed in turns with what bounds it ("% bound",
`Bound`); that part's rate times the kernel's bytes per sample is the most of copy bandwidth the
kernel can reach. A cap below the goal says no kernel of that shape meets it on this host
("MISSED: bound by ..."); a miss under a higher cap, that the kernel does more per sample than
its bound ("MISSED: ... caps at X %, runs at Y % of it"). The bounds and the work beyond them:

- The detectors' recursions (z-score, level shift) wait on their dependency chain: each
  sample's mean and variance wait for the previous sample's, so a series runs one step after
  the other however wide the vectors. Their bound is the bare chain, one fused multiply-add per
  sample in turn (`_fma_chain`), on as many threads as they have series in flight. A z-score
  does beside it a square root, a division and two compares a sample, the square roots and
  divisions four at a time beside the chain.
- Hotelling T² takes its rows a block of 32 at a time, and the blocks one after the other:
  a block's rows are read as deviations from the mean the block before left, transposed into
  vectors of four rows (8 lanes out and 8 in), and go through its chain: the LDL' of the
  covariance the block before left (8 x 8, 8 divisions in turn), the rows' scores (44
  multiply-adds a row), their weights (a division and a square root a row) and their
  absorption in the mean and covariance (52 multiply-adds a row). The chain's waits are
  hidden: the core runs the parts of a block and of the next side by side, so the loop takes
  as long as its instructions take to issue. Cutting the chain (each block's LDL' from a fixed
  covariance, or its weights left out) leaves its time unchanged within 1 %; reading the next
  block's rows during the chain, or weighing four rows as they are scored, only adds
  instructions, and slowed it by 2-3 %. Its bound is that loop with nothing else
  (`t2_rows_and_chain`), on one thread for each machine in flight; beyond it come the gap and
  NaN checks, the rows' indices and the scores written out.
- The normal model scores each row on four indices of k x k multiply-adds and the raw two again
  before its carry (384 a row of 8 signals, 48 a sample), in parallel; between the two passes
  its carry (`_carry`: the smoothed rows, the still runs, the evidence) runs one row after the
  other on one thread. Its bound is both: the carry, then the products of the six indices
  (three times the two of `_raw_rows`); beyond them it ranks the evidence and writes the
  shares, a row of 8 float64 a row.

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

import numba
import numpy as np
import numpy.typing as npt
from numba import njit
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
from analytics.anomaly._intrinsics import (
    _LINE,
    _SNAPSHOT,
    _absorb_block,
    _factorise,
    _fma,
    _padded,
    _score_block,
    _take_four,
)
from analytics.anomaly.hotelling_t2 import _steady_weights
from analytics.anomaly.normal import NormalModel, _carry, _Frozen, _raw_rows, _start_carry
from analytics.energy import (
    DEMAND_INTERVAL_S,
    integrate_bins,
    integrate_many,
    meter_increase,
)
from analytics.kernels import counter_increase
from bench.host import host_line
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
class Bound:
    """A part of a kernel it cannot run faster than, run alone in turns with it: `work` covers
    `samples` of the kernel's samples (a chain on one thread stands for as many threads as
    the kernel has series in flight)."""

    what: str
    work: Callable[[], object]
    samples: int


@dataclass(frozen=True)
class Case:
    """A kernel on SAMPLES samples, its NumPy reference on `reference_samples` of the same,
    and what bounds it if something other than memory does."""

    name: str
    bytes_per_sample: float
    kernel: Callable[[], object]
    reference: Callable[[], object]
    reference_samples: int
    bound: Bound | None = None


@dataclass(frozen=True)
class Figure:
    """What the table shows of one kernel."""

    name: str
    samples_per_s: float
    multiple: float  # of the NumPy reference's samples/s
    share: float  # of copy bandwidth
    bandwidth: float  # bytes/s copied, measured in turns with the kernel
    bound: str | None  # what bounds it, if not memory
    bound_share: float | None  # the kernel's rate as a share of its bound's
    bound_cap: float | None  # the share of copy bandwidth the bound itself reaches

    @property
    def verdict(self) -> str:
        if self.multiple >= GOAL_MULTIPLE and self.share >= GOAL_SHARE:
            return "met"
        if self.bound_cap is None or self.bound_share is None:
            return "MISSED"
        runs = f"runs at {self.bound_share:.0%} of it"
        cap = f"caps at {self.bound_cap:.0%}"
        if self.bound_cap < GOAL_SHARE:
            return f"MISSED: bound by {self.bound} ({cap}), {runs}"
        return f"MISSED: {self.bound} {cap}, {runs}"


def best_in_turns(works: list[Callable[[], object]], repeats: int = 5) -> list[float]:
    """Best seconds of each of `works`, timed in turns after one untimed call of each (compile
    or cache load, page-in): a load that comes and goes slows them alike."""
    for work in works:
        work()
    best = [float("inf")] * len(works)
    for _ in range(repeats):
        for index, work in enumerate(works):
            start = time.perf_counter()
            work()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


@njit(cache=True, error_model="numpy")
def _fma_chain(x: FloatArray, keep: float, alpha: float) -> float:
    """An exponential mean of x, one fused multiply-add per sample, each waiting for the one
    before: the fastest a recursion over the samples runs on one core."""
    mean = 0.0
    for value in x:
        mean = _fma(keep, mean, alpha * value)
    return mean


def series(n: int) -> tuple[FloatArray, FloatArray]:
    """Timestamps about 1 s apart and noisy values with a spike every 10^5 samples or so."""
    rng = np.random.default_rng(1)
    t = 1.7e9 + np.cumsum(rng.exponential(1.0, n))
    x = 20.0 + rng.normal(0.0, 1.0, n)
    x[rng.integers(0, n, max(n // 100_000, 1))] += 8.0
    return t, x


def recurrence(x: FloatArray, chains: int) -> Bound:
    """The bare chain on x, for a recursive kernel with `chains` series in flight."""
    return Bound("its recurrence", lambda: _fma_chain(x, 0.99, 0.01), x.size * chains)


@njit(cache=True, nogil=True, error_model="numpy")
def t2_rows_and_chain(
    x: FloatArray, alpha: float, clip: float, var_floor: float, signals: tuple[int, ...]
) -> float:
    """Hotelling T²'s own loop on x (rows x signals, each row's values together) with only what
    it cannot do without, a block of rows at a time: the block's rows read and transposed into
    vectors of four rows (`_take_four`) as deviations from the mean, then its chain, the LDL'
    of the estimate, the scores, the weights and the absorption, in the kernel's order. Left
    out: the gap and NaN checks, the rows' indices, the scores written out."""
    k = len(signals)
    stride = _padded(k)
    deviation = _LINE
    t2 = deviation + k * _SNAPSHOT
    gain, weight, later = t2 + _SNAPSHOT, t2 + 2 * _SNAPSHOT, t2 + 3 * _SNAPSHOT
    reference = later + _SNAPSHOT
    mean, centre, cov = reference + stride, reference + 2 * stride, reference + 3 * stride
    factor = cov + k * stride
    inverse_d = factor + k * k
    s = np.zeros(inverse_d + k + _LINE)
    for a in range(k):
        s[reference + a] = x[0, a]
        s[cov + a * stride + a] = 1.0
    t2_rows, gain_rows = s[t2 : t2 + _SNAPSHOT], s[gain : gain + _SNAPSHOT]
    weight_rows, later_rows = s[weight : weight + _SNAPSHOT], s[later : later + _SNAPSHOT]
    for j in range(_SNAPSHOT):
        later_rows[j] = (1.0 - alpha) ** (_SNAPSHOT - 1 - j)
    for first in range(0, x.shape[0] - _SNAPSHOT + 1, _SNAPSHOT):
        _factorise(s, cov, factor, inverse_d, 0.01, var_floor, signals)
        for a in range(k):
            s[centre + a] = s[reference + a] + s[mean + a]
        for m in range(0, _SNAPSHOT, 4):
            _take_four(s, x, first + m, m, deviation, centre, True, signals)
        _score_block(s, deviation, factor, inverse_d, t2, signals)
        _steady_weights(t2_rows, gain_rows, weight_rows, later_rows, alpha, clip * clip)
        _absorb_block(s, deviation, gain, weight, (1.0 - alpha) ** _SNAPSHOT, mean, cov, signals)
    return float(s[t2])


def rows_and_chain(values: FloatArray, threads: int) -> Bound:
    """T²'s rows and chain (`t2_rows_and_chain`) on `values`, on `threads` threads (one thread
    stands for them all)."""
    d, signals = DETECTOR, (0,) * values.shape[1]
    return Bound(
        "its rows and chain",
        lambda: t2_rows_and_chain(values, d.alpha, d.clip, d.var_floor, signals),
        values.size * threads,
    )


def normal_products(model: NormalModel, values: FloatArray) -> Bound:
    """The normal model's sequential carry (`_carry`, one row after the other) and its products
    (`_raw_rows`, which takes two of the six indices of a row and of its average, three times):
    all of its work but the evidence, the shares and the memory it writes them to."""
    frozen = _Frozen.of(
        model.centre, model.scale, model.root, model.settings, model.tolerance, model.stuck_rows
    )
    n, k = values.shape
    raw, smoothed = np.empty(n), np.empty((n, k))
    still, held = np.empty(n), np.empty(n, np.int64)
    _raw_rows(values, frozen.gain, frozen.offset, (0,) * k, raw)
    settings = model.settings
    state = (frozen.centre, frozen.keep, frozen.tolerance, frozen.per_row)
    needed, rows = settings.evidence_needed, settings.evidence_rows

    def carry_and_products() -> None:
        for _ in range(3):
            _raw_rows(values, frozen.gain, frozen.offset, (0,) * k, raw)
        average, last, runs, above, count = _start_carry(frozen.centre, rows)
        _carry(values, raw, needed, rows, 0, *state, average, last, runs, above, count, smoothed,
               still, held)  # fmt: skip

    return Bound("its carry and products", carry_and_products, values.size)


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
    threads = min(SERIES, numba.get_num_threads())
    return [
        Case("z-score, 1 series", 24.0, lambda: zscore(t, x, d),
             lambda: zscore_numpy(t[:m], x[:m], d), m, recurrence(x, 1)),
        Case(f"z-score, {SERIES} series", 24.0, lambda: zscore(t_many, many, d),
             lambda: zscore_numpy(t[:m], x[:m], d), m, recurrence(x, threads)),
        Case("level shift, 1 series", 24.0, lambda: level_shift(t, x, d),
             lambda: level_shift_numpy(t[:m], x[:m], d), m, recurrence(x, 1)),
        Case(f"level shift, {SERIES} series", 24.0, lambda: level_shift(t_many, many, d),
             lambda: level_shift_numpy(t[:m], x[:m], d), m, recurrence(x, threads)),
        Case(f"Hotelling T², 1 machine x {SIGNALS}", hotelling_bytes,
             lambda: hotelling(t[:rows], machine, d),
             lambda: hotelling_reference(t[:h], machine[:h], d), h * SIGNALS,
             rows_and_chain(machine, 1)),
        Case(f"Hotelling T², {SERIES} machines x {SIGNALS}", hotelling_bytes,
             lambda: hotelling(t[: machines.shape[1]], machines, d),
             lambda: hotelling_reference(t[:h], machine[:h], d), h * SIGNALS,
             rows_and_chain(machine, threads)),
        Case(f"normal model, 1 machine x {SIGNALS}", normal_bytes,
             lambda: score_normal(normal, machine),
             lambda: normal_numpy(normal, machine[: m // SIGNALS]), m // SIGNALS * SIGNALS,
             normal_products(normal, machine)),
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
    """Each kernel's figures, timed in turns with the copy of n float64 and with its bound."""
    source = np.random.default_rng(0).random(n)
    target = np.empty_like(source)
    found = []
    for case in cases(n):
        works = [case.kernel, lambda: np.copyto(target, source)]
        kernel, copy, *bound = best_in_turns(works + ([case.bound.work] if case.bound else []))
        (reference,) = best_in_turns([case.reference], repeats=3)
        rate, bandwidth = n / kernel, 2 * source.nbytes / copy
        share = rate * case.bytes_per_sample / bandwidth
        multiple = rate * reference / case.reference_samples
        what, bound_share, bound_cap = None, None, None
        if case.bound:
            bound_rate = case.bound.samples / bound[0]
            what, bound_share = case.bound.what, rate / bound_rate
            bound_cap = bound_rate * case.bytes_per_sample / bandwidth
        found.append(
            Figure(case.name, rate, multiple, share, bandwidth, what, bound_share, bound_cap)
        )
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


def main() -> None:
    compiled, loaded = startup_seconds()
    table = Table(
        title=f"streaming kernels, {SAMPLES / 1e6:.0f}M samples (first call excluded)",
        caption=host_line(),
    )
    for column in ("kernel", "samples/s", "x NumPy", "% copy bw", "copy GB/s", "% bound",
                   "goal ≥10x, ≥30 %", "compile s", "cache load s"):  # fmt: skip
        table.add_column(column, justify="left" if column == "kernel" else "right")
    for f in figures():
        table.add_row(
            f.name,
            f"{f.samples_per_s / 1e6:,.0f}M",
            f"{f.multiple:,.0f}x",
            f"{f.share:.0%}",
            f"{f.bandwidth / 1e9:.1f}",
            "" if f.bound_share is None else f"{f.bound_share:.0%}",
            f.verdict,
            f"{compiled[f.name]:.2f}",
            f"{loaded[f.name]:.3f}",
        )
    Console(width=160).print(table)
    print(
        f"copy bandwidth: np.copyto of {SAMPLES / 1e6:.0f}M float64, bytes read + written; "
        "% bound: of its recurrence's rate (one FMA per sample in turn, on as many threads as "
        "series in flight), of T²'s rows and chain, or of the normal model's carry and products; "
        f"first calls of all kernels: {sum(compiled.values()):.1f} s compiling, "
        f"{sum(loaded.values()):.2f} s from the cache"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--first-calls"]:
        print(json.dumps(first_calls()))
    else:
        main()
