"""Serving a scenario live: OPC UA servers per machine, sensor kits and fault events on MQTT.

The simulated clock advances `speed` times as fast as the wall clock (x1 for a live demo, x60 to
show a shift in eight minutes). Demo controls arrive on the site's control topic (and through
each machine's OPC UA methods): inject a fault, change the speed, reset the shift.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from shopfloor.config import ConfigError
from shopfloor.messages import (
    Action,
    FaultKind,
    InjectFault,
    LoadScenario,
    MessageError,
    MessageKind,
    SetSpeed,
    SimulatorStatus,
    control_topic,
    decode_command,
    encode_events,
    status_topic,
)
from shopfloor.mqtt import make_client
from shopfloor.states import MachineState
from simulators.machines import MachineSim
from simulators.opcua import MachineServer, ServerSecurity
from simulators.plant_sim import PlantSim
from simulators.scenario import LoadedScenario, load_scenario

log = logging.getLogger(__name__)

TICK_S = 0.5
SHUTDOWN_S = 5.0
OPERATOR_STOP = "operator_stop"


class LiveSimulator:
    """Runs a scenario against the wall clock and serves it to edge agents."""

    def __init__(
        self,
        loaded: LoadedScenario,
        broker_url: str,
        bind_host: str = "127.0.0.1",
        speed: float = 1.0,
        opcua_security: ServerSecurity | None = None,
    ):
        self.loaded = loaded
        self.opcua_security = opcua_security
        self.bind_host = bind_host
        self.speed = speed
        self.plant = loaded.plant
        self.floor = self._new_floor()
        self.servers: dict[str, MachineServer | None] = {}
        topic = control_topic(self.plant.tenant.id, self.plant.site.id)
        self.mqtt = make_client(
            broker_url, f"shopfloor-sim-{self.plant.tenant.id}-{self.plant.site.id}", [(topic, 1)]
        )
        self.mqtt.on_message = self._on_control
        # A simulator that dies without a word must not stay "running" for the controls page.
        self.mqtt.will_set(self._status_topic, b"", qos=1, retain=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _new_floor(self, previous: PlantSim | None = None) -> PlantSim:
        """A shift starting now; the scenario's stops and faults keep their offsets.

        After a reset the new shift starts where the old one's clock stood if that is later
        (above x1 the simulated clock runs ahead), so no signal ever goes back in time.
        """
        start = datetime.now(UTC).replace(microsecond=0)
        if previous is not None:
            previous.abort_faults()
            self._publish_events(previous)
            start = max(start, previous.wall(previous.sim.now).replace(microsecond=0))
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

    def scenarios(self) -> dict[str, Path]:
        """Scenario files beside the current one that run the same plant, by name."""
        if (
            self.loaded.path.suffix not in (".yaml", ".yml")
            or self.loaded.path == self.loaded.scenario.plant
        ):
            return {}
        found = {}
        for path in sorted(self.loaded.path.parent.glob("*.y*ml")):
            try:
                if load_scenario(path).plant == self.plant:
                    found[path.stem] = path
            except ConfigError:
                continue
        return found

    def _load(self, name: str) -> None:
        path = self.scenarios().get(name)
        if path is None:
            raise KeyError(f"no scenario {name!r} for this plant beside {self.loaded.path}")
        self.loaded = load_scenario(path)
        self.floor = self._new_floor(self.floor)
        log.info("scenario %s loaded", name)

    def _announce(self) -> None:
        """Keep the simulator's status retained on the broker, for the dashboard's controls."""
        status = SimulatorStatus(
            scenario=self.loaded.scenario.name,
            available=sorted(self.scenarios()),
            speed=self.speed,
            started=self.floor.start,
            clock=self.floor.wall(self.floor.sim.now),
            announced=datetime.now(UTC),
        )
        self.mqtt.publish(self._status_topic, status.model_dump_json().encode(), qos=1, retain=True)

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
            last = time.monotonic()
            while True:
                await asyncio.sleep(TICK_S)
                now = time.monotonic()
                self.floor.run_until(self.floor.sim.now + (now - last) * self.speed)
                last = now
                await self._publish()
        finally:
            await self._stop_servers()
            self._withdraw()
            self.mqtt.disconnect()
            self.mqtt.loop_stop()

    async def _stop_servers(self) -> None:
        """Stop every OPC UA server at once, giving up after a few seconds: a demo that is
        being shut down must not hang on a client that does not say goodbye."""
        stopping = [server.stop() for server in self.servers.values() if server is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*stopping, return_exceptions=True), SHUTDOWN_S)
        except TimeoutError:
            log.warning("OPC UA servers did not stop within %.0f s; leaving anyway", SHUTDOWN_S)

    async def _sync_servers(self) -> None:
        """Start a machine's server, or stop it while the machine's network is lost."""
        self.floor.run_until(self.floor.sim.now)  # what starts now has started
        values, at = self.floor.sample(), self.floor.wall(self.floor.sim.now)
        for machine_id, machine in self.floor.machines.items():
            endpoint = machine.machine.opcua
            if endpoint is None:
                continue
            cut_off = FaultKind.NETWORK_LOSS in machine.faults
            server = self.servers.get(machine_id)
            if cut_off and server is not None:
                await server.stop()
                self.servers[machine_id] = None
            elif not cut_off and server is None:
                server = MachineServer(
                    machine.machine, endpoint, self.bind_host, self, self.opcua_security
                )
                try:
                    await server.start(values[self.floor.paths[machine_id]], at)
                except OSError as exc:  # the port is taken for now: try again next tick
                    log.warning("OPC UA server for %s not started: %s", machine_id, exc)
                    await server.stop()
                    continue
                self.servers[machine_id] = server

    async def _publish(self) -> None:
        await self._sync_servers()
        values = self.floor.sample()
        at = self.floor.wall(self.floor.sim.now)
        for machine_id, server in self.servers.items():
            if server is not None:
                await server.publish(values[self.floor.paths[machine_id]], at)
        stamp = at.isoformat()
        for path, sensor in self.floor.sensors:
            for signal, value in values[path].items():
                payload = json.dumps({"value": value, "ts": stamp})
                self.mqtt.publish(f"{sensor.mqtt_topic}/{signal}", payload, qos=0)
        self._publish_events(self.floor)

    def _publish_events(self, floor: PlantSim) -> None:
        for event in floor.take_outbox():
            payload = encode_events([event.event])
            self.mqtt.publish(event.path.topic(MessageKind.EVENT), payload, qos=1)
