"""Simulator figures: machines one process serves at 1 Hz per signal, and the fast-run speed."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from shopfloor.plant import Plant
from simulators.fast import run_fast
from simulators.opcua import MachineServer
from simulators.plant_sim import PlantSim
from simulators.scenario import LoadedScenario, Scenario, load_scenario
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SIGNALS = ["state", "part_count", "reject_count", "power", "energy", "spindle_load", "vibration"]


def _plant(machines: int) -> Plant:
    """A line of `machines` CNC machines, each on its own OPC UA port."""
    return Plant.model_validate(
        {
            "tenant": {"id": "bench", "name": "Bench"},
            "site": {
                "id": "site",
                "name": "Bench site",
                "areas": [
                    {
                        "id": "area",
                        "lines": [
                            {
                                "id": "line",
                                "machines": [
                                    {
                                        "id": f"cnc-{i:03d}",
                                        "name": f"CNC {i}",
                                        "type": "cnc",
                                        "ideal_cycle_time": {"part": 30.0},
                                        "energy_meter": {
                                            "id": f"em-{i}",
                                            "power_signal": "power",
                                            "energy_signal": "energy",
                                        },
                                        "opcua": {"endpoint": f"opc.tcp://127.0.0.1:{free_port()}"},
                                        "signals": [{"id": s} for s in SIGNALS],
                                    }
                                    for i in range(machines)
                                ],
                            }
                        ],
                    }
                ],
            },
            "products": [{"id": "part"}],
        }
    )


class _NoControls:
    def start_machine(self, machine_id: str) -> None: ...

    def stop_machine(self, machine_id: str) -> None: ...

    def inject_fault(self, machine_id: str, fault: str, duration_s: float) -> str:
        return ""


SUBSCRIBER = """
import asyncio, logging, sys
from asyncua import Client
logging.disable(logging.WARNING)

class Count:
    def __init__(self): self.n = 0
    def datachange_notification(self, node, value, data): self.n += 1

async def watch(url, count):
    async with Client(url) as client:
        ns = await client.get_namespace_index("urn:shopfloor:machines")
        objects = await client.nodes.objects.get_children()
        nodes = []
        for obj in objects:
            for child in await obj.get_children():
                if child.nodeid.NamespaceIndex == ns and isinstance(child.nodeid.Identifier, str):
                    nodes.append(child)
        subscription = await client.create_subscription(250, count)
        await subscription.subscribe_data_change(nodes, queuesize=10)
        await asyncio.sleep(float(sys.argv[1]))

async def main():
    count = Count()
    await asyncio.gather(*(watch(url, count) for url in sys.argv[2:]))
    print(count.n)

asyncio.run(main())
"""


async def _cpu_per_simulated_second(machines: int, seconds: int) -> float:
    """CPU seconds one process spends per second of 1 Hz service of `machines` OPC UA servers,
    each with a subscribed client (in another process) receiving every change."""
    plant = _plant(machines)
    scenario = Scenario(name="bench", plant=Path("bench.yaml"), product="part")
    loaded = LoadedScenario(scenario=scenario, plant=plant, path=Path("bench.yaml"))
    floor = PlantSim(loaded, datetime.now(UTC), follow_shift_calendar=False)
    values = floor.sample()
    servers = {}
    for path, machine in plant.machines():
        assert machine.opcua is not None
        server = MachineServer(machine, machine.opcua, "127.0.0.1", _NoControls())
        await server.start(values[path])
        servers[path] = server
    urls = [server.url for server in servers.values()]
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUBSCRIBER, str(seconds + 8), *urls, stdout=asyncio.subprocess.PIPE
    )
    try:
        await asyncio.sleep(6)  # the subscriber connects and subscribes
        started_cpu, started_wall = time.process_time(), time.monotonic()
        for second in range(1, seconds + 1):
            floor.run_until(float(second))
            values = floor.sample()
            at = floor.wall(float(second))
            for path, server in servers.items():
                await server.publish(values[path], at)
            await asyncio.sleep(max(0.0, started_wall + second - time.monotonic()))
        cpu = (time.process_time() - started_cpu) / seconds
        output, _ = await watcher.communicate()
        delivered = int(output.decode().strip() or 0)
        if delivered < machines * len(SIGNALS):
            raise RuntimeError(f"the subscriber saw only {delivered} changes")
        return cpu
    finally:
        for server in servers.values():
            await server.stop()


def machines_per_process(machines: int = 20, seconds: int = 30) -> tuple[float, float]:
    """(CPU share of one core for `machines` at 1 Hz, machines one core serves at 1 Hz)."""
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    cpu = asyncio.run(_cpu_per_simulated_second(machines, seconds))
    return cpu, machines / cpu


def fast_speed_factor() -> tuple[float, float]:
    """Simulated seconds per wall second for the 8 h moulding shift: bare, and recorded at 1 Hz."""
    loaded = load_scenario(ROOT / "examples" / "scenarios" / "moulding.yaml")
    started = time.perf_counter()
    run_fast(loaded)
    bare = loaded.scenario.duration / (time.perf_counter() - started)
    output = Path("/dev/null")
    started = time.perf_counter()
    run_fast(loaded, output)
    recorded = loaded.scenario.duration / (time.perf_counter() - started)
    return bare, recorded
