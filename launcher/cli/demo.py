"""The dashboard, and the demo that starts every component on one machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import (
    DEFAULT_PLANT,
    DEFAULT_STORE,
    DatabaseOption,
    OrgOption,
    PlantOption,
    StoreUrlOption,
    TokenOption,
    app,
    checked,
    fail,
    read_plant,
    read_scenario,
    setup_logging,
    store_settings,
)
from launcher.demo import BrokerChoice, DemoSource, run_demo
from shopfloor.credentials import check_broker_url


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
    broker: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_BROKER_URL",
            help="Broker of the simulator to drive and of the edge devices to show.",
            callback=checked(check_broker_url),
        ),
    ] = None,
) -> None:
    """Serve the Streamlit dashboard (live shop floor, demo controls)."""
    import dashboard as dashboard_package

    read_plant(plant_file)  # a bad plant file is reported here, not as a red box in the browser
    settings = store_settings(store_url, store_database, store_token, store_org)
    app_file = Path(dashboard_package.__file__).parent / "app.py"
    env = {**os.environ, **settings.to_env(), "SHOPFLOOR_PLANT": str(plant_file.resolve())}
    if broker:
        env["SHOPFLOOR_BROKER_URL"] = broker
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    os.execvpe(sys.executable, argv, env)


DEFAULT_SCENARIO = Path("examples/scenarios/moulding.yaml")


@app.command()
def demo(
    scenario_file: Annotated[
        Path, typer.Option("--scenario", help="Scenario to run live (its plant is the demo's).")
    ] = DEFAULT_SCENARIO,
    plant_file: Annotated[
        Path | None,
        typer.Option(
            "--plant", help="Run this plant with default behaviour instead of a scenario."
        ),
    ] = None,
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
    setup_logging(False)
    if plant_file is not None:
        read_plant(plant_file)
        source = DemoSource(plant_file, None)
    else:
        loaded = read_scenario(DEFAULT_PLANT, scenario_file, None)
        source = DemoSource(loaded.path.parent / loaded.scenario.plant, scenario_file)
    try:
        run_demo(source, data_dir, store_url, dashboard_port, broker_server)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
