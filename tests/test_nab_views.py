"""The three-view detector: kernels against their references, warm-up and NaN, what each view
adds, and its NAB score with every setting fixed on the development folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analytics.anomaly import RelativeEntropySettings, alarms, relative_entropy
from analytics.anomaly.views import ViewSettings, changes, votes
from bench.anomaly import DEVELOPMENT, HELD_OUT, subset, view_detections
from bench.nab import load_corpus
from tests.references.views import changes_reference, votes_reference
from tests.test_anomaly import messy_series

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"


@pytest.mark.parametrize(
    ("seed", "settings"),
    [
        (1, ViewSettings.learning(300)),
        (
            2,
            ViewSettings(
                level=RelativeEntropySettings(window=20, bins=8, learning=200, max_gap=30.0),
                change=RelativeEntropySettings(window=50, bins=5, learning=200, max_gap=30.0),
                shift_z=3.0,
            ),
        ),
    ],
)
def test_kernels_match_reference(seed: int, settings: ViewSettings) -> None:
    t, x = messy_series(seed)
    found, expected = votes(t, x, settings), votes_reference(t, x, settings)
    np.testing.assert_array_equal(found, expected)
    assert set(np.unique(found[np.isfinite(found)])) <= {0.0, 1.0, 2.0, 3.0}
    assert np.count_nonzero(found >= 1.0) > 0
    np.testing.assert_array_equal(changes(x), changes_reference(x))


def test_changes_skip_nan_and_start_at_zero() -> None:
    x = np.array([np.nan, 2.0, 5.0, np.nan, np.inf, 1.0])
    np.testing.assert_array_equal(changes(x), [np.nan, 0.0, 3.0, np.nan, np.nan, 4.0])


def test_warm_up_and_nan_samples_vote_nan() -> None:
    t, x = messy_series(3)
    x[:400] = np.random.default_rng(3).normal(size=400)
    found = votes(t, x, ViewSettings.learning(300))
    assert np.all(np.isnan(found[:300]))
    assert np.all(np.isnan(found[np.isnan(x)]))


def test_denser_spikes_in_range_escape_the_level_view_not_the_others() -> None:
    """Spikes of the same height every 50 samples, then every 5: the values' histogram over
    the level window barely moves, the changes' histogram over the longer window and the
    slowly forgotten mean do."""
    rng = np.random.default_rng(4)
    x = rng.normal(scale=0.1, size=6000)
    x[np.arange(0, 4000, 50)] += 3.0
    x[np.arange(4000, 6000, 5)] += 3.0
    t = np.arange(x.size, dtype=np.float64)
    settings = ViewSettings.learning(1500)
    level = relative_entropy(t, x, settings.level)
    change = relative_entropy(t, changes(x), settings.change)
    assert alarms(level, settings.level.confidence).size == 0
    assert list(alarms(change, settings.change.confidence, refractory=500)) == [4040]
    assert list(alarms(votes(t, x, settings), 1.0, refractory=500)) == [4005]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="shift_z"):
        ViewSettings(shift_z=0.0)
    with pytest.raises(ValueError, match="must be one series"):
        votes(np.arange(3.0), np.arange(4.0))


def test_fixed_views_reach_65_on_nab() -> None:
    """Every setting fixed on the development folders, then the corpus scored once."""
    if not NAB.is_dir():
        pytest.skip("the NAB corpus is not next to the repository")
    corpus = load_corpus(NAB)
    whole = corpus.normalised_scores(view_detections(corpus))
    held_out = subset(corpus, HELD_OUT)
    unseen = held_out.normalised_scores(view_detections(held_out))
    assert whole["standard"] == pytest.approx(66.8, abs=0.05)
    assert unseen["standard"] == pytest.approx(68.4, abs=0.05)
    assert whole["reward_low_FP_rate"] == pytest.approx(57.5, abs=0.05)
    assert whole["reward_low_FN_rate"] == pytest.approx(72.1, abs=0.05)
    assert set(DEVELOPMENT).isdisjoint(HELD_OUT)
