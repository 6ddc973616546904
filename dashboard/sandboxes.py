"""The sidebar's plant selector: the demo's plant and the trainee sandboxes of its session
(`shopfloor replay --tenant NAME` while the demo runs), so staff can show any of them on every
page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from shopfloor.config import ConfigError
from shopfloor.plant import Plant, load_plant
from shopfloor.sandboxes import session_dir_from_env, tenant_plants

CHOSEN_KEY = "sandboxes.plant"


@st.cache_resource(max_entries=64)
def _load(path: str, modified_ns: int) -> Plant:
    return load_plant(path)


def plant_choices(demo: Plant, session_dir: Path | None) -> dict[str, Plant]:
    """The plants to choose from, by label: the demo's first, then each sandbox that loads."""
    choices = {f"{demo.tenant.name} · {demo.site.name}": demo}
    for tenant, path in tenant_plants(session_dir).items():
        try:
            choices[f"trainee {tenant}"] = _load(str(path), path.stat().st_mtime_ns)
        except (ConfigError, OSError):
            continue  # being written, or broken: the supervisor's output names it
    return choices


def choose_plant(demo: Plant) -> Plant:
    """The sidebar's "Plant" choice (the demo's plant while there is nothing else to choose)."""
    choices = plant_choices(demo, session_dir_from_env())
    if len(choices) == 1:
        return demo
    label = st.sidebar.selectbox("Plant", list(choices), key=CHOSEN_KEY)
    return choices.get(label or "", demo)
