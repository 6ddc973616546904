"""The reference for `analytics.anomaly.views`: the three views from their plain Python
references and the vote as a Python loop, which the tests compare the kernel with and the NAB
bench measures it against.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from analytics.anomaly.views import ViewSettings
from tests.references.anomaly import level_shift_reference
from tests.references.entropy import relative_entropy_reference

FloatArray = npt.NDArray[np.float64]


def changes_reference(x: FloatArray) -> FloatArray:
    """|x[i] - the last finite sample before it| as a Python loop."""
    out = np.full(x.size, np.nan)
    last: float | None = None
    for i, value in enumerate(x.tolist()):
        if math.isfinite(value):
            out[i] = 0.0 if last is None else abs(value - last)
            last = value
    return out


def votes_reference(t: FloatArray, x: FloatArray, settings: ViewSettings) -> FloatArray:
    """The views' votes, every view and the vote computed by plain Python loops."""
    level = relative_entropy_reference(t, x, settings.level)
    change = relative_entropy_reference(t, changes_reference(x), settings.change)
    shift = level_shift_reference(t, x, settings.shift, settings.shift_smooth)
    out = np.full(x.size, np.nan)
    for i in range(x.size):
        views = (level[i], change[i], shift[i])
        if all(math.isnan(v) for v in views):
            continue
        out[i] = sum(
            (
                level[i] >= settings.level.confidence,
                change[i] >= settings.change.confidence,
                abs(shift[i]) >= settings.shift_z,
            )
        )
    return out
