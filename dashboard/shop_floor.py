"""What the live shop-floor page shows, computed from the store without any Streamlit."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import pairwise

from analytics.levels import SIGNAL_OFF, SIGNAL_ON, T2_Z, t2_level
from dashboard.kpis import CLOCKS_APART
from shopfloor.kpis import KPI_PREFIX
from shopfloor.learning import MODEL_PREFIX, NORMAL_MODEL
from shopfloor.messages import AssetPath, Event
from shopfloor.plant import Machine, Plant
from shopfloor.states import STANDARD_SIGNALS, STATE, STOP_REASON, MachineState
from shopfloor.store import EVENT_PREFIX, SCORE_PREFIX, Point, Scope, Store

STATE_COLOURS = {"running": "green", "idle": "orange", "unplanned_stop": "red"}
MACHINE_SCORE = SCORE_PREFIX + "machine"  # the analytics service's T² of all signals together
BADGES = ("normal", "watch", "anomaly")
NORMAL_WATCH = 0.5  # of the alarm level of a machine's learnt normal model: "watch"
# A source is lost when it has sent nothing for this many of its sampling intervals, and for
# at least LOST_AFTER_MIN_S, while the other sources go on (a live pipeline lags a second or two).
LOST_AFTER_INTERVALS = 10
LOST_AFTER_MIN_S = 10.0
SAMPLING_LOOKBACK = timedelta(minutes=10)  # of the asset's own readings to time its sampling


def _is_reading(signal: str) -> bool:
    """KPIs, anomaly scores and normal models are the analytics', not what the asset reported."""
    return not signal.startswith((KPI_PREFIX, SCORE_PREFIX, MODEL_PREFIX))


@dataclass(frozen=True)
class AssetView:
    """The latest values of one machine or sensor kit, by signal id."""

    path: AssetPath
    name: str
    values: dict[str, Point]
    power_signal: str | None = None
    energy_signal: str | None = None
    sampling_s: float | None = None  # the typical step between its readings, when known

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
            if name not in headline and _is_reading(name) and not isinstance(point.value, str)
        )

    @property
    def newest_reading(self) -> datetime | None:
        """When the asset last reported (KPIs and scores are not readings)."""
        stamps = [p.ts for name, p in self.values.items() if _is_reading(name)]
        return max(stamps, default=None)

    @property
    def newest_signal(self) -> str | None:
        """The signal the asset reported last: the one to time its sampling by."""
        readings = [(p.ts, name) for name, p in self.values.items() if _is_reading(name)]
        return max(readings)[1] if readings else None

    def anomaly_badge(self) -> str | None:
        """ "normal", "watch" or "anomaly" from the latest anomaly scores, at the levels the
        analytics service opens events at (a signal's confidence, the machine's joint T²);
        "watch" is a signal above the level that closes an event, or a T² as rare as half the
        sigmas. A machine with a learnt normal model is badged on its score alone, a ratio to
        its alarm level. None before the service has scored the machine."""
        scores = {
            name.removeprefix(SCORE_PREFIX): float(p.value)
            for name, p in self.values.items()
            if name.startswith(SCORE_PREFIX) and not isinstance(p.value, str)
        }
        if not scores:
            return None
        joint = scores.pop(MACHINE_SCORE.removeprefix(SCORE_PREFIX), None)
        if joint is not None and NORMAL_MODEL in self.values:  # a ratio to the learnt level
            return BADGES[2 if joint >= 1 else 1 if joint >= NORMAL_WATCH else 0]
        level = max((_signal_level(score) for score in scores.values()), default=0)
        if joint is not None and len(scores) > 1:
            level = max(level, _joint_level(joint, len(scores)))
        return BADGES[level]

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the asset's newest reading, or None."""
        newest = self.newest_reading
        return None if newest is None else (now - newest).total_seconds()


def _signal_level(score: float) -> int:
    return 2 if score >= SIGNAL_ON else 1 if score >= SIGNAL_OFF else 0


def _joint_level(t2: float, signals: int) -> int:
    return 2 if t2 >= t2_level(T2_Z, signals) else 1 if t2 >= t2_level(T2_Z / 2, signals) else 0


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

    def clock(self, newest_seen_at: datetime | None = None) -> datetime:
        """What "now" is for a reading's age. The wall clock while the data keeps to it; the
        data clock when that runs ahead (a fast simulation); and when it runs far behind (a
        replay, or a demo that began at its shift's start), the data clock moved on by the wall
        time since its newest reading was first seen (`newest_seen_at`), so that readings that
        stop coming still grow old."""
        newest = self.newest_reading
        if newest is None:
            return self.read_at
        if newest >= self.read_at:
            return newest
        if self.read_at - newest < CLOCKS_APART:
            return self.read_at
        return newest + (self.read_at - (newest_seen_at or self.read_at))

    def lost_since(self, asset: AssetView) -> datetime | None:
        """When a source that others outlive last reported: its newest reading, once that is
        older than a few of its sampling intervals against the data clock; else None."""
        newest, clock = asset.newest_reading, self.newest_reading
        if newest is None or clock is None:
            return None
        silent_s = (clock - newest).total_seconds()
        allowed = max(LOST_AFTER_INTERVALS * (asset.sampling_s or 0.0), LOST_AFTER_MIN_S)
        return newest if silent_s > allowed else None


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
        _timed(store, AssetView(path, machine.name, latest.get(path, {}), *_meter(machine)))
        for path, machine in plant.machines()
    ]
    sensors = [
        _timed(store, AssetView(path, sensor.name or sensor.id, latest.get(path, {})))
        for path, sensor in plant.sensors()
    ]
    events.sort(key=lambda e: e.event.start, reverse=True)
    return ShopFloor(
        machines=machines,
        sensors=sensors,
        events=events,
        read_at=datetime.now(UTC),
    )


def _meter(machine: Machine) -> tuple[str | None, str | None]:
    meter = machine.energy_meter
    return (meter.power_signal, meter.energy_signal) if meter else (None, None)


def _timed(store: Store, view: AssetView) -> AssetView:
    """The view with its sampling interval: the median step of its newest signal's readings
    over the minutes before the last one (at x60 a step is a minute of data time)."""
    signal, newest = view.newest_signal, view.newest_reading
    if signal is None or newest is None:
        return view
    stamps = [p.ts for p in store.history(view.path, signal, newest - SAMPLING_LOOKBACK, newest)]
    steps = [(b - a).total_seconds() for a, b in pairwise(stamps)]
    return replace(view, sampling_s=statistics.median(steps) if steps else None)
