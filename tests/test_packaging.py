"""What each extra installs: a Raspberry Pi running the edge agent gets nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEAVY = {"numba", "streamlit", "fastapi", "influxdb-client", "pandas", "uvicorn"}


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


def test_the_closure_sees_heavy_packages_where_they_belong() -> None:
    """Guards the guard: the same walk does find numba and streamlit in the demo extra."""
    assert {"numba", "streamlit", "fastapi", "influxdb-client"} <= dependency_closure(
        "shopfloor", frozenset({"demo"})
    )


@pytest.mark.parametrize("command", [["edge", "run", "--help"], ["plant", "check", "--help"]])
def test_edge_commands_import_nothing_heavy(command: list[str]) -> None:
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['shopfloor', *{command!r}]\n"
        "import edge.agent\n"
        "try:\n"
        "    runpy.run_module('shopfloor', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'numba', 'streamlit', 'fastapi', 'influxdb_client', 'pandas', 'httpx'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
