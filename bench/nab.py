"""Numenta Anomaly Benchmark (NAB v1.1) scoring, faithful to upstream `nab/sweeper.py`.

The corpus is read from a path given by the caller (a NAB checkout or a copy of its `data/`,
`labels/combined_windows.json` and `config/profiles.json`); nothing here is needed at run time.

Upstream semantics kept on purpose, because they decide the published scores:
- probation is ``min(floor(0.15 * rows), 0.15 * 5000)`` rows; those rows are dropped entirely, and
  a window none of whose rows survive probation counts neither as a hit nor as a miss;
- a row is a detection when its anomaly score is >= the threshold;
- inside a window only the best (that is, the earliest) detection counts, worth
  ``tpWeight * S(-(right - i + 1) / width) / S(-1)``, where S is the scaled sigmoid;
- a detection outside every window costs ``fpWeight`` before the first window and
  ``fpWeight * S(|prevRight - i| / (prevWidth - 1))`` after one, so a late alarm just past a
  window costs almost nothing;
- a window without a detection costs ``fnWeight``;
- normalised = 100 * (raw - null) / (perfect - null), perfect = all windows * tpWeight.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

PROBATION_PERCENT = 0.15

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def scaled_sigmoid(position: FloatArray) -> FloatArray:
    """NAB's reward curve: about 0.987 at -1 (window's left edge), 0 at 0, -1 beyond 3."""
    curve = 2.0 / (1.0 + np.exp(5.0 * np.minimum(position, 3.0))) - 1.0
    return np.where(position > 3.0, -1.0, curve)


MAX_TP = float(scaled_sigmoid(np.array([-1.0]))[0])


@dataclass(frozen=True)
class Profile:
    """A cost matrix of config/profiles.json (tnWeight is unused by NAB's scorer)."""

    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class NabFile:
    """One series with its windows, pre-scored row by row independently of any profile.

    `window` holds the window number of each scorable row inside a window, -1 for a scorable
    row outside every window and -2 for a probation row. `tp_reward` is the unweighted reward of
    a detection at a row inside a window, `fp_cost` the unweighted (negative) cost outside one.
    """

    name: str
    timestamps: npt.NDArray[np.datetime64]
    values: FloatArray
    windows: tuple[tuple[int, int], ...]
    window: IntArray
    tp_reward: FloatArray
    fp_cost: FloatArray

    @property
    def scored_windows(self) -> IntArray:
        """Windows with at least one row after probation: the only ones NAB counts."""
        return np.unique(self.window[self.window >= 0])

    def score(self, detections: BoolArray, profile: Profile) -> float:
        """Raw NAB score of one file for the rows flagged in `detections`."""
        if detections.shape != self.values.shape:
            raise ValueError(
                f"{self.name}: {detections.shape[0]} detections, {self.values.size} rows"
            )
        active = detections & (self.window >= -1)
        fp = float(np.sum(self.fp_cost[active & (self.window == -1)]))
        best = np.full(len(self.windows), -np.inf)
        hit = active & (self.window >= 0)
        np.maximum.at(best, self.window[hit], self.tp_reward[hit])
        scored = best[self.scored_windows]
        detected = np.isfinite(scored)
        return (
            profile.tp_weight * float(np.sum(scored[detected]))
            - profile.fn_weight * float(np.count_nonzero(~detected))
            + profile.fp_weight * fp
        )


def _prepare(
    name: str,
    timestamps: npt.NDArray[np.datetime64],
    values: FloatArray,
    windows: list[tuple[int, int]],
) -> NabFile:
    """Row-by-row rewards and costs, as upstream's `calcSweepScore` computes them."""
    n = values.size
    rows = np.arange(n)
    probation = min(math.floor(PROBATION_PERCENT * n), PROBATION_PERCENT * 5000)
    window = np.full(n, -1, dtype=np.int64)
    tp_reward = np.zeros(n)
    fp_cost = np.full(n, -1.0)
    for k, (left, right) in enumerate(windows):
        width = right - left + 1
        inside = rows[left : right + 1]
        window[left : right + 1] = k
        tp_reward[left : right + 1] = scaled_sigmoid(-(right - inside + 1) / width) / MAX_TP
        following = rows[right + 1 : windows[k + 1][0] if k + 1 < len(windows) else n]
        # Upstream divides by zero after a one-row window; none exists in the corpus.
        fp_cost[following] = scaled_sigmoid(np.abs(right - following) / max(width - 1, 1))
    fp_cost[window >= 0] = 0.0
    window[rows < probation] = -2
    return NabFile(name, timestamps, values, tuple(windows), window, tp_reward, fp_cost)


def _read_series(path: Path) -> tuple[npt.NDArray[np.datetime64], FloatArray]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    timestamps = np.array([r[0] for r in rows], dtype="datetime64[s]")
    return timestamps, np.array([float(r[1]) for r in rows], dtype=np.float64)


def _row_of(name: str, timestamps: npt.NDArray[np.datetime64], label: str) -> int:
    """Upstream matches window edges to rows exactly (`timestamps.index`), so we do too."""
    when = np.datetime64(label).astype("datetime64[s]")
    row = int(np.searchsorted(timestamps, when))
    if row >= timestamps.size or timestamps[row] != when:
        raise ValueError(f"{name}: window edge {label} is not a row of the file")
    return row


@dataclass(frozen=True)
class NabCorpus:
    """The 58 labelled series and the three application profiles."""

    files: dict[str, NabFile]
    profiles: dict[str, Profile]

    @property
    def window_count(self) -> int:
        return sum(len(f.windows) for f in self.files.values())

    def score(self, detections_by_file: Mapping[str, BoolArray], profile: str) -> float:
        """Raw NAB score summed over the corpus; every file must have its detections."""
        missing = self.files.keys() - detections_by_file.keys()
        if missing:
            raise ValueError(f"no detections for {sorted(missing)}")
        cost = self.profiles[profile]
        return sum(f.score(detections_by_file[name], cost) for name, f in self.files.items())

    def null_score(self, profile: str) -> float:
        """The detector that never fires: every counted window is a miss."""
        windows = sum(f.scored_windows.size for f in self.files.values())
        return -self.profiles[profile].fn_weight * windows

    def normalise(self, raw: float, profile: str) -> float:
        """Upstream's normalisation: null detector 0, every window hit at its left edge 100."""
        null = self.null_score(profile)
        perfect = self.window_count * self.profiles[profile].tp_weight
        return 100.0 * (raw - null) / (perfect - null)

    def normalised_scores(self, detections_by_file: Mapping[str, BoolArray]) -> dict[str, float]:
        return {
            profile: self.normalise(self.score(detections_by_file, profile), profile)
            for profile in self.profiles
        }

    def best_threshold(
        self, scores_by_file: Mapping[str, FloatArray], profile: str
    ) -> tuple[float, float]:
        """(threshold, raw score) maximising the raw score over every distinct anomaly score.

        This is NAB's in-sample threshold optimisation, done exhaustively instead of by
        upstream's hill climb, so it is an upper bound on what upstream's optimiser finds. NaN
        scores never detect; an infinite threshold (no detection at all) wins when nothing beats
        the null score.
        """
        cost = self.profiles[profile]
        parts: list[tuple[FloatArray, FloatArray, IntArray, FloatArray]] = []
        offset = 0
        for name, f in self.files.items():
            keep = f.window >= -1
            window = np.where(f.window[keep] >= 0, f.window[keep] + offset, -1)
            parts.append((scores_by_file[name][keep], f.fp_cost[keep], window, f.tp_reward[keep]))
            offset += len(f.windows)
        score = np.nan_to_num(np.concatenate([p[0] for p in parts]), nan=-np.inf)
        order = np.argsort(-score, kind="stable")
        score = score[order]
        fp = np.concatenate([p[1] for p in parts])[order]
        window = np.concatenate([p[2] for p in parts])[order]
        reward = np.concatenate([p[3] for p in parts])[order]
        # Going down the sorted scores, a window's reward only changes at a new best row.
        gain = np.zeros(score.size)
        best = np.zeros(offset)
        for row in np.flatnonzero(window >= 0):
            k = window[row]
            if best[k] == 0.0:
                gain[row] = cost.tp_weight * reward[row] + cost.fn_weight
                best[k] = reward[row]
            elif reward[row] > best[k]:
                gain[row] = cost.tp_weight * (reward[row] - best[k])
                best[k] = reward[row]
        null = self.null_score(profile)
        total = null + np.cumsum(gain + cost.fp_weight * fp)
        last_of_value = np.flatnonzero(np.append(score[1:] != score[:-1], True))
        last_of_value = last_of_value[np.isfinite(score[last_of_value])]
        if last_of_value.size == 0 or np.max(total[last_of_value]) <= null:
            return np.inf, null
        best_row = int(last_of_value[np.argmax(total[last_of_value])])
        return float(score[best_row]), float(total[best_row])


def load_corpus(root: Path) -> NabCorpus:
    """Read a NAB layout: data/<group>/<file>.csv, labels/combined_windows.json, profiles."""
    labels: dict[str, list[list[str]]] = json.loads(
        (root / "labels" / "combined_windows.json").read_text()
    )
    raw_profiles: dict[str, dict[str, dict[str, float]]] = json.loads(
        (root / "config" / "profiles.json").read_text()
    )
    profiles = {
        name: Profile(
            p["CostMatrix"]["tpWeight"], p["CostMatrix"]["fpWeight"], p["CostMatrix"]["fnWeight"]
        )
        for name, p in raw_profiles.items()
    }
    files = {}
    for name, limits in sorted(labels.items()):
        timestamps, values = _read_series(root / "data" / name)
        windows = sorted(
            (_row_of(name, timestamps, a), _row_of(name, timestamps, b)) for a, b in limits
        )
        files[name] = _prepare(name, timestamps, values, windows)
    return NabCorpus(files, profiles)
