"""The Streamlit dashboard: shop floor, demo controls, edge devices, OEE, anomalies, energy and
Lean 4.0 readiness pages.

Run it with `shopfloor dashboard`; it reads the plant and store settings from the environment
that command sets, and the broker (for demo controls and edge devices) from SHOPFLOOR_BROKER_URL.
Beyond loopback it shows nothing before a login, then the pages of the user's role (`auth`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from dashboard.auth import Role, Session, UsersError, current_session, login_page, session_menu
from dashboard.cards import live_shop_floor
from dashboard.i18n import _, choose_language, language_menu
from dashboard.kiosk import navigate
from dashboard.sandboxes import choose_plant
from readiness.live import record_view
from shopfloor.config import ConfigError
from shopfloor.plant import Plant, load_plant
from shopfloor.store import Store, StoreError, StoreSettings, open_store

# The shop floor's (the default page's URL is "/"; this names it to Streamlit).
DEFAULT_PAGE_PATH = "shop-floor"


def _deferred(module: str, page: str) -> Callable[..., None]:
    """A page whose module is imported when the page is first shown: the shop floor, the page
    a demo opens on, does not wait for the other pages' imports (seconds of plotly, pandas
    and PDF fonts on a busy machine)."""

    def show(*args: object, **kwargs: object) -> None:
        getattr(importlib.import_module(module), page)(*args, **kwargs)

    return show


story_page = _deferred("dashboard.story", "story_page")
controls_page = _deferred("dashboard.controls", "controls_page")
edge_devices_page = _deferred("dashboard.edge_devices", "edge_devices_page")
oee_page = _deferred("dashboard.oee", "oee_page")
anomalies_page = _deferred("dashboard.anomalies", "anomalies_page")
energy_page = _deferred("dashboard.energy", "energy_page")
readiness_page = _deferred("dashboard.lean_readiness", "readiness_page")


@st.cache_resource
def _demo_plant() -> Plant:
    return load_plant(os.environ.get("SHOPFLOOR_PLANT", "examples/plant.yaml"))


def _plant(session: Session) -> Plant:
    """The plant chosen in the sidebar among those the session may see: every plant for
    staff, its tenant's for an SME user, the demo's for a visitor."""
    demo = _demo_plant()
    tenants = {Role.STAFF: None, Role.SME: session.tenant, Role.VISITOR: demo.tenant.id}
    tenant = tenants[session.role]
    plant = choose_plant(demo, tenant)
    if plant is None:
        st.error(_("No plant of tenant {tenant} is shown on this dashboard.").format(tenant=tenant))
        st.stop()
    return plant


@st.cache_resource
def _store() -> Store:
    return open_store(StoreSettings.from_env())


def shop_floor_page(plant: Plant) -> None:
    store = _store()
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
    try:
        session = current_session()
    except UsersError as exc:
        st.error(str(exc))
        return
    if session is None:
        st.navigation(_login_pages(), position="hidden").run()
        return
    session_menu(session)
    navigate(_pages(session))


def _login_pages() -> list[StreamlitPage]:
    """The login form alone, under every page's URL: a link to a page asks for a login, then
    shows that page if the user's role has it."""
    every_page = _pages(Session("", Role.STAFF, None, started=0, seen=0))
    return [
        st.Page(
            login_page,
            title=_("Log in"),
            url_path=page.url_path or DEFAULT_PAGE_PATH,
            default=not page.url_path,
        )
        for page in every_page
    ]


def _pages(session: Session) -> list[StreamlitPage]:
    """The pages of the session's role: the demo's story and controls for staff alone; for a
    visitor the kiosk's pages, read-only; an SME user's and a visitor's readiness of their
    own plant's SME alone."""
    broker = os.environ.get("SHOPFLOOR_BROKER_URL")
    staff, visitor = session.role is Role.STAFF, session.role is Role.VISITOR
    pages = [
        st.Page(
            lambda: shop_floor_page(_plant(session)),
            title=_("Shop floor"),
            url_path=DEFAULT_PAGE_PATH,
            default=True,
        )
    ]
    if staff:
        pages += [
            st.Page(
                lambda: story_page(_plant(session), broker, pages),
                title=_("Demo story"),
                url_path="story",
            ),
            st.Page(
                lambda: controls_page(_plant(session), broker),
                title=_("Demo controls"),
                url_path="controls",
            ),
        ]
    if not visitor:
        pages.append(
            st.Page(
                lambda: edge_devices_page(_plant(session), broker),
                title=_("Edge devices"),
                url_path="edge",
            )
        )
    pages += [
        st.Page(lambda: oee_page(_plant(session), _store()), title=_("OEE"), url_path="oee"),
        st.Page(
            lambda: anomalies_page(_plant(session), _store(), read_only=visitor, can_learn=staff),
            title=_("Anomalies"),
            url_path="anomalies",
        ),
        st.Page(
            lambda: energy_page(_plant(session), _store()), title=_("Energy"), url_path="energy"
        ),
        st.Page(
            lambda: readiness_page(
                _plant(session), _store(), own_only=not staff, read_only=visitor
            ),
            title=_("Readiness"),
            url_path="readiness",
        ),
    ]
    return pages


main()
