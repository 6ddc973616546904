"""Serving a scenario live: OPC UA servers per machine, Modbus TCP servers per energy meter
(where the plant gives the meter an address), sensor kits and fault events on MQTT.

The simulated clock advances `speed` times as fast as the wall clock (x1 for a live demo, x60 to
show a shift in eight minutes). Demo controls arrive on the site's control topic (and through
each machine's OPC UA methods): inject a fault, break a machine down, change the speed, reset the
shift.

With `shift_calendar` (the demo's) the clock keeps to the plant's shift calendar, so that a demo
has a shift to show at any hour: it starts at the start of a shift (the one that runs now, else the
next one), skips from the end of a shift to the start of the next one, and a shift
reset goes to the next shift's start with every counter from zero, which analytics then reports
as a new shift. Without it, or for a plant without shifts, the clock runs from now, round the
clock. It never goes back: a reset, a scenario loaded or a resumed session (`not_before`) all go
on from the time reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

from shopfloor.config import ConfigError
from shopfloor.messages import (
    Action,
    Breakdown,
    FaultKind,
    InjectFault,
    LoadScenario,
    MessageError,
    MessageKind,
    PendingFault,
    SetSpeed,
    SimulatorStatus,
    control_topic,
    decode_command,
    encode_events,
    status_topic,
)
from shopfloor.mqtt import close, make_client
from shopfloor.plant import EnergyMeter, Plant, Shift
from shopfloor.states import BREAKDOWN_REASONS, MachineState
from simulators.machines import MachineSim
from simulators.modbus import MeterServer
from simulators.opcua import MachineServer, ServerSecurity, Value
from simulators.plant_sim import WEEKDAYS, PlantSim
from simulators.scenario import LoadedScenario, load_scenario

log = logging.getLogger(__name__)

TICK_S = 0.5
SHUTDOWN_S = 5.0
OPERATOR_STOP = "operator_stop"
WATCHERS_S = 30.0
POLL_S = 0.1
CALENDAR_DAYS = 8  # a weekly calendar has its next shift within this many days


def wall_clock() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class ShiftClock:
    """Where a shift calendar puts the simulated clock; without shifts, wherever it is."""

    shifts: Sequence[Shift]
    zone: ZoneInfo

    @classmethod
    def of(cls, plant: Plant, follow: bool) -> ShiftClock:
        return cls(plant.shifts if follow else [], ZoneInfo(plant.site.timezone))

    def spans(self, since: datetime) -> list[tuple[datetime, datetime]]:
        """Every shift occurrence that ends after `since`, within CALENDAR_DAYS, in order of
        start (an overnight shift ends the next day)."""
        first = since.astimezone(self.zone).date() - timedelta(days=1)  # a night shift's eve
        spans = []
        for day in (first + timedelta(days=n) for n in range(CALENDAR_DAYS + 1)):
            for shift in self.shifts:
                if WEEKDAYS[day.weekday()] not in shift.days:
                    continue
                begin = datetime.combine(day, shift.start, self.zone)
                end = datetime.combine(day, shift.end, self.zone)
                end += timedelta(days=int(end <= begin))
                if end > since:
                    spans.append((begin.astimezone(UTC), end.astimezone(UTC)))
        return sorted(spans)

    def start_from(self, at: datetime) -> datetime:
        """The start of the shift that runs at `at`, else of the next one; `at` without shifts.

        A demo shows a whole shift from its first instant: started in the middle of one, its
        analytics would report the hours before as time with no state known."""
        spans = self.spans(at)
        return spans[0][0] if spans else at

    def next_start(self, at: datetime) -> datetime:
        """The start of the first shift after `at`; `at` itself without shifts."""
        return next((begin for begin, _ in self.spans(at) if begin > at), at)

    def end(self, at: datetime) -> datetime | None:
        """When the work that runs at `at` stops: the end of its shift, or of the shifts that
        follow on without a break (early then late); None off-shift or without shifts."""
        end = None
        for begin, finish in self.spans(at):
            if begin <= (end or at) and (end is None or finish > end):
                end = finish
        return end


class LiveSimulator:
    """Runs a scenario against the wall clock and serves it to edge agents."""

    def __init__(
        self,
        loaded: LoadedScenario,
        broker_url: str,
        bind_host: str = "127.0.0.1",
        speed: float = 1.0,
        opcua_security: ServerSecurity | None = None,
        not_before: datetime | None = None,
        shift_calendar: bool = False,
        clock: Callable[[], datetime] = wall_clock,
    ):
        """`not_before`: a resumed session's newest reading, which its clock goes on from;
        `shift_calendar`: keep the clock in the plant's shifts (the readings then run ahead
        of the wall clock off-shift: the gateway must accept them, see `--max-future`), and
        start it once the machines are watched (`_until_watched`), as a demo does."""
        self.loaded = loaded
        self.opcua_security = opcua_security
        self.bind_host = bind_host
        self.speed = speed
        self.plant = loaded.plant
        self.clock = clock
        self.shift_clock = ShiftClock.of(self.plant, shift_calendar)
        self.floor = self._first_floor(not_before)
        self._published = False  # a new floor is published at its start before its clock runs
        self.servers: dict[str, MachineServer | None] = {}
        self.meters: dict[str, MeterServer | None] = {}
        topic = control_topic(self.plant.tenant.id, self.plant.site.id)
        self.mqtt = make_client(
            broker_url, f"shopfloor-sim-{self.plant.tenant.id}-{self.plant.site.id}", [(topic, 1)]
        )
        self.mqtt.on_message = self._on_control
        # A simulator that dies without a word must not stay "running" for the controls page.
        self.mqtt.will_set(self._status_topic, b"", qos=1, retain=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._announced_pending: list[PendingFault] = []

    def _first_floor(self, not_before: datetime | None) -> PlantSim:
        """The shift of now, or of where a resumed session's data stopped if that is later: then
        the next shift, if that shift already has data (its counters would fall back)."""
        now = self.clock()
        shifts = self.shift_clock
        start = shifts.start_from(max(now, not_before or now))
        if not_before is not None and start < (shifts.end(not_before) or start):
            start = shifts.next_start(not_before)
        return PlantSim(self.loaded, start, follow_shift_calendar=False)

    def _new_floor(self, previous: PlantSim) -> PlantSim:
        """A new shift at the next shift's start after the time `previous` reached (no sooner
        than now), its faults aborted; the scenario's stops and faults keep their offsets."""
        previous.abort_faults()
        self._publish_events(previous)
        reached = max(self.clock(), previous.wall(previous.sim.now).replace(microsecond=0))
        self._published = False
        start = self.shift_clock.next_start(reached)
        return PlantSim(self.loaded, start, follow_shift_calendar=False)

    # --- demo controls (OPC UA methods and the control topic) ----------------------------
    def start_machine(self, machine_id: str) -> None:
        self._machine(machine_id).release(OPERATOR_STOP)

    def stop_machine(self, machine_id: str) -> None:
        self._machine(machine_id).hold(
            OPERATOR_STOP, MachineState.PLANNED_STOP, OPERATOR_STOP, None
        )

    def inject_fault(self, machine_id: str, fault: str, duration_s: float) -> str:
        event = self.floor.inject(machine_id, FaultKind(fault), duration_s)
        log.info("fault %s injected on %s for %.0f s", fault, machine_id, duration_s)
        return event.start.isoformat()

    def break_down(self, machine_id: str, reason: str, duration_s: float) -> None:
        self.floor.break_down(machine_id, reason, duration_s)
        log.info("%s broken down (%s) for %.0f s", machine_id, reason, duration_s)

    def _machine(self, machine_id: str) -> MachineSim:
        return self.floor.machines[machine_id]

    def _on_control(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            command = decode_command(msg.payload)
        except MessageError as exc:
            log.warning("ignoring a control message on %s: %s", msg.topic, exc)
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.apply, command)

    def apply(self, command: Action) -> None:
        """Carry out one demo control; a bad one is logged, never fatal."""
        try:
            if isinstance(command, InjectFault):
                self.inject_fault(command.asset, command.fault, command.duration_s)
            elif isinstance(command, Breakdown):
                self.break_down(command.asset, command.reason, command.duration_s)
            elif isinstance(command, SetSpeed):
                self.speed = command.speed
                log.info("simulation speed set to x%g", command.speed)
            elif isinstance(command, LoadScenario):
                self._load(command.name)
            else:
                self.floor = self._new_floor(self.floor)
                log.info("shift reset")
        except (KeyError, ValueError, ConfigError) as exc:
            log.warning("cannot %s: %s", command.command.replace("_", " "), exc)
        self._announce()

    def _scenario_files(self) -> dict[str, tuple[Path, bool]]:
        """Scenario files beside the current one, by name: each with whether it runs this
        plant (one of another plant is for the demo supervisor to load, in a new session)."""
        if (
            self.loaded.path.suffix not in (".yaml", ".yml")
            or self.loaded.path == self.loaded.scenario.plant
        ):
            return {}
        found = {}
        for path in sorted(self.loaded.path.parent.glob("*.y*ml")):
            try:
                found[path.stem] = (path, load_scenario(path).plant == self.plant)
            except ConfigError:
                continue
        return found

    def _load(self, name: str) -> None:
        path, same_plant = self._scenario_files().get(name, (None, False))
        if path is None:
            raise KeyError(f"no scenario {name!r} beside {self.loaded.path}")
        if not same_plant:
            log.info("scenario %s runs another plant: only a demo supervisor switches plants", name)
            return
        self.loaded = load_scenario(path)
        self.floor = self._new_floor(self.floor)
        log.info("scenario %s loaded", name)

    def _announce(self) -> None:
        """Keep the simulator's status retained on the broker, for the dashboard's controls."""
        files = self._scenario_files()
        status = SimulatorStatus(
            scenario=self.loaded.scenario.name,
            available=sorted(name for name, (_, same) in files.items() if same),
            other_plants=sorted(name for name, (_, same) in files.items() if not same),
            speed=self.speed,
            started=self.floor.start,
            pending=self.floor.pending(),
            stop_reasons=self.stop_reasons(),
            clock=self.floor.wall(self.floor.sim.now),
            announced=self.clock(),
        )
        self._announced_pending = status.pending
        self.mqtt.publish(self._status_topic, status.model_dump_json().encode(), qos=1, retain=True)

    def stop_reasons(self) -> dict[str, list[str]]:
        """Each machine's reasons for a breakdown: its scenario's own, then the common ones."""
        scenario = self.loaded.scenario
        return {
            machine_id: list(
                dict.fromkeys([*scenario.behaviour(machine_id).stop_reasons, *BREAKDOWN_REASONS])
            )
            for machine_id in self.floor.machines
        }

    @property
    def _status_topic(self) -> str:
        return status_topic(self.plant.tenant.id, self.plant.site.id)

    def _withdraw(self) -> None:
        """Clear the retained status (an empty retained message) on the way out."""
        cleared = self.mqtt.publish(self._status_topic, b"", qos=1, retain=True)
        with contextlib.suppress(RuntimeError, ValueError):
            cleared.wait_for_publish(SHUTDOWN_S)

    # --- the clock -------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until cancelled."""
        self._loop = asyncio.get_running_loop()
        self.mqtt.loop_start()
        self._announce()
        try:
            await self._sync_servers()
            if self.shift_clock.shifts:
                await self._until_watched(WATCHERS_S)
            last = time.monotonic()
            while True:
                await asyncio.sleep(TICK_S)
                now = time.monotonic()
                self._advance((now - last) * self.speed)
                last = now
                await self._publish()
                self._published = True
        finally:
            await self._stop_servers()
            self._withdraw()
            close(self.mqtt)

    async def _until_watched(self, timeout_s: float) -> None:
        """Hold the clock at the shift's start until every machine's server has a subscriber
        (the edge agent, started once they listen), for at most `timeout_s`: the edge then
        records the shift from its first instant, and the analytics find no time in it
        without a known state."""
        deadline = time.monotonic() + timeout_s
        servers = [server for server in self.servers.values() if server is not None]
        while not all(server.watched for server in servers) and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)

    def _advance(self, seconds: float) -> None:
        """Run the simulated clock on by `seconds`, to the next shift at the end of this one.

        A floor not yet published stays at its start for one publication, so that its first
        readings (every counter at zero) carry the shift's start time: analytics then counts
        the shift from them rather than see counters fall back inside it."""
        if not self._published:
            return
        floor = self.floor
        target = floor.wall(floor.sim.now + seconds)
        end = self.shift_clock.end(floor.wall(floor.sim.now))
        if end is None or target < end:
            floor.run_until(floor.sim.now + seconds)
            return
        floor.run_until((end - floor.start).total_seconds())
        self.floor = self._new_floor(floor)
        log.info("shift over; the next one starts at %s", self.floor.start.isoformat())

    async def _stop_servers(self) -> None:
        """Stop every OPC UA and Modbus server at once, giving up after a few seconds: a demo
        that is being shut down must not hang on a client that does not say goodbye."""
        servers = [*self.servers.values(), *self.meters.values()]
        stopping = [server.stop() for server in servers if server is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*stopping, return_exceptions=True), SHUTDOWN_S)
        except TimeoutError:
            log.warning("servers did not stop within %.0f s; leaving anyway", SHUTDOWN_S)

    async def _sync_servers(self) -> None:
        """Start a machine's servers, or stop them while the machine's network is lost."""
        self.floor.run_until(self.floor.sim.now)  # what starts now has started
        values, at = self.floor.sample(), self.floor.wall(self.floor.sim.now)
        for machine_id, machine in self.floor.machines.items():
            cut_off = FaultKind.NETWORK_LOSS in machine.faults
            sample = values[self.floor.paths[machine_id]]
            if machine.machine.opcua is not None:
                await self._sync_opcua(machine_id, cut_off, sample, at)
            meter = machine.machine.energy_meter
            if meter and meter.modbus and meter.modbus.endpoint.startswith("tcp://"):
                await self._sync_meter(machine_id, cut_off, sample, at)

    async def _sync_opcua(
        self, machine_id: str, cut_off: bool, sample: dict[str, Value], at: datetime
    ) -> None:
        machine = self.floor.machines[machine_id].machine
        assert machine.opcua is not None
        server = self.servers.get(machine_id)
        if cut_off and server is not None:
            await server.stop()
            self.servers[machine_id] = None
        elif not cut_off and server is None:
            server = MachineServer(
                machine, machine.opcua, self.bind_host, self, self.opcua_security
            )
            try:
                await server.start(sample, at)
            except OSError as exc:  # the port is taken for now: try again next tick
                log.warning("OPC UA server for %s not started: %s", machine_id, exc)
                await server.stop()
                return
            self.servers[machine_id] = server

    async def _sync_meter(
        self, machine_id: str, cut_off: bool, sample: dict[str, Value], at: datetime
    ) -> None:
        meter = self.floor.machines[machine_id].machine.energy_meter
        assert meter is not None and meter.modbus is not None
        server = self.meters.get(machine_id)
        if cut_off and server is not None:
            await server.stop()
            self.meters[machine_id] = None
        elif not cut_off and server is None:
            server = MeterServer(machine_id, meter.modbus, self.bind_host)
            try:
                await server.start(*_meter_sample(meter, sample), at)
            except (OSError, RuntimeError) as exc:  # the port is taken: try again next tick
                log.warning("Modbus meter of %s not started: %s", machine_id, exc)
                await server.stop()
                return
            self.meters[machine_id] = server

    async def _publish(self) -> None:
        await self._sync_servers()
        values = self.floor.sample()
        at = self.floor.wall(self.floor.sim.now)
        for machine_id, server in self.servers.items():
            if server is not None:
                await server.publish(values[self.floor.paths[machine_id]], at)
        for machine_id, meter in self.meters.items():
            energy_meter = self.floor.machines[machine_id].machine.energy_meter
            if meter is not None and energy_meter is not None:
                meter.publish(
                    *_meter_sample(energy_meter, values[self.floor.paths[machine_id]]), at
                )
        stamp = at.isoformat()
        for path, sensor in self.floor.sensors:
            for signal, value in values[path].items():
                payload = json.dumps({"value": value, "ts": stamp})
                self.mqtt.publish(f"{sensor.mqtt_topic}/{signal}", payload, qos=0)
        self._publish_events(self.floor)
        if self.floor.pending() != self._announced_pending:  # a waiting fault has started
            self._announce()

    def _publish_events(self, floor: PlantSim) -> None:
        for event in floor.take_outbox():
            payload = encode_events([event.event])
            self.mqtt.publish(event.path.topic(MessageKind.EVENT), payload, qos=1)


def _meter_sample(meter: EnergyMeter, sample: dict[str, Value]) -> tuple[float, float]:
    """The power (kW) and energy (kWh) a machine's meter reads in a sample of its signals."""
    return float(sample[meter.power_signal]), float(sample[meter.energy_signal])
