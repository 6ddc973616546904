"""Causal, streaming anomaly detectors, and alarms or events from their scores.

- `standard_score`: a robust z-score per signal (`zscore`), and the same score of a short mean
  of the signal for level shifts (`level_shift`);
- `hotelling_t2`: Hotelling T² of a machine's signals together (`hotelling`), and `t2_level`
  (from `analytics.levels`) to threshold it like a z-score;
- `entropy`: the relative-entropy score of a signal's recent shape (`relative_entropy`), the
  detector the analytics service runs live;
- `views`: three views of one signal voting for an alarm (`votes`): the relative entropy of its
  level and of its changes, and a level shift; the detector of the NAB figure;
- `thresholds`: `alarms` and labelled `events` from any of these scores;
- `normal`: a model learnt on a period declared normal and then frozen (`learn_normal`), PCA
  T² and SPE combined, its level calibrated by `tail` for a false-alarm rate, its events
  (`normal_events`) opened by k-of-n evidence and carrying each signal's contribution;
- `settings`: `DetectorSettings` of the z-score and T², and the conventions they share.

Each detector is a Numba kernel; `_intrinsics` holds the LLVM code they generate themselves.
Numba's cache notices changes to a kernel's own file only: after changing `settings` or
`_intrinsics`, whose code the other modules' kernels compile in, clear this package's
`__pycache__`. The tests compare every kernel with plain references (`tests/references/`).
"""

from analytics.anomaly.entropy import RelativeEntropySettings, chi_square_cdf, relative_entropy
from analytics.anomaly.hotelling_t2 import hotelling
from analytics.anomaly.normal import (
    NormalEvent,
    NormalModel,
    NormalSettings,
    Scored,
    learn_normal,
    normal_events,
    score_normal,
    varying,
)
from analytics.anomaly.settings import DetectorSettings
from analytics.anomaly.standard_score import level_shift, zscore
from analytics.anomaly.thresholds import Event, alarms, events
from analytics.anomaly.views import ViewSettings, votes
from analytics.levels import t2_level

__all__ = [
    "DetectorSettings",
    "Event",
    "NormalEvent",
    "NormalModel",
    "NormalSettings",
    "RelativeEntropySettings",
    "Scored",
    "ViewSettings",
    "alarms",
    "chi_square_cdf",
    "events",
    "hotelling",
    "learn_normal",
    "level_shift",
    "normal_events",
    "relative_entropy",
    "score_normal",
    "t2_level",
    "varying",
    "votes",
    "zscore",
]
