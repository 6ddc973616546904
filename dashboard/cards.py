"""The Shop floor page's live part: a card per machine and per sensor kit, and the faults and
events table, in the words, units and local time a visitor reads."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import streamlit as st

from dashboard.i18n import N_, _, ngettext
from dashboard.kpis import clock_note
from dashboard.labels import (
    KPI_HELP,
    age_text,
    event_text,
    note_text,
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
BADGE_NAMES = {"normal": N_("normal"), "watch": N_("watch"), "anomaly": N_("anomaly")}


def _shown(point_value: float | str | None, unit: str = "", digits: int = 1) -> str:
    if point_value is None:
        return _("no data")
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
            st.badge(_(BADGE_NAMES[badge]), color=BADGE_COLOURS[badge], help=KPI_HELP["anomaly"])
        parts, rejects = st.columns(2)
        parts.metric(
            _("Parts"), _shown(machine.value(PART_COUNT), digits=0), help=KPI_HELP["parts"]
        )
        rejects.metric(
            _("Rejects"), _shown(machine.value(REJECT_COUNT), digits=0), help=KPI_HELP["rejects"]
        )
        if machine.power_signal:
            power = machine.values.get(machine.power_signal)
            shown = _shown(power.value, power.unit) if power else _("no data")
            st.metric(_("Power"), shown, help=KPI_HELP["power"])
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
        st.caption(_("state not reported yet"))
        return
    colour = STATE_COLOURS.get(str(state), "gray")
    line = f":{colour}-background[{state_text(str(state))}]"
    if reason:
        line += f" {reason_text(reason)}"
    product = machine.value(PRODUCT)
    if product:
        names = {p.id: p.name or p.id for p in plant.products}
        line += "  \n" + _("making {product}").format(product=names.get(str(product), str(product)))
    st.markdown(line)


def _last_hour(machine: AssetView) -> None:
    good, per_part = machine.value("kpi.good_parts"), machine.value("kpi.energy_per_good_part")
    if good is None:
        return
    count = int(float(good))
    text = ngettext("last hour: {count} good part", "last hour: {count} good parts", count).format(
        count=_shown(good, digits=0)
    )
    if per_part is not None:
        text += ", " + _("{energy} kWh per good part").format(energy=_shown(per_part, digits=3))
    st.caption(
        text,
        help=KPI_HELP["energy_per_good_part"],
    )


def _freshness(plant: Plant, asset: AssetView, shop_floor: ShopFloor) -> None:
    """How old the newest reading is against the data clock; a lost source, loudly."""
    lost = shop_floor.lost_since(asset)
    if lost is not None:
        st.warning(
            _("No data from {asset} since {time} ({zone})").format(
                asset=asset.name, time=time_text(lost, plant), zone=plant.site.timezone
            )
        )
        return
    age = asset.age_s(shop_floor.clock(_newest_seen_at(shop_floor)))
    st.caption(
        _("no data yet") if age is None else _("updated {age} ago").format(age=age_text(age))
    )


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
            st.caption(_("no data yet"))
            return
        columns = st.columns(len(sensor.values))
        for column, (signal, point) in zip(columns, sorted(sensor.values.items()), strict=True):
            column.metric(
                signal_name(signal, declared.get(signal)), _shown(point.value, point.unit)
            )
        _freshness(plant, sensor, shop_floor)


def events_table(plant: Plant, shop_floor: ShopFloor) -> None:
    st.subheader(_("Faults and events"))
    if not shop_floor.events:
        st.caption(_("none so far"))
        return
    zone = plant.site.timezone
    names = {asset.path.asset: asset.name for asset in [*shop_floor.machines, *shop_floor.sensors]}
    rows = [
        {
            _("Machine"): names.get(item.asset, item.asset),
            _("Event"): event_text(item.event.name),
            _("Start ({zone})").format(zone=zone): time_text(
                item.event.start, plant, with_date=True
            ),
            _("End ({zone})").format(zone=zone): (
                time_text(item.event.end, plant) if item.event.end else _("ongoing")
            ),
            _("Note"): note_text(item.event.note, item.event.start, plant),
        }
        for item in shop_floor.events
    ]
    st.table(rows)


@st.fragment(run_every=REFRESH_S)
@shows_store_errors
def live_shop_floor(plant: Plant, store: Store) -> None:
    shop_floor = read_shop_floor(plant, store)
    st.subheader(_("Machines"))
    columns = st.columns(3)
    for index, machine in enumerate(shop_floor.machines):
        with columns[index % 3]:
            machine_card(plant, machine, shop_floor)
    st.subheader(_("Environment"))
    for sensor in shop_floor.sensors:
        sensor_card(plant, sensor, shop_floor)
    events_table(plant, shop_floor)
    newest = shop_floor.newest_reading
    every = number_text(REFRESH_S, "s", digits=0)
    st.caption(
        _("{clock_note}, every {interval}").format(
            clock_note=clock_note(plant, newest, shop_floor.read_at), interval=every
        )
        if newest
        else _("Refreshed {time} ({zone}, wall clock), every {interval}").format(
            time=time_text(shop_floor.read_at, plant), zone=plant.site.timezone, interval=every
        )
    )
