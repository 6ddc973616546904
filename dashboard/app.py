"""The Streamlit dashboard: shop floor, demo controls, edge devices, OEE, anomalies, energy and
Lean 4.0 readiness pages.

Run it with `shopfloor dashboard`; it reads the plant and store settings from the environment
that command sets, and the broker (for demo controls and edge devices) from SHOPFLOOR_BROKER_URL.
"""

from __future__ import annotations

import contextlib
import os

import streamlit as st

from dashboard.anomalies import anomalies_page
from dashboard.controls import controls_page
from dashboard.edge_devices import edge_devices_page
from dashboard.energy import energy_page
from dashboard.kpis import clock_note
from dashboard.lean_readiness import readiness_page
from dashboard.oee import oee_page
from dashboard.sandboxes import choose_plant
from dashboard.shop_floor import STATE_COLOURS, AssetView, ShopFloor, read_shop_floor
from dashboard.store_errors import shows_store_errors
from readiness.live import record_view
from shopfloor.config import ConfigError
from shopfloor.plant import Plant, load_plant
from shopfloor.store import Store, StoreError, StoreSettings, open_store

REFRESH_S = 2.0


@st.cache_resource
def _demo_plant() -> Plant:
    return load_plant(os.environ.get("SHOPFLOOR_PLANT", "examples/plant.yaml"))


def _plant() -> Plant:
    """The plant chosen in the sidebar: the demo's or a trainee sandbox's."""
    return choose_plant(_demo_plant())


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
        product = machine.value("product")
        making = f"  making `{product}`" if product else ""
        st.markdown(f":{colour}-background[{_format(state).replace('_', ' ')}]{making}")
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
        process = machine.process_values()
        if process:
            st.caption(
                " · ".join(
                    f"{name.replace('_', ' ')} {_format(p.value, p.unit)}" for name, p in process
                )
            )
        # Against the data clock when it runs ahead of the wall clock (a fast simulation).
        age = machine.age_s(shop_floor.clock)
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


def _events(shop_floor: ShopFloor) -> None:
    st.subheader("Faults and events")
    if not shop_floor.events:
        st.caption("none so far")
        return
    rows = [
        {
            "machine": item.asset,
            "event": item.event.name.replace("_", " "),
            "start (data time, UTC)": f"{item.event.start:%Y-%m-%d %H:%M:%S}",
            "end (data time, UTC)": f"{item.event.end:%H:%M:%S}" if item.event.end else "ongoing",
            "note": item.event.note,
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
            _machine_card(machine, shop_floor)
    st.subheader("Environment")
    for sensor in shop_floor.sensors:
        _sensor_card(sensor)
    _events(shop_floor)
    newest = shop_floor.newest_reading
    st.caption(
        f"{clock_note(newest, shop_floor.read_at)}, every {REFRESH_S:.0f} s"
        if newest
        else f"Refreshed {shop_floor.read_at:%H:%M:%S} UTC (wall clock), every {REFRESH_S:.0f} s"
    )


def shop_floor_page() -> None:
    plant, store = _plant(), _store()
    st.title(f"{plant.tenant.name} · {plant.site.name}")
    _log_view(plant, store)
    live_shop_floor(plant, store)


def _log_view(plant: Plant, store: Store) -> None:
    """One logged view per browser session: the readiness assessment's dashboard-use evidence."""
    if st.session_state.get("view_logged"):
        return
    with contextlib.suppress(StoreError):  # a view that cannot be logged is not worth an error
        record_view(store, plant)
        st.session_state["view_logged"] = True


def edge_page() -> None:
    edge_devices_page(_plant(), os.environ.get("SHOPFLOOR_BROKER_URL"))


def main() -> None:
    st.set_page_config(page_title="shopfloor", page_icon="🏭", layout="wide")
    try:
        _demo_plant()
        _store()
    except (ConfigError, StoreError) as exc:
        st.error(str(exc))
        return
    pages = [
        st.Page(shop_floor_page, title="Shop floor", default=True),
        st.Page(
            lambda: controls_page(_plant(), os.environ.get("SHOPFLOOR_BROKER_URL")),
            title="Demo controls",
            url_path="controls",
        ),
        st.Page(edge_page, title="Edge devices", url_path="edge"),
        st.Page(lambda: oee_page(_plant(), _store()), title="OEE", url_path="oee"),
        st.Page(
            lambda: anomalies_page(_plant(), _store()), title="Anomalies", url_path="anomalies"
        ),
        st.Page(lambda: energy_page(_plant(), _store()), title="Energy", url_path="energy"),
        st.Page(
            lambda: readiness_page(_plant(), _store()), title="Readiness", url_path="readiness"
        ),
    ]
    st.navigation(pages).run()


main()
