"""The model learnt on a normal period (`analytics.anomaly.normal`): what it flags, what it
does not, its contributions, its calibration and its JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from analytics.anomaly import (
    NormalModel,
    NormalSettings,
    Scored,
    learn_normal,
    normal_events,
    score_normal,
)
from analytics.anomaly.tail import fit_tail, shape_floor
from tests.references.normal import normal_numpy, normal_reference

SIGNALS = ("load", "power", "temperature")


def plant(rows: int, seed: int = 0) -> np.ndarray:
    """Power following spindle load, and a temperature of its own: rows x 3."""
    rng = np.random.default_rng(seed)
    load = 50.0 + 10.0 * rng.standard_normal(rows)
    power = 2.0 * load + rng.normal(0.0, 2.0, rows)
    temperature = rng.normal(60.0, 1.5, rows)
    return np.column_stack([load, power, temperature])


@pytest.fixture(scope="module")
def model() -> NormalModel:
    return learn_normal(plant(20_000), SIGNALS, period=(0.0, 19_999.0))


def test_a_correlation_break_is_an_event_blamed_on_its_signals(model: NormalModel) -> None:
    values = plant(6_000, seed=1)
    values[3_000:3_300, 1] -= 25.0  # power no longer follows load: each alone looks normal
    t = 1.7e9 + np.arange(6_000.0)
    found = normal_events(model, score_normal(model, values), t)
    assert len(found) == 1
    event = found[0]
    assert 3_000 <= event.start_row <= 3_000 + model.settings.evidence_rows
    assert 3_299 <= event.end_row <= 3_300 + model.settings.evidence_rows
    assert event.start == t[event.start_row]
    assert set(list(event.contributions)[:2]) == {"power", "load"}
    assert event.contributions["temperature"] < 0.1
    assert sum(event.contributions.values()) == pytest.approx(1.0)
    assert event.peak_score > 1.0


def test_a_shift_of_one_signal_is_blamed_on_it(model: NormalModel) -> None:
    values = plant(2_000, seed=2)
    values[1_000:1_200, 2] += 12.0
    found = normal_events(model, score_normal(model, values), np.arange(2_000.0))
    assert len(found) == 1
    assert next(iter(found[0].contributions)) == "temperature"
    assert found[0].contributions["temperature"] > 0.8


def test_normal_data_raises_no_event_and_shares_sum_to_one(model: NormalModel) -> None:
    values = plant(50_000, seed=3)
    values[100] = np.nan  # stopped
    values[200, 0] = np.nan  # a load not reported: held, its still run one row longer
    scored = score_normal(model, values)
    assert normal_events(model, scored, np.arange(50_000.0)) == []
    assert np.isnan(scored.instant[100]) and np.isnan(scored.contributions[100]).all()
    assert scored.instant[200] == pytest.approx(1 / model.stuck_rows[0])
    assert scored.contributions[200].tolist() == [1.0, 0.0, 0.0]
    sums = np.delete(scored.contributions, 100, axis=0).sum(axis=1)
    np.testing.assert_allclose(sums, 1.0)


@pytest.mark.parametrize("reported", [True, False])
def test_a_stuck_signal_is_an_event_blamed_on_it_alone(model: NormalModel, reported: bool) -> None:
    values = plant(4_000, seed=5)
    values[2_000:2_600, 2] = model.centre[2] if reported else np.nan  # typical, but still
    found = normal_events(model, score_normal(model, values), np.arange(4_000.0))
    assert len(found) == 1
    assert found[0].contributions["temperature"] > 0.99  # the rest: the rows where it ends
    level = model.stuck_rows[2]
    assert model.settings.stuck_min_s <= level < 600
    assert 2_000 + level <= found[0].start_row <= 2_000 + level + model.settings.evidence_rows


def test_a_slow_drift_is_seen_by_the_average_before_the_rows(model: NormalModel) -> None:
    values = plant(8_000, seed=6)
    values[2_000:, 2] += np.arange(6_000.0) / 1_800 * 1.5  # one spread in 30 minutes
    found = normal_events(model, score_normal(model, values), np.arange(8_000.0))
    raw = replace(model, root=model.root[:2], tolerance=np.empty(0), stuck_rows=np.empty(0))
    late = normal_events(raw, score_normal(raw, values), np.arange(8_000.0))
    assert found[0].start_row - 2_000 < 0.6 * (late[0].start_row - 2_000)
    assert next(iter(found[0].contributions)) == "temperature"


def test_the_average_is_held_through_stops(model: NormalModel) -> None:
    """A machine stopping a row in every 20 (all signals missing) drifting as in the test
    above: the average's indices on its running rows are those with the stops left out, as a
    period is learnt (its running rows joined end to end)."""
    values = plant(8_000, seed=6)
    values[2_000:, 2] += np.arange(6_000.0) / 1_800 * 1.5
    root = model.root.copy()
    root[:2] = 0.0  # the average's indices alone (the rows' would restart it)
    smoothed = replace(model, root=root, stuck_rows=np.full(len(SIGNALS), np.inf))
    stopping = values.copy()
    stopping[::20] = np.nan
    running = ~np.isnan(stopping).any(axis=1)
    held = score_normal(smoothed, stopping).instant[running]
    joined = score_normal(smoothed, stopping[running]).instant
    np.testing.assert_allclose(held, joined, rtol=1e-12)
    assert 2_000 * 19 / 20 < np.argmax(held >= 1.0) < 3_000


def test_a_format_1_model_is_read_and_scored_as_it_was_learnt(model: NormalModel) -> None:
    stored = json.loads(model.to_json())
    for name in ("drift_levels", "tolerance", "stuck_rows"):
        del stored[name]
    for name in ("smoothing_s", "stuck_fraction", "stuck_min_s"):
        del stored["settings"][name]
    stored.update(format=1, root=stored["root"][:2])
    old = NormalModel.from_json(json.dumps(stored))
    values = plant(1_000, seed=4)
    values[10, 0] = np.nan
    scored = score_normal(old, values)
    assert np.isnan(scored.instant[10])
    np.testing.assert_allclose(scored.instant, normal_numpy(old, values)[1], rtol=1e-12)


def test_the_level_follows_the_false_alarm_rate() -> None:
    values = plant(20_000)
    lax = learn_normal(values, SIGNALS, NormalSettings(false_alarms_per_week=100.0))
    strict = learn_normal(values, SIGNALS, NormalSettings(false_alarms_per_week=0.1))
    assert lax.levels[0] < strict.levels[0] and lax.levels[1] < strict.levels[1]


def test_json_round_trip_scores_the_same(model: NormalModel) -> None:
    again = NormalModel.from_json(model.to_json())
    values = plant(1_000, seed=4)
    assert again.signals == SIGNALS and again.period == (0.0, 19_999.0)
    np.testing.assert_array_equal(
        score_normal(again, values).score, score_normal(model, values).score
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "normal model: model: Invalid JSON"),
        ('{"format": 2}', "normal model: signals: Field required"),
    ],
)
def test_bad_json_is_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NormalModel.from_json(text)


def test_too_short_or_constant_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="has 50 rows with every signal, 100 are needed"):
        learn_normal(plant(50), SIGNALS)
    values = plant(500)
    values[:, 2] = 7.0
    with pytest.raises(ValueError, match="temperature: constant over the normal period"):
        learn_normal(values, SIGNALS)


@pytest.mark.parametrize(("k", "needed", "rows"), [(1, 1, 1), (3, 3, 5), (8, 2, 7)])
@pytest.mark.parametrize("n", [1, 255, 257, 4_096, 9_000])
def test_scoring_kernel_matches_references(k: int, needed: int, rows: int, n: int) -> None:
    rng = np.random.default_rng(k * n)
    values = rng.standard_normal((max(n, 500), k)) @ rng.standard_normal((k, k))
    settings = NormalSettings(evidence_needed=needed, evidence_rows=rows, min_rows=100)
    model = learn_normal(values, [f"s{j}" for j in range(k)], settings)
    scored_values = 3.0 * rng.standard_normal((n, k))
    scored_values[rng.integers(0, n, n // 50)] = np.nan
    scored_values[rng.integers(0, n, n // 50), k - 1] = np.nan
    scored_values[n // 3 : n // 2, 0] = 1.0  # still for longer than any run of the normal rows
    scored = score_normal(model, scored_values)
    for reference in (normal_reference, normal_numpy):
        score, instant, shares = reference(model, scored_values)
        np.testing.assert_allclose(scored.instant, instant, rtol=1e-12)
        np.testing.assert_allclose(scored.score, score, rtol=1e-12)
        np.testing.assert_allclose(scored.contributions, shares, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("segment", [1, 6, 4_095])
def test_scoring_a_segment_at_a_time_gives_the_scores_of_one_pass(
    model: NormalModel, segment: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = plant(9_000, seed=5)
    values[2_000:2_600, 1] += 30.0  # a correlation break across segments
    values[4_090:4_100] = np.nan  # a stop at a boundary of 4,095-row segments
    values[6_000:6_900, 2] = 60.0  # a stuck signal
    whole = score_normal(model, values)
    monkeypatch.setattr("analytics.anomaly.normal._SEGMENT", segment)
    pieces = score_normal(model, values)
    for name in ("score", "instant", "contributions"):
        np.testing.assert_array_equal(getattr(pieces, name), getattr(whole, name))
    assert np.nanmax(whole.score) > 1.0


@pytest.mark.parametrize(("shape", "rate"), [(0.0, 1e-6), (0.3, 1e-6), (0.0, 1e-4)])
def test_the_tail_fit_finds_the_level_of_a_known_distribution(shape: float, rate: float) -> None:
    rng = np.random.default_rng(7)
    uniform = rng.random(400_000)
    if shape:  # generalised Pareto with that shape and scale 1
        scores = (uniform**-shape - 1.0) / shape
        truth = (rate**-shape - 1.0) / shape
    else:
        scores, truth = -np.log(uniform), -np.log(rate)
    fit = fit_tail(scores, seconds=scores.size, separation=1)
    assert fit.level(rate) == pytest.approx(truth, rel=0.15)


@pytest.mark.parametrize(("noise", "floor"), [("gaussian", 0.0), ("student-t 10", 2 / 10 / 3)])
def test_the_shape_floor_follows_the_heaviest_tailed_signal(noise: str, floor: float) -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((400_000, 3))
    if noise != "gaussian":  # kurtosis 3 + 6 / (10 - 4) = 4: squares of shape 2 / 10
        z[:, 1] = rng.standard_t(10, len(z))
    assert shape_floor(z, needed=3) == pytest.approx(floor, abs=0.004, rel=0.1)


def test_the_tail_fit_keeps_its_shape_at_least_the_floor() -> None:
    scores = -np.log(np.random.default_rng(7).random(100_000))  # shape 0, scale 1
    free = fit_tail(scores, seconds=scores.size, separation=1)
    floored = fit_tail(scores, seconds=scores.size, separation=1, min_shape=0.15)
    assert free.shape == pytest.approx(0.0, abs=0.02)
    assert floored.shape == 0.15
    assert floored.level(1e-6) > 1.5 * free.level(1e-6)


@pytest.mark.parametrize(("heavy", "most"), [(False, 1.05), (True, 2.0)])
def test_the_floor_raises_the_levels_of_a_heavy_tailed_period_alone(
    monkeypatch: pytest.MonkeyPatch, heavy: bool, most: float
) -> None:
    """An hour at 1 Hz of 6 signals mixing 3 sources, Student-t (4 degrees of freedom) or
    Gaussian, plus sensor noise: the fitted shapes of the heavy-tailed period are below its
    floor, the Gaussian's about 0."""
    rng = np.random.default_rng(5)
    mixing = rng.standard_normal((3, 6))
    sources = rng.standard_t(4, (3_600, 3)) if heavy else rng.standard_normal((3_600, 3))
    values = sources @ mixing + 0.3 * rng.standard_normal((3_600, 6))
    names = tuple("abcdef")
    floored = learn_normal(values, names).levels
    monkeypatch.setattr("analytics.anomaly.normal.shape_floor", lambda z, needed: 0.0)
    ratios = np.divide(floored, learn_normal(values, names).levels)
    assert ratios.min() >= 1.0  # a floor: never below the fit
    assert ratios.max() <= most
    assert ratios.max() > 1.5 or not heavy


@pytest.mark.parametrize(("gap", "count"), [(299, 1), (300, 2)])
def test_events_closer_than_merge_s_are_one(model: NormalModel, gap: int, count: int) -> None:
    score = np.zeros(1_000)
    score[[100, 101 + gap]] = 2.0  # the second high row `gap` rows after the first
    scored = Scored(score, score, np.full((1_000, 3), 1 / 3))
    found = normal_events(model, scored, np.arange(1_000.0))  # merge_s 300 at 1 s a row
    assert len(found) == count
    assert (found[0].start_row, found[-1].end_row) == (100, 101 + gap)
    assert found[0].contributions == pytest.approx(dict.fromkeys(SIGNALS, 1 / 3))
