"""The relative-entropy detector: kernel against its reference, offset invariance, warm-up, NaN,
gaps, the hypothesis cap, and its fixed-threshold NAB score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analytics.anomaly import RelativeEntropySettings, chi_square_cdf, relative_entropy
from bench.anomaly import DEVELOPMENT, FIXED, HELD_OUT, detections, subset
from bench.nab import load_corpus
from tests.references.entropy import relative_entropy_reference
from tests.test_anomaly import messy_series

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"
SETTINGS = RelativeEntropySettings(window=20, bins=8, learning=200, max_gap=30.0)


@pytest.mark.parametrize(
    ("seed", "settings"),
    [
        (1, SETTINGS),
        (2, RelativeEntropySettings(window=39, bins=10, learning=300, margin=0.5)),
        (3, RelativeEntropySettings(window=10, bins=5, learning=50, max_gap=30.0, margin=0.0)),
        (4, RelativeEntropySettings(window=10, bins=12, learning=50, max_hypotheses=3)),
        # 101^10 histograms overflow the memo's key: every window is tested
        (5, RelativeEntropySettings(window=100, bins=10, learning=400, margin=0.5)),
    ],
)
def test_kernel_matches_reference(seed: int, settings: RelativeEntropySettings) -> None:
    t, x = messy_series(seed)
    score, ref = relative_entropy(t, x, settings), relative_entropy_reference(t, x, settings)
    assert np.array_equal(np.isnan(score), np.isnan(ref))
    np.testing.assert_allclose(score, ref, rtol=0.0, atol=1e-12)
    assert np.nanmin(score) >= 0.0
    assert np.nanmax(score) <= 1.0
    assert np.count_nonzero(score >= settings.confidence) > 0


def test_a_1e6_offset_changes_nothing() -> None:
    t, x = messy_series(5)
    np.testing.assert_array_equal(
        relative_entropy(t, x + 1e6, SETTINGS), relative_entropy(t, x, SETTINGS)
    )


def test_warm_up_counts_valid_samples_and_restarts_after_a_gap() -> None:
    t, x = messy_series(6)
    x[:1000] = np.random.default_rng(6).normal(size=1000)
    x[50:60] = np.nan
    score = relative_entropy(t, x, SETTINGS)
    # 200 valid samples learn: with 10 NaNs among them the first score is on row 210.
    assert np.all(np.isnan(score[:210]))
    assert np.all(np.isfinite(score[210:1000]))
    # The 100 s gap before row 1000 restarts learning; the 31 s one before row 2000 too.
    assert np.all(np.isnan(score[1000:1200]))
    assert np.all(np.isnan(score[2000:2200]))
    assert np.isfinite(score[2300:]).sum() > 600


def test_a_level_shift_alarms_once_then_is_learned() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=4000)
    x[3000:] += 3.0
    t = np.arange(x.size, dtype=np.float64)
    high = np.flatnonzero(relative_entropy(t, x, SETTINGS) >= SETTINGS.confidence)
    assert np.any((high >= 3000) & (high < 3000 + SETTINGS.window))
    assert np.count_nonzero(high < 3000) <= 10  # stationary noise: a few novel windows at most
    assert np.count_nonzero(high > 3000 + 4 * SETTINGS.window) <= 10


def test_a_flat_signal_that_moves_is_novel() -> None:
    x = np.full(500, 20.0)
    x[400] = 20.001
    score = relative_entropy(np.arange(500.0), x, SETTINGS)
    assert np.all(score[200:400] < SETTINGS.confidence)
    assert score[400] == 1.0


def test_chi_square_cdf_matches_published_quantiles() -> None:
    assert chi_square_cdf(13.276704135987622, 4) == pytest.approx(0.99, abs=1e-12)
    assert chi_square_cdf(21.665994333461924, 9) == pytest.approx(0.99, abs=1e-12)
    assert chi_square_cdf(3.841458820694124, 1) == pytest.approx(0.95, abs=1e-12)
    assert chi_square_cdf(7.814727903251178, 3) == pytest.approx(0.95, abs=1e-12)
    assert chi_square_cdf(23.209251158954356, 10) == pytest.approx(0.99, abs=1e-12)
    assert chi_square_cdf(135.80672317102676, 100) == pytest.approx(0.99, abs=1e-12)
    for stat in (0.1, 1.0, 5.0, 50.0):
        assert chi_square_cdf(stat, 2) == pytest.approx(1.0 - math.exp(-stat / 2), abs=1e-12)
    assert chi_square_cdf(0.0, 3) == 0.0
    assert chi_square_cdf(math.inf, 3) == 1.0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="learning"):
        RelativeEntropySettings(window=50, learning=20)
    with pytest.raises(ValueError, match="confidence"):
        RelativeEntropySettings(confidence=1.0)
    with pytest.raises(ValueError, match="bins"):
        RelativeEntropySettings(bins=1001)  # the chi-square CDF's closed form holds to 1e-13


def test_fixed_threshold_beats_windowed_gaussian_on_nab() -> None:
    """The bench's FIXED detector, chosen on the development folders only, on NAB v1.1."""
    if not NAB.is_dir():
        pytest.skip("the NAB corpus is not next to the repository")
    corpus = load_corpus(NAB)
    whole = corpus.normalised_scores(detections(corpus, FIXED))
    held_out = subset(corpus, HELD_OUT)
    unseen = held_out.normalised_scores(detections(held_out, FIXED))
    assert whole["standard"] > 55.0  # windowed Gaussian 39.6, relative entropy (tuned) 54.6
    assert unseen["standard"] > 55.0
    assert set(DEVELOPMENT).isdisjoint(HELD_OUT)
