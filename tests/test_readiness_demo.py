"""The three demo SMEs: their answers with evidence computed from a run of their simulated
plant come out as three different archetypes."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.readiness.answers import SmeAnswers, load_answers
from analytics.readiness.assessment import run_assessment
from analytics.readiness.evidence import Evidence, Indicators
from analytics.readiness.indicators import (
    AlarmEvent,
    PartCount,
    StateRecord,
    anomaly_response,
    connectivity,
    environment_coverage,
    machine_timeline,
    no_data_seconds,
    oee_visible,
    platform_state_code,
    reason_coverage,
    share,
    standard_time_coverage,
)
from simulators.fast import run_fast
from simulators.machines import Station
from simulators.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT_S = 60  # the simulator publishes every second; one point a minute is plenty here


def simulated_evidence(scenario_file: Path, answers: SmeAnswers) -> Evidence:
    """The indicators a run of the scenario yields over its own duration.

    No dashboard access log, main meter or rated power exists yet, so DU and EC are null;
    the scenario makes one product, so CO is null; every sensor kit reports throughout.
    """
    loaded = load_scenario(scenario_file)
    floor = run_fast(loaded)
    plant, end = loaded.plant, loaded.scenario.duration
    beats = [float(t) for t in range(0, int(end), HEARTBEAT_S)]
    timelines = {
        machine_id: machine_timeline(
            [StateRecord(i.start, platform_state_code(i.state, i.reason)) for i in machine.log],
            0,
            end,
            beats,
        )
        for machine_id, machine in floor.machines.items()
    }
    links = connectivity({m: no_data_seconds(t) for m, t in timelines.items()}, end)
    counts = [
        PartCount(
            end,
            m.machine.id,
            loaded.scenario.product,
            m.part_count - m.reject_count,
            m.reject_count,
        )
        for m in floor.machines.values()
        if isinstance(m, Station)
    ]
    cycle_times = {machine.id: machine.ideal_cycle_time for _, machine in plant.machines()}
    visible = [
        oee_visible(
            machine_id in links.connected,
            [c for c in counts if c.machine == machine_id],
            cycle_times[machine_id],
            timelines[machine_id],
            bool(plant.shifts),
        )
        for machine_id in timelines
    ]
    faults = [AlarmEvent((e.event.start - floor.start).total_seconds()) for e in floor.ground_truth]
    zones = {
        area_zone.id: 1.0
        for area in plant.site.areas
        for area_zone in area.zones
        if area_zone.sensors
    }
    indicators = Indicators(
        DC=links.data_completeness,
        CC=links.coverage,
        OV=share(visible),
        RC=reason_coverage(timelines.values()),
        ART=anomaly_response(faults, 0, end, bool(links.connected)),
        EV=environment_coverage(zones, answers.risk_zones),
        STD=standard_time_coverage(counts, {loaded.scenario.product: 1.0}),
    )
    return Evidence(indicators, source=str(scenario_file))


@pytest.mark.parametrize(
    ("name", "archetype"),
    [("moulding", "Tech-led"), ("machining", "Lean-led"), ("packaging", "Lean 4.0 integrator")],
)
def test_demo_sme_archetype_from_its_simulated_plant(name: str, archetype: str) -> None:
    answers = load_answers(ROOT / "examples" / "readiness" / f"{name}.yaml")
    evidence = simulated_evidence(ROOT / "examples" / "scenarios" / f"{name}.yaml", answers)
    card = run_assessment(answers, evidence).scorecard
    assert evidence.indicators.CC == 1.0
    assert card.archetype.name == archetype, (card.archetype, [d.final for d in card.dimensions])
