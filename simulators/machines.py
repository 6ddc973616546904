"""Machines as discrete-event processes: stations of a flow line, buffers and the compressor.

Every machine is always in exactly one state of the platform's taxonomy (`MachineState`, with
its ISO 22400 time element, in shopfloor/states.py) and logs each state interval,
so that a run carries its own ground truth for availability, performance and quality.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from shopfloor.messages import FaultKind
from shopfloor.plant import Machine, MachineType
from shopfloor.states import BEARING_FAILURE, OVERHEAT_TRIP, MachineState
from simulators.engine import Simulation
from simulators.scenario import MachineBehaviour

# Hold keys: the stops a station draws by chance, and a breakdown commanded from the controls.
RANDOM_BREAKDOWN, MICRO_STOP, BREAKDOWN_NOW = "breakdown", "micro_stop", "breakdown_now"
RANDOM_STOPS = frozenset({RANDOM_BREAKDOWN, MICRO_STOP})
# Which hold wins when several apply at once (a break during a repair is still a break); a
# commanded breakdown wins over them all, since it is asked for to be seen at once.
HOLD_PRIORITY = [
    MachineState.PLANNED_STOP,
    MachineState.SETUP,
    MachineState.UNPLANNED_STOP,
    MachineState.IDLE,
    MachineState.MICRO_STOP,
]

RUNNING_POWER_KW = {
    MachineType.CNC: 7.5,
    MachineType.INJECTION_MOULDING: 18.0,
    MachineType.PACKAGING: 2.2,
    MachineType.COMPRESSOR: 11.0,
    MachineType.ASSEMBLY: 1.5,
    MachineType.OTHER: 3.0,
}
POWER_SHARE = {
    MachineState.RUNNING: 1.0,
    MachineState.MICRO_STOP: 0.45,
    MachineState.IDLE: 0.35,
    MachineState.STARVED: 0.35,
    MachineState.BLOCKED: 0.35,
    MachineState.SETUP: 0.3,
    MachineState.UNPLANNED_STOP: 0.15,
    MachineState.PLANNED_STOP: 0.05,
}
CYCLE_NOISE = 0.02  # relative standard deviation of one cycle's duration


@dataclass(frozen=True)
class StateInterval:
    start: float
    end: float
    state: MachineState
    reason: str


@dataclass
class ProductRun:
    """A product loaded at `start`, the machine's counters then, and when its first and last
    parts came off the machine (None before the first)."""

    start: float
    product: str
    part_count: int
    reject_count: int
    first_part_at: float | None = None
    last_part_at: float | None = None


@dataclass
class ActiveFault:
    kind: FaultKind
    start: float
    end: float
    signal: str | None = None
    frozen: dict[str, float | int | str] = field(default_factory=dict)

    def progress(self, now: float) -> float:
        """0 at the start of the fault, 1 at its end: how far wear or heat has grown."""
        return min(max((now - self.start) / (self.end - self.start), 0.0), 1.0)


class MachineSim:
    """What every simulated machine shares: state with its log, energy meter and faults."""

    def __init__(
        self, sim: Simulation, machine: Machine, behaviour: MachineBehaviour, rng: random.Random
    ):
        self.sim, self.machine, self.behaviour, self.rng = sim, machine, behaviour, rng
        self.state = MachineState.IDLE
        self.reason = ""
        self.since = 0.0
        self.log: list[StateInterval] = []
        self.energy_kwh = 0.0
        self._metered_at = 0.0
        self.part_count = 0
        self.reject_count = 0
        self.product = ""  # none: the machine makes no parts
        self.runs: list[ProductRun] = []
        self.faults: dict[FaultKind, ActiveFault] = {}
        self.holds: dict[str, tuple[MachineState, str]] = {}
        self._on_running: list[Callable[[], None]] = []

    # --- state and energy -------------------------------------------------------------
    def power_kw(self) -> float:
        override = self.behaviour.power_kw.get(self.state.value)
        if override is not None:
            return override
        power = RUNNING_POWER_KW[self.machine.type] * POWER_SHARE[self.state]
        bearing = self.faults.get(FaultKind.BEARING_WEAR)
        if bearing and self.state is MachineState.RUNNING:
            power *= 1 + 0.08 * bearing.progress(self.sim.now)  # friction costs energy
        return power

    def meter(self) -> float:
        """Bring the energy meter up to now and return it (kWh)."""
        now = self.sim.now
        self.energy_kwh += self.power_kw() * (now - self._metered_at) / 3600
        self._metered_at = now
        return self.energy_kwh

    def set_state(self, state: MachineState, reason: str = "") -> None:
        if state is self.state and reason == self.reason:
            return
        self.meter()
        now = self.sim.now
        if now > self.since:
            self.log.append(StateInterval(self.since, now, self.state, self.reason))
        self.state, self.reason, self.since = state, reason, now
        if state is MachineState.RUNNING and self._on_running:
            waiting, self._on_running = self._on_running, []
            for action in waiting:
                action()

    def when_running(self, action: Callable[[], None]) -> None:
        """Call `action` once, the next time the machine starts running."""
        self._on_running.append(action)

    def close_log(self) -> None:
        """Log the current state up to now (at the end of a run)."""
        self.meter()
        if self.sim.now > self.since:
            self.log.append(StateInterval(self.since, self.sim.now, self.state, self.reason))
            self.since = self.sim.now

    # --- holds: planned stops, setups, breakdowns, micro-stops ----------------------------
    def top_hold(self) -> tuple[MachineState, str] | None:
        if not self.holds:
            return None
        key = min(
            self.holds,
            key=lambda k: (k != BREAKDOWN_NOW, HOLD_PRIORITY.index(self.holds[k][0])),
        )
        return self.holds[key]

    def hold(self, key: str, state: MachineState, reason: str, duration: float | None) -> None:
        """Stop the machine for `duration` seconds (None: until `release(key)`)."""
        self.interrupt()
        held = (state, reason)
        self.holds[key] = held
        self.set_state(*self.top_hold())  # type: ignore[misc]
        if duration is not None:
            self.sim.after(duration, lambda: self._expire(key, held))

    def _expire(self, key: str, held: tuple[MachineState, str]) -> None:
        """A timed hold's end, unless it was ended early and `key` is held anew since."""
        if self.holds.get(key) is held:
            self.release(key)

    def release(self, key: str) -> None:
        if self.holds.pop(key, None) is not None:
            self.resume()

    def break_down(self, reason: str, duration: float) -> None:
        """Stop unplanned now with `reason`, whatever the machine was doing; a stop it cuts
        into (a break, a changeover) holds again afterwards if it is still due."""
        self.hold(BREAKDOWN_NOW, MachineState.UNPLANNED_STOP, reason, duration)

    def end_random_stops(self) -> None:
        """End the breakdown or micro-stop that chance put the machine in: repaired now."""
        random_stops = RANDOM_STOPS & self.holds.keys()
        for key in random_stops:
            del self.holds[key]
        if random_stops:
            self.resume()

    def interrupt(self) -> None:
        """Pause work in progress; subclasses keep what is needed to carry on later."""

    def resume(self) -> None:
        """Decide what to do next; every change of circumstance ends here."""
        top = self.top_hold()
        if top is not None:
            self.set_state(*top)

    # --- faults ------------------------------------------------------------------------
    def start_fault(
        self, kind: FaultKind, duration: float, signal: str | None = None
    ) -> ActiveFault:
        now = self.sim.now
        fault = ActiveFault(kind, now, now + duration, signal)
        self.faults[kind] = fault
        self.sim.after(duration, lambda: self.end_fault(fault))
        return fault

    def end_fault(self, fault: ActiveFault) -> None:
        """A fault's end; wear and heat end in a stop, as they do on a real machine."""
        if self.faults.get(fault.kind) is not fault:
            return
        del self.faults[fault.kind]
        repair = self.behaviour.mttr
        if fault.kind is FaultKind.BEARING_WEAR:
            self.hold(BEARING_FAILURE, MachineState.UNPLANNED_STOP, BEARING_FAILURE, 3 * repair)
        elif fault.kind is FaultKind.OVERHEATING:
            self.hold(OVERHEAT_TRIP, MachineState.UNPLANNED_STOP, OVERHEAT_TRIP, repair)
        elif fault.kind is FaultKind.TOOL_WEAR:
            self.hold("tool_change", MachineState.SETUP, "tool_change", 600.0)

    def reject_rate(self) -> float:
        rate = self.behaviour.reject_rate
        tool = self.faults.get(FaultKind.TOOL_WEAR)
        if tool:
            rate += 0.4 * tool.progress(self.sim.now) ** 2  # scrap rises as the edge dulls
        return min(rate, 1.0)


@dataclass
class Buffer:
    """Parts waiting between two stations; a full buffer blocks, an empty one starves."""

    capacity: int
    count: int = 0
    producer: Station | None = None
    consumer: Station | None = None

    def put(self, sim: Simulation) -> None:
        self.count += 1
        if self.consumer is not None:
            waiting, self.consumer = self.consumer, None
            sim.after(0, waiting.resume)

    def take(self, sim: Simulation) -> None:
        self.count -= 1
        if self.producer is not None:
            waiting, self.producer = self.producer, None
            sim.after(0, waiting.resume)

    @property
    def full(self) -> bool:
        return self.count >= self.capacity


class Station(MachineSim):
    """A machine making parts one cycle at a time, between optional buffers."""

    def __init__(
        self,
        sim: Simulation,
        machine: Machine,
        behaviour: MachineBehaviour,
        rng: random.Random,
        product: str,
        upstream: Buffer | None = None,
        downstream: Buffer | None = None,
    ):
        super().__init__(sim, machine, behaviour, rng)
        self.ideal_cycle_s = 0.0
        self.load(product)
        self.upstream, self.downstream = upstream, downstream
        self._cycle_token = 0
        self._cycle_ends_at: float | None = None
        self._remaining_s: float | None = None
        self._finished_part = False  # a good part waiting for room downstream

    def load(self, product: str) -> None:
        """Make `product` from now on, at its ideal cycle time (or the machine's first one)."""
        times = self.machine.ideal_cycle_time
        self.ideal_cycle_s = times.get(product) or next(iter(times.values()))
        self.product = product
        self.runs.append(ProductRun(self.sim.now, product, self.part_count, self.reject_count))

    @property
    def nominal_cycle_s(self) -> float:
        return self.ideal_cycle_s * (1 + self.behaviour.speed_loss)

    def interrupt(self) -> None:
        if self._cycle_ends_at is not None:
            self._remaining_s = max(self._cycle_ends_at - self.sim.now, 0.0)
            self._cycle_ends_at = None
            self._cycle_token += 1

    def resume(self) -> None:
        if self.top_hold() is not None or self._cycle_ends_at is not None:
            super().resume()
            return
        if self._finished_part and not self._deliver():
            return
        if self._remaining_s is not None:
            self._run_cycle(self._remaining_s)
            self._remaining_s = None
            return
        if self._stops_before_next_cycle():
            return
        if self.upstream is not None:
            if self.upstream.count == 0:
                self.set_state(MachineState.STARVED)
                self.upstream.consumer = self
                return
            self.upstream.take(self.sim)
        duration = self.nominal_cycle_s * max(self.rng.gauss(1, CYCLE_NOISE), 0.5)
        self._run_cycle(duration)

    def _run_cycle(self, duration: float) -> None:
        self.set_state(MachineState.RUNNING)
        self._cycle_token += 1
        token = self._cycle_token
        self._cycle_ends_at = self.sim.now + duration
        self.sim.after(duration, lambda: self._cycle_end(token))

    def _cycle_end(self, token: int) -> None:
        if token != self._cycle_token:
            return  # interrupted; the cycle resumes later with its remaining time
        self._cycle_ends_at = None
        self.part_count += 1
        run = self.runs[-1]
        run.first_part_at = self.sim.now if run.first_part_at is None else run.first_part_at
        run.last_part_at = self.sim.now
        if self.rng.random() < self.reject_rate():
            self.reject_count += 1
        else:
            self._finished_part = True
        self.resume()

    def _deliver(self) -> bool:
        """Pass the finished part on; False (and blocked) when there is no room."""
        if self.downstream is not None:
            if self.downstream.full:
                self.set_state(MachineState.BLOCKED)
                self.downstream.producer = self
                return False
            self.downstream.put(self.sim)
        self._finished_part = False
        return True

    def _stops_before_next_cycle(self) -> bool:
        """Breakdowns and micro-stops, drawn per cycle at their mean rates."""
        cycle, behaviour = self.nominal_cycle_s, self.behaviour
        draw = self.rng.random()
        if draw < cycle / behaviour.mtbf:
            reasons = list(behaviour.stop_reasons)
            reason = self.rng.choices(reasons, weights=list(behaviour.stop_reasons.values()))[0]
            repair = self.rng.expovariate(1 / behaviour.mttr) if behaviour.mttr else 0.0
            self.hold(RANDOM_BREAKDOWN, MachineState.UNPLANNED_STOP, reason, repair)
            return True
        if draw < cycle / behaviour.mtbf + cycle * behaviour.micro_stops_per_hour / 3600:
            duration = behaviour.micro_stop * self.rng.uniform(0.5, 1.5)
            self.hold(MICRO_STOP, MachineState.MICRO_STOP, MICRO_STOP, duration)
            return True
        return False


class Compressor(MachineSim):
    """Supplies compressed air: loaded while the floor draws air, unloaded otherwise.

    A leak is air demand that never stops, so a leaking compressor draws power at night.
    """

    LEAK_LOAD = 0.35
    BASE_LOAD = 0.15

    def __init__(
        self, sim: Simulation, machine: Machine, behaviour: MachineBehaviour, rng: random.Random
    ):
        super().__init__(sim, machine, behaviour, rng)
        self.load = 0.0

    def update_demand(self, running_share: float) -> None:
        """Set the air demand from the share of machines running (0..1)."""
        self.meter()
        demand = self.BASE_LOAD + 0.65 * running_share if running_share > 0 else 0.0
        demand += self.LEAK_LOAD * self.leak_share()
        self.load = min(demand, 1.0)
        self.resume()

    def leak_share(self) -> float:
        """How much of `LEAK_LOAD` leaks now: all of it with an air leak, a share growing
        from nothing to all with a slow leak (a fitting working loose)."""
        slow = self.faults.get(FaultKind.SLOW_LEAK)
        grown = slow.progress(self.sim.now) if slow else 0.0
        return max(float(FaultKind.AIR_LEAK in self.faults), grown)

    def resume(self) -> None:
        if self.top_hold() is None:
            self.set_state(MachineState.RUNNING if self.load > 0 else MachineState.IDLE)
        else:
            super().resume()

    def power_kw(self) -> float:
        full = self.behaviour.power_kw.get("running", RUNNING_POWER_KW[MachineType.COMPRESSOR])
        if self.state is not MachineState.RUNNING:
            return 0.03 * full  # stopped, controller on standby
        unloaded = 0.25 * full
        return unloaded + (full - unloaded) * self.load
