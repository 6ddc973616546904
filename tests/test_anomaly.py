"""Streaming detectors: kernels against their references, numerical stability, warm-up, NaN,
gaps, and detection delay on injected faults.

Each kernel is compared with a line-by-line Python transcript and with an independent
vectorised NumPy formulation. Both scores agree to 1e-9 (absolute and relative): the NumPy one
solves the recursions in closed form and sums in another order, which moves the last few
digits; alarm and event rows must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from analytics.anomaly import (
    DetectorSettings,
    Event,
    alarms,
    events,
    hotelling,
    level_shift,
    zscore,
)
from analytics.anomaly.thresholds import _SCAN, _alarms, _events
from tests.references.anomaly import (
    alarms_numpy,
    alarms_reference,
    events_numpy,
    events_reference,
    hotelling_numpy,
    hotelling_reference,
    level_shift_numpy,
    level_shift_reference,
    zscore_numpy,
    zscore_reference,
)

SETTINGS = DetectorSettings(alpha=0.02, warmup=20, max_gap=30.0, clip=3.0)


def messy_series(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Noise with a drift, spikes, a step, NaNs and two gaps longer than 30 s (1 s sampling)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    t[1000:] += 100.0
    t[2000:] += 31.0
    x = rng.standard_t(4, size=n) + np.linspace(0.0, 3.0, n)
    x[rng.integers(0, n, 20)] += 15.0
    x[2500:] += 5.0
    x[rng.integers(0, n, 50)] = np.nan
    return t, x


def long_series(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Like `messy_series`, longer and with only a few NaNs, so that most blocks of 512 samples
    run the z-score kernels' steady loop (past warm-up, without NaN or gap)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    t[12_000:] += 100.0
    x = rng.standard_t(4, size=n) + np.linspace(0.0, 3.0, n)
    x[rng.integers(0, n, 40)] += 15.0
    x[15_000:] += 5.0
    x[rng.integers(0, n, 6)] = np.nan
    return t, x


def assert_scores_agree(got: np.ndarray, want: np.ndarray) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_zscore_kernel_matches_references(seed: int) -> None:
    t, x = messy_series(seed)
    z = zscore(t, x, SETTINGS)
    assert_scores_agree(z, zscore_reference(t, x, SETTINGS))
    assert_scores_agree(z, zscore_numpy(t, x, SETTINGS))


@pytest.mark.parametrize(("seed", "smooth"), [(1, 0.05), (2, 0.3), (3, 0.01)])
def test_level_shift_kernel_matches_references(seed: int, smooth: float) -> None:
    t, x = messy_series(seed)
    z = level_shift(t, x, SETTINGS, smooth)
    assert_scores_agree(z, level_shift_reference(t, x, SETTINGS, smooth))
    assert_scores_agree(z, level_shift_numpy(t, x, SETTINGS, smooth))
    # smooth = 1 is the point z-score itself.
    np.testing.assert_array_equal(level_shift(t, x, SETTINGS, 1.0), zscore(t, x, SETTINGS))
    with pytest.raises(ValueError, match="smooth"):
        level_shift(t, x, SETTINGS, 0.0)


def test_zscore_of_many_series_in_parallel_matches_one_by_one() -> None:
    t, _ = messy_series(0)
    many = np.stack([messy_series(seed)[1] for seed in range(5)])
    together = zscore(t, many, SETTINGS)
    for row, x in zip(together, many, strict=True):
        np.testing.assert_array_equal(row, zscore(t, x, SETTINGS))
    shifts = level_shift(t, many, SETTINGS)
    for row, x in zip(shifts, many, strict=True):
        np.testing.assert_array_equal(row, level_shift(t, x, SETTINGS))


@pytest.mark.parametrize("smooth", [1.0, 0.05])
def test_steady_blocks_score_like_the_sample_by_sample_loop(smooth: float) -> None:
    t, x = long_series(13)
    z = level_shift(t, x, SETTINGS, smooth)  # smooth = 1 is the point z-score
    assert_scores_agree(z, level_shift_reference(t, x, SETTINGS, smooth))
    assert_scores_agree(z, level_shift_numpy(t, x, SETTINGS, smooth))
    # Without the NaNs, or from the restart after the gap on, the samples fall elsewhere in the
    # blocks: some run the steady loop in one run and sample by sample in the other. Same bits.
    clean = ~np.isnan(x)
    np.testing.assert_array_equal(z[clean], level_shift(t[clean], x[clean], SETTINGS, smooth))
    later = slice(12_000, None)
    np.testing.assert_array_equal(z[later], level_shift(t[later], x[later], SETTINGS, smooth))
    np.testing.assert_array_equal(level_shift(t, np.stack([x, x[::-1]]), SETTINGS, smooth)[0], z)


@pytest.mark.parametrize("seed", [1, 2])
def test_hotelling_kernel_matches_references(seed: int) -> None:
    t, a = messy_series(seed)
    rng = np.random.default_rng(seed)
    x = np.column_stack([a, 2.0 * a + rng.normal(size=a.size), rng.normal(size=a.size)])
    t2 = hotelling(t, x, SETTINGS)
    assert_scores_agree(t2, hotelling_reference(t, x, SETTINGS))
    assert_scores_agree(t2, hotelling_numpy(t, x, SETTINGS))
    machines = np.stack([x, x[:, ::-1]])
    together = hotelling(t, machines, SETTINGS)
    np.testing.assert_array_equal(together[0], t2)
    np.testing.assert_array_equal(together[1], hotelling(t, x[:, ::-1].copy(), SETTINGS))
    # Signals stored one series after the other are read in place, with the same result.
    signal_major = np.ascontiguousarray(machines.transpose(0, 2, 1))
    np.testing.assert_array_equal(hotelling(t, signal_major.transpose(0, 2, 1), SETTINGS), together)


@pytest.mark.parametrize("k", [1, 5, 8])
def test_hotelling_kernel_matches_the_reference_for_any_number_of_signals(k: int) -> None:
    """The kernel reads a row's signals four at a time, then one by one, and sums the mean and
    covariance in vectors of four signals padded with zeros: 8 fills whole vectors, 5 leaves
    one signal over, 1 is all padding. (Each k is compiled anew.)"""
    t, a = messy_series(k)
    rng = np.random.default_rng(k)
    x = a[:, np.newaxis] * rng.uniform(0.5, 2.0, k) + rng.normal(size=(a.size, k))
    assert_scores_agree(hotelling(t, x, SETTINGS), hotelling_reference(t, x, SETTINGS))


@pytest.mark.parametrize("n", [149, 150, 177, 178, 181])
def test_hotelling_blocks_break_at_nans_gaps_warm_up_and_the_end(n: int) -> None:
    """Blocks of 32 rows start at count 49 (alpha 0.02); warm-up ends at count 150, inside the
    block from 145. Rows are read four at a time where four follow without NaN or gap: NaN
    rows on either side of a group of four and inside one, a gap that restarts the statistics
    in the middle of a block, and series ending just before, at and after a block edge must
    give the reference's scores, and the same bits whatever the layout of x."""
    rng = np.random.default_rng(n)
    settings = DetectorSettings(alpha=0.02, warmup=150, max_gap=30.0)
    t = np.arange(n + 300, dtype=np.float64)
    t[n + 90 :] += 100.0  # a restart in the middle of a block
    load = rng.normal(size=t.size)
    x = np.column_stack([load, load + rng.normal(0.0, 0.3, t.size), rng.normal(size=t.size)])
    for row in (60, 63, 64, 66, 100, 101, 102, 103, 147, 150):
        x[row, row % 3] = np.nan
    x = x[: n + 200]
    t2 = hotelling(t[: x.shape[0]], x, settings)
    assert_scores_agree(t2, hotelling_reference(t[: x.shape[0]], x, settings))
    wide = np.zeros((x.shape[0], 6))
    wide[:, ::2] = x
    signal_major = np.ascontiguousarray(x.T).T
    for layout in (wide[:, ::2], signal_major):  # strided rows (read one by one), and columns
        np.testing.assert_array_equal(hotelling(t[: x.shape[0]], layout, settings), t2)


def test_hotelling_scores_a_block_against_the_rows_before_it() -> None:
    """The rows of a block share one snapshot of the estimate: an outlier on the first row of a
    block leaves the scores of the rest of its block untouched and moves those after it."""
    rng = np.random.default_rng(15)
    t = np.arange(400.0)
    x = rng.normal(size=(400, 3))
    settings = DetectorSettings(alpha=0.02, warmup=20)  # blocks start at counts 49 + 32 q
    changed = x.copy()
    changed[113, 0] += 10.0
    before, after = hotelling(t, x, settings), hotelling(t, changed, settings)
    assert after[113] > before[113] + 20.0
    np.testing.assert_array_equal(after[114:145], before[114:145])
    assert not np.allclose(after[145:177], before[145:177], rtol=1e-6, atol=0.0)


def test_hotelling_skips_a_row_with_a_nan_as_if_it_were_not_there() -> None:
    t, a = messy_series(3)
    rng = np.random.default_rng(3)
    x = np.column_stack([a, a + rng.normal(size=a.size), rng.normal(size=a.size)])
    x[rng.integers(0, a.size, 30), 2] = np.nan
    clean = ~np.isnan(x).any(axis=1)
    t2 = hotelling(t, x, SETTINGS)
    assert np.isnan(t2[~clean]).all()
    np.testing.assert_array_equal(t2[clean], hotelling(t[clean], x[clean], SETTINGS))


@pytest.mark.parametrize(("alpha", "warmup"), [(0.01, 30), (0.01, 2500), (0.5, 5), (0.6, 5)])
def test_hotelling_updates_stay_exact_through_outliers_and_constant_signals(
    alpha: float, warmup: int
) -> None:
    """An unclipped outlier in warm-up, signals 1e6 apart in scale, a constant signal that
    starts to move, and weights that are never equal (alpha 0.5 and 0.6: blocks of 32 from the
    second row on) must not cost the block sums their digits."""
    rng = np.random.default_rng(14)
    t = np.arange(3000.0)
    x = rng.normal(size=(3000, 2)) * [1e-3, 1e3]
    x[:500, 0] = 2.0  # constant, then moving
    x[2000] += 1e6  # an outlier, unclipped while warming up
    settings = DetectorSettings(alpha=alpha, warmup=warmup)
    assert_scores_agree(hotelling(t, x, settings), hotelling_reference(t, x, settings))


@pytest.mark.parametrize(
    ("on", "off", "quiet", "min_samples"),
    [(2.0, 2.0, 1, 1), (2.5, 1.5, 3, 1), (2.0, 1.0, 5, 4), (9.0, 9.0, 1, 1), (1.0, 2.0, 0, 1)],
)
def test_event_kernel_matches_references(
    on: float, off: float, quiet: int, min_samples: int
) -> None:
    score = np.abs(np.random.default_rng(4).normal(size=5000))
    score[::97] = np.nan
    starts, ends, peaks = _events(score, on, off, quiet, min_samples)
    kernel = list(zip(starts.tolist(), ends.tolist(), peaks.tolist(), strict=True))
    assert kernel == events_reference(score, on, off, quiet, min_samples)
    assert kernel == events_numpy(score, on, off, quiet, min_samples)


@pytest.mark.parametrize("size", [0, 1, _SCAN - 1, _SCAN, 2 * _SCAN + 1, 3 * _SCAN])
@pytest.mark.parametrize(
    ("on", "off", "quiet", "min_samples"),
    [(4.0, 3.0, 5, 1), (4.0, 3.0, 0, 1), (4.0, 3.0, 2, 3), (1.0, 2.0, 0, 1)],
)
def test_event_kernel_matches_references_at_the_edges_of_its_chunks(
    size: int, on: float, off: float, quiet: int, min_samples: int
) -> None:
    """Between events the kernel skips chunks of `_SCAN` rows with no score reaching `on`:
    events opening on the first or the last row of a chunk, right after one closes (or on the
    row that closed it, which must not reopen), NaN among the rows, and an event still open
    at the end must come out as the references find them."""
    score = np.zeros(size)
    score[3::7] = np.nan
    highs = {0: 5.0, 100: 5.0, 101: 1.5, 102: 5.0, _SCAN - 1: 5.0, _SCAN: 3.5, 2 * _SCAN: 5.0}
    highs |= {size - 2: 5.0, size - 1: 3.5}  # open at the end
    for row, value in highs.items():
        if 0 <= row < size:
            score[row] = value
    starts, ends, peaks = _events(score, on, off, quiet, min_samples)
    kernel = list(zip(starts.tolist(), ends.tolist(), peaks.tolist(), strict=True))
    assert kernel == events_reference(score, on, off, quiet, min_samples)
    assert kernel == events_numpy(score, on, off, quiet, min_samples)


def test_a_1e6_offset_scores_like_the_signal_without_it() -> None:
    t, x = messy_series(5)
    for offset in (1e6, -1e6):
        np.testing.assert_allclose(
            zscore(t, x + offset, SETTINGS), zscore(t, x, SETTINGS), atol=1e-7
        )
        np.testing.assert_allclose(
            level_shift(t, x + offset, SETTINGS), level_shift(t, x, SETTINGS), atol=1e-6
        )
    rng = np.random.default_rng(5)
    machine = np.column_stack([x, x + rng.normal(size=x.size)])
    np.testing.assert_allclose(
        hotelling(t, machine + 1e6, SETTINGS), hotelling(t, machine, SETTINGS), rtol=1e-6, atol=1e-6
    )
    # The NumPy formulations subtract the first sample before summing anything.
    np.testing.assert_allclose(
        zscore_numpy(t, x + 1e6, SETTINGS), zscore(t, x, SETTINGS), atol=1e-7
    )
    np.testing.assert_allclose(
        hotelling_numpy(t, machine + 1e6, SETTINGS), hotelling(t, machine, SETTINGS), atol=1e-6
    )


def test_warm_up_scores_nothing_then_uses_the_plain_mean_and_deviation() -> None:
    x = np.random.default_rng(6).normal(10.0, 2.0, size=100)
    t = np.arange(100.0)
    z = zscore(t, x, SETTINGS)
    assert np.isnan(z[:20]).all() and np.isfinite(z[20:]).all()
    # The 21st sample is scored against the equal-weight mean and deviation of the first 20.
    assert z[20] == pytest.approx((x[20] - x[:20].mean()) / x[:20].std(), rel=1e-12)
    t2 = hotelling(t, np.column_stack([x, x[::-1]]), SETTINGS)
    assert np.isnan(t2[:20]).all() and np.isfinite(t2[20:]).all()


def test_nan_samples_are_skipped_without_touching_the_statistics() -> None:
    t, x = messy_series(7)
    clean = ~np.isnan(x)
    z = zscore(t, x, SETTINGS)
    assert np.isnan(z[~clean]).all()
    np.testing.assert_array_equal(z[clean], zscore(t[clean], x[clean], SETTINGS))
    shift = level_shift(t, x, SETTINGS)
    assert np.isnan(shift[~clean]).all()
    np.testing.assert_array_equal(shift[clean], level_shift(t[clean], x[clean], SETTINGS))


def test_a_long_gap_restarts_the_statistics_and_the_warm_up() -> None:
    rng = np.random.default_rng(8)
    t = np.arange(400.0)
    t[200:] += 31.0  # just over max_gap = 30 s (a gap of 32 s between samples 199 and 200)
    x = np.concatenate([rng.normal(0.0, 1.0, 200), rng.normal(100.0, 5.0, 200)])
    z = zscore(t, x, SETTINGS)
    assert np.isnan(z[200:220]).all()
    np.testing.assert_array_equal(z[200:], zscore(t[200:], x[200:], SETTINGS))
    shift = level_shift(t, x, SETTINGS)
    assert np.isnan(shift[200:220]).all()
    np.testing.assert_array_equal(shift[200:], level_shift(t[200:], x[200:], SETTINGS))
    # A gap within the limit is just a slower clock: no reset, the level change is flagged.
    t[200:] -= 2.0
    assert zscore(t, x, SETTINGS)[200] > 20


def test_a_spike_is_flagged_at_once_and_a_step_within_three_samples() -> None:
    rng = np.random.default_rng(9)
    t = np.arange(2000.0)
    x = 50.0 + rng.normal(0.0, 1.0, 2000)
    x[800] += 8.0
    x[1500:] += 6.0
    z = np.asarray(np.abs(zscore(t, x, DetectorSettings())), dtype=np.float64)
    found = events(t, z, "press.temperature", on=5.0, off=3.0, quiet=5)
    assert [e.start_row for e in found][:2] == [800, found[1].start_row]
    assert found[0].end_row == 800 and found[0].peak_score > 5.0
    assert 1500 <= found[1].start_row <= 1503
    assert np.nanmax(z[100:800]) < 5.0


def test_level_shift_flags_a_one_sd_step_the_point_z_score_misses() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(3000.0)
    x = 20.0 + rng.normal(0.0, 1.0, 3000)
    x[2000:] += 1.5
    z = np.abs(zscore(t, x, DetectorSettings(alpha=0.002)))
    shift = np.abs(level_shift(t, x, DetectorSettings(alpha=0.002), smooth=0.05))
    assert np.nanmax(z[2000:2100]) < 4.5
    assert np.nanmax(shift[200:2000]) < 4.5
    assert np.nanmax(shift[2000:2100]) > 6.0


@pytest.mark.parametrize(
    ("on", "off", "refractory"),
    [(2.0, 2.0, 0), (2.5, 1.5, 0), (2.0, 1.0, 50), (9.0, 9.0, 10), (1.0, 2.0, 3)],
)
def test_alarm_kernel_matches_references(on: float, off: float, refractory: int) -> None:
    score = np.abs(np.random.default_rng(12).normal(size=5000))
    score[::97] = np.nan
    kernel = _alarms(score, on, off, refractory).tolist()
    assert kernel == alarms_reference(score, on, off, refractory)
    assert kernel == alarms_numpy(score, on, off, refractory).tolist()


def test_an_alarm_waits_for_the_score_to_fall_and_for_the_refractory_time() -> None:
    score = np.array([0, 5, 6, 3, 5, 1, 5, 0, 0, 0, 0, 5, np.nan, 5], dtype=np.float64)
    # Hysteresis alone: 6 and the 5 after a 3 (above off = 2) belong to the first alarm.
    assert alarms(score, on=4.0, off=2.0).tolist() == [1, 6, 11, 13]
    # Refractory 8: the 5s at rows 6 and 13 come too soon after the alarms at rows 1 and 11.
    assert alarms(score, on=4.0, off=2.0, refractory=8).tolist() == [1, 11]
    with pytest.raises(ValueError, match="refractory"):
        alarms(score, on=4.0, refractory=-1)


def test_hotelling_flags_a_broken_correlation_the_single_signals_miss() -> None:
    rng = np.random.default_rng(10)
    t = np.arange(3000.0)
    load = rng.normal(0.0, 1.0, 3000)
    current = load + rng.normal(0.0, 0.1, 3000)
    current[2000] = load[2000] - 1.5  # each value is ordinary, their pair is not
    machine = np.column_stack([load, current])
    assert np.abs(zscore(t, machine.T.copy(), DetectorSettings())[:, 2000]).max() < 4.0
    t2 = hotelling(t, machine, DetectorSettings())
    assert t2[2000] > 50.0
    assert np.nanquantile(t2[100:2000], 0.99) < 10.0
    with pytest.raises(ValueError, match="shrink"):
        hotelling(t, machine, DetectorSettings(), shrink=0.0)


def test_events_carry_label_times_and_peak() -> None:
    t = np.arange(1000.0, 1120.0, 10.0)
    score = np.array([0, 5, 3, 2.5, 6, 1, 0, 0, 0, 7, 0, 0], dtype=np.float64)
    # Hysteresis: 5 opens, 3 and 2.5 stay above off = 2; the 4 samples below it before the 7
    # are fewer than quiet = 5, so the 7 joins the same event.
    (merged,) = events(t, score, "m1", on=4.0, off=2.0, quiet=5)
    assert merged == Event("m1", 1010.0, 1090.0, 1090.0, 7.0, 1, 9)
    # With a shorter quiet time they are two events; min_samples drops the one-sample one.
    assert [e.start_row for e in events(t, score, "m1", on=4.0, off=2.0, quiet=2)] == [1, 9]
    assert [
        e.start_row for e in events(t, score, "m1", on=4.0, off=2.0, quiet=2, min_samples=2)
    ] == [1]
