"""The dashboard, and the demo that starts every component on one machine."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import (
    DEFAULT_PLANT,
    DEFAULT_STORE,
    DatabaseOption,
    DataDirOption,
    OrgOption,
    PlantOption,
    StoreUrlOption,
    TokenOption,
    app,
    checked,
    exit_now,
    fail,
    read_plant,
    read_scenario,
    setup_logging,
    store_settings,
)
from launcher.cli.users import DEFAULT_USERS_FILE, UsersFileOption
from launcher.demo import API_PORT, BROKER_PORT, BrokerChoice, DemoOptions, run_demo
from launcher.session import (
    DEFAULT_DATA_DIR,
    RUNNING_FILE,
    SessionError,
    find_session,
    new_session,
    running_demo,
    sessions,
)
from shopfloor.mqtt import check_broker_url


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
    users_file: UsersFileOption = DEFAULT_USERS_FILE,
    require_login: Annotated[
        bool,
        typer.Option(
            "--require-login",
            envvar="SHOPFLOOR_DASHBOARD_REQUIRE_LOGIN",
            help="Ask for a login on a loopback address too (behind a reverse proxy on this "
            "machine); beyond loopback the dashboard always asks.",
        ),
    ] = False,
    session_idle: Annotated[
        float,
        typer.Option(
            envvar="SHOPFLOOR_SESSION_IDLE_MINUTES", min=0.01, help="Minutes a login lasts unused."
        ),
    ] = 30,
    session_hours: Annotated[
        float,
        typer.Option(envvar="SHOPFLOOR_SESSION_HOURS", min=0.001, help="Hours a login lasts."),
    ] = 12,
) -> None:
    """Serve the Streamlit dashboard (live shop floor, demo controls). Beyond loopback it asks
    for a login (`shopfloor users add`); on loopback the session is staff's."""
    import dashboard as dashboard_package
    from dashboard.auth import UsersError, is_loopback, read_users

    read_plant(plant_file)  # a bad plant file is reported here, not as a red box in the browser
    settings = store_settings(store_url, store_database, store_token, store_org)
    if require_login or not is_loopback(address):
        try:
            if not read_users(users_file):
                raise fail(f"--users {users_file}: no users to log in on {address}: add one "
                           "with `shopfloor users add NAME --role staff`")  # fmt: skip
        except UsersError as exc:
            raise fail(str(exc)) from None
    app_file = Path(dashboard_package.__file__).parent / "app.py"
    env = {
        **os.environ, **settings.to_env(), "SHOPFLOOR_PLANT": str(plant_file.resolve()),
        "SHOPFLOOR_USERS": str(users_file.resolve()),
        "SHOPFLOOR_SESSION_IDLE_MINUTES": str(session_idle),
        "SHOPFLOOR_SESSION_HOURS": str(session_hours),
        "SHOPFLOOR_DASHBOARD_REQUIRE_LOGIN": "1" if require_login else "",
    }  # fmt: skip
    if broker:
        env["SHOPFLOOR_BROKER_URL"] = broker
    # No watching of the source files for changes: nobody edits a served dashboard, and the
    # watcher costs a fifth of the CPU of its first page (what a demo's start waits for).
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none",
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
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Go on with the latest session (or --session's) instead of a new one."
        ),
    ] = False,
    session_id: Annotated[
        str | None,
        typer.Option("--session", help="The session to go on with: an id from --list."),
    ] = None,
    list_sessions: Annotated[
        bool, typer.Option("--list", help="List the demo sessions kept in --data-dir.")
    ] = False,
    store_url: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_INFLUX_URL",
            help="An InfluxDB URL to use instead of each session's embedded store.",
        ),
    ] = None,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard HTTP port.")] = 8501,
    broker_port: Annotated[
        int,
        typer.Option(help="MQTT port of the demo's broker (another if it is taken: said then)."),
    ] = BROKER_PORT,
    api_port: Annotated[
        int, typer.Option(help="The gateway's HTTP API port (another if it is taken: said then).")
    ] = API_PORT,
    broker_server: Annotated[
        BrokerChoice,
        typer.Option(help="Broker to run: Mosquitto when installed (auto), or the embedded one."),
    ] = BrokerChoice.AUTO,
) -> None:
    """Start broker, simulator, edge, gateway, analytics and dashboard in a new session (or
    --resume one); Ctrl-C stops them all."""
    if list_sessions:
        _list_sessions(data_dir)
        return
    setup_logging(False)
    for chatty in ("shopfloor.mqtt", "simulators"):  # the console is for staff
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if running_demo(data_dir) is not None:
        raise fail(f"a demo already runs from {data_dir} (see {data_dir / RUNNING_FILE})")
    try:
        if resume or session_id:
            session = find_session(data_dir, session_id)
        else:
            plant, scenario = _source(scenario_file, plant_file)
            session = new_session(data_dir, plant, scenario)
        options = DemoOptions(
            data_dir, store_url, dashboard_port, broker_server, broker_port=broker_port,
            api_port=api_port,
        )  # fmt: skip
        run_demo(session, options)
    except (SessionError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    exit_now()


def _source(scenario_file: Path, plant_file: Path | None) -> tuple[Path, Path | None]:
    """The plant and scenario to run, checked before anything starts."""
    if plant_file is not None:
        read_plant(plant_file)
        return plant_file, None
    loaded = read_scenario(DEFAULT_PLANT, scenario_file, None)
    return loaded.path.parent / loaded.scenario.plant, scenario_file


def _list_sessions(data_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    kept = sessions(data_dir)
    if not kept:
        typer.echo(f"no demo session in {data_dir / 'sessions'}")
        return
    live = running_demo(data_dir)
    table = Table(
        title=f"demo sessions in {data_dir}",
        caption="Data time is the simulated clock: it keeps to the plant's shifts (and runs "
        "faster when sped up), so it can be hours or days from the wall clock.",
    )
    for column in ("id", "scenario", "started (wall clock, UTC)", "data reached (UTC)", ""):
        table.add_column(column)
    for session in kept:
        last = session.last_data_time()
        table.add_row(
            session.id,
            (session.scenario or session.plant).stem,
            f"{session.started:%Y-%m-%d %H:%M:%S}",
            f"{last:%Y-%m-%d %H:%M:%S}" if last else "no data",
            "running" if live and live.session_dir == session.directory else "",
        )
    Console(width=120).print(table)
