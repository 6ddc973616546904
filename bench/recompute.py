"""Recomputing 30 days of 1 Hz data from 20 machines of 8 signals, through the public analytics
functions, against a goal of 10 s (`python -m bench.recompute`).

The data is made in memory first, untimed: per machine a state every second, part and reject
counters, power that follows the state and 5 process signals, each signal a series as the store
returns it. Then, timed part by part: OEE per machine per 8-hour shift from the state timeline
and the counters; energy per machine and state and the 15-minute peak demand; the point and
level-shift z-scores of all 160 signals (counters scored as parts per second) and Hotelling T²
per machine over its 8 signals; and the detector the analytics service runs live, relative
entropy (`analytics.service.LIVE_DETECTOR`) of each process signal over the samples taken while
running, a signal per thread on every core (its kernel runs without the GIL).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.anomaly import DetectorSettings, hotelling, level_shift, relative_entropy, zscore
from analytics.energy import energy_by_state, peak_demand
from analytics.oee import StateEvent, oee_timeline
from analytics.service import LIVE_DETECTOR
from shopfloor.states import MachineState

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAYS = 30
MACHINES = 20
SIGNALS = 8  # parts/s, rejects/s, power and 5 process signals
PROCESS = range(3, SIGNALS)  # the signals the service scores: neither counters nor metered power
START = 1_793_577_600.0  # 2026-11-02 00:00 UTC, a Monday
SHIFT_S = 8 * 3600
IDEAL_CYCLE_S = 30.0
GOAL_S = 10.0
DETECTOR = DetectorSettings(alpha=0.01, warmup=60, max_gap=600.0)

STATES = list(MachineState)
# (mean seconds, share of state changes, kW) of each state a machine moves through
BEHAVIOUR = {
    MachineState.RUNNING: (1200.0, 0.45, 15.0),
    MachineState.MICRO_STOP: (60.0, 0.25, 9.0),
    MachineState.IDLE: (300.0, 0.1, 4.0),
    MachineState.STARVED: (240.0, 0.05, 4.0),
    MachineState.BLOCKED: (180.0, 0.05, 4.0),
    MachineState.SETUP: (1200.0, 0.03, 3.0),
    MachineState.UNPLANNED_STOP: (900.0, 0.03, 2.0),
    MachineState.PLANNED_STOP: (1800.0, 0.03, 2.0),
    MachineState.OFF: (3600.0, 0.01, 0.2),
}


@dataclass(frozen=True)
class Plant:
    """Every machine's data: shared 1 Hz timestamps, state codes (indices into STATES),
    cumulative part and reject counters, and the 8 scored signals per machine."""

    t: FloatArray  # (samples,)
    states: npt.NDArray[np.int8]  # (machines, samples)
    parts: FloatArray  # (machines, samples)
    rejects: FloatArray  # (machines, samples)
    signals: FloatArray  # (machines, signals, samples): parts/s, rejects/s, power, process


def state_codes(rng: np.random.Generator, n: int) -> npt.NDArray[np.int8]:
    """A state every second: spans of exponential length, each state drawn by its share."""
    kinds = list(BEHAVIOUR)
    means = np.array([BEHAVIOUR[s][0] for s in kinds])
    shares = np.array([BEHAVIOUR[s][1] for s in kinds])
    spans = 2 * int(n / float(means @ shares)) + 100
    drawn = rng.choice(len(kinds), spans, p=shares / shares.sum())
    lengths = np.maximum(1, rng.exponential(means[drawn])).astype(np.int64)
    codes = np.array([STATES.index(s) for s in kinds], dtype=np.int8)[drawn]
    return np.repeat(codes, lengths)[:n]


def make_plant(days: int = DAYS, machines: int = MACHINES, seed: int = 1) -> Plant:
    rng = np.random.default_rng(seed)
    n = days * 86_400
    t = START + np.arange(n, dtype=np.float64)
    kw = np.array([BEHAVIOUR[s][2] for s in STATES])
    states = np.empty((machines, n), dtype=np.int8)
    parts = np.empty((machines, n))
    rejects = np.empty((machines, n))
    signals = np.empty((machines, SIGNALS, n))
    for m in range(machines):
        states[m] = state_codes(rng, n)
        running = states[m] == STATES.index(MachineState.RUNNING)
        made = running & (rng.random(n) < 1.0 / (IDEAL_CYCLE_S * 1.15))
        bad = made & (rng.random(n) < 0.02)
        parts[m], rejects[m] = np.cumsum(made), np.cumsum(bad)
        signals[m, 0], signals[m, 1] = made, bad
        signals[m, 2] = kw[states[m]] * (1.0 + 0.05 * rng.standard_normal(n, dtype=np.float32))
        for s in range(3, SIGNALS):
            signals[m, s] = 50.0 + 10.0 * s + rng.standard_normal(n, dtype=np.float32)
    return Plant(t, states, parts, rejects, signals)


def change_rows(codes: npt.NDArray[np.int8]) -> IntArray:
    """Row 0 and every row where the state differs from the row before."""
    return np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])


def oee_by_shift(plant: Plant) -> None:
    """OEE of every machine in every shift from its state log, the counters read at each state
    change and at each shift start (as a store query for the window would return them)."""
    n = plant.t.size
    starts = np.arange(0, n, SHIFT_S)
    for m in range(plant.states.shape[0]):
        rows = np.union1d(change_rows(plant.states[m]), starts)
        log = [
            StateEvent(t, STATES[code], int(parts), int(rejects))
            for t, code, parts, rejects in zip(
                plant.t[rows].tolist(),
                plant.states[m, rows].tolist(),
                plant.parts[m, rows].tolist(),
                plant.rejects[m, rows].tolist(),
                strict=True,
            )
        ]
        first = np.searchsorted(rows, starts)
        for a, b in zip(first.tolist(), [*first[1:].tolist(), len(rows) - 1], strict=True):
            window_start = float(plant.t[rows[a]])
            oee_timeline(log[a : b + 1], window_start, window_start + SHIFT_S, IDEAL_CYCLE_S)


def energy_by_machine(plant: Plant) -> None:
    """kWh per machine and state, and each machine's 15-minute peak demand."""
    end = float(plant.t[-1])
    for m in range(plant.states.shape[0]):
        rows = change_rows(plant.states[m])
        times = plant.t[rows].tolist()
        codes = plant.states[m, rows].tolist()
        intervals = [
            (a, b, STATES[code]) for a, b, code in zip(times, [*times[1:], end], codes, strict=True)
        ]
        energy_by_state(intervals, plant.t, plant.signals[m, 2])
        peak_demand(plant.t, plant.signals[m, 2])


def z_scores(plant: Plant) -> None:
    """Point and level-shift z-scores of every signal, machine by machine, its signals in
    parallel."""
    for signals in plant.signals:
        zscore(plant.t, signals, DETECTOR)
        level_shift(plant.t, signals, DETECTOR)


def hotelling_scores(plant: Plant) -> None:
    """Hotelling T² of every machine over its 8 signals, machines in parallel."""
    hotelling(plant.t, plant.signals.transpose(0, 2, 1), DETECTOR)  # read where they lie


def relative_entropy_scores(plant: Plant) -> None:
    """The service's live detector on each process signal of every machine, samples taken while
    not running set to NaN (skipped), as `analytics.service` does; one signal per thread on
    every core (the kernel runs without the GIL)."""
    running = plant.states == STATES.index(MachineState.RUNNING)

    def score(m: int, s: int) -> None:
        relative_entropy(plant.t, np.where(running[m], plant.signals[m, s], np.nan), LIVE_DETECTOR)

    machines = range(plant.states.shape[0])
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(score, *zip(*[(m, s) for m in machines for s in PROCESS], strict=True)))


def timed(work: Callable[[Plant], None], plant: Plant) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all threads) of one run: on a shared machine the CPU time
    tells how much of the wall time other processes took."""
    wall, cpu = time.perf_counter(), time.process_time()
    work(plant)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    small = make_plant(days=1, machines=2)
    parts = {
        "OEE per machine per shift": oee_by_shift,
        "energy per machine and state, 15-min peak": energy_by_machine,
        "z-scores, point and level shift, 160 signals": z_scores,
        "Hotelling T², 20 machines x 8 signals": hotelling_scores,
        f"live detector: relative entropy, {MACHINES * len(PROCESS)} signals": (
            relative_entropy_scores
        ),
    }
    for work in parts.values():
        work(small)  # compile or load the kernels: a service does it once when it starts
    del small
    plant = make_plant()
    print(
        f"recomputing {DAYS} days of 1 Hz data, {MACHINES} machines x {SIGNALS} signals "
        f"({plant.signals.size / 1e6:,.0f}M samples, {plant.signals.nbytes / 2**30:.1f} GiB)"
    )
    seconds = {name: timed(work, plant) for name, work in parts.items()}
    print(f"  {'':<46} {'wall s':>7} {'CPU s':>7}")
    for name, (wall, cpu) in seconds.items():
        print(f"  {name:<46} {wall:7.2f} {cpu:7.2f}")
    wall, cpu = (sum(column) for column in zip(*seconds.values(), strict=True))
    verdict = "met" if wall < GOAL_S else "missed"
    print(f"  {'total':<46} {wall:7.2f} {cpu:7.2f}   goal < {GOAL_S:g} s wall: {verdict}")


if __name__ == "__main__":
    main()
