"""The discrete-event simulator: declared KPIs, determinism, buffers, shifts and faults."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics.oee import Oee, oee_from_states
from shopfloor.messages import FaultKind
from shopfloor.states import MachineState
from simulators.fast import run_fast
from simulators.machines import MachineSim, Station
from simulators.plant_sim import PlantSim
from simulators.scenario import LoadedScenario, PlannedStop, ScriptedFault, load_scenario
from simulators.signals import machine_values
from tests.conftest import ROOT

SCENARIOS = ROOT / "examples" / "scenarios"


def scenario(name: str, **changes: object) -> LoadedScenario:
    loaded = load_scenario(SCENARIOS / f"{name}.yaml")
    if changes:
        loaded = loaded.model_copy(update={"scenario": loaded.scenario.model_copy(update=changes)})
    return loaded


def seconds_by_state(machine: MachineSim) -> dict[MachineState, float]:
    totals: dict[MachineState, float] = {}
    for interval in machine.log:
        totals[interval.state] = totals.get(interval.state, 0.0) + interval.end - interval.start
    return totals


def ideal_cycle_s(machine: Station) -> float:
    """Per part, over the products the machine made (each at its own ideal cycle time)."""
    ends = [run.part_count for run in machine.runs[1:]] + [machine.part_count]
    seconds = sum(
        machine.machine.ideal_cycle_time[run.product] * (end - run.part_count)
        for run, end in zip(machine.runs, ends, strict=True)
    )
    return seconds / machine.part_count


def kpis(machine: MachineSim) -> Oee:
    assert isinstance(machine, Station)
    good = machine.part_count - machine.reject_count
    return oee_from_states(
        seconds_by_state(machine), ideal_cycle_s(machine), machine.part_count, good
    )


@pytest.mark.parametrize("name", ["moulding", "moulding-bad-day", "machining", "packaging"])
def test_scenario_reproduces_its_declared_kpis(name: str) -> None:
    loaded = scenario(name)
    floor = run_fast(loaded)
    tolerance = loaded.scenario.tolerance
    assert loaded.scenario.expected, "every demo scenario declares what it yields"
    for machine_id, expected in loaded.scenario.expected.items():
        machine = floor.machines[machine_id]
        got = kpis(machine)
        assert got.availability == pytest.approx(expected.availability, abs=tolerance), machine_id
        assert got.performance == pytest.approx(expected.performance, abs=tolerance), machine_id
        assert got.quality == pytest.approx(expected.quality, abs=tolerance), machine_id
        assert got.oee == pytest.approx(expected.oee, abs=tolerance), machine_id
        good = machine.part_count - machine.reject_count
        assert expected.energy_per_good_part_kwh is not None
        assert machine.energy_kwh / good == pytest.approx(
            expected.energy_per_good_part_kwh, rel=tolerance
        )
        run_time = sum(i.end - i.start for i in machine.log)
        assert run_time == pytest.approx(loaded.scenario.duration)


def test_same_seed_same_run_whatever_the_sampling(tmp_path: Path) -> None:
    loaded = scenario("moulding", duration=2 * 3600.0)
    quiet = run_fast(loaded)
    sampled = run_fast(loaded, tmp_path / "run.jsonl")  # samples every second on the way
    for machine_id, machine in quiet.machines.items():
        other = sampled.machines[machine_id]
        assert machine.log == other.log
        assert (machine.part_count, machine.reject_count) == (other.part_count, other.reject_count)
        assert machine.energy_kwh == pytest.approx(other.energy_kwh, rel=1e-9)
    reseeded = run_fast(scenario("moulding", duration=2 * 3600.0, seed=99))
    assert reseeded.machines["imm-01"].log != quiet.machines["imm-01"].log


def test_buffers_make_starved_and_blocked_states_and_conserve_parts() -> None:
    floor = run_fast(scenario("moulding"))
    press, trimmer, packer = (floor.machines[m] for m in ("imm-01", "cnc-01", "pack-01"))
    assert seconds_by_state(press).get(MachineState.BLOCKED, 0) > 0  # the trimmer stood still
    assert seconds_by_state(packer).get(MachineState.STARVED, 0) > 0  # faster than the press
    assert isinstance(press, Station) and isinstance(trimmer, Station)
    assert press.downstream is not None and press.downstream is trimmer.upstream
    press_good = press.part_count - press.reject_count
    taken_by_trimmer = trimmer.part_count + (1 if trimmer.state is MachineState.RUNNING else 0)
    waiting_in_press = 1 if press.state is MachineState.BLOCKED else 0
    assert press_good - waiting_in_press == taken_by_trimmer + press.downstream.count


def test_shift_calendar_stops_the_line_at_night() -> None:
    floor = run_fast(scenario("packaging"))
    for station_id in ("filler", "sealer", "cartoner"):
        night = sum(
            i.end - i.start
            for i in floor.machines[station_id].log
            if i.state is MachineState.PLANNED_STOP and i.reason == "no_shift"
        )
        assert night == pytest.approx(8 * 3600)  # 22:00 to 06:00


def test_every_scripted_fault_is_ground_truth_with_its_times() -> None:
    loaded = scenario("machining")
    floor = run_fast(loaded)
    got = {(e.path.asset, e.event.name): e.event for e in floor.ground_truth}
    for fault in loaded.scenario.faults:
        event = got[(fault.machine, fault.kind.value)]
        assert event.start == floor.wall(fault.at)
        assert event.end == floor.wall(fault.at + fault.duration)


Series = list[tuple[float, object]]


def signal_series(
    loaded: LoadedScenario, machine_id: str, signal: str, every_s: float = 10.0
) -> Series:
    """Sample one signal through a whole run (None where the signal is missing)."""
    floor = PlantSim(loaded, loaded.scenario.start or pytest.fail("scenario needs a start"))
    machine = floor.machines[machine_id]
    series: Series = []
    t = 0.0
    while t < loaded.scenario.duration:
        floor.run_until(t)
        values = machine_values(machine, t, floor.noise[machine_id])
        series.append((t, values.get(signal)))
        t += every_s
    return series


def window(series: Series, start: float, end: float) -> list[float]:
    return [float(v) for t, v in series if start <= t < end and isinstance(v, int | float)]


def one_fault(
    kind: FaultKind, machine: str, at: float, duration: float, **extra: str
) -> LoadedScenario:
    fault = ScriptedFault(machine=machine, kind=kind, at=at, duration=duration, **extra)
    return scenario("machining", faults=[fault], planned_stops=[], seed=1)


def test_bearing_wear_raises_vibration_before_a_breakdown() -> None:
    loaded = one_fault(FaultKind.BEARING_WEAR, "cnc-02", at=3600, duration=5400)
    series = signal_series(loaded, "cnc-02", "vibration")
    before = statistics.median(window(series, 0, 3600))
    late = statistics.median(window(series, 3600 + 4800, 3600 + 5400))
    assert late > 2.5 * before
    floor = run_fast(loaded)
    failure = [i for i in floor.machines["cnc-02"].log if i.reason == "bearing_failure"]
    assert failure and failure[0].start == pytest.approx(3600 + 5400)
    assert failure[0].state is MachineState.UNPLANNED_STOP


def test_tool_wear_raises_scrap_and_ends_in_a_tool_change() -> None:
    worn = run_fast(one_fault(FaultKind.TOOL_WEAR, "cnc-02", at=1800, duration=5 * 3600))
    sharp = run_fast(scenario("machining", faults=[], planned_stops=[], seed=1))
    assert worn.machines["cnc-02"].reject_count > 3 * max(sharp.machines["cnc-02"].reject_count, 1)
    changes = [i for i in worn.machines["cnc-02"].log if i.reason == "tool_change"]
    assert changes and changes[0].state is MachineState.SETUP


def test_overheating_raises_temperature_then_trips() -> None:
    loaded = one_fault(FaultKind.OVERHEATING, "cnc-01", at=3600, duration=3600)
    series = signal_series(loaded, "cnc-01", "spindle_temperature")
    assert max(window(series, 6600, 7200)) > max(window(series, 0, 3600)) + 20
    trips = [i for i in run_fast(loaded).machines["cnc-01"].log if i.reason == "overheat_trip"]
    assert trips and trips[0].start == pytest.approx(7200)


def test_sensor_faults_corrupt_only_their_signal() -> None:
    stuck = signal_series(
        one_fault(FaultKind.SENSOR_STUCK, "cnc-01", 3600, 1800, signal="spindle_load"),
        "cnc-01",
        "spindle_load",
    )
    assert len(set(window(stuck, 3600, 5400))) == 1
    assert len(set(window(stuck, 5400, 7200))) > 10
    dropout = signal_series(
        one_fault(FaultKind.DROPOUT, "cnc-01", 3600, 1800, signal="vibration"),
        "cnc-01",
        "vibration",
    )
    assert all(v is None for t, v in dropout if 3600 <= t < 5400)
    assert all(v is not None for t, v in dropout if t < 3600)
    spiky = signal_series(
        one_fault(FaultKind.SPIKE, "cnc-01", 3600, 3600, signal="vibration"),
        "cnc-01",
        "vibration",
        every_s=5,
    )
    calm_max = max(window(spiky, 0, 3600))
    assert sum(v > 2 * calm_max for v in window(spiky, 3600, 7200)) >= 10


def test_air_leak_makes_the_compressor_draw_power_at_night() -> None:
    leak = [
        ScriptedFault(machine="comp-01", kind=FaultKind.AIR_LEAK, at=8 * 3600, duration=16 * 3600)
    ]
    night = {"duration": 24 * 3600.0, "planned_stops": []}
    leaking = run_fast(scenario("machining", faults=leak, **night))
    tight = run_fast(scenario("machining", faults=[], **night))
    assert leaking.machines["comp-01"].energy_kwh > tight.machines["comp-01"].energy_kwh + 40
    night_states = {i.state for i in leaking.machines["comp-01"].log if i.end > 9 * 3600}
    assert night_states == {MachineState.RUNNING}


def test_drift_moves_one_reading_slowly_away_from_the_truth() -> None:
    drifting = one_fault(FaultKind.DRIFT, "cnc-01", 3600, 3600, signal="spindle_temperature")
    clean = scenario("machining", faults=[], planned_stops=[], seed=1)
    read = [
        window(signal_series(loaded, "cnc-01", "spindle_temperature", every_s=600), 0, 3 * 3600 + 1)
        for loaded in (drifting, clean)
    ]
    offsets = [a - b for a, b in zip(*read, strict=True)]  # the same noise: a drift draws none
    # 10 noise deviations (0.4 degC) at the end, linearly: 0.67 degC every 10 minutes.
    expected = [0.0] * 7 + [4.0 * k / 6 for k in range(1, 6)] + [0.0] * 7
    assert offsets == pytest.approx(expected, abs=0.002)


def test_a_correlation_break_parts_the_compressors_pressure_from_its_flow() -> None:
    broken = one_fault(FaultKind.CORRELATION_BREAK, "comp-01", 3 * 3600, 3600, signal="pressure")
    pressure = signal_series(broken, "comp-01", "pressure")
    flow = signal_series(broken, "comp-01", "air_flow")

    def correlation(start: float, end: float) -> float:
        return statistics.correlation(window(pressure, start, end), window(flow, start, end))

    assert correlation(3600, 3 * 3600) < -0.6  # pressure dips as the flow rises
    assert abs(correlation(3 * 3600, 4 * 3600)) < 0.3
    assert correlation(4 * 3600, 6 * 3600) < -0.6


def test_a_slow_leak_grows_from_nothing_to_an_air_leak() -> None:
    night = {"duration": 24 * 3600.0, "planned_stops": []}

    def leak(kind: FaultKind) -> list[ScriptedFault]:
        return [ScriptedFault(machine="comp-01", kind=kind, at=8 * 3600, duration=16 * 3600)]

    flow = signal_series(scenario("machining", faults=leak(FaultKind.SLOW_LEAK), **night),
                         "comp-01", "air_flow", every_s=60)  # fmt: skip
    # Only the leak draws air after the shift (15:00, 8 h in): 4.2 m3/min at its end.
    assert statistics.median(window(flow, 10 * 3600, 11 * 3600)) < 1.2
    assert statistics.median(window(flow, 22 * 3600, 23 * 3600)) > 3.5


def test_network_loss_leaves_a_gap_in_the_machine_data() -> None:
    loaded = one_fault(FaultKind.NETWORK_LOSS, "cnc-02", at=600, duration=600)
    floor = PlantSim(loaded, loaded.scenario.start or pytest.fail("no start"))
    path = floor.paths["cnc-02"]
    present = []
    for t in range(0, 1800, 60):
        floor.run_until(t)
        present.append((t, path in floor.sample()))
    assert all(seen for t, seen in present if t < 600 or t >= 1200)
    assert not any(seen for t, seen in present if 600 <= t < 1200)


def test_aborted_faults_close_their_events_at_once() -> None:
    loaded = one_fault(FaultKind.BEARING_WEAR, "cnc-02", at=600, duration=3600)
    floor = PlantSim(loaded, loaded.scenario.start or pytest.fail("no start"))
    floor.run_until(1200)
    opened = floor.take_outbox()
    assert [e.event.end for e in opened] == [None]
    floor.abort_faults()
    [closed] = floor.take_outbox()
    assert closed.event.start == opened[0].event.start
    assert closed.event.end == floor.wall(1200)
    assert floor.machines["cnc-02"].faults == {}


def test_stop_reasons_are_published_with_the_state() -> None:
    floor = run_fast(scenario("machining"))
    machine = floor.machines["cnc-01"]
    assert any(i.reason == "fixture_change" for i in machine.log)
    values = machine_values(machine, floor.sim.now, floor.noise["cnc-01"])
    assert values["stop_reason"] == machine.reason


def test_an_idle_spell_is_an_availability_loss_not_planned_time() -> None:
    idle = PlannedStop(at=3600, duration=1800, kind="idle", reason="no_operator", machine="cnc-02")
    loaded = scenario("machining", faults=[], planned_stops=[idle], duration=4 * 3600.0)
    machine = run_fast(loaded).machines["cnc-02"]
    spells = [i for i in machine.log if i.state is MachineState.IDLE]
    assert [(i.start, i.reason) for i in spells][:1] == [(3600, "no_operator")]
    assert sum(i.end - i.start for i in spells) == pytest.approx(1800, abs=300)  # ends with a cycle
    assert kpis(machine).availability < 0.9


@pytest.mark.parametrize("name", ["moulding", "machining", "packaging"])
def test_no_process_value_below_its_physical_minimum(name: str) -> None:
    """A whole run of each example plant, faults included, sampled every 5 s: noise around a
    stopped machine's zero never reads as a negative pressure, speed, flow or load."""
    loaded = scenario(name)
    floor = PlantSim(loaded, datetime(2026, 3, 2, 6, tzinfo=UTC))
    lowest: dict[str, float] = {}
    for step in range(1, int(loaded.scenario.duration / 5) + 1):
        floor.run_until(step * 5.0)
        for values in floor.sample().values():
            for signal, value in values.items():
                if isinstance(value, float) and "temperature" not in signal:
                    lowest[signal] = min(value, lowest.get(signal, value))
    assert lowest and min(lowest.values()) >= 0.0, lowest
    for signal in {"injection_pressure", "spindle_load", "belt_speed", "air_flow"} & lowest.keys():
        assert lowest[signal] == 0.0, signal  # it stopped, and read zero then
