"""What the sensors of a simulated machine or zone read at a given moment.

Process values follow the machine's state, drift slowly and carry noise; wear and heat faults
shape them the way they shape real signals (vibration rising before a bearing fails), and
signal faults (stuck, spike, dropout, drift, correlation break) corrupt one signal's readings.
Noise comes from each asset's own generator, separate from the process's, so how often a run
is sampled never changes what the machines do.
"""

from __future__ import annotations

import math
import random

from shopfloor.messages import SIGNAL_FAULTS, FaultKind
from shopfloor.plant import SensorDevice
from shopfloor.states import (
    PART_COUNT,
    PRODUCT,
    REJECT_COUNT,
    STANDARD_SIGNALS,
    STATE,
    STOP_REASON,
    MachineState,
)
from simulators.machines import Compressor, MachineSim

Value = float | int | str

# mean when running, mean when not running, noise standard deviation
PROCESS = {
    "melt_temperature": (230.0, 215.0, 1.2),
    "mould_temperature": (45.0, 38.0, 0.5),
    "injection_pressure": (850.0, 0.0, 10.0),
    "spindle_load": (62.0, 0.0, 3.0),
    "spindle_temperature": (38.0, 30.0, 0.4),
    "motor_temperature": (55.0, 35.0, 0.5),
    "vibration": (2.8, 0.3, 0.12),
    "belt_speed": (24.0, 0.0, 0.3),
    "seal_temperature": (165.0, 150.0, 1.0),
    "pressure": (7.0, 7.0, 0.05),
    "air_flow": (9.0, 0.0, 0.3),
}
GENERIC = (50.0, 10.0, 1.0)
ENVIRONMENT = {  # at rest, extra with the whole floor running, noise
    "temperature": (20.5, 2.5, 0.15),
    "humidity": (47.0, -4.0, 0.6),
    "noise": (58.0, 22.0, 1.2),
    "pm2_5": (8.0, 9.0, 0.8),
}
DRIFT_PERIOD_S = 5400.0
SPIKE_CHANCE = 0.08
DRIFT_NOISES = 10.0  # a drifting reading's offset at the fault's end, in noise deviations


def physical(name: str, value: float) -> float:
    """The value within its physical bounds: noise around a stopped machine's zero must not
    read as a negative pressure, speed or flow. Only a temperature can be below zero; every
    other simulated quantity (pressure, speed, flow, load, vibration, humidity, dust, sound
    level) cannot."""
    return value if "temperature" in name else max(value, 0.0)


def _process_level(name: str, machine: MachineSim, now: float) -> float:
    """What the signal reads now without its noise: the machine's operating point."""
    running = machine.state is MachineState.RUNNING
    mean_running, mean_stopped, _ = PROCESS.get(name, GENERIC)
    value = mean_running if running else mean_stopped
    faults = machine.faults
    if name == "vibration" and FaultKind.BEARING_WEAR in faults:
        value *= 1 + 3.0 * faults[FaultKind.BEARING_WEAR].progress(now) ** 2
    if name == "spindle_load" and FaultKind.TOOL_WEAR in faults and running:
        value *= 1 + 0.3 * faults[FaultKind.TOOL_WEAR].progress(now)
    if "temperature" in name:
        value += 1.0 * math.sin(2 * math.pi * now / DRIFT_PERIOD_S)  # slow drift
        if FaultKind.OVERHEATING in faults:
            value += 30.0 * faults[FaultKind.OVERHEATING].progress(now)
    if isinstance(machine, Compressor):
        if name == "pressure":
            value -= 0.5 * machine.load
        elif name == "air_flow":
            value = 12.0 * machine.load
    return value


def _noisy(name: str, level: float, rng: random.Random) -> float:
    return round(physical(name, rng.gauss(level, PROCESS.get(name, GENERIC)[2])), 3)


def _process_value(name: str, machine: MachineSim, now: float, rng: random.Random) -> float:
    return _noisy(name, _process_level(name, machine, now), rng)


def machine_values(machine: MachineSim, now: float, rng: random.Random) -> dict[str, Value]:
    """Every signal the plant file declares for the machine, sensor faults applied."""
    standard: dict[str, Value] = {
        STATE: machine.state.value,
        STOP_REASON: machine.reason,
        PART_COUNT: machine.part_count,
        REJECT_COUNT: machine.reject_count,
        PRODUCT: machine.product,
    }
    meter = machine.machine.energy_meter
    if meter:
        standard[meter.power_signal] = round(machine.power_kw() * rng.gauss(1, 0.01), 3)
        standard[meter.energy_signal] = round(machine.meter(), 4)
    values = {
        s.id: standard[s.id] if s.id in standard else _process_value(s.id, machine, now, rng)
        for s in machine.machine.signals
    }
    return _corrupt(machine, values, rng)


def faulty_signal(machine: MachineSim, requested: str | None) -> str:
    """The signal a sensor fault hits: the one asked for, else the machine's last process
    signal (the last one the plant file lists that is not a state, counter or meter)."""
    if requested:
        return requested
    meter = machine.machine.energy_meter
    skip = STANDARD_SIGNALS | ({meter.power_signal, meter.energy_signal} if meter else set())
    process = [s.id for s in machine.machine.signals if s.id not in skip]
    return process[-1] if process else machine.machine.signals[0].id


def _corrupt(machine: MachineSim, values: dict[str, Value], rng: random.Random) -> dict[str, Value]:
    now = machine.sim.now
    for kind in SIGNAL_FAULTS & machine.faults.keys():
        fault = machine.faults[kind]
        signal = faulty_signal(machine, fault.signal)
        value = values.get(signal)
        if value is None:
            continue
        if kind is FaultKind.DRIFT and isinstance(value, float):
            offset = DRIFT_NOISES * PROCESS.get(signal, GENERIC)[2] * fault.progress(now)
            values[signal] = round(physical(signal, value + offset), 3)
        elif kind is FaultKind.CORRELATION_BREAK and isinstance(value, float):
            # The operating point the fault began at, noise and all: the others move on.
            level = fault.frozen.setdefault(signal, _process_level(signal, machine, now))
            values[signal] = _noisy(signal, float(level), rng)
        elif kind is FaultKind.SENSOR_STUCK:
            values[signal] = fault.frozen.setdefault(signal, values[signal])
        elif kind is FaultKind.DROPOUT:
            del values[signal]
        elif kind is FaultKind.SPIKE and rng.random() < SPIKE_CHANCE and isinstance(value, float):
            spiked = value * rng.choice([3.0, 4.0, -1.0]) + 10.0
            values[signal] = round(physical(signal, spiked), 3)
    return values


def sensor_values(
    sensor: SensorDevice, running_share: float, now: float, rng: random.Random
) -> dict[str, float]:
    """An environmental sensor kit: the hall warms, gets louder and dustier as machines run."""
    values = {}
    for signal in sensor.signals:
        base, with_floor, noise = ENVIRONMENT.get(signal.id, GENERIC)
        daily = 1.0 * math.sin(2 * math.pi * now / 86400) if signal.id == "temperature" else 0.0
        value = rng.gauss(base + with_floor * running_share + daily, noise)
        values[signal.id] = round(physical(signal.id, value), 3)
    return values
