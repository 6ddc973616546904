"""An injected fault always shows: every fault kind injected while a machine runs, during a
random stop, a planned stop and a break; and a commanded breakdown that stops a machine at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from statistics import median

import pytest

from shopfloor.messages import COMPRESSOR_FAULTS, RUNNING_FAULTS, FaultKind
from shopfloor.states import MachineState
from simulators.machines import RANDOM_BREAKDOWN, Compressor
from simulators.plant_sim import PlantSim
from simulators.scenario import PlannedStop
from tests.test_simulator import scenario

START = datetime(2026, 11, 3, 7, tzinfo=UTC)
STOP_AT, STOP_S = 1800.0, 1800.0
INJECT_AT = STOP_AT + 60  # a minute into the stop
FAULT_S = 1200.0
CONTEXTS = ["running", "random stop", "planned stop", "break"]
SIGNAL = {  # the signal each fault is watched on, with cnc-01's or comp-01's id
    FaultKind.BEARING_WEAR: "vibration",
    FaultKind.OVERHEATING: "spindle_temperature",
    FaultKind.TOOL_WEAR: "spindle_load",
    FaultKind.SENSOR_STUCK: "spindle_load",
    FaultKind.SPIKE: "vibration",
    FaultKind.DROPOUT: "vibration",
    FaultKind.NETWORK_LOSS: "vibration",
    FaultKind.AIR_LEAK: "air_flow",
    FaultKind.DRIFT: "vibration",
    FaultKind.CORRELATION_BREAK: "vibration",
    FaultKind.SLOW_LEAK: "air_flow",
}


def floor_in(context: str, machine_id: str) -> PlantSim:
    """The machining plant a minute into `context` for `machine_id` (at STOP_AT)."""
    stops = {
        "planned stop": [
            PlannedStop(at=STOP_AT, duration=STOP_S, reason="maintenance", machine=machine_id)
        ],
        "break": [PlannedStop(at=STOP_AT, duration=STOP_S, reason="lunch")],
    }.get(context, [])
    floor = PlantSim(
        scenario("machining", faults=[], planned_stops=stops, seed=1),
        START,
        follow_shift_calendar=False,
    )
    floor.run_until(STOP_AT)
    if context == "random stop":  # as a station draws one; a compressor is held the same way
        floor.machines[machine_id].hold(
            RANDOM_BREAKDOWN, MachineState.UNPLANNED_STOP, "coolant_low", STOP_S
        )
    floor.run_until(INJECT_AT)
    return floor


def readings(
    floor: PlantSim, machine_id: str, signal: str, seconds: float, running_only: bool
) -> list[object]:
    """The machine's `signal` every 5 s for `seconds` (None when absent), or only while it
    runs (wear, heat and leaks change a running machine's readings)."""
    machine, path = floor.machines[machine_id], floor.paths[machine_id]
    values: list[object] = []
    end = floor.sim.now + seconds
    while floor.sim.now < end:
        floor.run_until(floor.sim.now + 5)
        if machine.state is MachineState.RUNNING or not running_only:
            values.append(floor.sample().get(path, {}).get(signal))
    return values


def shows(kind: FaultKind, values: list[object]) -> bool:
    """Whether the readings carry the fault's mark."""
    numbers = [v for v in values if isinstance(v, float)]
    checks: dict[FaultKind, Callable[[], bool]] = {
        FaultKind.BEARING_WEAR: lambda: max(numbers) > 3.5,  # 2.8 mm/s when healthy
        FaultKind.OVERHEATING: lambda: max(numbers) > 45,  # 38 degC when healthy
        FaultKind.TOOL_WEAR: lambda: max(numbers) > 70,  # 62 % when sharp
        FaultKind.SENSOR_STUCK: lambda: len(set(values)) == 1,
        FaultKind.SPIKE: lambda: max(numbers) > 7,
        FaultKind.DROPOUT: lambda: set(values) == {None},
        FaultKind.NETWORK_LOSS: lambda: set(values) == {None},
        FaultKind.AIR_LEAK: lambda: min(numbers) >= 12 * Compressor.LEAK_LOAD - 1,  # m3/min
        FaultKind.DRIFT: lambda: median(numbers[-20:]) - median(numbers[:20]) > 0.3,  # mm/s
        # stuck at the operating point it began at, noisy: 2.8 mm/s running, 0.3 stopped
        FaultKind.CORRELATION_BREAK: lambda: (
            len(set(numbers)) > 10 and max(abs(v - numbers[0]) for v in numbers) < 1.0
        ),
        FaultKind.SLOW_LEAK: lambda: numbers[-1] >= 12 * Compressor.LEAK_LOAD / 2 - 1,
    }
    return bool(values) and checks[kind]()


def target(kind: FaultKind) -> str:
    return "comp-01" if kind in COMPRESSOR_FAULTS else "cnc-01"


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("kind", list(FaultKind))
def test_an_injected_fault_shows_whatever_the_machine_is_doing(
    kind: FaultKind, context: str
) -> None:
    machine_id = target(kind)
    floor = floor_in(context, machine_id)
    machine = floor.machines[machine_id]
    was = machine.state
    opened = floor.inject(machine_id, kind, FAULT_S, SIGNAL[kind])
    held = context in ("planned stop", "break") and not (
        context == "break" and isinstance(machine, Compressor)  # a break stops stations only
    )
    if kind in RUNNING_FAULTS and held:
        # People's stops win: the fault waits, visibly, and starts when the machine runs.
        assert machine.state is MachineState.PLANNED_STOP and kind not in machine.faults
        assert opened.name == f"{kind.value}_pending" and opened.end is None
        assert opened.note == f"waits for the stop {machine.reason!r} to end"
        assert [(p.asset, p.fault) for p in floor.pending()] == [(machine_id, kind)]
        floor.run_until(STOP_AT + STOP_S + 1)
        assert kind in machine.faults and floor.pending() == []
        closed = [e.event for e in floor.take_outbox() if e.event.name == opened.name][-1]
        assert closed.start == opened.start and closed.end == floor.wall(STOP_AT + STOP_S)
    else:
        assert kind in machine.faults and opened.name == kind.value
        if kind in RUNNING_FAULTS:  # chance's stop ends: repaired, running with the fault
            assert RANDOM_BREAKDOWN not in machine.holds
            assert machine.state is not MachineState.UNPLANNED_STOP
        else:  # the machine goes on with what it did
            assert machine.state is was
    values = readings(floor, machine_id, SIGNAL[kind], FAULT_S / 2, kind in RUNNING_FAULTS)
    assert shows(kind, values), (kind, context)


def test_a_commanded_breakdown_stops_at_once_even_in_a_break_then_the_break_goes_on() -> None:
    floor = floor_in("break", "cnc-01")
    machine = floor.machines["cnc-01"]
    event = floor.break_down("cnc-01", "spindle_crash", 600)
    assert (machine.state, machine.reason) == (MachineState.UNPLANNED_STOP, "spindle_crash")
    values = floor.sample()[floor.paths["cnc-01"]]
    assert (values["state"], values["stop_reason"]) == ("unplanned_stop", "spindle_crash")
    assert (event.name, event.note, event.end) == ("breakdown", "reason=spindle_crash", None)
    assert event.start == floor.wall(INJECT_AT)
    floor.run_until(INJECT_AT + 601)
    assert (machine.state, machine.reason) == (MachineState.PLANNED_STOP, "lunch")
    closed = [e.event for e in floor.take_outbox() if e.event.name == "breakdown"]
    assert [e.end for e in closed] == [None, floor.wall(INJECT_AT + 600)]


def test_an_early_ended_stop_does_not_cut_a_later_one_short() -> None:
    floor = floor_in("random stop", "cnc-01")
    machine = floor.machines["cnc-01"]
    floor.inject("cnc-01", FaultKind.TOOL_WEAR, FAULT_S)  # ends the random stop
    floor.break_down("cnc-01", "chuck_fault", 3 * STOP_S)
    machine.hold(RANDOM_BREAKDOWN, MachineState.UNPLANNED_STOP, "chip_jam", 2 * STOP_S)
    floor.run_until(STOP_AT + STOP_S + 1)  # the first random stop's timer runs out here
    assert RANDOM_BREAKDOWN in machine.holds and machine.reason == "chuck_fault"


def test_a_reset_closes_pending_and_breakdown_events() -> None:
    floor = floor_in("break", "cnc-01")
    floor.inject("cnc-01", FaultKind.BEARING_WEAR, FAULT_S)
    floor.break_down("cnc-02", "chip_jam", 900)
    floor.take_outbox()
    floor.run_until(INJECT_AT + 60)
    floor.abort_faults()
    closed = {e.event.name: e.event for e in floor.take_outbox()}
    assert closed["bearing_wear_pending"].end == floor.wall(INJECT_AT + 60)
    assert closed["breakdown"].end == floor.wall(INJECT_AT + 60)
    assert floor.pending() == []
