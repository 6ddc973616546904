"""Runs a plant file as a live simulated shop floor.

Machines serve their signals over OPC UA (one server each, at the endpoint the plant file
gives); environmental sensor kits publish plain numbers on their raw MQTT topics, as cheap
sensor kits do. Neither speaks the platform's message contract: turning them into contract
messages is the edge agent's job, exactly as with real machines.
"""

from __future__ import annotations

import asyncio
import logging

from shopfloor.mqtt import make_client
from shopfloor.plant import Plant
from simulators.models import MachineModel, SensorModel
from simulators.opcua import MachineServer

log = logging.getLogger(__name__)


class SimulatedLine:
    """Every machine and sensor of a plant, stepped together on one clock."""

    def __init__(self, plant: Plant, broker_url: str, bind_host: str = "127.0.0.1", seed: int = 0):
        self.plant = plant
        self.machines = {m.id: MachineModel(m, seed) for _, m in plant.machines()}
        self.sensors = [SensorModel(s, seed) for _, s in plant.sensors()]
        self.servers = [
            MachineServer(model.machine, model.machine.opcua, bind_host)
            for model in self.machines.values()
            if model.machine.opcua
        ]
        self.mqtt = make_client(broker_url, client_id=f"shopfloor-sim-{plant.tenant.id}")

    async def start(self) -> None:
        for server in self.servers:
            await server.start(self.machines[server.machine.id].values())
        self.mqtt.loop_start()

    async def run(self, period_s: float = 1.0) -> None:
        """Step and publish every `period_s` seconds of wall-clock time until cancelled."""
        await self.start()
        try:
            while True:
                await self.tick(period_s)
                await asyncio.sleep(period_s)
        finally:
            await self.stop()

    async def tick(self, dt: float) -> None:
        for model in self.machines.values():
            model.step(dt)
        for server in self.servers:
            await server.publish(self.machines[server.machine.id].values())
        hall_busy = any(model.state == "running" for model in self.machines.values())
        for sensor in self.sensors:
            for signal, value in sensor.values(hall_busy).items():
                self.mqtt.publish(f"{sensor.sensor.mqtt_topic}/{signal}", str(value), qos=0)

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
