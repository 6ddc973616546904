"""The Streamlit dashboard: the live shop floor. Run it with `shopfloor dashboard`."""

from __future__ import annotations

import os

import streamlit as st

from dashboard.shop_floor import STATE_COLOURS, AssetView, ShopFloor, read_shop_floor
from shopfloor.config import ConfigError
from shopfloor.plant import Plant, load_plant
from shopfloor.store import Store, StoreError, StoreSettings, open_store

REFRESH_S = 2.0


@st.cache_resource
def _plant() -> Plant:
    return load_plant(os.environ.get("SHOPFLOOR_PLANT", "examples/plant.yaml"))


@st.cache_resource
def _store() -> Store:
    return open_store(StoreSettings.from_env())


def _format(value: float | str | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "no data"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f} {unit}".strip()


def _machine_card(machine: AssetView, shop_floor: ShopFloor) -> None:
    with st.container(border=True):
        st.markdown(f"**{machine.name}**  \n`{machine.path.asset}`")
        state = machine.value("state")
        colour = STATE_COLOURS.get(str(state), "gray")
        st.markdown(f":{colour}-background[{_format(state).replace('_', ' ')}]")
        parts, rejects = st.columns(2)
        parts.metric("Parts", _format(machine.value("part_count"), digits=0))
        rejects.metric("Rejects", _format(machine.value("reject_count"), digits=0))
        if machine.power_signal:
            power = machine.values.get(machine.power_signal)
            st.metric("Power", _format(power.value, power.unit) if power else _format(None))
        good, per_part = machine.value("kpi.good_parts"), machine.value("kpi.energy_per_good_part")
        if good is not None:
            energy = (
                f", {_format(per_part, 'kWh per good part', 3)}" if per_part is not None else ""
            )
            st.caption(f"last hour: {_format(good, digits=0)} good parts{energy}")
        age = machine.age_s(shop_floor.read_at)
        st.caption("no data yet" if age is None else f"updated {max(age, 0):.0f} s ago")


def _sensor_card(sensor: AssetView) -> None:
    with st.container(border=True):
        st.markdown(f"**{sensor.name}**  \n`{sensor.path.cell}/{sensor.path.asset}`")
        if not sensor.values:
            st.caption("no data yet")
            return
        columns = st.columns(len(sensor.values))
        for column, (signal, point) in zip(columns, sorted(sensor.values.items()), strict=True):
            column.metric(signal.replace("_", " "), _format(point.value, point.unit))


@st.fragment(run_every=REFRESH_S)
def live_shop_floor(plant: Plant, store: Store) -> None:
    try:
        shop_floor = read_shop_floor(plant, store)
    except StoreError as exc:
        st.error(f"The store cannot be read: {exc}")
        return
    st.subheader("Machines")
    columns = st.columns(3)
    for index, machine in enumerate(shop_floor.machines):
        with columns[index % 3]:
            _machine_card(machine, shop_floor)
    st.subheader("Environment")
    for sensor in shop_floor.sensors:
        _sensor_card(sensor)
    st.caption(f"Refreshed {shop_floor.read_at:%H:%M:%S} UTC, every {REFRESH_S:.0f} s")


def main() -> None:
    st.set_page_config(page_title="shopfloor", page_icon="🏭", layout="wide")
    try:
        plant, store = _plant(), _store()
    except (ConfigError, StoreError) as exc:
        st.error(str(exc))
        return
    st.title(f"{plant.tenant.name} · {plant.site.name}")
    live_shop_floor(plant, store)


main()
