"""Anomaly detection on NAB v1.1 and kernel throughput: `python -m bench.anomaly [NAB path]`.

The NAB figure that counts is the fixed one. Protocol: the design (the relative-entropy detector
of `analytics.anomaly.entropy`, learning on NAB's probation rows as every NAB detector does, one
alarm per rest period) and every parameter in FIXED below were chosen by scoring only the
development folders (artificialNoAnomaly, artificialWithAnomaly, realKnownCause), on a grid of
360 settings: quantisation range learned on probation then fixed, or expanding with the data
(worse: mean standard score 38 against 43); window 26 to 104; bins 5 to 16; range margin 0 to 3;
rest 0 to 0.1 of the file; confidence the published 0.99. Without margin the learned range
leaves a departure no room (mean 22), without rest one incident alarms many times (mean 30).
Averaged over their grid neighbours, settings were flat at 53-54 for margins 0.5-1.5, 8-12 bins,
windows 26-52 and rests 0.03-0.05, and fell from margin 2; FIXED is the middle of that plateau,
not its best point (60.7 at margin 1.5, next to the fall). Then it was written down and scored
once on the whole corpus and on the held-out folders, which were never scored before.

The three views of `analytics.anomaly.views` (the same relative entropy of the level, the relative
entropy of |x[i] - x[i-1]| and a level-shift z-score, one alarm per rest period on their votes)
followed the same protocol, after a CAD-style context detector and a sequence-novelty score were
tried on the development folders and dropped (49 and 54 there). Their grid of 360 settings on
the development folders: change window 78 to 234, bins 5 to 8, margin 0.5 to 1.5, level shift
left out or alpha 0.003 to 0.01 at |z| 4 to 6, rest 0.03 or 0.05. Averaged over the grid, the
change window 156, margin 1, the level shift at alpha 0.003 and |z| 4, and the rest 0.03 were
the best levels of their settings (57.2, 56.4, 57.7, 56.4 against 54.8 without the level shift);
VIEWS_REST and the defaults of `ViewSettings` are that point (61.1 there against 55.3 for the
relative entropy alone; the best point, 63.7, was an isolated one at window 234), frozen before
the whole corpus and the held-out folders were scored with it.
The tuned figures search a grid on the whole corpus itself, as the published
scoreboard does, so they are in-sample and only comparable to it, not to unseen data.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analytics.anomaly import RelativeEntropySettings, alarms, relative_entropy
from analytics.anomaly.views import ViewSettings, votes
from bench.nab import PROBATION_PERCENT, BoolArray, FloatArray, NabCorpus, load_corpus
from tests.references.entropy import relative_entropy_reference
from tests.references.views import votes_reference

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"
DEVELOPMENT = ("artificialNoAnomaly", "artificialWithAnomaly", "realKnownCause")
HELD_OUT = ("realAWSCloudwatch", "realAdExchange", "realTraffic", "realTweets")


@dataclass(frozen=True)
class Detector:
    """Histogram window and bins, range margin, alarm threshold on the score, and rest time
    after an alarm as a fraction of the file (NAB's windows and probation scale with it)."""

    window: int
    bins: int
    margin: float
    threshold: float
    rest: float


# Fixed on the development folders only (see the module docstring).
FIXED = Detector(window=39, bins=10, margin=1.0, threshold=0.99, rest=0.05)
VIEWS_REST = 0.03  # the three views' rest after an alarm, as a fraction of the file


def subset(corpus: NabCorpus, folders: tuple[str, ...]) -> NabCorpus:
    """The files of some NAB folders, normalised on their own null and perfect scores."""
    files = {k: f for k, f in corpus.files.items() if k.split("/")[0] in folders}
    return NabCorpus(files, corpus.profiles)


def probation_rows(values: FloatArray) -> int:
    """NAB's probation of a file: the rows every detector learns on."""
    return int(min(math.floor(PROBATION_PERCENT * values.size), PROBATION_PERCENT * 5000))


def anomaly_score(values: FloatArray, detector: Detector) -> FloatArray:
    """The relative-entropy score of one NAB file, learning on its probation rows."""
    probation = probation_rows(values)
    settings = RelativeEntropySettings(
        window=detector.window,
        bins=detector.bins,
        learning=max(probation, detector.window),
        margin=detector.margin,
    )
    return relative_entropy(np.arange(values.size, dtype=np.float64), values, settings)


def flagged(rows: npt.NDArray[np.int64], size: int) -> BoolArray:
    """A NAB detection at each row of `rows`."""
    flags = np.zeros(size, dtype=np.bool_)
    flags[rows] = True
    return flags


def view_detections(corpus: NabCorpus) -> dict[str, BoolArray]:
    """One NAB detection per alarm of the three views' votes, learning on probation rows."""
    out = {}
    for name, f in corpus.files.items():
        t = np.arange(f.values.size, dtype=np.float64)
        score = votes(t, f.values, ViewSettings.learning(probation_rows(f.values)))
        rows = alarms(score, 1.0, refractory=int(VIEWS_REST * f.values.size))
        out[name] = flagged(rows, f.values.size)
    return out


def detections(
    corpus: NabCorpus, detector: Detector, scores: dict[str, FloatArray] | None = None
) -> dict[str, BoolArray]:
    """One NAB detection per alarm; `scores` saves recomputing anomaly scores on a grid."""
    out = {}
    for name, f in corpus.files.items():
        score = anomaly_score(f.values, detector) if scores is None else scores[name]
        rows = alarms(score, detector.threshold, refractory=int(detector.rest * f.values.size))
        out[name] = flagged(rows, f.values.size)
    return out


def tuned(corpus: NabCorpus) -> dict[str, tuple[float, str]]:
    """Best normalised score per profile over a grid of window, bins, margin, threshold, rest."""
    best: dict[str, tuple[float, str]] = {p: (-np.inf, "") for p in corpus.profiles}
    for window, bins, margin in itertools.product((26, 39, 52), (8, 10, 12), (0.5, 1.0, 1.5)):
        shape = Detector(window, bins, margin, FIXED.threshold, FIXED.rest)
        scores = {name: anomaly_score(f.values, shape) for name, f in corpus.files.items()}
        for threshold, rest in itertools.product((0.99, 0.999, 0.9999), (0.03, 0.05, 0.08)):
            detector = Detector(window, bins, margin, threshold, rest)
            found = corpus.normalised_scores(detections(corpus, detector, scores))
            for profile, score in found.items():
                if score > best[profile][0]:
                    how = f"{window=} {bins=} {margin=} {threshold=} {rest=}"
                    best[profile] = (score, how)
    return best


def throughput(
    kernel: Callable[[FloatArray, FloatArray], FloatArray],
    reference: Callable[[FloatArray, FloatArray], FloatArray],
) -> tuple[float, float]:
    """Samples/s of a detector on 2M samples of noise with level shifts, and of its pure-Python
    reference on the first 20k of them (more would take minutes)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=2_000_000) + np.repeat(rng.normal(scale=0.5, size=200), 10_000)
    t = np.arange(x.size, dtype=np.float64)
    kernel(t[:1000], x[:1000])
    start = time.perf_counter()
    kernel(t, x)
    fast = x.size / (time.perf_counter() - start)
    start = time.perf_counter()
    reference(t[:20_000], x[:20_000])
    slow = 20_000 / (time.perf_counter() - start)
    return fast, slow


def describe(views: ViewSettings) -> str:
    """The settings of the views that were chosen, in one short line."""
    level, change = views.level, views.change
    return (
        f"level window {level.window} bins {level.bins} margin {level.margin}, changes window "
        f"{change.window} bins {change.bins} margin {change.margin}, level shift alpha "
        f"{views.shift.alpha} smooth {views.shift_smooth} |z| {views.shift_z}"
    )


def print_profiles(corpus: NabCorpus, detected: dict[str, BoolArray]) -> None:
    for profile, score in corpus.normalised_scores(detected).items():
        print(f"    {profile:20s} {score:6.1f}")


def main(nab: Path = NAB) -> None:
    corpus = load_corpus(nab)
    parts = {
        "whole corpus": corpus,
        "held-out folders": subset(corpus, HELD_OUT),
        "development folders": subset(corpus, DEVELOPMENT),
    }
    print(f"NAB fixed before scoring, chosen on {', '.join(DEVELOPMENT)} (goal: standard >= 65)")
    for label, part in parts.items():
        print(f"  {label} ({len(part.files)} files):")
        print(f"   three views ({describe(ViewSettings())}, rest {VIEWS_REST}):")
        print_profiles(part, view_detections(part))
        print(f"   relative entropy alone, before ({FIXED}):")
        print_profiles(part, detections(part, FIXED))
    print("NAB tuned on the whole corpus (in-sample, comparable only to the scoreboard):")
    for profile, (score, how) in tuned(corpus).items():
        print(f"  {profile:20s} {score:6.1f}  {how}")
    settings = RelativeEntropySettings()
    kernel, reference = throughput(
        lambda t, x: relative_entropy(t, x, settings),
        lambda t, x: relative_entropy_reference(t, x, settings),
    )
    print(f"relative-entropy kernel: {kernel / 1e6:.1f}M samples/s;")
    print(f"pure-Python reference {reference / 1e3:.1f}k/s ({kernel / reference:.0f}x slower)")
    views = ViewSettings()
    kernel, reference = throughput(
        lambda t, x: votes(t, x, views), lambda t, x: votes_reference(t, x, views)
    )
    print(f"three-view kernels: {kernel / 1e6:.1f}M samples/s;")
    print(f"pure-Python reference {reference / 1e3:.1f}k/s ({kernel / reference:.0f}x slower)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else NAB)
