"""Deterministic models of machines and environmental sensors.

A model advances on simulated time only (`step(dt)`), and draws every random number from its
own generator seeded from the run's seed and the asset's id, so the same seed gives the same
shop floor whatever the wall clock or the order of assets.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

from shopfloor.plant import Machine, MachineType, SensorDevice

Value = float | int | str

# Power draw when running, kW, by machine type; idle and stopped draw a share of it.
RUNNING_POWER_KW = {
    MachineType.CNC: 7.5,
    MachineType.INJECTION_MOULDING: 18.0,
    MachineType.PACKAGING: 2.2,
    MachineType.COMPRESSOR: 11.0,
    MachineType.ASSEMBLY: 1.5,
    MachineType.OTHER: 3.0,
}
POWER_SHARE = {"running": 1.0, "idle": 0.35, "unplanned_stop": 0.12}

# Process signals: (mean when running, mean when not running, noise standard deviation).
PROCESS_SIGNALS = {
    "melt_temperature": (230.0, 215.0, 1.5),
    "injection_pressure": (850.0, 0.0, 12.0),
    "spindle_load": (62.0, 0.0, 4.0),
    "vibration": (2.8, 0.4, 0.15),
    "belt_speed": (24.0, 0.0, 0.3),
    "temperature": (21.5, 21.5, 0.2),
    "humidity": (45.0, 45.0, 0.8),
    "noise": (78.0, 62.0, 1.5),
    "pm2_5": (12.0, 9.0, 1.0),
}
GENERIC_SIGNAL = (50.0, 10.0, 2.0)

# Per second: chance that a running machine stops or idles, and how long it stays there.
STOP_RATE, STOP_SECONDS = 1 / 900, (30.0, 180.0)
IDLE_RATE, IDLE_SECONDS = 1 / 600, (10.0, 45.0)
REJECT_SHARE = 0.02
SPEED_LOSS = 0.05  # the machine cycles this much slower than its ideal cycle time


def seeded_random(seed: int, asset_id: str) -> random.Random:
    return random.Random(seed * 1_000_003 + zlib.crc32(asset_id.encode()))


@dataclass
class MachineModel:
    """A machine that runs, idles and breaks down, counting parts and metering energy."""

    machine: Machine
    seed: int = 0
    state: str = "running"
    part_count: int = 0
    reject_count: int = 0
    energy_kwh: float = 0.0
    _rng: random.Random = field(init=False, repr=False)
    _cycle_progress: float = field(default=0.0, repr=False)
    _state_left_s: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._rng = seeded_random(self.seed, self.machine.id)
        self.cycle_time_s = next(iter(self.machine.ideal_cycle_time.values())) * (1 + SPEED_LOSS)

    def step(self, dt: float) -> None:
        """Advance the machine by `dt` simulated seconds."""
        self._advance_state(dt)
        if self.state == "running":
            self._cycle_progress += dt / self.cycle_time_s
            while self._cycle_progress >= 1:
                self._cycle_progress -= 1
                self.part_count += 1
                self.reject_count += self._rng.random() < REJECT_SHARE
        self.energy_kwh += self.power_kw() * dt / 3600

    def _advance_state(self, dt: float) -> None:
        if self.state != "running":
            self._state_left_s -= dt
            if self._state_left_s <= 0:
                self.state = "running"
            return
        draw = self._rng.random()
        if draw < STOP_RATE * dt:
            self.state, self._state_left_s = "unplanned_stop", self._rng.uniform(*STOP_SECONDS)
        elif draw < (STOP_RATE + IDLE_RATE) * dt:
            self.state, self._state_left_s = "idle", self._rng.uniform(*IDLE_SECONDS)

    def power_kw(self) -> float:
        return RUNNING_POWER_KW[self.machine.type] * POWER_SHARE[self.state]

    def values(self) -> dict[str, Value]:
        """The current value of every signal the plant file declares for this machine."""
        standard: dict[str, Value] = {
            "state": self.state,
            "part_count": self.part_count,
            "reject_count": self.reject_count,
        }
        meter = self.machine.energy_meter
        if meter:
            standard[meter.power_signal] = round(self.power_kw() * self._rng.gauss(1, 0.02), 3)
            standard[meter.energy_signal] = round(self.energy_kwh, 4)
        running = self.state == "running"
        return {
            s.id: standard[s.id] if s.id in standard else _process_value(s.id, running, self._rng)
            for s in self.machine.signals
        }


def _process_value(signal: str, running: bool, rng: random.Random) -> float:
    mean_running, mean_stopped, noise = PROCESS_SIGNALS.get(signal, GENERIC_SIGNAL)
    return round(rng.gauss(mean_running if running else mean_stopped, noise), 3)


@dataclass
class SensorModel:
    """An environmental sensor box; its readings are noisy around the hall's usual values."""

    sensor: SensorDevice
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = seeded_random(self.seed, self.sensor.id)

    def values(self, hall_busy: bool) -> dict[str, float]:
        return {s.id: _process_value(s.id, hall_busy, self._rng) for s in self.sensor.signals}
