"""Rolling per-machine KPIs from the store, written back to the store for the dashboard.

KPIs are stored as points of the machine's own asset with signal ids `kpi.<name>`, stamped with
the end of the window they cover, so any store reader finds them next to the raw signals.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from analytics.kernels import counter_increase
from shopfloor.messages import AssetPath
from shopfloor.plant import Machine, Plant
from shopfloor.store import Point, Store, StoreError

log = logging.getLogger(__name__)

KPI_PREFIX = "kpi."
KPI_UNITS = {"parts": "pcs", "rejects": "pcs", "good_parts": "pcs", "energy": "kWh",
             "energy_per_good_part": "kWh/pcs"}  # fmt: skip


@dataclass(frozen=True)
class MachineKpis:
    """What one machine made and used over a window; None where the window holds no data."""

    parts: float | None
    rejects: float | None
    good_parts: float | None
    energy: float | None
    energy_per_good_part: float | None

    def points(self, path: AssetPath, at: datetime) -> list[Point]:
        return [
            Point(path, f"{KPI_PREFIX}{name}", at, value, unit=KPI_UNITS[name])
            for name, value in asdict(self).items()
            if value is not None
        ]


def _increase(
    store: Store, path: AssetPath, signal: str, start: datetime, end: datetime
) -> float | None:
    """How much a cumulative signal grew in [start, end); None when it has no samples there."""
    history = store.history(path, signal, start, end)
    values = [p.value for p in history if not isinstance(p.value, str)]
    if not values:
        return None
    return float(counter_increase(np.asarray(values, dtype=np.float64)))


def machine_kpis(
    store: Store, path: AssetPath, machine: Machine, start: datetime, end: datetime
) -> MachineKpis:
    """Parts, rejects and energy of one machine in [start, end) from its cumulative counters."""
    parts = _increase(store, path, "part_count", start, end)
    rejects = _increase(store, path, "reject_count", start, end)
    good = max(parts - (rejects or 0.0), 0.0) if parts is not None else None
    meter = machine.energy_meter
    energy = _increase(store, path, meter.energy_signal, start, end) if meter else None
    per_part = energy / good if energy is not None and good else None
    return MachineKpis(parts, rejects, good, energy, per_part)


class LiveKpis:
    """Recomputes every machine's KPIs over a rolling window, every `interval_s` seconds."""

    def __init__(self, plant: Plant, store: Store, window: timedelta, interval_s: float = 10.0):
        self.plant, self.store, self.window, self.interval_s = plant, store, window, interval_s
        self.stopping = threading.Event()

    def run_once(self, now: datetime | None = None) -> list[Point]:
        end = now or datetime.now(UTC)
        points = [
            point
            for path, machine in self.plant.machines()
            for point in machine_kpis(self.store, path, machine, end - self.window, end).points(
                path, end
            )
        ]
        self.store.write(points)
        return points

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                written = self.run_once()
                log.info("wrote %d KPI points over the last %s", len(written), self.window)
            except StoreError as exc:
                log.warning("KPI update skipped: %s", exc)
            self.stopping.wait(self.interval_s)
