"""The sidebar's plant selector: the demo's plant and the trainee sandboxes of its session
(`shopfloor replay --tenant NAME` while the demo runs), so staff can show any of them on every
page; a user of one tenant is offered that tenant's plant alone."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.i18n import _
from shopfloor.config import ConfigError
from shopfloor.plant import Plant, load_plant
from shopfloor.sandboxes import session_dir_from_env, tenant_plants

CHOSEN_KEY = "sandboxes.plant"


@st.cache_resource(max_entries=64)
def _load(path: str, modified_ns: int) -> Plant:
    return load_plant(path)


def plant_choices(demo: Plant, session_dir: Path | None) -> dict[str, Plant]:
    """The plants to choose from, by tenant id: the demo's first, then each sandbox that
    loads. The ids stay the choice while the visitor changes language; `plant_label` names
    them."""
    choices = {demo.tenant.id: demo}
    for tenant, path in tenant_plants(session_dir).items():
        try:
            choices[tenant] = _load(str(path), path.stat().st_mtime_ns)
        except (ConfigError, OSError):
            continue  # being written, or broken: the supervisor's output names it
    return choices


def plant_label(plant: Plant, demo: Plant) -> str:
    """A choice as the menu shows it: the demo's company and site, or the trainee's tenant."""
    if plant.tenant.id == demo.tenant.id:
        return f"{demo.tenant.name} · {demo.site.name}"
    return _("trainee {tenant}").format(tenant=plant.tenant.id)


def choose_plant(demo: Plant, tenant: str | None = None) -> Plant | None:
    """The sidebar's "Plant" choice (the demo's plant while there is nothing else to choose).
    With `tenant`, only that tenant's plant is offered: None when this dashboard has none."""
    choices = plant_choices(demo, session_dir_from_env())
    if tenant is not None:
        choices = {tenant: choices[tenant]} if tenant in choices else {}
    if len(choices) <= 1:
        return next(iter(choices.values()), None)
    chosen = st.sidebar.selectbox(
        _("Plant"),
        list(choices),
        key=CHOSEN_KEY,
        format_func=lambda tenant: plant_label(choices[tenant], demo),
    )
    return choices.get(chosen or "", demo)
