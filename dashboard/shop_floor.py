"""What the live shop-floor page shows, computed from the store without any Streamlit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from shopfloor.kpis import KPI_PREFIX
from shopfloor.messages import AssetPath, Event
from shopfloor.plant import Plant
from shopfloor.states import STANDARD_SIGNALS, STATE, STOP_REASON, MachineState
from shopfloor.store import EVENT_PREFIX, Point, Scope, Store

STATE_COLOURS = {"running": "green", "idle": "orange", "unplanned_stop": "red"}


@dataclass(frozen=True)
class AssetView:
    """The latest values of one machine or sensor kit, by signal id."""

    path: AssetPath
    name: str
    values: dict[str, Point]
    power_signal: str | None = None
    energy_signal: str | None = None

    def value(self, signal: str) -> float | str | None:
        point = self.values.get(signal)
        return point.value if point else None

    @property
    def stop_reason(self) -> str | None:
        """Why the machine stands, as its stop_reason signal says; None while it runs or when
        it gives no reason."""
        reason = self.value(STOP_REASON)
        if self.value(STATE) == MachineState.RUNNING or not reason:
            return None
        return str(reason)

    def process_values(self) -> list[tuple[str, Point]]:
        """The signals shown as a line under the headline figures (vibration, temperatures...)."""
        headline: set[str | None] = {*STANDARD_SIGNALS, self.power_signal, self.energy_signal}
        return sorted(
            (name, point)
            for name, point in self.values.items()
            if name not in headline
            and not name.startswith(KPI_PREFIX)
            and not isinstance(point.value, str)
        )

    @property
    def newest_reading(self) -> datetime | None:
        """When the asset last reported (KPIs are not readings)."""
        stamps = [p.ts for name, p in self.values.items() if not name.startswith(KPI_PREFIX)]
        return max(stamps, default=None)

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the asset's newest reading, or None."""
        newest = self.newest_reading
        return None if newest is None else (now - newest).total_seconds()


@dataclass(frozen=True)
class AssetEvent:
    asset: str
    event: Event


@dataclass(frozen=True)
class ShopFloor:
    machines: list[AssetView]
    sensors: list[AssetView]
    events: list[AssetEvent]
    read_at: datetime

    @cached_property  # read once per refresh, asked by every machine card
    def newest_reading(self) -> datetime | None:
        """The data clock: the newest reading of any asset."""
        stamps = [v.newest_reading for v in [*self.machines, *self.sensors]]
        return max((ts for ts in stamps if ts is not None), default=None)

    @property
    def clock(self) -> datetime:
        """What "now" is for a reading's age: the data clock when it runs ahead of the wall
        clock (a fast simulation), else the wall clock."""
        newest = self.newest_reading
        return max(self.read_at, newest) if newest else self.read_at


def read_shop_floor(plant: Plant, store: Store) -> ShopFloor:
    """The latest value of every machine and sensor signal of the plant's site."""
    latest: dict[AssetPath, dict[str, Point]] = {}
    events: list[AssetEvent] = []
    for point in store.latest(Scope(plant.tenant.id, plant.site.id)):
        if point.signal.startswith(EVENT_PREFIX):
            events.append(AssetEvent(point.asset.asset, point.as_event()))
        else:
            latest.setdefault(point.asset, {})[point.signal] = point

    machines = [
        AssetView(
            path,
            machine.name,
            latest.get(path, {}),
            machine.energy_meter.power_signal if machine.energy_meter else None,
            machine.energy_meter.energy_signal if machine.energy_meter else None,
        )
        for path, machine in plant.machines()
    ]
    sensors = [AssetView(p, s.name or s.id, latest.get(p, {})) for p, s in plant.sensors()]
    events.sort(key=lambda e: e.event.start, reverse=True)
    return ShopFloor(
        machines=machines,
        sensors=sensors,
        events=events,
        read_at=datetime.now(UTC),
    )
