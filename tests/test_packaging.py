"""What each extra installs: a Raspberry Pi running the edge agent gets nothing heavy, the
dashboard no Numba, the gateway neither Streamlit nor Numba. Where a component runs as a
process in other tests, `without()` takes the packages its extra does not install away from it
(the dashboard's pages in Chromium, the gateway under hostile traffic)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

HEAVY = {"numba", "streamlit", "fastapi", "influxdb-client", "pandas", "uvicorn"}
NOT_IN_EXTRA = {
    "dashboard": {"numba", "llvmlite"},
    "gateway": {"numba", "llvmlite", "streamlit", "plotly"},
}


def without(directory: Path, *packages: str) -> dict[str, str]:
    """The environment of a process in which importing any of `packages` fails as if it were
    not installed: a package of that name first on the path that raises ImportError."""
    for name in packages:
        package = directory / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(
            f"raise ModuleNotFoundError('{name} is not installed', name='{name}')\n"
        )
    path = os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path}


def dependency_closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Every distribution that installing `name[extras]` pulls in, from installed metadata."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    pending = [(canonicalize_name(name), extras)]
    while pending:
        current, current_extras = pending.pop()
        if (current, current_extras) in seen:
            continue
        seen.add((current, current_extras))
        names.add(current)
        for text in metadata.requires(current) or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in current_extras] or [{"extra": ""}]
            if requirement.marker and not any(
                requirement.marker.evaluate(env) for env in environments
            ):
                continue
            pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return names


def test_edge_extra_pulls_nothing_heavy() -> None:
    closure = dependency_closure("shopfloor", frozenset({"edge"}))
    assert {"asyncua", "paho-mqtt", "pydantic", "typer"} <= closure
    assert closure.isdisjoint(HEAVY), closure & HEAVY


@pytest.mark.parametrize(("extra", "absent"), sorted(NOT_IN_EXTRA.items()))
def test_extras_leave_out_what_their_component_does_not_need(extra: str, absent: set[str]) -> None:
    closure = dependency_closure("shopfloor", frozenset({extra}))
    assert closure.isdisjoint(absent), closure & absent


def test_without_makes_a_package_uninstalled_for_a_process(tmp_path: Path) -> None:
    probe = "import numba"
    env = {**os.environ, **without(tmp_path, "numba")}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert "ModuleNotFoundError: numba is not installed" in result.stderr
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0


@pytest.mark.parametrize(
    ("command", "absent"),
    [
        (["dashboard", "--help"], NOT_IN_EXTRA["dashboard"]),
        (["gateway", "--help"], NOT_IN_EXTRA["gateway"]),
    ],
)
def test_component_commands_start_without_what_their_extra_leaves_out(
    command: list[str], absent: set[str], tmp_path: Path
) -> None:
    env = {**os.environ, **without(tmp_path, *absent)}
    result = subprocess.run(
        [sys.executable, "-m", "launcher", *command], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr


def test_the_closure_sees_heavy_packages_where_they_belong() -> None:
    """Guards the guard: the same walk does find numba and streamlit in the demo extra."""
    assert {"numba", "streamlit", "fastapi", "influxdb-client"} <= dependency_closure(
        "shopfloor", frozenset({"demo"})
    )


@pytest.mark.parametrize("command", [["edge", "run", "--help"], ["plant", "check", "--help"]])
def test_edge_commands_import_nothing_heavy(command: list[str]) -> None:
    """Neither the demo's libraries nor the other commands' modules (3 MB of the agent)."""
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['shopfloor', *{command!r}]\n"
        "import edge.agent\n"
        "try:\n"
        "    runpy.run_module('launcher', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'numba', 'streamlit', 'fastapi', 'influxdb_client', 'pandas', 'httpx'}\n"
        "others = {'launcher.demo', 'launcher.session', 'launcher.cli.gateway', 'readiness'}\n"
        "print(sorted((heavy | others) & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_no_dashboard_module_shadows_a_package() -> None:
    """Streamlit runs dashboard/app.py with dashboard/ first on the path: a page module named
    like a top-level package (readiness, analytics...) would be imported in its place."""
    tops = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}
    pages = {path.stem for path in (ROOT / "dashboard").glob("*.py")}
    assert not pages & tops, pages & tops


def test_live_readiness_evidence_needs_no_numba(tmp_path: Path) -> None:
    """The dashboard's Readiness page measures evidence from the store: without Numba too."""
    probe = (
        "from shopfloor.plant import load_plant\n"
        "from shopfloor.store import StoreSettings, open_store\n"
        "from readiness.live import live_evidence\n"
        f"plant = load_plant({str(ROOT / 'examples/plant.yaml')!r})\n"
        f"store = open_store(StoreSettings(url='sqlite:{tmp_path / 'store.db'}'))\n"
        "print(live_evidence(plant, store).source)\n"
    )
    env = {**os.environ, **without(tmp_path / "uninstalled", *NOT_IN_EXTRA["dashboard"])}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the store (polimer/brest)"
