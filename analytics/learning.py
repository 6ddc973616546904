"""Learning a machine's normal model from the store's history of a period declared normal.

The command line learns at once (`shopfloor analytics learn`); the dashboard, which has no
Numba, asks the analytics service to (`shopfloor.learning`). Both learn here, from the machine's
process signals side by side as the service scores them afterwards: while it ran, and while it
stood when the period held enough of that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from analytics.anomaly.normal import (
    NormalEvent,
    NormalModel,
    NormalPeriodError,
    NormalSettings,
    Scored,
    learn_normal,
    normal_events,
    score_normal,
    varying,
)
from analytics.history import Series, points_in_force, process_signals, state_log, state_rows
from shopfloor.learning import LearnCause, NormalModelDoc
from shopfloor.messages import AssetPath
from shopfloor.plant import Machine
from shopfloor.states import STATE, MachineState
from shopfloor.store import Store

FloatArray = npt.NDArray[np.float64]
ALIGN_S = 5.0  # how old a signal's value may be to sit next to the others, as the service has it


class LearnError(ValueError):
    """The period cannot be learnt from, in one line (too little data, the machine not
    running), with its cause and the values the line names."""

    def __init__(self, text: str, cause: LearnCause, **values: str | int) -> None:
        super().__init__(text)
        self.cause = cause
        self.values = values


@dataclass(frozen=True)
class MachineNormal:
    """A machine's normal running and, when the normal period held enough of it, at rest.

    A fault can begin while a machine stands: a heater's control runs away, a sensor's cable
    starts to spike. The stopped machine's readings show it, on levels of their own (a
    spindle's load near zero, a barrel's heat held below its melt), so a model of the running
    rows cannot score them; one learnt on the period's rest rows does, and the fault need not
    wait for the next start to be seen. Only in the states of rest the period held
    (`rest_states`: micro-stops, a break, waiting for material): a state it never held, the
    machine off for the night or a changeover, may look otherwise for good reasons, and is not
    scored. Each model keeps its own false-alarm rate per row of its own state, so together
    they keep the machine's. `resting` watches a subset of `running`'s signals (those that
    vary at rest); its contributions are given in `running`'s columns. It watches the rows and
    their still runs, not their average (`NormalSettings.smoothed`): stops are short and far
    between, so an average of rest rows spans a long time and follows the slow swings of the
    process (the hall's heat, a slow cycle) beyond what a period shorter than them held; the
    slow drifts that average is for show in the running rows.
    """

    running: NormalModel
    resting: NormalModel | None = None
    rest_states: tuple[str, ...] = ()

    @property
    def signals(self) -> tuple[str, ...]:
        return self.running.signals

    def score(self, values: FloatArray, states: npt.NDArray[np.str_]) -> Scored:
        """Each row of `values` (rows x `signals`) against the model of its state (`states`,
        the machine's state at each row): NaN in a state neither model knows."""
        moving = (states == MachineState.RUNNING.value)[:, None]
        scored = score_normal(self.running, np.where(moving, values, np.nan))
        if self.resting is None:
            return scored
        resting = np.isin(states, self.rest_states)[:, None]
        columns = [self.running.signals.index(s) for s in self.resting.signals]
        rest = score_normal(self.resting, np.where(resting, values[:, columns], np.nan))
        unscored = np.isnan(rest.instant)[:, None]
        contributions = np.where(moving, scored.contributions, np.where(unscored, np.nan, 0.0))
        contributions[:, columns] = np.where(moving, contributions[:, columns], rest.contributions)
        return Scored(
            np.where(moving[:, 0], scored.score, rest.score),
            np.where(moving[:, 0], scored.instant, rest.instant),
            contributions,
        )

    def events(self, scored: Scored, t: FloatArray) -> list[NormalEvent]:
        """`normal_events` of rows `score` scored, in either state."""
        return normal_events(self.running, scored, t)


def learn_machine(
    store: Store,
    path: AssetPath,
    machine: Machine,
    start: datetime,
    end: datetime,
    settings: NormalSettings | None = None,
    align_s: float = ALIGN_S,
) -> NormalModelDoc:
    """The model of the machine's normal behaviour in [start, end): running, from its running
    rows, and at rest, from the others, when there are enough (`_learn_at_rest`)."""
    period = f"{machine.name} from {_text(start)} to {_text(end)}"
    if end <= start:
        raise LearnError(f"{period}: the period ends before it starts", "ends_before_start")
    signals = {s: Series.of(store.history(path, s, start, end)) for s in process_signals(machine)}
    signals = {name: series for name, series in signals.items() if len(series)}
    if not signals:
        raise LearnError(f"{period}: no process readings in the store", "no_readings")
    states = state_log({STATE: points_in_force(store, path, STATE, start, end)})
    t, x, at = state_rows(signals, states, align_s)
    running = at == MachineState.RUNNING.value
    if not running.any():
        raise LearnError(f"{period}: the machine was not running", "not_running")
    sampled = np.count_nonzero(np.isfinite(x[running]), axis=0) > 0
    names = [name for name, kept in zip(signals, sampled, strict=True) if kept]  # sampled running
    times = t[running]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    settings = (settings or NormalSettings()).model_copy(update={"sample_period_s": step})
    try:
        model = learn_normal(x[running][:, sampled], names, settings, period=(times[0], times[-1]))
    except NormalPeriodError as exc:
        raise LearnError(f"{period}: {exc}", exc.cause, **exc.values) from None
    at_rest = ~running & ~np.isnan(x).all(axis=1)
    resting = _learn_at_rest(x[at_rest][:, sampled], t[at_rest], names, settings)
    return NormalModelDoc(
        start=_utc(times[0]),
        end=_utc(times[-1]),
        rows=int(running.sum()),
        signals=names,
        model=json.loads(model.to_json()),
        rest_rows=int(at_rest.sum()) if resting else 0,
        rest_model=json.loads(resting.to_json()) if resting else None,
        rest_states=sorted(set(at[at_rest].tolist())) if resting else [],
    )


def _learn_at_rest(
    rows: FloatArray, times: FloatArray, names: list[str], settings: NormalSettings
) -> NormalModel | None:
    """The model of the machine at rest, on the signals read in most of its rest rows that
    change there (a pressure that reads a steady zero at rest tells nothing); None when the
    period held too little rest to learn it: the machine is then watched running only."""
    kept = np.count_nonzero(np.isfinite(rows), axis=0) * 2 > len(rows)
    if kept.any():
        kept[kept] = varying(rows[:, kept])
    if not kept.any():
        return None
    try:
        return learn_normal(
            rows[:, kept], [n for n, k in zip(names, kept, strict=True) if k],
            settings.model_copy(update={"smoothed": False}),
            period=(times[0], times[-1]),
        )  # fmt: skip
    except NormalPeriodError:
        return None


def normal_model(doc: NormalModelDoc) -> MachineNormal:
    """The model a stored document holds: running, and at rest when it was learnt."""
    rest = doc.rest_model
    resting = None if rest is None else NormalModel.from_json(json.dumps(rest))
    running = NormalModel.from_json(json.dumps(doc.model))
    return MachineNormal(running, resting, tuple(doc.rest_states))


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _text(ts: datetime) -> str:
    return f"{ts.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"
