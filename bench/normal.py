"""The normal model's calibration: false alarms in a fault-free week against the rate its level
was set for, and how soon it sees faults planted in that week (`python -m bench.normal`).

Synthetic processes, so that a week of fault-free data exists to count the false alarms in:
8 signals mixing 3 sources (signals of one machine move together), each source independent
from row to row or autoregressive (a slow process, 0.9 or 0.99 of the last row kept), with
Gaussian or Student-t (4 degrees of freedom, heavy-tailed) noise, plus Gaussian sensor noise
of 0.3 the sources' innovations; one row a second. The model learns
on 1 or 8 hours of the process and scores a week of it from another seed. The faults are
planted in a copy of that week, one kind at a time, at ten times: a correlation break (one
signal loses a source the others keep), a step of one signal, a gradual drift of one signal
(to the same size over 30 minutes), each the size of that signal's spread on the normal period,
or a stuck signal (its value held where the fault starts), lasting an hour. Next to it,
today's `kpi anomalies` without --normal-until (a streaming z-score per signal at |z| >= 5 and
T² at the same rarity) on the same fault-free week.
"""

from __future__ import annotations

import statistics

import numpy as np
import numpy.typing as npt
from numba import njit
from rich.console import Console
from rich.table import Table

from analytics.anomaly import (
    NormalModel,
    events,
    hotelling,
    learn_normal,
    normal_events,
    score_normal,
    t2_level,
    zscore,
)

FloatArray = npt.NDArray[np.float64]

SIGNALS = 8
SOURCES = 3
SENSOR_NOISE = 0.3
WEEK = 7 * 24 * 3600
TARGET_PER_WEEK = 1.0
GOAL_PER_WEEK = 7.0  # the fault bench's goal: at most one false alarm a machine a day
FAULT_ROWS = 3600
FAULTS = 10
KINDS = ("correlation break", "step", "drift", "stuck")
MIXING = np.random.default_rng(99).standard_normal((SOURCES, SIGNALS))


@njit(cache=True)
def _autoregressive(noise: FloatArray, keep: float) -> FloatArray:
    out = np.empty_like(noise)
    out[0] = noise[0]
    for i in range(1, noise.shape[0]):
        out[i] = keep * out[i - 1] + noise[i]
    return out


def process(rows: int, seed: int, keep: float, heavy: bool) -> FloatArray:
    """Rows x SIGNALS of the process described in the module's docstring."""
    rng = np.random.default_rng(seed)
    shape = (rows, SOURCES)
    noise = rng.standard_t(4, shape) if heavy else rng.standard_normal(shape)
    sources = _autoregressive(noise, keep)
    sensors = SENSOR_NOISE * rng.standard_normal((rows, SIGNALS))
    return np.asarray(sources @ MIXING + sensors)


def plant(week: FloatArray, model: NormalModel, kind: str) -> tuple[FloatArray, list[int]]:
    """`week` with FAULTS faults of `kind`, one a signal in turn, and the rows they start at."""
    faulty = week.copy()
    starts = [int(WEEK * (i + 0.5) / FAULTS) for i in range(FAULTS)]
    ramp = np.minimum(np.arange(FAULT_ROWS) / 1800.0, 1.0)
    for number, start in enumerate(starts):
        signal = number % SIGNALS
        rows = slice(start, start + FAULT_ROWS)
        size = model.scale[signal]
        if kind == "correlation break":  # the signal loses its largest source
            source = int(np.argmax(np.abs(MIXING[:, signal])))
            sources = week[rows] @ np.linalg.pinv(MIXING)
            lost = sources[:, source] * MIXING[source, signal]
            faulty[rows, signal] -= lost - lost.mean()
        elif kind == "step":
            faulty[rows, signal] += size
        elif kind == "stuck":
            faulty[rows, signal] = week[start, signal]
        else:
            faulty[rows, signal] += size * ramp
    return faulty, starts


def delays(model: NormalModel, values: FloatArray, starts: list[int]) -> list[float]:
    """Seconds from each fault's start to the first event within it (inf when none)."""
    t = np.arange(float(len(values)))
    found = [e.start_row for e in normal_events(model, score_normal(model, values), t)]
    return [
        min((row - start for row in found if start <= row < start + FAULT_ROWS), default=np.inf)
        for start in starts
    ]


def streaming_false_alarms(week: FloatArray, t: FloatArray, z: float = 5.0) -> int:
    """Events of `kpi anomalies` without --normal-until, all signals and T² together."""
    scores = np.abs(zscore(t, np.ascontiguousarray(week.T)))
    found = sum(len(events(t, score, "z", z)) for score in scores)
    return found + len(events(t, hotelling(t, week), "T2", t2_level(z, SIGNALS)))


def case(keep: float, heavy: bool, hours: int) -> dict[str, float]:
    names = [f"s{j}" for j in range(SIGNALS)]
    model = learn_normal(process(hours * 3600, 1, keep, heavy), names)
    week = process(WEEK, 2, keep, heavy)
    t = np.arange(float(WEEK))
    figures: dict[str, float] = {
        "false_alarms": len(normal_events(model, score_normal(model, week), t)),
        "streaming": streaming_false_alarms(week, t),
    }
    for kind in KINDS:
        waits = delays(model, *plant(week, model, kind))
        seen = [wait for wait in waits if np.isfinite(wait)]
        figures[f"{kind} recall"] = len(seen) / len(waits)
        figures[f"{kind} delay"] = statistics.median(seen) if seen else np.inf
    return figures


def described(keep: float, heavy: bool) -> str:
    memory = f"AR {keep:g}" if keep else "independent"
    return f"{memory}, {'Student-t' if heavy else 'Gaussian'}"


def main() -> None:
    table = Table(title="normal model: a week of a synthetic process, learnt on 1 or 8 hours")
    columns = ["process", "learnt", "false alarms / week (streaming today)"]
    columns += [f"{kind}: recall, median delay" for kind in KINDS]
    for column in columns:
        table.add_column(column, justify="left" if column == "process" else "right")
    alarms, streaming = [], []
    for keep in (0.0, 0.9, 0.99):
        for heavy in (False, True):
            for hours in (1, 8):
                f = case(keep, heavy, hours)
                alarms.append(f["false_alarms"])
                cells = [f"{f[f'{k} recall']:.0%}, {f[f'{k} delay']:.0f} s" for k in KINDS]
                both = f"{f['false_alarms']:.0f} ({f['streaming']:.0f})"
                table.add_row(described(keep, heavy), f"{hours} h", both, *cells)
                streaming.append(f["streaming"])
    Console(width=140).print(table)
    median, worst = statistics.median(alarms), max(alarms)
    verdict = "met" if worst <= GOAL_PER_WEEK else "missed"
    print(
        f"false alarms a week, level set for {TARGET_PER_WEEK:g}: median {median:g}, worst "
        f"{worst:g} (goal <= {GOAL_PER_WEEK:g}, one a day: {verdict}); streaming today: "
        f"median {statistics.median(streaming):g}, worst {max(streaming):g}"
    )


if __name__ == "__main__":
    main()
