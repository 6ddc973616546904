"""A whole plant under one scenario: machines wired into lines, shifts, stops and faults.

`PlantSim` owns the simulated clock. Runners drive it: `run_until` as fast as possible for
backfills and tests, or tick by tick against the wall clock for live demos.
"""

from __future__ import annotations

import functools
import logging
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shopfloor.messages import (
    COMPRESSOR_FAULTS,
    RUNNING_FAULTS,
    SIGNAL_FAULTS,
    AssetPath,
    Event,
    FaultKind,
    PendingFault,
)
from shopfloor.plant import MachineType, SensorDevice, Shift
from shopfloor.states import MachineState
from simulators.engine import Simulation
from simulators.machines import ActiveFault, Buffer, Compressor, MachineSim, Station
from simulators.scenario import LoadedScenario, ScriptedFault
from simulators.signals import Value, faulty_signal, machine_values, sensor_values

log = logging.getLogger(__name__)

BREAKDOWN_EVENT = "breakdown"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def seeded(seed: int, key: str) -> random.Random:
    """A generator of its own for each asset and purpose, fixed by the run's seed."""
    return random.Random(seed * 1_000_003 + zlib.crc32(key.encode()))


def shift_gaps(
    shifts: list[Shift], tz: ZoneInfo, start: datetime, duration_s: float
) -> list[tuple[float, float]]:
    """The stretches of [0, duration) outside every shift, in seconds from `start`."""
    if not shifts:
        return []
    local_start = start.astimezone(tz)
    worked: list[tuple[float, float]] = []
    for day_offset in range(-1, int(duration_s // 86400) + 2):
        day = (local_start + timedelta(days=day_offset)).date()
        for shift in shifts:
            if WEEKDAYS[day.weekday()] not in shift.days:
                continue
            begin = datetime.combine(day, shift.start, tz)
            end = datetime.combine(day, shift.end, tz)
            if end <= begin:
                end += timedelta(days=1)
            worked.append(((begin - start).total_seconds(), (end - start).total_seconds()))
    gaps: list[tuple[float, float]] = []
    cursor = 0.0
    for shift_begin, shift_end in sorted(worked):
        if shift_begin > cursor:
            gaps.append((cursor, min(shift_begin, duration_s)))
        cursor = max(cursor, shift_end)
    if cursor < duration_s:
        gaps.append((cursor, duration_s))
    return [(a, b) for a, b in gaps if b > a and a < duration_s]


@dataclass(frozen=True)
class AssetEvent:
    path: AssetPath
    event: Event


@dataclass(frozen=True)
class Waiting:
    """A fault of RUNNING_FAULTS injected while its machine was held: it starts when it runs."""

    kind: FaultKind
    duration_s: float
    signal: str | None
    notice: Event  # the open `<fault>_pending` event, closed when the fault starts


class PlantSim:
    """Every machine and sensor kit of a scenario's plant on one simulated clock."""

    def __init__(self, loaded: LoadedScenario, start: datetime, follow_shift_calendar: bool = True):
        self.scenario, self.plant = loaded.scenario, loaded.plant
        self.start = start
        self.sim = Simulation()
        self.machines: dict[str, MachineSim] = {}
        self.paths: dict[str, AssetPath] = {}
        self.sensors: list[tuple[AssetPath, SensorDevice]] = list(self.plant.sensors())
        self.noise = {key: seeded(self.scenario.seed, f"noise:{key}") for key in self._asset_ids()}
        self.ground_truth: list[AssetEvent] = []
        self.outbox: list[AssetEvent] = []  # events to publish, open ones and closed ones
        self.waiting: dict[tuple[str, FaultKind], Waiting] = {}
        self.breakdowns: list[AssetEvent] = []  # commanded ones, as they will be closed
        self._build_lines()
        self._schedule(follow_shift_calendar)

    def _asset_ids(self) -> list[str]:
        return [m.id for _, m in self.plant.machines()] + [s.id for _, s in self.sensors]

    def _build_lines(self) -> None:
        seed = self.scenario.seed
        for area in self.plant.site.areas:
            for line in area.lines:
                previous: Station | None = None
                for machine in line.machines:
                    path = AssetPath(
                        self.plant.tenant.id, self.plant.site.id, area.id, line.id, machine.id
                    )
                    self.paths[machine.id] = path
                    behaviour = self.scenario.behaviour(machine.id)
                    rng = seeded(seed, machine.id)
                    if machine.type is MachineType.COMPRESSOR:
                        self.machines[machine.id] = Compressor(self.sim, machine, behaviour, rng)
                        continue
                    upstream = None
                    capacity = self.scenario.buffers.get(machine.id)
                    if capacity is not None and previous is not None:
                        upstream = Buffer(capacity)
                        previous.downstream = upstream
                    station = Station(
                        self.sim, machine, behaviour, rng, self.scenario.product, upstream
                    )
                    self.machines[machine.id] = station
                    previous = station

    def stations(self) -> list[Station]:
        return [m for m in self.machines.values() if isinstance(m, Station)]

    def running_share(self) -> float:
        """The share of stations running now: the floor's air demand, heat and noise."""
        stations = self.stations()
        return sum(s.state is MachineState.RUNNING for s in stations) / max(len(stations), 1)

    def _schedule(self, follow_shift_calendar: bool) -> None:
        scenario = self.scenario
        tz = ZoneInfo(self.plant.site.timezone)
        shifts = self.plant.shifts if follow_shift_calendar else []
        for number, (begin, end) in enumerate(
            shift_gaps(shifts, tz, self.start, scenario.duration)
        ):
            for station in self.stations():
                self._hold_between(
                    station, f"no_shift:{number}", MachineState.PLANNED_STOP, "no_shift", begin, end
                )
        for number, stop in enumerate(scenario.planned_stops):
            targets = [self.machines[stop.machine]] if stop.machine else list(self.stations())
            state = MachineState(stop.kind)
            if stop.product is not None:
                self.sim.at(stop.at, functools.partial(self._load, targets, stop.product))
            for machine in targets:
                self._hold_between(
                    machine,
                    f"planned:{number}",
                    state,
                    stop.reason,
                    stop.at,
                    stop.at + stop.duration,
                )
        for fault in scenario.faults:
            self.sim.at(fault.at, functools.partial(self._scripted_fault, fault))
        for station in self.stations():
            self.sim.at(0.0, station.resume)
        self.sim.at(0.0, self._update_air_demand)

    @staticmethod
    def _load(machines: Sequence[MachineSim], product: str) -> None:
        for machine in machines:
            if isinstance(machine, Station):
                machine.load(product)

    def _hold_between(
        self,
        machine: MachineSim,
        key: str,
        state: MachineState,
        reason: str,
        begin: float,
        end: float,
    ) -> None:
        self.sim.at(begin, lambda: machine.hold(key, state, reason, end - begin))

    def _update_air_demand(self) -> None:
        """Compressors follow the floor's air demand, re-read every sample interval."""
        running = self.running_share()
        for machine in self.machines.values():
            if isinstance(machine, Compressor):
                machine.update_demand(running)
        self.sim.after(self.scenario.sample_interval, self._update_air_demand)

    # --- driving the clock --------------------------------------------------------------
    def wall(self, seconds: float) -> datetime:
        """The simulated wall-clock time of `seconds` into the run."""
        return self.start + timedelta(seconds=seconds)

    def run_until(self, seconds: float) -> None:
        self.sim.run_until(seconds)

    def finish(self) -> None:
        """Close every machine's state log at the current time (end of a run)."""
        for machine in self.machines.values():
            machine.close_log()

    # --- faults --------------------------------------------------------------------------
    def inject(
        self, machine_id: str, kind: FaultKind, duration_s: float, signal: str | None = None
    ) -> Event:
        """Start a fault now, or announce it as pending; return the event published.

        An injected fault always shows. Sensor and network faults show on the signals whatever
        the machine does, so they start at once. Wear, heat and leaks change what a running
        machine does, so they take precedence over chance: a random breakdown or micro-stop
        ends (the machine is repaired and runs with the fault, its vibration or temperature
        climbing). What people decided keeps precedence over them: during a break, a planned
        stop, a changeover, an operator's stop, a commanded breakdown or the stop an earlier
        fault ended in, the fault waits and starts when the machine runs again, announced
        meanwhile by an open `<fault>_pending` event (the note names the stop it waits for)
        and in `pending()`. A visitor so sees either the fault or why it has not started yet.
        """
        machine = self.machines.get(machine_id)
        if machine is None:
            raise KeyError(f"no machine {machine_id!r} in this plant")
        if kind in COMPRESSOR_FAULTS and not isinstance(machine, Compressor):
            raise ValueError(f"{machine_id} is not a compressor: an air leak needs one")
        if kind in RUNNING_FAULTS:
            machine.end_random_stops()
            held = machine.top_hold()
            if held is not None:
                return self._wait(machine_id, kind, duration_s, signal, held[1])
        return self._start(machine_id, kind, duration_s, signal)

    def _start(
        self, machine_id: str, kind: FaultKind, duration_s: float, signal: str | None
    ) -> Event:
        machine = self.machines[machine_id]
        fault = machine.start_fault(kind, duration_s, signal)
        opened = self._event(machine, fault, end=None)
        path = self.paths[machine_id]
        self.outbox.append(AssetEvent(path, opened))
        closed = self._event(machine, fault, end=fault.end)
        self.sim.at(fault.end, lambda: self._close(AssetEvent(path, closed)))
        return opened

    def _wait(
        self, machine_id: str, kind: FaultKind, duration_s: float, signal: str | None, stop: str
    ) -> Event:
        key = (machine_id, kind)
        self._end_wait(key)  # injected again while waiting: the new one replaces it
        notice = Event(
            name=f"{kind.value}_pending",
            start=self.wall(self.sim.now),
            note=f"waits for the stop {stop!r} to end",
        )
        waiting = Waiting(kind, duration_s, signal, notice)
        self.waiting[key] = waiting
        self.outbox.append(AssetEvent(self.paths[machine_id], notice))
        self.machines[machine_id].when_running(lambda: self._start_waiting(key, waiting))
        log.info("%s on %s waits for the stop %r to end", kind.value, machine_id, stop)
        return notice

    def _start_waiting(self, key: tuple[str, FaultKind], waiting: Waiting) -> None:
        if self.waiting.get(key) is waiting:
            self._end_wait(key)
            self._start(key[0], waiting.kind, waiting.duration_s, waiting.signal)

    def _end_wait(self, key: tuple[str, FaultKind]) -> None:
        """Close a waiting fault's pending event now (it starts, or it is replaced)."""
        waiting = self.waiting.pop(key, None)
        if waiting is not None:
            closed = waiting.notice.model_copy(update={"end": self.wall(self.sim.now)})
            self.outbox.append(AssetEvent(self.paths[key[0]], closed))

    def break_down(self, machine_id: str, reason: str, duration_s: float) -> Event:
        """Stop a machine now with `reason` (MachineSim.break_down), published as an open
        `breakdown` event whose note names the reason, closed when the repair is done."""
        machine = self.machines.get(machine_id)
        if machine is None:
            raise KeyError(f"no machine {machine_id!r} in this plant")
        machine.break_down(reason, duration_s)
        now, path = self.sim.now, self.paths[machine_id]
        opened = Event(name=BREAKDOWN_EVENT, start=self.wall(now), note=f"reason={reason}")
        self.outbox.append(AssetEvent(path, opened))
        closed = AssetEvent(path, opened.model_copy(update={"end": self.wall(now + duration_s)}))
        self.breakdowns.append(closed)
        self.sim.at(now + duration_s, lambda: self._close(closed))
        return opened

    def pending(self) -> list[PendingFault]:
        """The faults waiting for their machine to run, with the stop each waits for."""
        return [
            PendingFault(asset=machine_id, fault=kind, waits_for=self._held_reason(machine_id))
            for machine_id, kind in self.waiting
        ]

    def _held_reason(self, machine_id: str) -> str:
        held = self.machines[machine_id].top_hold()
        return held[1] if held else self.machines[machine_id].state.value

    def _event(self, machine: MachineSim, fault: ActiveFault, end: float | None) -> Event:
        note = (
            f"signal={faulty_signal(machine, fault.signal)}" if fault.kind in SIGNAL_FAULTS else ""
        )
        return Event(
            name=fault.kind.value,
            start=self.wall(fault.start),
            end=None if end is None else self.wall(end),
            note=note,
        )

    def abort_faults(self) -> None:
        """End every fault and commanded breakdown now (a reset or a new scenario), closing
        their events in the outbox, and forget the faults that were waiting."""
        for key in list(self.waiting):
            self._end_wait(key)
        now = self.wall(self.sim.now)
        for item in self.breakdowns:
            if item.event.end is not None and item.event.end > now:
                self._close(AssetEvent(item.path, item.event.model_copy(update={"end": now})))
        self.breakdowns = []
        for machine_id, machine in self.machines.items():
            for fault in list(machine.faults.values()):
                del machine.faults[fault.kind]
                event = self._event(machine, fault, end=self.sim.now)
                self._close(AssetEvent(self.paths[machine_id], event))

    def _scripted_fault(self, fault: ScriptedFault) -> None:
        self.inject(fault.machine, fault.kind, fault.duration, fault.signal)

    def _close(self, event: AssetEvent) -> None:
        self.ground_truth.append(event)
        self.outbox.append(event)

    def take_outbox(self) -> list[AssetEvent]:
        events, self.outbox = self.outbox, []
        return events

    # --- sampling ------------------------------------------------------------------------
    def sample(self) -> dict[AssetPath, dict[str, Value]]:
        """What every sensor reads now; machines cut off by a network loss are left out."""
        now = self.sim.now
        values: dict[AssetPath, dict[str, Value]] = {}
        for machine_id, machine in self.machines.items():
            if FaultKind.NETWORK_LOSS not in machine.faults:
                values[self.paths[machine_id]] = machine_values(
                    machine, now, self.noise[machine_id]
                )
        running = self.running_share()
        for path, sensor in self.sensors:
            values[path] = dict(sensor_values(sensor, running, now, self.noise[sensor.id]))
        return values
