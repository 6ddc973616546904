"""Anomaly detection on the simulator's labelled faults: precision, recall and delay.

`python -m bench.faults`. Every demo scenario is run as fast as possible into a recording and
each machine's process signals are scored as the analytics service scores them, twice:

- learnt (after): as staff would use the platform. Every scenario is run without its faults
  for `FAULT_FREE_S` from another seed; its first `LEARN_S` (a shift) is the known-good period,
  put in a store, and every machine learns its normal from it through the service's own path
  (`analytics.learning.learn_machine`, as `shopfloor analytics learn` does). The machine is
  then scored with that model by the service's functions (`analytics.service.learnt_score`,
  `learnt_events`) plus silences. A machine that cannot be learnt stays on the streaming
  detectors, as in the service;
- streaming (before): no model, the detectors that learn on the fly from whatever comes
  first (relative entropy of each signal while running, the machine's T², silences).

Both score the same recordings. The events are matched with the faults the scenario injected:

- a fault is detected when an anomaly event on its machine is known between the fault's start
  and `GRACE` after its end (a breakdown may show only as the machine fails); its delay is the
  first such event's minus the fault's start. An event is known at its start, but for a silence:
  the service dates it from the last value, and knows of it once it has lasted `silent_after`
  of the signal's typical steps. The streaming detectors score process signals while the
  machine runs, so to them a fault that begins in a stop can show only once the machine runs
  again; a learnt model also watches the machine at rest (`MachineNormal`). The median delay is
  given from the faults' start (the goal) and from when they can show while running;
- an event is a true positive when it matches a fault; precision = true events / events.

Faults that leave the process signals alone cannot be seen there and are reported apart: an air
leak shows in the compressor's power at night (the energy analytics' idle share), tool wear in
the reject counter (quality).

False alarms are the events of the fault-free run after the known-good shift (data no model
learnt from), per machine per 24 h. Each figure is printed against its goal (`GOALS`), learnt
next to streaming; both from the same recordings in the same run.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import takewhile
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from analytics.history import Series, process_signals, while_running
from analytics.learning import LearnError, MachineNormal, learn_machine, normal_model
from analytics.oee import StateEvent
from analytics.service import (
    MACHINE,
    AnalyticsSettings,
    anomaly_score,
    learnt_events,
    learnt_score,
    machine_score,
    score_events,
    silence_events,
)
from shopfloor.messages import (
    AssetPath,
    FaultKind,
    MessageKind,
    Reading,
    decode_readings,
    parse_topic,
)
from shopfloor.plant import Machine
from shopfloor.states import STATE, MachineState
from shopfloor.store import Point
from shopfloor.store.embedded import EmbeddedStore
from simulators.fast import run_fast
from simulators.scenario import LoadedScenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "examples" / "scenarios"
NAMES = ("moulding", "moulding-bad-day", "machining", "packaging")
GRACE = timedelta(minutes=15)
# Faults whose effect is outside the process signals (see the module docstring).
NOT_IN_PROCESS_SIGNALS = frozenset({FaultKind.AIR_LEAK, FaultKind.TOOL_WEAR})
FAULT_FREE_S = 86_400.0
LEARN_S = 8 * 3600.0  # the known-good period: a shift
LEARN_SEED = 1_000  # added to the scenario's seed for the known-good run
MODES = ("learnt", "streaming")  # after, before
# figure: (goal, True when higher is better)
GOALS = {
    "precision": (0.7, True),
    "recall": (0.86, True),
    "median_delay_min": (5.0, False),  # from the fault's start
    "median_delay_shown_min": (5.0, False),  # from when it can first show (`Fault.shows`)
    "false_alarms_per_machine_day": (1.0, False),
}

Models = dict[str, MachineNormal]  # by machine id
# Each numeric signal by (asset id, signal), and each machine's states.
Recorded = tuple[dict[tuple[str, str], Series], dict[str, list[StateEvent]]]


@dataclass(frozen=True)
class Found:
    """An event as staff learn of it: `start` is when it is known."""

    machine: str
    signal: str
    start: datetime


@dataclass(frozen=True)
class Fault:
    """A fault the scenario injected; `shows` is when it can first show in process signals,
    which are scored while the machine runs: its start, or the machine's next run when it
    began in a stop."""

    machine: str
    kind: FaultKind
    start: datetime
    end: datetime
    shows: datetime


@dataclass(frozen=True)
class Outcome:
    """How the detector did on one scenario."""

    scenario: str
    faults: list[Fault]
    found: list[Found]

    def matches(self, fault: Fault) -> list[Found]:
        return [
            f
            for f in self.found
            if f.machine == fault.machine and fault.start <= f.start <= fault.end + GRACE
        ]

    def true_events(self) -> int:
        return sum(any(f in self.matches(fault) for fault in self.faults) for f in self.found)

    def delays_s(self, since_shows: bool = False) -> dict[Fault, float | None]:
        """Each fault's first matching event after its start (after it can show, with
        `since_shows`), None if none matched; at least 0."""
        first = {
            fault: min((f.start for f in self.matches(fault)), default=None)
            for fault in self.faults
        }
        return {
            fault: max((start - (fault.shows if since_shows else fault.start)).total_seconds(), 0)
            if start
            else None
            for fault, start in first.items()
        }


def _readings(recording: Path) -> Iterator[tuple[AssetPath, Reading]]:
    """Every reading of a recording with the asset it came from."""
    for line in recording.read_text(encoding="utf-8").splitlines()[1:]:
        message = json.loads(line)
        path, kind = parse_topic(message["topic"])
        if kind is MessageKind.DATA:
            for reading in decode_readings(json.dumps(message["payload"]).encode()):
                yield path, reading


def _signals(recording: Path) -> Recorded:
    """Every numeric signal of a recording by (asset id, signal), and each machine's states."""
    columns: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    states: dict[str, list[StateEvent]] = {}
    for path, reading in _readings(recording):
        if reading.signal == STATE:
            event = StateEvent(reading.ts.timestamp(), MachineState(str(reading.value)))
            states.setdefault(path.asset, []).append(event)
        elif isinstance(reading.value, (int, float)) and not isinstance(reading.value, bool):
            t, x = columns.setdefault((path.asset, reading.signal), ([], []))
            t.append(reading.ts.timestamp())
            x.append(float(reading.value))
    return {k: Series(np.array(t), np.array(x)) for k, (t, x) in columns.items()}, states


def _streaming(
    machine: Machine,
    signals: dict[str, Series],
    log_: list[StateEvent],
    settings: AnalyticsSettings,
) -> Iterator[Found]:
    """The streaming detectors' events: each signal's relative entropy, the machine's T²."""
    for signal, s in signals.items():
        score = anomaly_score(while_running(s, log_), settings)
        yield from (
            Found(machine.id, signal, e.start) for e in score_events(signal, s, score, settings)
        )
    joint = machine_score(signals, log_, settings)
    if joint is not None:
        t2, level = joint
        found = score_events(MACHINE, t2, t2.values, replace(settings, on=level, off=level))
        yield from (Found(machine.id, MACHINE, event.start) for event in found)


def _learnt(
    model: MachineNormal, machine: Machine, signals: dict[str, Series], log_: list[StateEvent],
    settings: AnalyticsSettings,
) -> Iterator[Found]:  # fmt: skip
    """The learnt model's events, as the service writes them for a machine with a model."""
    scored = learnt_score(model, signals, log_, settings)
    if scored is not None:
        found = learnt_events(model, *scored, settings)
        yield from (Found(machine.id, MACHINE, event.start) for event in found)


def _found(
    loaded: LoadedScenario, recorded: Recorded, end: datetime, models: Models,
    settings: AnalyticsSettings,
) -> dict[str, list[Found]]:  # fmt: skip
    """Each mode's anomaly and silence events over the whole run, as (machine, signal, start)."""
    series, states = recorded
    found: dict[str, list[Found]] = {mode: [] for mode in MODES}
    for _, machine in loaded.plant.machines():
        log_ = states.get(machine.id, [])
        signals = {
            s: series[(machine.id, s)]
            for s in process_signals(machine)
            if (machine.id, s) in series
        }
        silences = [
            Found(machine.id, signal, event.start + _silence_known_after(s, settings))
            for signal, s in signals.items()
            for event in silence_events(signal, s, log_, end.timestamp(), settings)
        ]
        streaming = [*silences, *_streaming(machine, signals, log_, settings)]
        model = models.get(machine.id)
        found["streaming"] += streaming
        found["learnt"] += (
            [*silences, *_learnt(model, machine, signals, log_, settings)] if model else streaming
        )
    return found


def _silence_known_after(series: Series, settings: AnalyticsSettings) -> timedelta:
    """How long after its last value a silence of `series` is known: `silent_after` of its
    typical steps."""
    return timedelta(seconds=settings.silent_after * float(np.median(np.diff(series.t))))


def _run(
    loaded: LoadedScenario, recording: Path, models: Models, settings: AnalyticsSettings
) -> tuple[datetime, Recorded, dict[str, list[Found]]]:
    """The scenario's start, what it recorded and each mode's events over the whole run."""
    floor = run_fast(loaded, recording)
    end = floor.start + timedelta(seconds=loaded.scenario.duration)
    recorded = _signals(recording)
    return floor.start, recorded, _found(loaded, recorded, end, models, settings)


def _shows(log_: list[StateEvent], start: datetime, end: datetime) -> datetime:
    """When a fault from `start` to `end` can first show: `start` if the machine runs then,
    else its next run before `end` (`start` if none)."""
    at, later = start.timestamp(), end.timestamp()
    before = [e for e in log_ if e.time <= at]
    if before and before[-1].state is MachineState.RUNNING:
        return start
    runs = (e.time for e in log_ if at < e.time <= later and e.state is MachineState.RUNNING)
    first = next(runs, None)
    return start if first is None else datetime.fromtimestamp(first, start.tzinfo)


def learn(
    loaded: LoadedScenario, recording: Path, start: datetime, settings: AnalyticsSettings
) -> tuple[Models, dict[str, str]]:
    """Each machine's model learnt on the recording's first `LEARN_S` put in a store, and why
    each machine that was not learnt was not."""
    end = start + timedelta(seconds=LEARN_S)
    models: Models = {}
    errors: dict[str, str] = {}
    store = EmbeddedStore(recording.with_suffix(".db"))
    try:
        period = takewhile(lambda read: read[1].ts < end, _readings(recording))
        store.write([Point.from_reading(path, reading) for path, reading in period])
        for path, machine in loaded.plant.machines():
            if not process_signals(machine):
                continue
            try:
                doc = learn_machine(store, path, machine, start, end, align_s=settings.align_s)
            except LearnError as exc:
                errors[machine.id] = str(exc)
                continue
            models[machine.id] = normal_model(doc)
    finally:
        store.close()
    return models, errors


def fault_free(
    loaded: LoadedScenario, settings: AnalyticsSettings
) -> tuple[Models, dict[str, str], dict[str, dict[str, float]]]:
    """The scenario without its faults for `FAULT_FREE_S` from another seed: each machine's
    model learnt on its first `LEARN_S` (the known-good shift), why any was not, and each
    mode's events per machine per 24 h after that shift, for every machine with process
    signals."""
    scenario = loaded.scenario
    healthy = scenario.model_copy(
        update={"faults": [], "duration": FAULT_FREE_S, "seed": scenario.seed + LEARN_SEED}
    )
    with TemporaryDirectory() as folder:
        recording = Path(folder) / "fault-free.jsonl"
        floor = run_fast(loaded.model_copy(update={"scenario": healthy}), recording)
        models, errors = learn(loaded, recording, floor.start, settings)
        end = floor.start + timedelta(seconds=FAULT_FREE_S)
        found = _found(loaded, _signals(recording), end, models, settings)
    after = floor.start + timedelta(seconds=LEARN_S)
    days = (FAULT_FREE_S - LEARN_S) / 86_400.0
    watched = [m.id for _, m in loaded.plant.machines() if process_signals(m)]
    rates = {
        mode: {m: sum(f.machine == m and f.start >= after for f in found[mode]) / days
               for m in watched}
        for mode in MODES
    }  # fmt: skip
    return models, errors, rates


def evaluate(
    loaded: LoadedScenario, name: str, models: Models, settings: AnalyticsSettings
) -> dict[str, Outcome]:
    """Each mode's outcome on the scenario with its faults."""
    with TemporaryDirectory() as folder:
        start, (_, states), found = _run(loaded, Path(folder) / "run.jsonl", models, settings)
    faults = []
    for f in loaded.scenario.faults:
        begins = start + timedelta(seconds=f.at)
        ends = begins + timedelta(seconds=f.duration)
        shows = _shows(states.get(f.machine, []), begins, ends)
        faults.append(Fault(f.machine, f.kind, begins, ends, shows))
    return {mode: Outcome(name, faults, found[mode]) for mode in MODES}


def summary(outcomes: list[Outcome]) -> dict[str, float]:
    """Recall over the faults that show in process signals, precision over all events, and
    the median delay of the detected ones, from their start and from when they can show."""
    visible = [(o, f) for o in outcomes for f in o.faults if f.kind not in NOT_IN_PROCESS_SIGNALS]
    delays = [o.delays_s()[f] for o, f in visible]
    detected = [d for d in delays if d is not None]
    shown = [d for d in (o.delays_s(since_shows=True)[f] for o, f in visible) if d is not None]
    events_total = sum(len(o.found) for o in outcomes)
    return {
        "faults": len(visible),
        "detected": len(detected),
        "recall": len(detected) / len(visible) if visible else float("nan"),
        "events": events_total,
        "precision": sum(o.true_events() for o in outcomes) / events_total
        if events_total
        else float("nan"),
        "median_delay_min": statistics.median(detected) / 60 if detected else float("nan"),
        "median_delay_shown_min": statistics.median(shown) / 60 if shown else float("nan"),
    }


def against_goal(name: str, value: float, before: float) -> str:
    goal, higher = GOALS[name]
    met = value >= goal if higher else value <= goal
    sign = ">=" if higher else "<="
    verdict = "met" if met else "NOT met" if math.isfinite(value) else "undefined"
    return f"{name:30s} {value:6.2f}  goal {sign} {goal:4.2f}  ({verdict}; streaming {before:.2f})"


def _delay(delay: float | None) -> str:
    return f"after {delay / 60:5.1f} min" if delay is not None else "missed         "


def _print_faults(outcomes: dict[str, Outcome]) -> None:
    learnt, streaming = outcomes["learnt"], outcomes["streaming"]
    before = streaming.delays_s()
    for fault, delay in learnt.delays_s().items():
        seen = "  (not in process signals)" if fault.kind in NOT_IN_PROCESS_SIGNALS else ""
        if fault.shows > fault.start:
            stopped = (fault.shows - fault.start).total_seconds() / 60
            seen += f"  (began in a stop: can show after {stopped:.1f} min)"
        print(
            f"  {learnt.scenario:16s} {fault.machine:8s} {fault.kind:17s} {_delay(delay)}"
            f"  {_delay(before[fault])}{seen}"
        )
    print(
        f"  {learnt.scenario:16s} events: learnt {len(learnt.found)} ({learnt.true_events()} "
        f"true), streaming {len(streaming.found)} ({streaming.true_events()} true)"
    )


def main() -> None:
    settings = AnalyticsSettings()
    outcomes: dict[str, list[Outcome]] = {mode: [] for mode in MODES}
    rates: dict[str, dict[tuple[str, str], float]] = {mode: {} for mode in MODES}
    print(
        f"The simulator's labelled faults: learnt on the first {LEARN_S / 3600:.0f} h of a "
        "fault-free run from another seed (after), streaming (before)"
    )
    print(f"  {'scenario':16s} {'machine':8s} {'fault':17s} {'learnt':15s}  streaming")
    for name in NAMES:
        loaded = load_scenario(SCENARIOS / f"{name}.yaml")
        models, errors, healthy = fault_free(loaded, settings)
        for machine, error in errors.items():
            print(f"  {name:16s} {machine:8s} not learnt, streaming: {error}")
        found = evaluate(loaded, name, models, settings)
        _print_faults(found)
        for mode, machine_rates in healthy.items():
            outcomes[mode].append(found[mode])
            rates[mode] |= {(name, m): r for m, r in machine_rates.items()}
    figures = {mode: summary(outcomes[mode]) for mode in MODES}
    for mode in MODES:
        f = figures[mode]
        print(
            f"{mode:9s}: recall {f['recall']:.2f} ({f['detected']:.0f} of {f['faults']:.0f} faults "
            f"that show in process signals), precision {f['precision']:.2f} ({f['events']:.0f} "
            f"events), median delay {f['median_delay_min']:.1f} min from the faults' start, "
            f"{f['median_delay_shown_min']:.1f} min from when they can show"
        )
    print(
        f"Fault-free runs, the {(FAULT_FREE_S - LEARN_S) / 3600:.0f} h after the known-good "
        "shift: events per machine per 24 h, learnt (streaming)"
    )
    for name in NAMES:
        cells = [
            f"{m} {r:.0f} ({rates['streaming'][(n, m)]:.0f})"
            for (n, m), r in rates["learnt"].items()
            if n == name
        ]
        print(f"  {name:16s} " + ", ".join(cells))
    for mode in MODES:
        per_machine = rates[mode]
        worst = max(per_machine, key=lambda k: per_machine[k])
        figures[mode]["false_alarms_per_machine_day"] = per_machine[worst]  # goal: every one
        print(
            f"  {mode:9s}: worst {worst[1]} in {worst[0]}, {per_machine[worst]:.0f} per 24 h; "
            f"mean {statistics.mean(per_machine.values()):.1f}"
        )
    print("Against the goals (issue 21), learnt models:")
    for name in GOALS:
        print("  " + against_goal(name, figures["learnt"][name], figures["streaming"][name]))


if __name__ == "__main__":
    main()
