"""Learning normal on a machine from the store, and the analytics service watching it with the
learnt model: a correlation break is one event that names the signal that broke away."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from analytics.history import Series, state_log
from analytics.learning import LearnError, MachineNormal, learn_machine, normal_model
from analytics.oee import StateEvent
from analytics.service import AnalyticsService, AnalyticsSettings, learnt_events, learnt_score
from launcher.cli import app
from shopfloor.learning import (
    LearnRequest,
    NormalModelDoc,
    read_model,
    read_request,
    request_point,
)
from shopfloor.messages import AssetPath, Event, EventType
from shopfloor.plant import Machine, Plant, load_plant
from shopfloor.states import STATE, MachineState
from shopfloor.store import EVENT_PREFIX, SCORE_PREFIX, Point, Store
from shopfloor.store.embedded import EmbeddedStore

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
MINUTES = 60  # of 1 Hz data: running until STOP_MIN, a break of flow's link to the others
NORMAL_UNTIL = T0 + timedelta(minutes=40)
BREAK_MIN = (45, 50)
STOP_MIN = 55
SIGNALS = ("melt_temperature", "injection_pressure", "flow")

PLANT = """\
version: 1
tenant: {id: acme, name: Acme}
site:
  id: plant1
  name: Plant 1
  timezone: UTC
  areas:
    - id: hall
      name: Hall
      lines:
        - id: line-1
          name: Line 1
          machines:
            - id: press-1
              name: Press 1
              type: injection_moulding
              ideal_cycle_time: {cap: 12.0}
              signals:
                - {id: state}
                - {id: melt_temperature, unit: degC}
                - {id: injection_pressure, unit: bar}
                - {id: flow, unit: l/min}
products: [{id: cap, name: Cap}]
shifts: [{name: day, start: "06:00", end: "14:00", days: [mon, tue, wed, thu, fri, sat, sun]}]
"""


@pytest.fixture
def plant(tmp_path: Path) -> Plant:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT, encoding="utf-8")
    return load_plant(path)


def press(plant: Plant) -> tuple[AssetPath, Machine]:
    return next(iter(plant.machines()))


def readings(path: AssetPath) -> list[Point]:
    """Three signals driven by one process variable; flow leaves it during the break, within
    its usual range, and the press stops at STOP_MIN."""
    rng = np.random.default_rng(7)
    n = MINUTES * 60
    u = np.sin(2 * np.pi * np.arange(n) / 600) + 0.1 * rng.standard_normal(n)  # 10-min cycles
    broken = (np.arange(n) >= BREAK_MIN[0] * 60) & (np.arange(n) < BREAK_MIN[1] * 60)
    values = {
        "melt_temperature": 230 + 2 * u + 0.2 * rng.standard_normal(n),
        "injection_pressure": 800 + 20 * u + 2 * rng.standard_normal(n),
        "flow": 50 + np.where(broken, -5, 5) * u + 0.5 * rng.standard_normal(n),
    }
    points = [
        Point(path, STATE, T0, MachineState.RUNNING.value),
        Point(path, STATE, T0 + timedelta(minutes=STOP_MIN), MachineState.PLANNED_STOP.value),
    ]
    for signal, column in values.items():
        points += [
            Point(path, signal, T0 + timedelta(seconds=i), float(v)) for i, v in enumerate(column)
        ]
    return points


@pytest.fixture
def store(plant: Plant, tmp_path: Path) -> Store:
    opened = EmbeddedStore(tmp_path / "store.db")
    opened.write(readings(press(plant)[0]))
    return opened


def test_a_period_is_learnt_from_the_machine_running(plant: Plant, store: Store) -> None:
    path, machine = press(plant)
    doc = learn_machine(store, path, machine, T0, NORMAL_UNTIL)
    assert doc.signals == list(SIGNALS)
    assert doc.rows == 40 * 60
    assert (doc.start, doc.end) == (T0, NORMAL_UNTIL - timedelta(seconds=1))
    assert (doc.rest_rows, doc.rest_model) == (0, None)  # it never stood: watched running only


@pytest.mark.parametrize(
    ("start_min", "end_min", "reason", "cause", "values"),
    [
        (STOP_MIN + 1, MINUTES, "Press 1 from 2026-11-02T08:56:00Z to 2026-11-02T09:00:00Z: "
         "the machine was not running", "not_running", {}),
        (MINUTES + 5, MINUTES + 10, "no process readings in the store", "no_readings", {}),
        (10, 11, "the normal period has 60 rows with every signal, 100 are needed",
         "too_few_rows", {"rows": 60, "needed": 100}),
        (10, 5, "the period ends before it starts", "ends_before_start", {}),
    ],
)  # fmt: skip
def test_a_period_that_cannot_be_learnt_says_why_in_one_line(
    plant: Plant, store: Store, start_min: int, end_min: int, reason: str, cause: str,
    values: dict[str, int],
) -> None:  # fmt: skip
    path, machine = press(plant)
    with pytest.raises(LearnError, match=r"^Press 1 from ") as raised:
        learn_machine(
            store, path, machine, T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min)
        )
    assert reason in str(raised.value)
    assert "\n" not in str(raised.value)
    assert raised.value.cause == cause and raised.value.values == values


def machine_events(store: Store, path: AssetPath) -> list[Event]:
    end = T0 + timedelta(minutes=MINUTES + 1)
    return [
        point.as_event() for point in store.history(path, f"{EVENT_PREFIX}anomaly_machine", T0, end)
    ]


def test_the_service_learns_a_requested_period_and_explains_the_break(
    plant: Plant, store: Store
) -> None:
    """The dashboard's request is learnt on the next cycle; from then on the machine's score
    and events come from the model, and the event names flow as the signal that broke."""
    path, _ = press(plant)
    asked = T0 + timedelta(minutes=44)
    store.write([request_point(path, asked, LearnRequest(start=T0, end=NORMAL_UNTIL))])
    service = AnalyticsService(plant, store)
    service.run_once(asked)
    found = read_request(store, path, asked)
    assert found is not None and found[1].learnt and not found[1].error
    model = read_model(store, path, asked)
    assert model is not None and model.rows == 40 * 60

    now = T0 + timedelta(minutes=MINUTES)
    service.run_once(now)
    broken = T0 + timedelta(minutes=BREAK_MIN[0]), T0 + timedelta(minutes=BREAK_MIN[1])
    events = [
        e
        for e in machine_events(store, path)
        if e.start < broken[1] and e.end and e.end > broken[0]
    ]
    assert len(events) == 1
    event = events[0]
    assert event.type is EventType.ANOMALY
    start_s = (event.start - T0).total_seconds()
    assert BREAK_MIN[0] * 60 <= start_s <= BREAK_MIN[0] * 60 + 30
    assert event.end is not None and event.end <= T0 + timedelta(minutes=BREAK_MIN[1], seconds=30)
    assert next(iter(event.contributions)) == "flow"
    assert event.contributions["flow"] > 0.5
    assert sum(event.contributions.values()) == pytest.approx(1.0, abs=0.01)
    # Each signal's score is its part of the machine's: flow's carries the break.
    scores = {s: store.history(path, SCORE_PREFIX + s, event.start, event.end) for s in SIGNALS}
    peak = {s: max(float(p.value) for p in points) for s, points in scores.items()}
    assert max(peak, key=peak.__getitem__) == "flow"
    # The streaming detectors raise no per-signal events on a machine with a model.
    assert not store.history(path, f"{EVENT_PREFIX}anomaly_flow", T0, now)


def test_a_request_that_cannot_be_learnt_keeps_its_error(plant: Plant, store: Store) -> None:
    path, _ = press(plant)
    asked = T0 + timedelta(minutes=MINUTES)
    period = LearnRequest(start=T0 + timedelta(minutes=56), end=asked)
    store.write([request_point(path, asked, period)])
    AnalyticsService(plant, store).run_once(asked)
    found = read_request(store, path, asked)
    assert found is not None and not found[1].learnt
    assert found[1].error.endswith("the machine was not running")
    assert (found[1].cause, found[1].cause_values) == ("not_running", {})
    assert read_model(store, path, asked) is None


def test_analytics_learn_writes_the_model_the_service_reads(
    plant: Plant, store: Store, tmp_path: Path
) -> None:
    runner = CliRunner()
    common = [
        "--plant",
        str(tmp_path / "plant.yaml"),
        "--store-url",
        f"sqlite:{tmp_path / 'store.db'}",
    ]
    result = runner.invoke(
        app,
        ["analytics", "learn", "press-1", "--from", "2026-11-02T08:00:00Z",
         "--to", "2026-11-02T08:40:00Z", *common],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "learnt normal of Press 1 from 2400 running rows" in result.output
    assert "note: learnt on less than a shift (8.0 h)" in result.output  # 40 min
    path, _ = press(plant)
    model = read_model(store, path, T0 + timedelta(minutes=MINUTES))
    assert model is not None and model.signals == list(SIGNALS)

    stopped = runner.invoke(
        app,
        ["analytics", "learn", "press-1", "--from", "2026-11-02T08:56:00Z",
         "--to", "2026-11-02T09:00:00Z", *common],
    )  # fmt: skip
    assert stopped.exit_code == 2
    assert stopped.output.strip().splitlines() == [
        "error: Press 1 from 2026-11-02T08:56:00Z to 2026-11-02T09:00:00Z: "
        "the machine was not running"
    ]


def test_an_events_contributions_are_stored_and_older_events_read_as_before(
    plant: Plant, store: Store
) -> None:
    path, _ = press(plant)
    explained = Event(
        type=EventType.ANOMALY, name="anomaly_machine", start=T0,
        contributions={"flow": 0.7, "melt_temperature": 0.3},
    )  # fmt: skip
    plain = Event(name="bearing_wear", start=T0)
    assert "contributions" not in json.loads(str(Point.from_event(path, plain).value))
    store.write([Point.from_event(path, explained), Point.from_event(path, plain)])
    end = T0 + timedelta(seconds=1)
    [read] = store.history(path, f"{EVENT_PREFIX}anomaly_machine", T0, end)
    assert list(read.as_event().contributions.items()) == [("flow", 0.7), ("melt_temperature", 0.3)]
    [older] = store.history(path, f"{EVENT_PREFIX}bearing_wear", T0, end)
    assert older.as_event().contributions == {}
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Event(name="anomaly_machine", start=T0, contributions={"flow": 1.5})


CYCLE_S, RUN_S = 300, 180  # the press runs 3 min in every 5, and idles 2
RUNAWAY_S = 48 * 60  # its heater runs away in the idle from minute 48 to 50


def idling_press(path: AssetPath) -> list[Point]:
    """Melt and pressure at their running levels for 3 min in every 5 and at their idle
    levels between; from RUNAWAY_S on, the idle melt climbs 0.2 degC a second."""
    rng = np.random.default_rng(11)
    t = np.arange(MINUTES * 60)
    running = t % CYCLE_S < RUN_S
    melt = np.where(running, 230.0, 215.0) + 0.5 * rng.standard_normal(len(t))
    melt += np.where(~running & (t >= RUNAWAY_S), 0.2 * (t - RUNAWAY_S), 0.0)
    pressure = np.where(running, 800.0, 5.0) + 2 * rng.standard_normal(len(t))
    points = [
        Point(path, STATE, T0 + timedelta(seconds=start), state.value)
        for start in range(0, MINUTES * 60, CYCLE_S)
        for state, start in ((MachineState.RUNNING, start), (MachineState.IDLE, start + RUN_S))
    ]
    for signal, column in (("melt_temperature", melt), ("injection_pressure", pressure)):
        points += [Point(path, signal, T0 + timedelta(seconds=int(i)), float(v)) for i, v in
                   zip(t, column, strict=True)]  # fmt: skip
    return points


def test_a_machine_that_idles_in_its_normal_period_is_watched_at_rest_too(
    plant: Plant, tmp_path: Path
) -> None:
    """A fault that begins while the machine stands is seen as it stands, from the rest rows'
    own model, not at the next start: the running model alone sees nothing until then."""
    path, machine = press(plant)
    store = EmbeddedStore(tmp_path / "idling.db")
    store.write(idling_press(path))
    doc = learn_machine(store, path, machine, T0, NORMAL_UNTIL)
    assert doc.signals == ["melt_temperature", "injection_pressure"]
    assert (doc.rows, doc.rest_rows) == (8 * 180, 8 * 120)
    model = normal_model(doc)
    assert model.resting is not None and model.resting.signals == model.running.signals
    assert model.rest_states == ("idle",)
    assert model.resting.drift_levels == (0.0, 0.0)  # its rows and still runs, not their average
    older = doc.model_dump(mode="json", exclude={"rest_rows", "rest_model", "rest_states"})
    assert normal_model(NormalModelDoc.model_validate(older)).resting is None  # running only

    end = T0 + timedelta(minutes=MINUTES)
    signals = {
        s: Series.of(store.history(path, s, T0, end))
        for s in ("melt_temperature", "injection_pressure")
    }
    log_ = state_log({STATE: store.history(path, STATE, T0, end)})
    settings = AnalyticsSettings()

    def events(watched: MachineNormal, log_: list[StateEvent] = log_) -> list[Event]:
        scored = learnt_score(watched, signals, log_, settings)
        assert scored is not None
        return [e for e in learnt_events(watched, *scored, settings) if e.start >= NORMAL_UNTIL]

    [event] = events(model)
    assert RUNAWAY_S < (event.start - T0).total_seconds() <= RUNAWAY_S + 60
    assert next(iter(event.contributions)) == "melt_temperature"
    assert events(MachineNormal(model.running)) == []  # it never ran with the runaway
    # A state of rest the period never held may look otherwise for good reasons: not scored.
    setup = [replace(e, state=MachineState.SETUP) if e.state is not MachineState.RUNNING else e
             for e in log_]  # fmt: skip
    assert events(model, setup) == []
