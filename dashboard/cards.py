"""The Shop floor page's live part: a card per machine and per sensor kit, and the faults and
events table, in the words, units and local time a visitor reads."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import streamlit as st

from dashboard.kpis import clock_note
from dashboard.labels import (
    KPI_HELP,
    age_text,
    number_text,
    reason_text,
    signal_name,
    state_text,
    time_text,
)
from dashboard.shop_floor import STATE_COLOURS, AssetView, ShopFloor, read_shop_floor
from dashboard.store_errors import shows_store_errors
from shopfloor.plant import Plant, Signal
from shopfloor.states import PART_COUNT, PRODUCT, REJECT_COUNT, STATE
from shopfloor.store import Store

REFRESH_S = 2.0
BadgeColour = Literal["green", "orange", "red"]
BADGE_COLOURS: dict[str, BadgeColour] = {"normal": "green", "watch": "orange", "anomaly": "red"}
NO_DATA = "no data"


def _shown(point_value: float | str | None, unit: str = "", digits: int = 1) -> str:
    if point_value is None:
        return NO_DATA
    if isinstance(point_value, str):
        return point_value
    return number_text(point_value, unit, digits)


def _declared(plant: Plant, asset: AssetView) -> dict[str, Signal]:
    return plant.catalogue().get(asset.path, {})


def machine_card(plant: Plant, machine: AssetView, shop_floor: ShopFloor) -> None:
    declared = _declared(plant, machine)
    with st.container(border=True):
        st.markdown(f"**{machine.name}**")
        _state_line(plant, machine)
        badge = machine.anomaly_badge()
        if badge:
            st.badge(badge, color=BADGE_COLOURS[badge], help=KPI_HELP["anomaly"])
        parts, rejects = st.columns(2)
        parts.metric("Parts", _shown(machine.value(PART_COUNT), digits=0), help=KPI_HELP["parts"])
        rejects.metric(
            "Rejects", _shown(machine.value(REJECT_COUNT), digits=0), help=KPI_HELP["rejects"]
        )
        if machine.power_signal:
            power = machine.values.get(machine.power_signal)
            shown = _shown(power.value, power.unit) if power else NO_DATA
            st.metric("Power", shown, help=KPI_HELP["power"])
        _last_hour(machine)
        process = machine.process_values()
        if process:
            st.caption(
                " · ".join(
                    f"{signal_name(name, declared.get(name))} {_shown(p.value, p.unit)}"
                    for name, p in process
                )
            )
        _freshness(plant, machine, shop_floor)


def _state_line(plant: Plant, machine: AssetView) -> None:
    """The state in words, why it stopped, and what it makes."""
    state, reason = machine.value(STATE), machine.stop_reason
    if state is None:
        st.caption("state not reported yet")
        return
    colour = STATE_COLOURS.get(str(state), "gray")
    line = f":{colour}-background[{state_text(str(state))}]"
    if reason:
        line += f" {reason_text(reason)}"
    product = machine.value(PRODUCT)
    if product:
        names = {p.id: p.name or p.id for p in plant.products}
        line += f"  \nmaking {names.get(str(product), str(product))}"
    st.markdown(line)


def _last_hour(machine: AssetView) -> None:
    good, per_part = machine.value("kpi.good_parts"), machine.value("kpi.energy_per_good_part")
    if good is None:
        return
    energy = f", {_shown(per_part, 'kWh per good part', 3)}" if per_part is not None else ""
    st.caption(
        f"last hour: {_shown(good, digits=0)} good parts{energy}",
        help=KPI_HELP["energy_per_good_part"],
    )


def _freshness(plant: Plant, asset: AssetView, shop_floor: ShopFloor) -> None:
    """How old the newest reading is against the data clock; a lost source, loudly."""
    lost = shop_floor.lost_since(asset)
    if lost is not None:
        st.warning(
            f"No data from {asset.name} since {time_text(lost, plant)} ({plant.site.timezone})"
        )
        return
    age = asset.age_s(shop_floor.clock(_newest_seen_at(shop_floor)))
    st.caption("no data yet" if age is None else f"updated {age_text(age)} ago")


def _newest_seen_at(shop_floor: ShopFloor) -> datetime | None:
    """When this browser session first saw the shop floor's newest reading (the same for every
    card of a refresh)."""
    newest = shop_floor.newest_reading
    seen = st.session_state.get("newest_seen")
    if seen is None or seen[0] != newest:
        seen = (newest, shop_floor.read_at)
        st.session_state["newest_seen"] = seen
    return seen[1]


def sensor_card(plant: Plant, sensor: AssetView, shop_floor: ShopFloor) -> None:
    declared = _declared(plant, sensor)
    with st.container(border=True):
        st.markdown(f"**{sensor.name}**")
        if not sensor.values:
            st.caption("no data yet")
            return
        columns = st.columns(len(sensor.values))
        for column, (signal, point) in zip(columns, sorted(sensor.values.items()), strict=True):
            column.metric(
                signal_name(signal, declared.get(signal)), _shown(point.value, point.unit)
            )
        _freshness(plant, sensor, shop_floor)


def events_table(plant: Plant, shop_floor: ShopFloor) -> None:
    st.subheader("Faults and events")
    if not shop_floor.events:
        st.caption("none so far")
        return
    zone = plant.site.timezone
    names = {asset.path.asset: asset.name for asset in [*shop_floor.machines, *shop_floor.sensors]}
    rows = [
        {
            "Machine": names.get(item.asset, item.asset),
            "Event": reason_text(item.event.name),
            f"Start ({zone})": time_text(item.event.start, plant, with_date=True),
            f"End ({zone})": time_text(item.event.end, plant) if item.event.end else "ongoing",
            "Note": item.event.note,
        }
        for item in shop_floor.events
    ]
    st.table(rows)


@st.fragment(run_every=REFRESH_S)
@shows_store_errors
def live_shop_floor(plant: Plant, store: Store) -> None:
    shop_floor = read_shop_floor(plant, store)
    st.subheader("Machines")
    columns = st.columns(3)
    for index, machine in enumerate(shop_floor.machines):
        with columns[index % 3]:
            machine_card(plant, machine, shop_floor)
    st.subheader("Environment")
    for sensor in shop_floor.sensors:
        sensor_card(plant, sensor, shop_floor)
    events_table(plant, shop_floor)
    newest = shop_floor.newest_reading
    st.caption(
        f"{clock_note(plant, newest, shop_floor.read_at)}, every {REFRESH_S:.0f} s"
        if newest
        else f"Refreshed {time_text(shop_floor.read_at, plant)} ({plant.site.timezone}, "
        f"wall clock), every {REFRESH_S:.0f} s"
    )
