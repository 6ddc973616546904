"""Trainee sandboxes of a running demo: a copy of the demo's plant under each trainee's tenant
id, kept in the session's `tenants/` folder, which the demo's supervisor and dashboard read.

A sandbox's plant has no shift calendar: a trainee's replay is a shift of its own whenever it
runs, so its OEE is reported over the day it runs in, at any hour.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from shopfloor.config import ConfigError
from shopfloor.plant import load_plant

SESSION_DIR_ENV = "SHOPFLOOR_SESSION_DIR"  # set by the demo's supervisor for its children
TENANTS_DIR = "tenants"
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def tenant_plants(session_dir: Path | None) -> dict[str, Path]:
    """The sandboxes' plant files of a session, by tenant id."""
    if session_dir is None:
        return {}
    folder = session_dir / TENANTS_DIR
    return {path.stem: path for path in sorted(folder.glob("*.yaml")) if TENANT_ID.match(path.stem)}


def session_dir_from_env() -> Path | None:
    value = os.environ.get(SESSION_DIR_ENV)
    return Path(value) if value else None


def write_tenant_plant(plant_file: Path, tenant: str, session_dir: Path) -> Path:
    """Write the sandbox plant of `tenant` (a copy of `plant_file`); raises ValueError with a
    one-line reason for a tenant that is not an id or is the plant's own."""
    if not TENANT_ID.match(tenant):
        raise ValueError(f"tenant {tenant!r} is not an id (lower-case letters, digits, - and _)")
    plant = load_plant(plant_file)
    if tenant == plant.tenant.id:
        raise ValueError(f"tenant {tenant!r} is the demo's own; choose a trainee's name")
    data = yaml.safe_load(plant_file.read_text(encoding="utf-8"))
    data["tenant"] = {"id": tenant, "name": f"{plant.tenant.name}, trainee {tenant}"}
    data.pop("shifts", None)
    path = session_dir / TENANTS_DIR / f"{tenant}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        load_plant(staged)
    except ConfigError:
        staged.unlink()
        raise
    staged.replace(path)  # whole, or not at all: the supervisor may read it any moment
    return path
