"""The three demo SMEs of the simulator scenarios, assessed for a fresh demo.

Each SME's answers (`examples/readiness/<scenario>.yaml`) are scored with evidence from a fast
run of its scenario (`examples/scenarios/<scenario>.yaml`): the same indicator formulas as the
live store's (`live.plant_indicators`), fed from the simulator's own state log and counters.
A fast run takes under a second, where recording it and writing it into the store would take a
minute per SME; the live demo's SME can then be reassessed from the store on the dashboard.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path

from readiness.answers import load_answers
from readiness.assessment import run_assessment
from readiness.evidence import Evidence
from readiness.indicators import AlarmEvent, PartCount, StateRecord, platform_state_code
from readiness.live import HEARTBEAT, MachineData, PlantData, plant_indicators
from readiness.persistence import ReadinessStore
from simulators.fast import run_fast
from simulators.machines import Station
from simulators.plant_sim import PlantSim
from simulators.scenario import load_scenario

log = logging.getLogger(__name__)

DEMO_SCENARIOS = ("moulding", "machining", "packaging")
EXAMPLES = Path("examples")


def simulated_counts(station: Station, machine_id: str, origin: float) -> list[PartCount]:
    """Each product run's parts as two records, its first part and the rest at its last, so
    that a changeover shows between one run's last part and the next run's first."""
    ends = [(r.part_count, r.reject_count) for r in station.runs[1:]]
    ends.append((station.part_count, station.reject_count))
    counts = []
    for run, (parts_end, rejects_end) in zip(station.runs, ends, strict=True):
        parts, rejects = parts_end - run.part_count, rejects_end - run.reject_count
        if run.first_part_at is None or run.last_part_at is None or parts == 0:
            continue
        good, first_good = parts - rejects, 1.0 if parts > rejects else 0.0
        at_first, at_last = origin + run.first_part_at, origin + run.last_part_at
        first = PartCount(at_first, machine_id, run.product, first_good, 1 - first_good)
        rest = PartCount(
            at_last, machine_id, run.product, good - first_good, rejects - 1 + first_good
        )
        counts += [first, rest] if parts > 1 else [first]
    return counts


def simulated_plant_data(floor: PlantSim, duration_s: float) -> PlantData:
    """What the store would hold of a whole run: the simulator reads every signal of every
    machine and sensor kit each sample, so each is seen throughout; its faults are the alarms,
    none acknowledged; there is no dashboard."""
    origin = floor.start.timestamp()
    step = HEARTBEAT.total_seconds()
    beats = [origin + k * step for k in range(int(duration_s // step) + 1)]
    machines = {
        machine_id: MachineData(
            states=[
                StateRecord(origin + i.start, platform_state_code(i.state, i.reason))
                for i in sim.log
            ],
            seen=beats,
            counts=simulated_counts(sim, machine_id, origin) if isinstance(sim, Station) else [],
        )
        for machine_id, sim in floor.machines.items()
    }
    return PlantData(
        start=origin,
        end=origin + duration_s,
        machines=machines,
        alarms=[AlarmEvent(e.event.start.timestamp()) for e in floor.ground_truth],
        zone_seen={path.cell: beats for path, _ in floor.plant.sensors()},
        views=None,
    )


def simulated_evidence(scenario_file: Path, risk_zones: Collection[str]) -> Evidence:
    """The indicators of a fast run of the scenario over its whole duration."""
    loaded = load_scenario(scenario_file)
    duration = timedelta(seconds=loaded.scenario.duration)
    floor = run_fast(loaded)
    data = simulated_plant_data(floor, duration.total_seconds())
    return Evidence(
        plant_indicators(loaded.plant, data, risk_zones),
        window_start=floor.start,
        window_end=floor.start + duration,
        source=f"a simulated run of {scenario_file.name}",
    )


def seed_demo_smes(
    database: Path,
    examples: Path = EXAMPLES,
    taken_at: datetime | None = None,
    stopping: threading.Event | None = None,
) -> list[str]:
    """Assess every demo SME that has no snapshot in the database yet, dated `taken_at` (default:
    now); returns those assessed. Once `stopping` is set no further SME is begun: a demo being
    stopped waits for one fast run at most.

    An SME already there keeps its history: a restarted demo does not add a snapshot each time.
    """
    assessed = []
    with ReadinessStore(database) as store:
        known = set(store.smes())
        for scenario in DEMO_SCENARIOS:
            answers = load_answers(examples / "readiness" / f"{scenario}.yaml")
            if answers.sme in known:
                continue
            if stopping is not None and stopping.is_set():
                break
            scenario_file = examples / "scenarios" / f"{scenario}.yaml"
            store.save(
                run_assessment(
                    answers, simulated_evidence(scenario_file, answers.risk_zones), taken_at
                )
            )
            assessed.append(answers.sme)
    log.info("demo SMEs assessed into %s: %s", database, ", ".join(assessed) or "none new")
    return assessed
