"""NAB v1.1 scoring: the real corpus's null and perfect detectors, and cases worked by hand."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bench.nab import NabCorpus, load_corpus

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"
PROFILES = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0},
}
T0 = datetime(2015, 3, 1)


def write_corpus(root: Path, rows: int, windows: list[tuple[int, int]]) -> NabCorpus:
    """One file `g/f.csv` of `rows` rows 5 minutes apart, windows given as row numbers."""
    stamps = [T0 + timedelta(minutes=5 * i) for i in range(rows)]
    (root / "data" / "g").mkdir(parents=True)
    lines = ["timestamp,value"] + [f"{t:%Y-%m-%d %H:%M:%S},{i % 7}" for i, t in enumerate(stamps)]
    (root / "data" / "g" / "f.csv").write_text("\n".join(lines) + "\n")
    labels = {
        "g/f.csv": [[f"{stamps[a]:%Y-%m-%d %H:%M:%S}.000000", f"{stamps[b]}"] for a, b in windows]
    }
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    (root / "config").mkdir()
    profiles = {name: {"CostMatrix": matrix} for name, matrix in PROFILES.items()}
    (root / "config" / "profiles.json").write_text(json.dumps(profiles))
    return load_corpus(root)


def flags(rows: int, *detections: int) -> np.ndarray:
    out = np.zeros(rows, dtype=np.bool_)
    out[list(detections)] = True
    return out


@pytest.fixture(scope="module")
def corpus() -> NabCorpus:
    if not NAB.is_dir():
        pytest.skip("the NAB corpus is not next to the repository")
    return load_corpus(NAB)


def test_corpus_is_the_published_one(corpus: NabCorpus) -> None:
    assert len(corpus.files) == 58
    assert corpus.window_count == 116
    assert set(corpus.profiles) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}


def test_null_detector_scores_zero_and_perfect_one_hundred(corpus: NabCorpus) -> None:
    null = {name: np.zeros(f.values.size, dtype=np.bool_) for name, f in corpus.files.items()}
    perfect = {
        name: flags(f.values.size, *(a for a, _ in f.windows)) for name, f in corpus.files.items()
    }
    for profile, score in corpus.normalised_scores(null).items():
        assert score == 0.0, profile
    for profile, score in corpus.normalised_scores(perfect).items():
        assert score == pytest.approx(100.0, abs=1e-9), profile
    assert corpus.null_score("standard") == -116.0
    assert corpus.null_score("reward_low_FN_rate") == -232.0


def test_probation_rows_are_ignored_on_the_corpus(corpus: NabCorpus) -> None:
    # Rows 0..min(15 %, 750) never count, whatever fires there.
    early = {name: flags(f.values.size, *range(10)) for name, f in corpus.files.items()}
    assert corpus.normalised_scores(early) == {p: 0.0 for p in corpus.profiles}


def test_one_window_worked_by_hand(tmp_path: Path) -> None:
    # 20 rows: probation floor(0.15 * 20) = 3 rows, one window on rows 10..14 (width 5).
    # Detections: 1 (probation, ignored), 5 (before any window: -fp), 12 and 13 (only the
    # earlier counts: S(-3/5) / S(-1)), 17 (after the window: fp * S(3/4)).
    # S(x) = 2 / (1 + e^(5x)) - 1 = -tanh(2.5 x).
    corpus = write_corpus(tmp_path, 20, [(10, 14)])
    detections = {"g/f.csv": flags(20, 1, 5, 12, 13, 17)}
    tp = math.tanh(1.5) / math.tanh(2.5)
    assert corpus.score(detections, "standard") == pytest.approx(
        tp - 0.11 - 0.11 * math.tanh(1.875), abs=1e-9
    )
    # The same detections under low FN: a hit is still worth tpWeight; a miss costs 2.
    assert corpus.score(detections, "reward_low_FN_rate") == pytest.approx(
        tp - 0.11 - 0.11 * math.tanh(1.875), abs=1e-9
    )
    assert corpus.score({"g/f.csv": flags(20, 1, 2)}, "reward_low_FN_rate") == -2.0
    # A detection on the left edge earns exactly tpWeight; on the right edge S(-1/5) / S(-1).
    assert corpus.score({"g/f.csv": flags(20, 10)}, "standard") == pytest.approx(1.0, abs=1e-12)
    assert corpus.score({"g/f.csv": flags(20, 14)}, "standard") == pytest.approx(
        math.tanh(0.5) / math.tanh(2.5), abs=1e-12
    )
    assert (
        corpus.normalise(corpus.score({"g/f.csv": flags(20, 10)}, "standard"), "standard") == 100.0
    )


def test_far_false_positive_costs_full_weight(tmp_path: Path) -> None:
    # 100 rows, window 20..24: a detection 13 rows after it sits at 13 / 4 > 3 widths: -fp.
    corpus = write_corpus(tmp_path, 100, [(20, 24)])
    assert corpus.score({"g/f.csv": flags(100, 37)}, "standard") == pytest.approx(
        -1.0 - 0.11, abs=1e-12
    )
    assert corpus.score({"g/f.csv": flags(100, 25)}, "standard") == pytest.approx(
        -1.0 - 0.11 * math.tanh(0.625), abs=1e-12
    )


def test_window_inside_probation_is_not_counted(tmp_path: Path) -> None:
    # 40 rows: probation is 6 rows, so the window 1..3 neither earns nor costs anything.
    corpus = write_corpus(tmp_path, 40, [(1, 3), (20, 24)])
    assert corpus.null_score("standard") == -1.0
    assert corpus.score({"g/f.csv": flags(40, 1, 20)}, "standard") == pytest.approx(1.0, abs=1e-12)
    assert corpus.normalise(1.0, "standard") == pytest.approx(200.0 / 3.0)


def test_detections_must_cover_every_file(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, 20, [(10, 14)])
    with pytest.raises(ValueError, match="no detections"):
        corpus.score({}, "standard")
    with pytest.raises(ValueError, match="rows"):
        corpus.score({"g/f.csv": flags(19)}, "standard")


def test_best_threshold_agrees_with_scoring_at_that_threshold(corpus: NabCorpus) -> None:
    rng = np.random.default_rng(7)
    scores = {name: rng.random(f.values.size) for name, f in corpus.files.items()}
    for profile in corpus.profiles:
        threshold, raw = corpus.best_threshold(scores, profile)
        detections = {name: s >= threshold for name, s in scores.items()}
        assert corpus.score(detections, profile) == pytest.approx(raw, abs=1e-9)
        # No other threshold does better: check a few neighbours in the sorted scores.
        for other in (threshold * 0.999, min(1.0, threshold * 1.0005), 0.5):
            assert corpus.score({n: s >= other for n, s in scores.items()}, profile) <= raw + 1e-9


def test_best_threshold_prefers_silence_to_a_losing_detector(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, 20, [(10, 14)])
    scores = np.full(20, np.nan)  # NaN never detects
    scores[[5, 6, 7]] = 1.0  # only false positives
    assert corpus.best_threshold({"g/f.csv": scores}, "standard") == (np.inf, -1.0)
