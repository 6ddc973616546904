"""A machine's normal behaviour, learnt on a period declared normal and then frozen
(`learn_normal`), and the rows and events that leave it (`score_normal`, `normal_events`).

The streaming detectors learn from whatever comes first, faults included; this model learns
only from a period staff vouch for, and stays as learnt until it is learnt again.

Model. Each signal is centred on its median and scaled by its MAD (robust to the odd spike
in the normal period), then split by principal components (PCA) of the normal rows: the first
components, explaining `explained_variance` of the variance, span how the signals move
together; the rest is what the normal period never does. Two indices watch a row z:

- T² in the principal subspace, z' P L^-1 P' z: a known pattern pushed further than usual;
- SPE (Q) in the residual, |(I - P P') z|²: the correlations breaking, e.g. power no longer
  following spindle load, which neither signal shows alone.

Each is z' M z with M^1/2 = P L^-1/2 P' for T² and I - P P' for SPE: with y = M^1/2 z the
index is |y|², and y_j² is signal j's contribution, never negative and summing to the index
(Alcalá and Qin 2009). Folding the centre, the scale and the index's level into its M^1/2
(`_Frozen`), scoring a row is two k x k products.

Levels. Each index gets its own alarm level, fitted on the normal period's own scores
(`analytics.anomaly.tail`) for half the stated false-alarm rate, and a row's score is the
larger of the two ratios to their levels, its contributions those of that index. No
chi-square assumption, which underestimates the heavy tail of real process signals by a
factor of several; and apart, so that the heavy tail of a slow process's T² does not raise the
level at which a broken correlation shows in SPE, whose residual is mostly sensor noise (a
single index of both, phi = T²/tau² + SPE/delta² as Yue and Qin 2001, would share one level).
The tail's shape of the row-by-row indices is floored by the signals' kurtosis
(`analytics.anomaly.tail.shape_floor`): fitted near the 95th percentile, the tail of
heavy-tailed signals looks lighter than it is a week out. Not that of the smoothed rows: an
average of many rows is nearer a Gaussian.

Evidence. An event opens when `evidence_needed` of the last `evidence_rows` rows are above the
level (k of n), and the level is calibrated on that same k-of-n statistic. The trade-off: an
isolated spike, a sensor glitch as often as a fault, raises no alarm, and a sustained moderate
departure does (the k-th largest of n rows is lower than their maximum, so the level is lower
than a single row's); it costs up to n - 1 rows of delay, seconds at the platform's rates.
An event closes once the evidence has stayed below the level for `merge_s`: a fault whose
score hovers about the level is one event to act on, not dozens.

Drift. A slow drift crosses the row-by-row levels late: they sit above the noise of a single
row, several of the signal's spreads out. Both indices are also taken of the signals smoothed
by an exponentially weighted moving average (a multivariate EWMA, Lowry et al. 1992) with a
time constant of `smoothing_s`, each with a level of its own fitted the same way on the normal
period's smoothed rows. Averaging shrinks the noise independent from row to row (by sqrt(2 tau
/ period) in spread) but not a persistent offset, so a drift shows once it is a fraction of a
spread; the trade-off is a lag of about `smoothing_s` behind a sudden change, which the raw
indices see at once, and no gain on a signal whose noise is itself slow (its level on the
smoothed rows is then as high as on the raw). Splitting the false-alarm rate over four indices
instead of two raises each level a little (the log of 2 in the tail's scale). The average is
held through a row with a missing signal, e.g. through each stop: a period is learnt on the
machine's running rows joined end to end, so its smoothed levels are those of an average
carried across stops, and one started again at each stop would never build up on a machine that
stops every minute or two (a sealer waiting for its filler: an overheating was seen there only
by the row-by-row indices). It starts again at the centre after a row where the row-by-row
indices alone have the evidence (k of the last n rows above their levels): a departure those
already see would otherwise linger in the average for several `smoothing_s` after it ends, and
keep its event open that long; a single row above them, as often noise as the start of a
fault, leaves the average alone. The smoothed levels are fitted without these restarts, so a
little on the safe side.

Stuck signals. A sensor that freezes keeps its value within the normal range, which no index
sees. Each signal's stillness is counted: the rows in a row over which it changed by at most
`stuck_fraction` of its median change between rows on the normal period (exactly nothing for a
signal read in steps), a row where only it is missing counting as unchanged (a value that does
not change is not reported again). The stillness's own level is fitted per signal on the normal
period like the other levels, and never below its longest still run there nor below
`stuck_min_s`; above it, the row's score is the ratio of the two and its contribution 1.0 to
that signal. The trade-off: a signal that really is still for longer than the normal period ever
showed, e.g. a temperature at rest after a recipe that the normal period never ran, is
reported; a learnt period should hold every way the machine runs. A stop (a row with every
signal missing) ends every still run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit, prange
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analytics.anomaly.tail import fit_tail, shape_floor
from analytics.anomaly.thresholds import _events
from shopfloor.learning import LearnCause

FloatArray = npt.NDArray[np.float64]

WEEK_S = 7 * 24 * 3600.0
FORMAT = 2  # of the JSON; bumped when its fields change meaning
READABLE = (1, FORMAT)  # format 1: no drift or stuck part, scored as it was learnt
_RELATIVE_FLOOR = 1e-9  # of the largest variance: below it, a direction counts as flat


class NormalPeriodError(ValueError):
    """Why a period cannot be learnt from, in one line, with its cause (a
    `shopfloor.learning.LearnCause`) and the values the line names, for a page to say it in
    its reader's language."""

    def __init__(self, text: str, cause: LearnCause, **values: str | int) -> None:
        super().__init__(text)
        self.cause = cause
        self.values = values


class NormalSettings(BaseModel):
    """How a normal model is learnt and how its events open."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    false_alarms_per_week: float = Field(default=1.0, gt=0, description="per machine, the target")
    sample_period_s: float = Field(default=1.0, gt=0, description="seconds between rows")
    explained_variance: float = Field(default=0.99, gt=0, le=1, description="the components keep")
    evidence_rows: int = Field(default=5, ge=1, le=64, description="n of the k-of-n rule")
    evidence_needed: int = Field(default=3, ge=1, description="k of the k-of-n rule")
    min_rows: int = Field(default=100, ge=10, description="complete rows a normal period needs")
    merge_s: float = Field(default=300.0, ge=0, description="events closer than this are one")
    smoothing_s: float = Field(default=120.0, gt=0, description="time constant of the EWMA")
    smoothed: bool = Field(default=True, description="whether the smoothed rows are watched")
    stuck_fraction: float = Field(
        default=0.1, ge=0, description="of the median change a row, below it a signal is still"
    )
    stuck_min_s: float = Field(default=60.0, ge=0, description="a still run alarms only beyond")

    @model_validator(mode="after")
    def _k_of_n(self) -> NormalSettings:
        if self.evidence_needed > self.evidence_rows:
            raise ValueError(
                f"evidence_needed ({self.evidence_needed}) must be at most evidence_rows "
                f"({self.evidence_rows})"
            )
        return self


class _Stored(BaseModel):
    """The JSON of a NormalModel, validated when read back."""

    model_config = ConfigDict(extra="forbid")

    format: int
    signals: list[str] = Field(min_length=1)
    centre: list[float]
    scale: list[float]
    root: list[list[list[float]]]
    levels: tuple[float, float]
    drift_levels: tuple[float, float] = (0.0, 0.0)
    tolerance: list[float] | None = None
    stuck_rows: list[float] | None = None
    components: int = Field(ge=1)
    rows: int = Field(ge=1)
    period: tuple[float, float] | None
    settings: NormalSettings

    @model_validator(mode="after")
    def _shapes(self) -> _Stored:
        k = len(self.signals)
        if self.format not in READABLE:
            raise ValueError(f"format {self.format} is not one of {READABLE}: learn it again")
        parts = 2 if self.format == 1 else 4
        if len(self.centre) != k or len(self.scale) != k:
            raise ValueError(f"centre and scale need one entry per signal ({k})")
        if len(self.root) != parts or any(len(row) != k for part in self.root for row in part):
            raise ValueError(f"root must be {parts} x {k} x {k}")
        stuck = (self.tolerance, self.stuck_rows)
        if self.format > 1 and any(part is None or len(part) != k for part in stuck):
            raise ValueError(f"tolerance and stuck_rows need one entry per signal ({k})")
        return self


@dataclass(frozen=True)
class NormalModel:
    """Learnt on a normal period, then frozen: see the module's docstring.

    `root` holds M^1/2 of T² and of SPE (2 x k x k) for the standardised signals, each over
    the square root of its level, then the same over the levels of the smoothed rows (4 x k x
    k; 2 in a format 1 model); `levels` the levels of T² and SPE themselves (SPE's 0 when
    every direction is a component), `drift_levels` those of the smoothed rows; `tolerance`
    the change a row below which each signal counts as still, `stuck_rows` the still rows at
    its level (both empty in a format 1 model); `components` the principal components kept;
    `rows` the complete rows learnt on; `period` the first and last time of the normal period
    when the caller gave it (epoch s).
    """

    signals: tuple[str, ...]
    centre: FloatArray
    scale: FloatArray
    root: FloatArray
    levels: tuple[float, float]
    components: int
    rows: int
    settings: NormalSettings = field(default_factory=NormalSettings)
    period: tuple[float, float] | None = None
    drift_levels: tuple[float, float] = (0.0, 0.0)
    tolerance: FloatArray = field(default_factory=lambda: np.empty(0))
    stuck_rows: FloatArray = field(default_factory=lambda: np.empty(0))

    def to_json(self) -> str:
        return _Stored(
            format=FORMAT,
            signals=list(self.signals),
            centre=self.centre.tolist(),
            scale=self.scale.tolist(),
            root=self.root.tolist(),
            levels=self.levels,
            drift_levels=self.drift_levels,
            tolerance=self.tolerance.tolist(),
            stuck_rows=self.stuck_rows.tolist(),
            components=self.components,
            rows=self.rows,
            period=self.period,
            settings=self.settings,
        ).model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> NormalModel:
        """The model `to_json` wrote; ValueError with a one-line reason if the text is not one."""
        try:
            stored = _Stored.model_validate_json(text)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "model"
            raise ValueError(f"normal model: {where}: {first['msg']}") from None
        return cls(
            tuple(stored.signals),
            np.array(stored.centre),
            np.array(stored.scale),
            np.array(stored.root),
            stored.levels,
            stored.components,
            stored.rows,
            stored.settings,
            stored.period,
            stored.drift_levels,
            np.array(stored.tolerance or []),
            np.array(stored.stuck_rows or []),
        )


@dataclass(frozen=True)
class Scored:
    """Rows scored against a normal model, each as a ratio to the alarm level.

    `score` is the k-of-n evidence (the k-th largest `instant` of the row's last n), what opens
    events: >= 1 is above the level. `instant` is the row's own score, the largest of its
    indices as ratios to their levels (T² and SPE of the row and of the smoothed rows, the
    longest still run): of the still runs alone where a signal has no sample, NaN where none
    has. `contributions` (rows x signals) are each signal's share of that index, summing to 1
    where it is > 0, NaN with it.
    """

    score: FloatArray
    instant: FloatArray
    contributions: FloatArray


@dataclass(frozen=True)
class NormalEvent:
    """Rows whose evidence reached the level: first and last such row (epoch s), the time and
    value of the peak `instant`, and each signal's share of the index summed over the event,
    largest first (rows with a higher score weigh more)."""

    start: float
    end: float
    peak: float
    peak_score: float
    contributions: dict[str, float]
    start_row: int
    end_row: int


def _robust_scale(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median and robust scale of each column (MAD, else the standard deviation where more
    than half the rows share one value), NaN left out."""
    centre = np.nanmedian(values, axis=0)
    mad = 1.4826 * np.nanmedian(np.abs(values - centre), axis=0)
    return centre, np.where(mad > 0, mad, np.nanstd(values, axis=0))


def varying(values: FloatArray) -> npt.NDArray[np.bool_]:
    """Which columns of `values` (rows x signals) change in it: a model can learn only these."""
    centre, scale = _robust_scale(values)
    return np.asarray(scale > 1e-12 * np.maximum(np.abs(centre), 1.0))


def _standardise(values: FloatArray, signals: Sequence[str]) -> tuple[FloatArray, FloatArray]:
    """Median and robust scale of each signal; ValueError naming a signal that never changes."""
    for name, changes in zip(signals, varying(values), strict=True):
        if not changes:
            raise NormalPeriodError(
                f"{name}: constant over the normal period: leave it out",
                "constant_signal",
                signal=name,
            )
    return _robust_scale(values)


def _principal(z: FloatArray, explained: float) -> tuple[FloatArray, FloatArray, int]:
    """Eigenvalues (largest first, floored), eigenvectors and the components to keep: the
    fewest explaining `explained` of the variance, leaving one residual direction or more."""
    variances, vectors = np.linalg.eigh(z.T @ z / len(z))
    variances, vectors = variances[::-1], vectors[:, ::-1]
    variances = np.maximum(variances, _RELATIVE_FLOOR * max(variances[0], 1e-300))
    share = np.cumsum(variances) / variances.sum()
    k = len(variances)
    kept = min(int(np.searchsorted(share, explained * (1 - 1e-12))) + 1, max(k - 1, 1))
    return variances, vectors, kept


def _roots(z: FloatArray, explained: float) -> tuple[FloatArray, int]:
    """M^1/2 of T² and of SPE (2 x k x k, SPE's zero when nothing is left over) of the
    standardised signals (see the module's docstring), and the components kept."""
    variances, vectors, kept = _principal(z, explained)
    p, lam = vectors[:, :kept], variances[:kept]
    roots = np.zeros((2, len(variances), len(variances)))
    roots[0] = (p / np.sqrt(lam)) @ p.T
    if kept < len(variances):
        roots[1] = np.eye(len(variances)) - p @ p.T
    return roots, kept


def _level(
    values: FloatArray, centre: FloatArray, scale: FloatArray, roots: FloatArray, part: int,
    settings: NormalSettings, rate: float, min_shape: float,
) -> float:  # fmt: skip
    """The level of one index (`part` of the 4 x k x k `roots`) for `rate` false alarms a
    second, fitted on the k-of-n evidence of the normal period's rows with a tail shape of at
    least `min_shape`."""
    alone = np.zeros_like(roots)
    alone[part] = roots[part]
    evidence = _Frozen.of(centre, scale, alone, settings).score(values, settings, False).score
    seconds = len(values) * settings.sample_period_s
    return fit_tail(evidence, seconds, settings.evidence_rows, min_shape).level(rate)


def _stuck_rows(
    values: FloatArray, centre: FloatArray, tolerance: FloatArray, settings: NormalSettings,
    rate: float,
) -> FloatArray:  # fmt: skip
    """Each signal's still rows at its level for `rate` false alarms a second: fitted on the
    normal period's still runs where they are enough to, never below the longest of them nor
    below `stuck_min_s`."""
    n, k = values.shape
    floor = settings.stuck_min_s / settings.sample_period_s
    smoothed, runs, held = np.empty((n, k)), np.empty(n), np.empty(n, np.int64)
    levels = np.empty(k)
    for signal in range(k):
        alone = np.zeros(k)
        alone[signal] = 1.0
        average, last, counted, above, count = _start_carry(centre, 1)
        _carry(values, np.zeros(n), 1, 1, 0, centre, 0.0, tolerance, alone, average, last,
               counted, above, count, smoothed, runs, held)  # fmt: skip
        try:
            fitted = fit_tail(runs, n * settings.sample_period_s, settings.evidence_rows)
        except ValueError:  # hardly ever still: the longest run and the floor decide
            fitted = None
        longest = float(np.nanmax(runs, initial=0.0))
        levels[signal] = max(fitted.level(rate) if fitted else 0.0, longest + 1.0, floor)
    return levels


def learn_normal(
    values: FloatArray,
    signals: Sequence[str],
    settings: NormalSettings | None = None,
    *,
    period: tuple[float, float] | None = None,
) -> NormalModel:
    """A model of `values` (rows x signals, float64, NaN where a signal has no sample), all
    declared normal, with its levels calibrated for `settings.false_alarms_per_week`.

    Rows with a NaN are left out of the fit. NormalPeriodError with a one-line reason when
    there are too few complete rows, a signal is constant, or the scores are too flat to
    calibrate on.
    """
    settings = settings or NormalSettings()
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(signals):
        raise ValueError(f"values must be rows x {len(signals)} signals, not {values.shape}")
    complete = values[~np.isnan(values).any(axis=1)]
    needed = max(settings.min_rows, 10 * len(signals))
    if len(complete) < needed:
        raise NormalPeriodError(
            f"the normal period has {len(complete)} rows with every signal, {needed} are needed",
            "too_few_rows",
            rows=len(complete),
            needed=needed,
        )
    centre, scale = _standardise(complete, signals)
    standardised = (complete - centre) / scale
    roots, kept = _roots(standardised, settings.explained_variance)
    smoothed = roots if settings.smoothed else np.zeros_like(roots)
    roots = np.concatenate((roots, smoothed))  # the smoothed rows are watched by the same indices
    parts = [p for p in range(len(roots)) if roots[p].any()]
    rate = settings.false_alarms_per_week / WEEK_S / (len(parts) + 1)  # + 1: the still runs
    levels = np.zeros(len(roots))
    floor = shape_floor(standardised, settings.evidence_needed)
    try:
        for p in parts:  # the smoothed rows' floor is 0: an average is nearer a Gaussian
            levels[p] = _level(values, centre, scale, roots, p, settings, rate, floor * (p < 2))
    except ValueError as exc:  # the tail's: too flat to fit
        raise NormalPeriodError(str(exc), "too_flat") from None
    for p in parts:
        roots[p] /= np.sqrt(levels[p])
    changes = np.nan_to_num(np.nanmedian(np.abs(np.diff(values, axis=0)), axis=0))
    tolerance = settings.stuck_fraction * changes
    stuck = _stuck_rows(values, centre, tolerance, settings, rate / len(signals))
    return NormalModel(
        tuple(signals), centre, scale, roots, (levels[0], levels[1]), kept, len(complete),
        settings, period, (levels[2], levels[3]), tolerance, stuck,
    )  # fmt: skip


@dataclass(frozen=True)
class _Frozen:
    """The four M^1/2 (T² and SPE of the row, then of the smoothed rows) with the centre and
    scale folded in, y = gain[p] @ x - offset[p]; and what the average and the still runs
    need: its weight on the row before, each signal's tolerance and 1 / its still rows at the
    level (0 where its stillness is not watched)."""

    gain: FloatArray
    offset: FloatArray
    centre: FloatArray
    keep: float
    tolerance: FloatArray
    per_row: FloatArray

    @classmethod
    def of(
        cls, centre: FloatArray, scale: FloatArray, root: FloatArray, settings: NormalSettings,
        tolerance: FloatArray | None = None, stuck_rows: FloatArray | None = None,
    ) -> _Frozen:  # fmt: skip
        k = len(centre)
        roots = np.zeros((4, k, k))
        roots[: len(root)] = root  # a format 1 model has no smoothed part
        gain = np.ascontiguousarray(roots / scale)
        keep = math.exp(-settings.sample_period_s / settings.smoothing_s)
        unwatched = stuck_rows is None or len(stuck_rows) != k  # a format 1 model
        per_row = np.zeros(k) if stuck_rows is None or unwatched else 1.0 / stuck_rows
        tolerance = tolerance if tolerance is not None and len(tolerance) == k else np.zeros(k)
        return cls(gain, gain @ centre, centre, keep, tolerance, per_row)

    def score(self, values: FloatArray, settings: NormalSettings, shares: bool) -> Scored:
        """`values` scored (see `_carry` and `_score_rows`), with contributions if `shares`.

        A segment of rows at a time, through scratch reused from one to the next: the
        smoothed rows and the still runs of a month at 1 Hz are 150 MB a machine that a
        service would take from the system afresh at each recomputation, and first touches of
        memory can cost more than the scoring. The carry's state goes on from segment to
        segment, and each segment keeps the rows - 1 before it that its first scores need, so
        that the scores are those of one pass."""
        n, k = values.shape
        needed, rows = settings.evidence_needed, settings.evidence_rows
        context, size = rows - 1, max(1, min(n, _SEGMENT))
        raw = np.empty(size)
        smoothed = np.empty((context + size, k))
        still, held = np.empty(context + size), np.empty(context + size, np.int64)
        carried = (
            self.centre,
            self.keep,
            self.tolerance,
            self.per_row,
            *_start_carry(self.centre, rows),
        )
        signals = (0,) * k
        score, instant = np.empty(n), np.empty(n)
        contributions = np.empty((n, k) if shares else (0, k))
        for first in range(0, n, size):
            end, before = min(n, first + size), min(first, context)
            filled = before + end - first  # rows of scratch: the context, then the segment's
            x = values[first:end]
            _raw_rows(x, self.gain, self.offset, signals, raw[: end - first])
            mine = (smoothed[before:filled], still[before:filled], held[before:filled])
            _carry(x, raw[: end - first], needed, rows, first, *carried, *mine)
            written = contributions[first - before : end] if shares else contributions
            _score_rows(
                values[first - before : end], smoothed[:filled], still[:filled], held[:filled],
                self.gain, self.offset, needed, rows, signals, before,
                score[first - before : end], instant[first - before : end], written,
            )  # fmt: skip
            for scratch in (smoothed, still, held):  # the next segment's context
                scratch[: min(context, filled)] = scratch[filled - min(context, filled) : filled]
        return Scored(score, instant, contributions)


def score_normal(model: NormalModel, values: FloatArray) -> Scored:
    """Each row of `values` (rows x the model's signals, NaN where missing) against the model."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    k = len(model.signals)
    if values.ndim != 2 or values.shape[1] != k:
        raise ValueError(f"values must be rows x {k} signals, not {values.shape}")
    frozen = _Frozen.of(
        model.centre, model.scale, model.root, model.settings, model.tolerance, model.stuck_rows,
    )  # fmt: skip
    return frozen.score(values, model.settings, True)


def normal_events(model: NormalModel, scored: Scored, t: FloatArray) -> list[NormalEvent]:
    """Events where the evidence reaches 1, closed once it has stayed below for `merge_s`
    (at least `evidence_rows` rows): a fault whose score hovers about the level is one event,
    not dozens. Each carries its signals' shares of the index."""
    settings = model.settings
    quiet = max(settings.evidence_rows, math.ceil(settings.merge_s / settings.sample_period_s))
    starts, ends, _ = _events(scored.score, 1.0, 1.0, quiet, 1)
    found = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        instant = scored.instant[start : end + 1]
        finite = np.isfinite(instant)
        peak = start + int(np.argmax(np.where(finite, instant, -np.inf)))
        weights = np.where(finite, instant, 0.0)
        totals = np.nan_to_num(scored.contributions[start : end + 1]).T @ weights
        shares = totals / totals.sum() if totals.sum() > 0 else totals
        ranked = sorted(zip(model.signals, shares.tolist(), strict=True), key=lambda p: -p[1])
        contributions = dict(ranked)
        row = (float(t[start]), float(t[end]), float(t[peak]), float(scored.instant[peak]))
        found.append(NormalEvent(*row, contributions, start, end))
    return found


_SEGMENT = 1 << 16  # rows scored at a time, through the same scratch
_CHUNK = 4096  # rows a thread scores at a time
_BLOCK = 256  # rows whose products it computes side by side


@njit(cache=True, error_model="numpy", inline="always")
def _kth_largest(recent: FloatArray, m: int, rows: int, needed: int, rank: FloatArray,
                 out: FloatArray) -> None:  # fmt: skip
    """out[j] = the `needed`-th largest of recent[j : j + rows], for j < m, NaN if it is -inf.

    Each value of the window is ranked by the values above it (ties broken by position), and
    the one ranked needed - 1 is taken: rows² comparisons without a branch, over the block's
    rows side by side in vector registers. A sorted window updated row by row does fewer,
    but its branches depend on the data and mispredict: slower for windows of a few rows."""
    out[:m] = -np.inf
    for c in range(rows):
        rank[:m] = 0.0
        for other in range(rows):
            if other < c:
                for j in range(m):
                    rank[j] += recent[j + other] >= recent[j + c]
            elif other > c:
                for j in range(m):
                    rank[j] += recent[j + other] > recent[j + c]
        for j in range(m):
            out[j] = recent[j + c] if rank[j] == needed - 1 else out[j]
    for j in range(m):
        out[j] = out[j] if out[j] > -np.inf else np.nan


def _start_carry(
    centre: FloatArray, rows: int
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """`_carry`'s state before the first row: the average at the centre, no value before, no
    still run, none of the last `rows` raw scores above the level (and their count)."""
    k = len(centre)
    return (
        centre.copy(),
        np.full(k, np.nan),
        np.zeros(k),
        np.zeros(rows, np.int64),
        np.zeros(1, np.int64),
    )


@njit(cache=True, error_model="numpy", nogil=True)
def _carry(x: FloatArray, raw: FloatArray, needed: int, rows: int, first: int,
           centre: FloatArray, keep: float, tolerance: FloatArray, per_row: FloatArray,
           state: FloatArray, last: FloatArray, runs: FloatArray,
           above: npt.NDArray[np.int64], count: npt.NDArray[np.int64], smoothed: FloatArray,
           still: FloatArray, held: npt.NDArray[np.int64]) -> None:  # fmt: skip
    """What a row's score owes to the rows before it, one row after the other: smoothed[i] the
    average of the complete rows up to i, `keep` of it carried from row to row (held through a
    row with a NaN, NaN on it; from the centre again where `needed` of the last `rows` `raw`
    are >= 1, the centre on it); still[i] the largest still run over its level (runs times
    `per_row`; NaN where every signal is missing or none is watched) and held[i] its signal. A
    row with every signal missing ends every run.

    x's first row is row `first` of the series; the carry's state (`state`, `last`, `runs`,
    and the ring `above` of the last rows' raw flags with their `count`, from `_start_carry`)
    is updated in place, so that the series can be carried a segment at a time."""
    n, k = x.shape
    watched = False
    for j in range(k):
        watched = watched or per_row[j] > 0
    total = count[0]
    for i in range(n):
        flag = 1 if raw[i] >= 1.0 else 0
        slot = (first + i) % rows
        total += flag - above[slot]
        above[slot] = flag
        missing = 0
        for j in range(k):
            missing += x[i, j] != x[i, j]
        best, which = (0.0 if watched and missing < k else np.nan), 0
        for j in range(k):
            value = x[i, j]
            if missing == k:
                runs[j] = 0.0
            elif value != value or abs(value - last[j]) <= tolerance[j]:
                runs[j] += 1.0
            else:
                runs[j] = 0.0
            if missing == k or value == value:  # a missing value is held
                last[j] = value
            ratio = runs[j] * per_row[j]
            if ratio > best:
                best, which = ratio, j
        still[i], held[i] = best, which
        restart = total >= needed
        for j in range(k):
            if restart:
                state[j] = centre[j]
            elif missing == 0:  # held through a row with a missing signal
                state[j] = keep * state[j] + (1.0 - keep) * x[i, j]
            smoothed[i, j] = np.nan if missing else state[j]
    count[0] = total


@njit(cache=True, error_model="numpy", nogil=True, parallel=True)
def _raw_rows(x: FloatArray, gain: FloatArray, offset: FloatArray, signals: tuple[int, ...],
              raw: FloatArray) -> None:  # fmt: skip
    """raw[i] = the larger of row i's T² and SPE (NaN if it has a NaN), which `_carry` needs
    before the average can be taken. Blocks of rows in parallel."""
    n, k = x.shape[0], len(signals)
    for block in prange((n + _BLOCK - 1) // _BLOCK):
        first = block * _BLOCK
        m = min(_BLOCK, n - first)
        columns, y, total = np.empty((k, _BLOCK)), np.empty((4 * k, _BLOCK)), np.empty((4, _BLOCK))
        _index_block(x, first, m, 0, gain, offset, columns, y, total, signals)
        for j in range(m):
            raw[first + j] = max(total[0, j], total[1, j])  # NaN in both or neither


@njit(cache=True, error_model="numpy", inline="always")
def _index_block(x: FloatArray, first: int, m: int, parts: int, gain: FloatArray,
                 offset: FloatArray, columns: FloatArray, y: FloatArray, total: FloatArray,
                 signals: tuple[int, ...]) -> None:  # fmt: skip
    """Indices `parts` and `parts` + 1, |gain[p] x_i - offset[p]|², of rows first to
    first + m - 1 into total[p, :m] (NaN for a row with a NaN), each term into y[p * k + a]
    (4k x block). k is the length of `signals`, a tuple of zeros, so that the loops are
    compiled for the number of signals. The rows are copied signal-major into `columns` first,
    so that every loop runs over the block's rows side by side in vector registers: row by
    row, a k x k product is too short to vectorise. Each term is summed in a register, its k
    products unrolled: summed in y, each product would cost a store."""
    k = len(signals)
    for j in range(m):
        for b in range(k):
            columns[b, j] = x[first + j, b]
    for p in range(parts, parts + 2):
        total[p, :m] = 0.0
        for a in range(k):
            row = p * k + a
            for j in range(m):
                term = -offset[p, a]
                for b in range(k):
                    term += gain[p, a, b] * columns[b, j]
                y[row, j] = term * term
                total[p, j] += y[row, j]


@njit(cache=True, error_model="numpy", inline="always")
def _largest(total: FloatArray, j: int, still: float) -> tuple[float, int]:
    """The largest of row j's four indices and its still run, NaN left out (NaN if all are),
    and which it is (4: the still run); on a tie, the first."""
    value, part = np.nan, 0
    for p in range(4):
        if total[p, j] > value or (value != value and total[p, j] == total[p, j]):
            value, part = total[p, j], p
    if still > value or (value != value and still == still):
        value, part = still, 4
    return value, part


@njit(cache=True, error_model="numpy", nogil=True, parallel=True)
def _score_rows(
    x: FloatArray,
    smoothed: FloatArray,
    still: FloatArray,
    held: npt.NDArray[np.int64],
    gain: FloatArray,
    offset: FloatArray,
    needed: int,
    rows: int,
    signals: tuple[int, ...],
    skip: int,
    score: FloatArray,
    instant: FloatArray,
    shares: FloatArray,
) -> None:
    """instant[i] = the largest index of row i (`_largest` of T² and SPE of x and of
    `smoothed`, and `still`); score[i] the `needed`-th largest of the last `rows` instants
    (rows before the first count as 0, NaN below all); with `shares` of n rows, each signal's
    share of that index (all of it to held[i] for a still run). The first `skip` rows are
    only the context of the next (up to rows - 1 of them), scored before: nothing is written
    for them. Chunks of rows in parallel, each scoring again the rows - 1 before it that its
    first scores need."""
    n = x.shape[0]
    k = len(signals)
    with_shares = shares.shape[0] == n
    for chunk in prange((n - skip + _CHUNK - 1) // _CHUNK):
        first, end = skip + chunk * _CHUNK, min(n, skip + (chunk + 1) * _CHUNK)
        columns, y = np.empty((k, _BLOCK)), np.empty((4 * k, _BLOCK))
        total, rank, larger = np.empty((4, _BLOCK)), np.empty(_BLOCK), np.empty(_BLOCK)
        which = np.empty(_BLOCK, np.int64)
        # the block's instants after the rows - 1 before them, NaN as -inf
        recent = np.zeros(rows - 1 + _BLOCK)
        before = max(first - rows + 1, 0)
        _index_block(x, before, first - before, 0, gain, offset, columns, y, total, signals)
        _index_block(smoothed, before, first - before, 2, gain, offset, columns, y, total,
                     signals)  # fmt: skip
        for i in range(before, first):
            value = _largest(total, i - before, still[i])[0]
            recent[rows - 1 - first + i] = value if value == value else -np.inf
        for start in range(first, end, _BLOCK):
            m = min(_BLOCK, end - start)
            _index_block(x, start, m, 0, gain, offset, columns, y, total, signals)
            _index_block(smoothed, start, m, 2, gain, offset, columns, y, total, signals)
            for j in range(m):
                larger[j], which[j] = _largest(total, j, still[start + j])
                instant[start + j] = larger[j]
                recent[rows - 1 + j] = larger[j] if larger[j] == larger[j] else -np.inf
            _kth_largest(recent, m, rows, needed, rank, score[start : start + m])
            recent[: rows - 1] = recent[m : m + rows - 1]
            if with_shares:
                for j in range(m):
                    inverse = 1.0 / larger[j] if larger[j] > 0 else 0.0
                    if which[j] == 4:
                        for a in range(k):
                            shares[start + j, a] = 0.0
                        shares[start + j, held[start + j]] = larger[j] * inverse
                    else:
                        for a in range(k):
                            shares[start + j, a] = y[which[j] * k + a, j] * inverse
