"""The `shopfloor` command: one subcommand per component, plus plant-file tools.

Every option can also be set by the environment variable named in its help, which is how
docker-compose and systemd units configure the components. Components are imported inside
their commands so that an edge device never imports what it has not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from shopfloor.config import ConfigError
from shopfloor.demo import BrokerChoice, run_demo
from shopfloor.mqtt import DEFAULT_BROKER_URL
from shopfloor.plant import Plant, load_plant
from shopfloor.store import ENV_VARS, Store, StoreError, StoreSettings, open_store

app = typer.Typer(
    help="shopfloor: a smart-manufacturing demonstration platform "
    "(simulated lines, edge agent, gateway, analytics, dashboard).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
plant_app = typer.Typer(help="Work with plant files (the YAML description of a site).")
app.add_typer(plant_app, name="plant")

PlantOption = Annotated[
    Path, typer.Option("--plant", envvar="SHOPFLOOR_PLANT", help="Plant file (YAML).")
]
BrokerOption = Annotated[
    str,
    typer.Option(
        "--broker",
        envvar="SHOPFLOOR_BROKER_URL",
        help="MQTT broker, mqtt[s]://[user:pw@]host:port.",
    ),
]
StoreUrlOption = Annotated[
    str,
    typer.Option(
        "--store-url",
        envvar=ENV_VARS["url"],
        help="Time-series store: sqlite:PATH (embedded) or an InfluxDB URL http://host:8086.",
    ),
]
DatabaseOption = Annotated[
    str,
    typer.Option(
        "--store-database", envvar=ENV_VARS["database"], help="InfluxDB 1.x database or 2.x bucket."
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--store-token", envvar=ENV_VARS["token"], help="InfluxDB 2.x/3.x token."),
]
OrgOption = Annotated[
    str | None,
    typer.Option("--store-org", envvar=ENV_VARS["org"], help="InfluxDB 2.x organisation."),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")]

DEFAULT_PLANT = Path("examples/plant.yaml")
DEFAULT_STORE = StoreSettings().url


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _setup_logging(verbose: bool) -> None:
    """Log to stderr, and treat SIGTERM like Ctrl-C so services stop cleanly under supervisors."""
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # asyncua logs every unencrypted endpoint and teardown hiccup, with tracebacks; the
    # components report connection problems themselves, in one line.
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _load(plant_file: Path) -> Plant:
    try:
        return load_plant(plant_file)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _run_until_interrupted(coroutine: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coroutine)


@plant_app.command("check")
def plant_check(file: Annotated[Path, typer.Argument(help="Plant file to validate.")]) -> None:
    """Validate a plant file; print a summary, or one line naming file, line and field."""
    plant = _load(file)
    machines = list(plant.machines())
    sensors = list(plant.sensors())
    signals = sum(len(s) for s in plant.catalogue().values())
    typer.echo(
        f"{file}: ok: {plant.tenant.name} / {plant.site.name}: areas {len(plant.site.areas)}, "
        f"machines {len(machines)}, sensor kits {len(sensors)}, signals {signals}"
    )


@app.command()
def simulate(
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
    bind_host: Annotated[
        str, typer.Option(envvar="SHOPFLOOR_BIND_HOST", help="Address the OPC UA servers bind.")
    ] = "127.0.0.1",
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed replays the same floor.")
    ] = 0,
    period: Annotated[float, typer.Option(help="Seconds between updates of every signal.")] = 1.0,
    verbose: VerboseOption = False,
) -> None:
    """Run the plant's machines as OPC UA servers and its sensor kits on MQTT."""
    from simulators.line import SimulatedLine

    _setup_logging(verbose)
    line = SimulatedLine(_load(plant_file), broker, bind_host=bind_host, seed=seed)
    _run_until_interrupted(line.run(period))


@app.command()
def edge(
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
    opcua_host: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_OPCUA_HOST", help="Reach every OPC UA endpoint on this host instead."
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Read machines (OPC UA) and sensors (MQTT) and publish them to the broker."""
    from edge.agent import EdgeAgent

    _setup_logging(verbose)
    agent = EdgeAgent(_load(plant_file), broker, opcua_host=opcua_host)
    _run_until_interrupted(agent.run())


def _store_settings(url: str, database: str, token: str | None, org: str | None) -> StoreSettings:
    return StoreSettings.model_validate(
        {
            "url": url,
            "database": database,
            "token": token,
            "org": org,
            "username": os.environ.get(ENV_VARS["username"]),
            "password": os.environ.get(ENV_VARS["password"]),
            "write_api": os.environ.get(ENV_VARS["write_api"], "auto"),
        }
    )


def _open_store(settings: StoreSettings) -> Store:
    try:
        return open_store(settings)
    except StoreError as exc:
        raise _fail(str(exc)) from None


@app.command()
def gateway(
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
    store_url: StoreUrlOption = DEFAULT_STORE,
    store_database: DatabaseOption = "shopfloor",
    store_token: TokenOption = None,
    store_org: OrgOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Subscribe to the plant's messages and write them to the time-series store."""
    from gateway.service import Gateway

    _setup_logging(verbose)
    plant = _load(plant_file)
    store = _open_store(_store_settings(store_url, store_database, store_token, store_org))
    service = Gateway(plant, broker, store)
    service.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    finally:
        service.stop()
        store.close()


@app.command()
def analytics(
    plant_file: PlantOption = DEFAULT_PLANT,
    store_url: StoreUrlOption = DEFAULT_STORE,
    store_database: DatabaseOption = "shopfloor",
    store_token: TokenOption = None,
    store_org: OrgOption = None,
    window: Annotated[
        int, typer.Option(min=1, help="Minutes of history each KPI covers (rolling window).")
    ] = 60,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between recomputations.")] = 10,
    verbose: VerboseOption = False,
) -> None:
    """Recompute every machine's KPIs (parts, rejects, energy per good part) into the store."""
    from analytics.live import LiveKpis

    _setup_logging(verbose)
    plant = _load(plant_file)
    store = _open_store(_store_settings(store_url, store_database, store_token, store_org))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            LiveKpis(plant, store, timedelta(minutes=window), interval).run()
    finally:
        store.close()


@app.command()
def dashboard(
    plant_file: PlantOption = DEFAULT_PLANT,
    store_url: StoreUrlOption = DEFAULT_STORE,
    store_database: DatabaseOption = "shopfloor",
    store_token: TokenOption = None,
    store_org: OrgOption = None,
    port: Annotated[int, typer.Option(envvar="SHOPFLOOR_DASHBOARD_PORT", help="HTTP port.")] = 8501,
    address: Annotated[
        str, typer.Option(envvar="SHOPFLOOR_DASHBOARD_ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
) -> None:
    """Serve the Streamlit dashboard (live shop floor)."""
    import dashboard as dashboard_package

    _load(plant_file)  # a bad plant file is reported here, not as a red box in the browser
    settings = _store_settings(store_url, store_database, store_token, store_org)
    app_file = Path(dashboard_package.__file__).parent / "app.py"
    env = {**os.environ, **settings.to_env(), "SHOPFLOOR_PLANT": str(plant_file.resolve())}
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    os.execvpe(sys.executable, argv, env)


@app.command()
def demo(
    plant_file: PlantOption = DEFAULT_PLANT,
    data_dir: Annotated[
        Path, typer.Option(help="Where the embedded store and broker files live.")
    ] = Path(".shopfloor"),
    store_url: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_INFLUX_URL",
            help="An InfluxDB URL to use instead of the embedded store.",
        ),
    ] = None,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard HTTP port.")] = 8501,
    broker_server: Annotated[
        BrokerChoice,
        typer.Option(help="Broker to run: Mosquitto when installed (auto), or the embedded one."),
    ] = BrokerChoice.AUTO,
) -> None:
    """Start broker, simulator, edge, gateway, analytics and dashboard; Ctrl-C stops them all."""
    _setup_logging(False)
    _load(plant_file)
    try:
        run_demo(plant_file, data_dir, store_url, dashboard_port, broker_server)
    except RuntimeError as exc:
        raise _fail(str(exc)) from None
