"""The `shopfloor` command: one subcommand per component, plus plant-file tools.

Every option can also be set by the environment variable named in its help, which is how
docker-compose and systemd units configure the components. Components are imported inside
their commands so that an edge device never imports what it has not installed, and `main`
imports only the module of the command group it runs: `shopfloor edge run` holds none of the
demo's, gateway's or analytics' command modules (3 MB of the agent's memory; bench/edge.py
measures it). The modules import only typer and light shopfloor modules at the top.

Where each command is declared: `plant` (plant check), `simulation` (simulate, record, replay,
control), `edge` (edge run, check, browse, status, certificate), `gateway`, `analytics`
(analytics, assess, assess-history), `demo` (dashboard, demo), `kpi` (kpi oee, energy,
anomalies), `broker` (broker config), `users` (the dashboard's logins); `common` holds the app,
the shared options and how a command fails or stops.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

# Each module registers its commands on import; `shopfloor --help` lists them in this order.
COMMAND_MODULES = (
    "plant",
    "simulation",
    "edge",
    "gateway",
    "analytics",
    "demo",
    "kpi",
    "broker",
    "users",
)
# The modules that declare one command group of their own name and nothing else; any other
# command loads every module (a group of one command would become that command).
GROUP_MODULES = frozenset({"plant", "edge", "gateway", "kpi", "broker", "users"})

__all__ = ["app", "main"]


def _app_with(modules: Iterable[str]) -> typer.Typer:
    for module in modules:
        importlib.import_module(f"launcher.cli.{module}")
    from launcher.cli.common import app

    return app


def __getattr__(name: str) -> typer.Typer:
    """`launcher.cli.app`: the command with every subcommand registered."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _app_with(COMMAND_MODULES)


def main() -> None:
    """Run `shopfloor`, importing only the module of the command group named first."""
    group = sys.argv[1] if len(sys.argv) > 1 else ""
    _app_with([group] if group in GROUP_MODULES else COMMAND_MODULES)()
