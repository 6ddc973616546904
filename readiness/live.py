"""The ten indicators of a plant measured from the platform's own data (specification B3).

`read_plant_data` gathers what the indicator formulas need from a store, reusing the machine
history the analytics core reads (`analytics.history`); `plant_indicators` applies the formulas
of `indicators.py` to it, whoever gathered it (the demo gathers the same from a simulator run).

The window ends at the data's newest reading, as the analytics service's clock does (a
simulator may run ahead of the wall clock), and covers 28 days, or less when the plant's data
began later: a plant connected this morning is judged on what it sent since, not on the 27 days
before it existed. A fresh demo therefore scores the hours it has run.

What the platform measures, and what it cannot:

- DC, CC, OV, RC and STD from each machine's state log, stop reasons and counters; any
  numeric reading is a heartbeat, taken per minute (a silence counts from 10 minutes).
- ART from the `event.*` points (injected faults and anomalies found by the analytics service)
  and their `ack.*` acknowledgements from the dashboard. A stop reason on the platform comes
  from the machine itself, not from a person, so reason entry does not count as a response;
  there is no repair state.
- EV from the sensor kits of each risk zone the SME names in its answers.
- DU from the dashboard's view log (`record_view`): a point per view of a page under the
  tenant's platform asset. Null while the store holds no view at all (the dashboard does not
  log views), and when the window holds no working day's midnight (shorter than a day).
- EC from rated power, as the specification's fallback without a main meter (the plant
  model has none): see `_energy_coverage`.
- STD and CO from the parts counted, each with the product loaded when it was made (a
  machine's `product` signal; a machine that reports none makes its first plant product), and
  CO from the state between two products' runs (changeovers as `setup`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from analytics.history import machine_history, points_in_force
from analytics.oee import StateEvent, shift_calendar
from readiness import DEFAULT_WINDOW
from readiness.assessment import run_assessment
from readiness.evidence import Evidence, Indicators
from readiness.indicators import (
    AlarmEvent,
    DashboardView,
    PartCount,
    StateRecord,
    anomaly_response,
    changeover_capture,
    connectivity,
    dashboard_use,
    energy_coverage,
    environment_coverage,
    machine_timeline,
    no_data_seconds,
    oee_visible,
    platform_state_code,
    reason_coverage,
    share,
    signal_completeness,
    standard_time_coverage,
    working_days,
)
from readiness.persistence import (
    GateAlert,
    ReadinessStore,
    ReadinessStoreError,
    Snapshot,
    fallen_gates,
)
from readiness.report import alert_text
from shopfloor.messages import AssetPath
from shopfloor.plant import Machine, Plant
from shopfloor.states import PRODUCT, STATE, STOP_REASON
from shopfloor.store import ACK_PREFIX, EVENT_PREFIX, Point, Scope, Store, data_clock

log = logging.getLogger(__name__)

HEARTBEAT = timedelta(minutes=1)  # readings are heartbeats at this resolution
TEXT_SIGNALS = frozenset({STATE, STOP_REASON, PRODUCT})
VIEW_PREFIX = "view."
SHOP_FLOOR_PAGE = "shop_floor"


@dataclass(frozen=True)
class MachineData:
    """One machine over a window: state records (the one in force at the start too), the times
    of any data, and the parts it made, by product, in time order."""

    states: Sequence[StateRecord]
    seen: Sequence[float]
    counts: Sequence[PartCount]


@dataclass(frozen=True)
class PlantData:
    """What the indicators are computed from, over [start, end) in POSIX seconds."""

    start: float
    end: float
    machines: Mapping[str, MachineData]
    alarms: Sequence[AlarmEvent]
    zone_seen: Mapping[str, Sequence[float]]  # times of any sensor reading, by zone
    views: Sequence[DashboardView] | None  # None: the dashboard logs no views


def plant_indicators(plant: Plant, data: PlantData, risk_zones: Collection[str]) -> Indicators:
    """The ten indicators of the plant's machines (all in scope) and of its risk zones."""
    start, end = data.start, data.end
    timelines = {
        machine_id: machine_timeline(m.states, start, end, m.seen)
        for machine_id, m in data.machines.items()
    }
    links = connectivity({m: no_data_seconds(t) for m, t in timelines.items()}, end - start)
    machines = {machine.id: machine for _, machine in plant.machines()}
    counts = [c for m in data.machines.values() for c in m.counts]
    visible = [
        oee_visible(
            machine_id in links.connected,
            data.machines[machine_id].counts,
            machines[machine_id].ideal_cycle_time,
            timelines[machine_id],
            bool(plant.shifts),
        )
        for machine_id in data.machines
    ]
    planned = (
        shift_calendar(plant.shifts, plant.site.timezone, start, end) if plant.shifts else None
    )
    return Indicators(
        DC=links.data_completeness,
        CC=links.coverage,
        OV=share(visible),
        DU=_dashboard_use(plant, data),
        RC=reason_coverage(timelines.values(), planned),
        ART=anomaly_response(data.alarms, start, end, bool(links.connected)),
        EV=environment_coverage(
            {z: signal_completeness(seen, start, end) for z, seen in data.zone_seen.items()},
            risk_zones,
        ),
        STD=standard_time_coverage(counts, _ideal_cycle_times(plant)),
        EC=_energy_coverage(plant, links.connected),
        CO=changeover_capture(counts, timelines),
    )


def _energy_coverage(plant: Plant, connected: Collection[str]) -> float | None:
    """EC without a main meter: the rated kW of the metered machines / all rated kW.

    A machine is metered when it has an energy meter and is connected: the meter's power and
    energy are signals of the machine, read over its connection, and a meter that sends nothing
    measures nothing. EC is null unless every machine declares its rated power: a partial sum
    would leave out exactly the undocumented consumers and overstate the coverage, so the gate
    (G4) holds until the asset register is complete.
    """
    machines = [machine for _, machine in plant.machines()]
    rated = {m.id: m.rated_power_kw for m in machines if m.rated_power_kw is not None}
    if len(rated) < len(machines):
        return None
    metered = [m.id for m in machines if m.energy_meter and m.id in connected]
    return energy_coverage([], rated_kw=rated, metered=metered)


def _ideal_cycle_times(plant: Plant) -> dict[str, float]:
    """The products with a standard time (an ideal cycle time on some machine)."""
    return {
        product: seconds
        for _, machine in plant.machines()
        for product, seconds in machine.ideal_cycle_time.items()
    }


def _dashboard_use(plant: Plant, data: PlantData) -> float | None:
    if data.views is None:
        return None
    zone = ZoneInfo(plant.site.timezone)
    days = working_days(_utc(data.start), _utc(data.end), zone, plant.shifts)
    return dashboard_use(data.views, days, zone)


# --- reading the store ----------------------------------------------------------------------


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _heartbeats(
    store: Store, path: AssetPath, signals: Collection[str], start: datetime, end: datetime
) -> list[float]:
    """The minutes in which any of the numeric signals was read."""
    return sorted(
        {
            point.ts.timestamp()
            for signal in signals
            for point in store.history(path, signal, start, end, every=HEARTBEAT)
        }
    )


def part_counts(
    log: Sequence[StateEvent], start: float, machine: str, default_product: str
) -> list[PartCount]:
    """The parts counted after `start`, a record per minute and product: the rises of the
    cumulative counters (a fall is a reset), each of the product loaded while it was made.
    Rejects are None when the machine never reported a reject count."""
    steps: list[tuple[float, str, float, float]] = []  # time, product, parts, rejects
    last_total = last_bad = None
    made_under = log[0].product if log else ""
    for event in log:
        parts = rejects = 0.0
        if event.total_count is not None:
            if last_total is not None:
                parts = max(0, event.total_count - last_total)
            last_total = event.total_count
        if event.bad_count is not None:
            if last_bad is not None:
                rejects = max(0, event.bad_count - last_bad)
            last_bad = event.bad_count
        if event.time > start and (parts or rejects):
            steps.append((event.time, made_under or default_product, parts, rejects))
        made_under = event.product
    counts_rejects = last_bad is not None
    return [
        PartCount(t, machine, product, parts - rejects, rejects if counts_rejects else None)
        for t, product, parts, rejects in _per_minute(steps)
    ]


def _per_minute(
    steps: Sequence[tuple[float, str, float, float]],
) -> list[tuple[float, str, float, float]]:
    """Consecutive steps of one product within a minute as one, at the time of its last."""
    merged: list[tuple[float, str, float, float]] = []
    minute = HEARTBEAT.total_seconds()
    for t, product, parts, rejects in steps:
        if merged and merged[-1][1] == product and t // minute == merged[-1][0] // minute:
            _, _, parts_before, rejects_before = merged[-1]
            merged[-1] = (t, product, parts_before + parts, rejects_before + rejects)
        else:
            merged.append((t, product, parts, rejects))
    return merged


def _machine_data(
    store: Store, plant: Plant, path: AssetPath, machine: Machine, start: datetime, end: datetime
) -> MachineData:
    log = machine_history(partial(points_in_force, store), path, machine, start, end).events
    numeric = [s.id for s in machine.signals if s.id not in TEXT_SIGNALS]
    seen = _heartbeats(store, path, numeric, start, end)
    return MachineData(
        states=[StateRecord(e.time, platform_state_code(e.state, e.reason)) for e in log],
        seen=sorted({*seen, *(e.time for e in log)}),
        counts=part_counts(
            log, start.timestamp(), machine.id, plant.default_product(machine) or ""
        ),
    )


def _alarms(store: Store, plant: Plant, start: datetime, end: datetime) -> list[AlarmEvent]:
    """Every event raised in the window (faults and anomalies), with its acknowledgement."""
    named = {
        (p.asset, p.signal.removeprefix(EVENT_PREFIX))
        for p in store.latest(Scope(plant.tenant.id, plant.site.id))
        if p.signal.startswith(EVENT_PREFIX)
    }
    alarms = []
    for path, name in sorted(named):
        acks = {
            p.ts: p.acknowledged_at().timestamp()
            for p in store.history(path, f"{ACK_PREFIX}{name}", start, end)
        }
        for point in store.history(path, f"{EVENT_PREFIX}{name}", start, end):
            alarms.append(AlarmEvent(point.ts.timestamp(), acknowledged=acks.get(point.ts)))
    return alarms


def _zone_seen(
    store: Store, plant: Plant, start: datetime, end: datetime
) -> dict[str, list[float]]:
    seen: dict[str, set[float]] = {}
    for path, sensor in plant.sensors():
        signals = [s.id for s in sensor.signals]
        seen.setdefault(path.cell, set()).update(_heartbeats(store, path, signals, start, end))
    return {zone: sorted(times) for zone, times in seen.items()}


def view_log_path(plant: Plant) -> AssetPath:
    """The platform asset of the tenant that the dashboard's views are logged under."""
    return AssetPath(plant.tenant.id, plant.site.id, "platform", "dashboard", "views")


def record_view(
    store: Store,
    plant: Plant,
    page: str = SHOP_FLOOR_PAGE,
    user: str = "",
    at: datetime | None = None,
) -> None:
    """Log one view of a dashboard page (the DU indicator's input); the value is the user."""
    point = Point(view_log_path(plant), f"{VIEW_PREFIX}{page}", at or datetime.now(UTC), user)
    store.write([point])


def _views(
    store: Store, plant: Plant, start: datetime, end: datetime
) -> list[DashboardView] | None:
    path, signal = view_log_path(plant), f"{VIEW_PREFIX}{SHOP_FLOOR_PAGE}"
    points = store.history(path, signal, start, end)
    if not points and store.before(path, signal, start) is None:
        return None
    return [DashboardView(p.ts, str(p.value), SHOP_FLOOR_PAGE) for p in points]


def read_plant_data(plant: Plant, store: Store, start: datetime, end: datetime) -> PlantData:
    """The plant's data over [start, end), the window starting no earlier than its first data."""
    machines = {
        machine.id: _machine_data(store, plant, path, machine, start, end)
        for path, machine in plant.machines()
    }
    zone_seen = _zone_seen(store, plant, start, end)
    first = _first_reading(machines, zone_seen)
    return PlantData(
        start=max(start.timestamp(), first) if first is not None else start.timestamp(),
        end=end.timestamp(),
        machines=machines,
        alarms=_alarms(store, plant, start, end),
        zone_seen=zone_seen,
        views=_views(store, plant, start, end),
    )


def _first_reading(
    machines: Mapping[str, MachineData], zone_seen: Mapping[str, Sequence[float]]
) -> float | None:
    firsts = [m.seen[0] for m in machines.values() if m.seen]
    return min([*firsts, *(times[0] for times in zone_seen.values() if times)], default=None)


def live_evidence(
    plant: Plant,
    store: Store,
    risk_zones: Collection[str] = (),
    end: datetime | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> Evidence:
    """The plant's indicators over the window ending at `end` (default: the data clock)."""
    end = end or data_clock(plant, store) or datetime.now(UTC)
    data = read_plant_data(plant, store, end - window, end)
    return Evidence(
        plant_indicators(plant, data, risk_zones),
        window_start=_utc(data.start),
        window_end=end,
        source=f"the store ({plant.tenant.id}/{plant.site.id})",
    )


@dataclass(frozen=True)
class Rescored:
    """A fresh snapshot of an SME, and the gates whose indicators fell short since the last."""

    snapshot: Snapshot
    fallen: list[GateAlert]


def rescore(
    plant: Plant,
    store: Store,
    database: Path,
    end: datetime | None = None,
    every: timedelta = timedelta(0),
) -> Rescored | None:
    """Score the plant's SME again on its latest answers and fresh evidence from the store, and
    keep the snapshot, dated `end` (default: the data clock); None when the SME was never
    assessed (there are no answers yet) or its latest snapshot is less than `every` old.

    Run daily, this is what makes progress visible without anyone filling in a form again, and
    what raises the alarm when a measured indicator falls below one of its gates.
    """
    end = end or data_clock(plant, store) or datetime.now(UTC)
    with ReadinessStore(database) as saved:
        earlier = saved.snapshots(plant.tenant.id)
        if not earlier or end - earlier[-1].taken_at < every:
            return None
        answers = saved.answers(earlier[-1])
        evidence = live_evidence(plant, store, answers.risk_zones, end=end)
        snapshot = saved.save(run_assessment(answers, evidence, taken_at=end))
    return Rescored(snapshot, fallen_gates(earlier[-1], snapshot))


def rescorer(
    plant: Plant, store: Store, database: Path, every: timedelta = timedelta(days=1)
) -> Callable[[datetime], None]:
    """What the analytics service calls after each cycle (see `AnalyticsService.after_cycle`):
    a snapshot of the plant's SME once its latest is `every` old in data time (a freshly seeded
    or saved one waits); a gate whose indicator fell short since the last snapshot is logged as
    a warning, and a database that cannot be read only costs the snapshot."""

    def rescore_at(now: datetime) -> None:
        try:
            rescored = rescore(plant, store, database, now, every)
        except ReadinessStoreError as exc:
            log.warning("readiness not rescored: %s", exc)
            return
        if rescored is None:
            return
        sme = rescored.snapshot.sme
        log.info("readiness of %s: R %.2f", sme, rescored.snapshot.index)
        for alert in rescored.fallen:
            log.warning("readiness of %s: %s", sme, alert_text(alert))

    return rescore_at
