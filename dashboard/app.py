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
from dashboard.cards import live_shop_floor
from dashboard.controls import controls_page
from dashboard.edge_devices import edge_devices_page
from dashboard.energy import energy_page
from dashboard.i18n import _, choose_language, language_menu
from dashboard.kiosk import navigate
from dashboard.lean_readiness import readiness_page
from dashboard.oee import oee_page
from dashboard.sandboxes import choose_plant
from dashboard.story import story_page
from readiness.live import record_view
from shopfloor.config import ConfigError
from shopfloor.plant import Plant, load_plant
from shopfloor.store import Store, StoreError, StoreSettings, open_store


@st.cache_resource
def _demo_plant() -> Plant:
    return load_plant(os.environ.get("SHOPFLOOR_PLANT", "examples/plant.yaml"))


def _plant() -> Plant:
    """The plant chosen in the sidebar: the demo's or a trainee sandbox's."""
    return choose_plant(_demo_plant())


@st.cache_resource
def _store() -> Store:
    return open_store(StoreSettings.from_env())


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
    choose_language(_demo_plant())
    language_menu()
    pages = [
        st.Page(shop_floor_page, title=_("Shop floor"), default=True),
        st.Page(
            lambda: story_page(_plant(), os.environ.get("SHOPFLOOR_BROKER_URL"), pages),
            title=_("Demo story"),
            url_path="story",
        ),
        st.Page(
            lambda: controls_page(_plant(), os.environ.get("SHOPFLOOR_BROKER_URL")),
            title=_("Demo controls"),
            url_path="controls",
        ),
        st.Page(edge_page, title=_("Edge devices"), url_path="edge"),
        st.Page(lambda: oee_page(_plant(), _store()), title=_("OEE"), url_path="oee"),
        st.Page(
            lambda: anomalies_page(_plant(), _store()), title=_("Anomalies"), url_path="anomalies"
        ),
        st.Page(lambda: energy_page(_plant(), _store()), title=_("Energy"), url_path="energy"),
        st.Page(
            lambda: readiness_page(_plant(), _store()), title=_("Readiness"), url_path="readiness"
        ),
    ]
    navigate(pages)


main()
