"""The `shopfloor` command: one subcommand per component, plus plant-file tools.

Every option can also be set by the environment variable named in its help, which is how
docker-compose and systemd units configure the components. Components are imported inside
their commands so that an edge device never imports what it has not installed: the edge
agent's process imports this whole package, so its modules import only typer and light
shopfloor modules at the top (bench/edge.py measures the agent's memory).

Where each command is declared: `plant` (plant check), `simulation` (simulate, record, replay,
control), `edge` (edge run, check, browse, status, certificate), `gateway`, `analytics`
(analytics, assess, assess-history), `demo` (dashboard, demo), `kpi` (kpi oee, energy,
anomalies), `broker` (broker config), `users` (the dashboard's logins); `common` holds the app,
the shared options and how a command fails or stops.
"""

from launcher.cli.common import app

# Each module registers its commands on import; `shopfloor --help` lists them in this order.
# isort: off
from launcher.cli import plant, simulation, edge, gateway, analytics, demo, kpi  # noqa: F401
from launcher.cli import broker, users  # noqa: F401
# isort: on

__all__ = ["app"]
