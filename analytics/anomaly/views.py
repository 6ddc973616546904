"""Three views of one signal voting for an alarm: its level's shape, its changes' shape and a
shift of its mean, each a causal streaming detector.

The relative entropy of the level (`entropy`) sees a window whose histogram of values no past
window resembles, but not a series whose values stay in range while their rhythm changes: spikes
growing denser, noise growing louder. Those change the histogram of the sample-to-sample changes
|x[i] - x[i-1]| over a longer window, the second view. A drift or step of under a bin hides in
both histograms until it has moved a whole bin; the level-shift z-score
(`standard_score.level_shift`) of a slowly forgotten mean sees it, the third. `votes` counts the
views at or above their own level per sample, so one alarm on the votes (`alarms(votes, 1.0,
refractory=rest)`) raises the first of their alarms and the rest period keeps the others from
repeating it. More views catch more incidents at the price of more false alarms: NAB's standard
profile counts a hit worth about nine false alarms, and on its development folders the views
gained 3 hits for 20 more false alarms (see `bench.anomaly`).

NaN and gaps follow each view's conventions; a sample whose every view is NaN (warm-up, a NaN
sample) votes NaN. The tests compare the kernel with a plain Python reference
(`tests/references/views.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from numba import njit

from analytics.anomaly.entropy import RelativeEntropySettings, relative_entropy
from analytics.anomaly.settings import DetectorSettings
from analytics.anomaly.standard_score import level_shift

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ViewSettings:
    """The level view's and the change view's relative entropy, the level-shift detector, its
    smoothing and the |z| at which it votes. The defaults were chosen on NAB's development
    folders (see `bench.anomaly`); `learning` sets every view's warm-up at once."""

    level: RelativeEntropySettings = field(default_factory=RelativeEntropySettings)
    change: RelativeEntropySettings = field(
        default_factory=lambda: RelativeEntropySettings(window=156, bins=6, learning=750)
    )
    shift: DetectorSettings = field(default_factory=lambda: DetectorSettings(alpha=0.003))
    shift_smooth: float = 0.05
    shift_z: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 < self.shift_smooth <= 1.0 or self.shift_z <= 0.0:
            raise ValueError(
                f"shift_smooth must be in (0, 1] and shift_z > 0, not {self.shift_smooth}, "
                f"{self.shift_z}"
            )

    def with_max_gap(self, seconds: float) -> ViewSettings:
        """The same views, each starting afresh after `seconds` without a valid sample."""
        return replace(
            self,
            level=replace(self.level, max_gap=seconds),
            change=replace(self.change, max_gap=seconds),
            shift=replace(self.shift, max_gap=seconds),
        )

    @classmethod
    def learning(cls, samples: int) -> ViewSettings:
        """The default views, each warming up on `samples` valid samples (at least a window)."""
        base = cls()
        return cls(
            level=_with_learning(base.level, samples),
            change=_with_learning(base.change, samples),
            shift=DetectorSettings(alpha=base.shift.alpha, warmup=samples),
        )


def _with_learning(settings: RelativeEntropySettings, samples: int) -> RelativeEntropySettings:
    return RelativeEntropySettings(
        window=settings.window,
        bins=settings.bins,
        learning=max(samples, settings.window),
        margin=settings.margin,
        confidence=settings.confidence,
        max_gap=settings.max_gap,
        min_range=settings.min_range,
        max_hypotheses=settings.max_hypotheses,
    )


@njit(cache=True, nogil=True)
def changes(x: FloatArray) -> FloatArray:
    """|x[i] - the last finite sample before it|: 0 for the first finite sample, NaN for a NaN
    or infinite one (which the next finite sample skips)."""
    out = np.full(x.size, np.nan)
    last = math.nan
    for i in range(x.size):
        value = x[i]
        if not np.isfinite(value):
            continue
        out[i] = 0.0 if math.isnan(last) else abs(value - last)
        last = value
    return out


@njit(cache=True, nogil=True)
def _votes(
    level: FloatArray,
    change: FloatArray,
    shift: FloatArray,
    level_on: float,
    change_on: float,
    shift_z: float,
) -> FloatArray:
    out = np.full(level.size, np.nan)
    for i in range(level.size):
        if math.isnan(level[i]) and math.isnan(change[i]) and math.isnan(shift[i]):
            continue
        count = 0
        count += level[i] >= level_on
        count += change[i] >= change_on
        count += abs(shift[i]) >= shift_z
        out[i] = count
    return out


def votes(t: FloatArray, x: FloatArray, settings: ViewSettings = ViewSettings()) -> FloatArray:
    """How many of the three views (0 to 3) are at or above their level at each sample of one
    signal, against its past only; NaN where every view is (warm-up, NaN samples)."""
    if t.shape != x.shape or x.ndim != 1:
        raise ValueError(f"t {t.shape} and x {x.shape} must be one series of the same length")
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    level = relative_entropy(t, x, settings.level)
    change = relative_entropy(t, changes(x), settings.change)
    shift = level_shift(t, x, settings.shift, settings.shift_smooth)
    result: FloatArray = _votes(
        level,
        change,
        shift,
        settings.level.confidence,
        settings.change.confidence,
        settings.shift_z,
    )
    return result
