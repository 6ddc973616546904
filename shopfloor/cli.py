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
import time
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from analytics.readiness import DATABASE_ENV, DEFAULT_DATABASE, DEFAULT_WINDOW
from shopfloor.config import ConfigError
from shopfloor.demo import BrokerChoice, DemoSource, run_demo
from shopfloor.diskqueue import DiskQueueError
from shopfloor.mqtt import DEFAULT_BROKER_URL, BrokerUrlError
from shopfloor.plant import Plant, load_plant
from shopfloor.store import ENV_VARS, Store, StoreError, StoreSettings, open_store

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from analytics.anomaly import Event
    from analytics.energy import Tariff
    from analytics.kpi_files import Series
    from analytics.oee import OeeReport

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
    """Stop like Ctrl-C; a second polite signal must not break the clean stop it started."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _setup_logging(verbose: bool) -> None:
    """Log to stderr, and treat SIGTERM like Ctrl-C so services stop cleanly under supervisors."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # asyncua logs every unencrypted endpoint and teardown hiccup, with tracebacks; the
    # components report connection problems themselves, in one line.
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    # The embedded demo broker logs every session transition at INFO.
    for chatty in ("amqtt", "transitions"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


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


ScenarioOption = Annotated[
    Path | None,
    typer.Option(
        "--scenario", envvar="SHOPFLOOR_SCENARIO", help="Scenario file; its plant replaces --plant."
    ),
]


def _load_scenario(plant_file: Path, scenario_file: Path | None, seed: int | None) -> Any:
    from simulators.scenario import default_scenario, load_scenario

    try:
        loaded = load_scenario(scenario_file) if scenario_file else default_scenario(plant_file)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if seed is not None:
        loaded = loaded.model_copy(
            update={"scenario": loaded.scenario.model_copy(update={"seed": seed})}
        )
    return loaded


@app.command()
def simulate(
    plant_file: PlantOption = DEFAULT_PLANT,
    scenario_file: ScenarioOption = None,
    broker: BrokerOption = DEFAULT_BROKER_URL,
    bind_host: Annotated[
        str, typer.Option(envvar="SHOPFLOOR_BIND_HOST", help="Address the OPC UA servers bind.")
    ] = "127.0.0.1",
    speed: Annotated[
        float,
        typer.Option(
            min=0.001, envvar="SHOPFLOOR_SPEED", help="Simulated seconds per second: 1, 10, 60..."
        ),
    ] = 1.0,
    fast: Annotated[
        bool,
        typer.Option("--fast", help="Run the whole scenario as fast as possible into --output."),
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="With --fast: the recording file to write (replayable).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed instead of the scenario's; same seed, same run.")
    ] = None,
    opcua_secure: Annotated[
        Path | None,
        typer.Option(
            envvar="SHOPFLOOR_OPCUA_SECURE",
            help="Serve OPC UA only with Basic256Sha256 Sign & Encrypt, with the server "
            "certificate kept (or created) in this directory.",
        ),
    ] = None,
    opcua_user: Annotated[
        list[str] | None,
        typer.Option(
            envvar="SHOPFLOOR_OPCUA_USERS",
            help="With --opcua-secure: a NAME:PASSWORD allowed in (repeatable); no anonymous.",
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Run a plant or scenario live (OPC UA servers, MQTT sensors), or as fast as possible."""
    _setup_logging(verbose)
    loaded = _load_scenario(plant_file, scenario_file, seed)
    if fast:
        _simulate_fast(loaded, output)
        return
    from simulators.live import LiveSimulator

    security = _server_security(opcua_secure, opcua_user or [])
    _run_until_interrupted(LiveSimulator(loaded, broker, bind_host, speed, security).run())


def _server_security(directory: Path | None, users: list[str]) -> Any:
    from shopfloor.opcua_security import create_certificate
    from simulators.opcua import ServerSecurity

    if directory is None:
        if users:
            raise _fail("--opcua-user needs --opcua-secure: passwords travel encrypted only")
        return None
    if any(":" not in user for user in users):
        raise _fail("--opcua-user takes NAME:PASSWORD")
    uri = "urn:shopfloor:simulator"
    cert, key = asyncio.run(create_certificate(directory, "simulator", uri, server=True))
    return ServerSecurity(cert, key, dict(user.split(":", 1) for user in users))


def _simulate_fast(loaded: Any, output: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from simulators.fast import run_fast

    started = time.perf_counter()
    floor = run_fast(loaded, output)
    elapsed = time.perf_counter() - started
    table = Table(title=f"{loaded.scenario.name}: {loaded.scenario.duration / 3600:g} h")
    for column in ("machine", "parts", "rejects", "energy kWh", "time by state (min)"):
        table.add_column(column)
    for machine_id, machine in floor.machines.items():
        minutes: dict[str, float] = {}
        for interval in machine.log:
            minutes[interval.state] = (
                minutes.get(interval.state, 0.0) + (interval.end - interval.start) / 60
            )
        by_state = ", ".join(f"{state} {value:.0f}" for state, value in sorted(minutes.items()))
        table.add_row(
            machine_id,
            str(machine.part_count),
            str(machine.reject_count),
            f"{machine.energy_kwh:.1f}",
            by_state,
        )
    console = Console()
    console.print(table)
    for event in floor.ground_truth:
        fault = event.event
        console.print(f"fault {fault.name} on {event.path.asset}: {fault.start} to {fault.end}")
    speedup = loaded.scenario.duration / max(elapsed, 1e-9)
    console.print(
        f"simulated in {elapsed:.2f} s, x{speedup:,.0f} real time"
        + (f"; recording in {output}" if output else "")
    )


@app.command()
def record(
    output: Annotated[Path, typer.Argument(help="Recording file to write (JSON Lines).")],
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Record the plant's live data and events from the broker into a file for replay."""
    from simulators.recording import record as record_session

    _setup_logging(verbose)
    plant = _load(plant_file)
    stop = threading.Event()
    try:
        count = record_session(broker, plant.tenant.id, output, duration, stop)
    except KeyboardInterrupt:
        stop.set()
        return
    except OSError as exc:
        raise _fail(f"{output}: {exc.strerror or exc}") from None
    typer.echo(f"recorded {count} messages to {output}")


@app.command()
def replay(
    recording: Annotated[
        Path, typer.Argument(help="Recording file (from record or simulate --fast).")
    ],
    broker: BrokerOption = DEFAULT_BROKER_URL,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Playback speed: 1, 10, 60, 1000...")
    ] = 1.0,
    tenant: Annotated[
        str | None, typer.Option(help="Publish under this tenant instead: an isolated sandbox.")
    ] = None,
    keep_time: Annotated[
        bool, typer.Option("--keep-time", help="Keep the recorded timestamps (backfill history).")
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Play a recording back into the broker, timestamps shifted to now, with a progress bar."""
    from simulators.recording import RecordingError
    from simulators.recording import replay as replay_session

    _setup_logging(verbose)
    try:
        count = replay_session(recording, broker, speed, tenant, shift_time=not keep_time)
    except (RecordingError, ValueError, ConnectionError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    typer.echo(f"replayed {count} messages from {recording}")


control_app = typer.Typer(help="Drive a running simulator: inject faults, set speed, reset shift.")
app.add_typer(control_app, name="control")


def _send(plant_file: Path, broker: str, action: Any) -> None:
    from shopfloor.messages import control_topic, encode_command
    from shopfloor.mqtt import publish_once

    plant = _load(plant_file)
    try:
        publish_once(broker, control_topic(plant.tenant.id, plant.site.id), encode_command(action))
    except ConnectionError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"sent {action.command} to {plant.tenant.id}/{plant.site.id}")


@control_app.command("inject")
def control_inject(
    machine: Annotated[str, typer.Argument(help="Machine id, e.g. cnc-01.")],
    fault: Annotated[str, typer.Argument(help="Fault kind, e.g. bearing_wear or air_leak.")],
    duration: Annotated[float, typer.Option(min=1, help="Seconds of simulated time.")] = 600,
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
) -> None:
    """Inject a fault into a running simulator; it appears as a labelled event."""
    from shopfloor.messages import FaultKind, InjectFault

    if fault not in set(FaultKind):
        raise _fail(f"unknown fault {fault!r}; choose one of {', '.join(FaultKind)}")
    problem = _load(plant_file).injection_problem(machine, FaultKind(fault))
    if problem:
        raise _fail(problem)
    _send(
        plant_file, broker, InjectFault(asset=machine, fault=FaultKind(fault), duration_s=duration)
    )


@control_app.command("speed")
def control_speed(
    speed: Annotated[float, typer.Argument(min=0.001, help="Simulated seconds per second.")],
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
) -> None:
    """Change a running simulator's speed (x1 live, x60 a shift in eight minutes)."""
    from shopfloor.messages import SetSpeed

    _send(plant_file, broker, SetSpeed(speed=speed))


@control_app.command("scenario")
def control_scenario(
    name: Annotated[str, typer.Argument(help="Scenario file name beside the running one.")],
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
) -> None:
    """Switch the running simulator to another scenario of the same plant."""
    from shopfloor.messages import LoadScenario

    _send(plant_file, broker, LoadScenario(name=name))


@control_app.command("reset-shift")
def control_reset_shift(
    plant_file: PlantOption = DEFAULT_PLANT, broker: BrokerOption = DEFAULT_BROKER_URL
) -> None:
    """Start the running simulator's shift again from zero."""
    from shopfloor.messages import ResetShift

    _send(plant_file, broker, ResetShift())


edge_app = typer.Typer(
    help="The edge agent: run it, browse an OPC UA server, check a config, ask its health.",
    no_args_is_help=True,
)
app.add_typer(edge_app, name="edge")
EdgeConfigArgument = Annotated[Path, typer.Argument(help="Edge config file (YAML).")]


@edge_app.command("run")
def edge_run(
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="SHOPFLOOR_EDGE_CONFIG",
            help="Edge config file (YAML); without it, every source of the plant file is read.",
        ),
    ] = None,
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_BROKER_URL", help="MQTT broker (overrides the config's broker.url)."
        ),
    ] = None,
    opcua_host: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_OPCUA_HOST", help="Reach every OPC UA endpoint on this host instead."
        ),
    ] = None,
    buffer: Annotated[
        Path | None,
        typer.Option(envvar="SHOPFLOOR_EDGE_BUFFER", help="Disk buffer for store-and-forward."),
    ] = None,
    buffer_max_mb: Annotated[
        float | None, typer.Option(min=1, help="Size bound of the buffer; the oldest go first.")
    ] = None,
    buffer_max_age_h: Annotated[
        float | None, typer.Option(min=0.01, help="Age bound of the buffer, in hours.")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(envvar="SHOPFLOOR_EDGE_DEVICE", help="Device id (default: the host name)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="SHOPFLOOR_EDGE_METRICS_PORT", help="Port of /metrics and /status; 0 for none."
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Read machines (OPC UA) and sensors (MQTT), buffer on disk, forward to the broker."""
    from edge.agent import EdgeAgent
    from shopfloor.diskqueue import DiskQueue

    _setup_logging(verbose)
    overrides = {
        "device": device,
        "opcua_host": opcua_host,
        "broker": {"url": broker},
        "buffer": {"path": buffer, "max_mb": buffer_max_mb, "max_age_h": buffer_max_age_h},
        "health": {"metrics_port": metrics_port},
    }
    config, plant = _edge_config(config_file, plant_file, overrides)
    settings = config.buffer
    try:
        queue = DiskQueue(
            settings.path, int(settings.max_mb * 1024 * 1024), settings.max_age_h * 3600
        )
    except DiskQueueError as exc:
        raise _fail(str(exc)) from None
    try:
        agent = EdgeAgent(config, plant, queue)
    except BrokerUrlError as exc:
        queue.close()
        raise _fail(str(exc)) from None
    try:
        _run_until_interrupted(agent.run())
    finally:
        queue.close()


def _edge_config(
    config_file: Path | None, plant_file: Path, overrides: dict[str, Any]
) -> tuple[Any, Plant]:
    """The config file (or the plant's defaults) with the options given on the command line."""
    from pydantic import ValidationError

    from edge.config import EdgeConfig, load_edge_config

    try:
        config, plant = (
            load_edge_config(config_file)
            if config_file
            else (EdgeConfig(plant=plant_file), load_plant(plant_file))
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    merged = config.model_dump()
    for key, value in overrides.items():
        if isinstance(value, dict):
            merged[key].update({k: v for k, v in value.items() if v is not None})
        elif value is not None:
            merged[key] = value
    try:
        return EdgeConfig.model_validate(merged), plant
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise _fail(f"--{str(first['loc'][-1]).replace('_', '-')}: {first['msg']}") from None


@edge_app.command("check")
def edge_check(file: EdgeConfigArgument) -> None:
    """Validate an edge config and its plant; print what the agent would read."""
    from edge.config import load_edge_config

    try:
        config, plant = load_edge_config(file)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    machines = (
        [s.machine for s in config.opcua]
        if config.opcua is not None
        else [m.id for _, m in plant.machines() if m.opcua]
    )
    sensors = (
        len(config.sensors)
        if config.sensors is not None
        else sum(len(s.signals) for _, s in plant.sensors())
    )
    typer.echo(
        f"{file}: ok: device {config.device}, OPC UA machines {', '.join(machines) or 'none'}, "
        f"{sensors} sensor topics, {len(config.current_clamps)} current clamps"
    )


@edge_app.command("browse")
def edge_browse(
    url: Annotated[str, typer.Argument(help="OPC UA server, opc.tcp://HOST:PORT.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the starter edge config.")
    ] = Path("edge.yaml"),
    machine: Annotated[str, typer.Option(help="Plant machine id these nodes belong to.")] = (
        "my-machine"
    ),
    plant_file: Annotated[
        Path | None,
        typer.Option(
            "--plant", help="Plant file: nodes that are not signals of the machine are commented."
        ),
    ] = None,
    username: Annotated[str | None, typer.Option(help="OPC UA user name.")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="SHOPFLOOR_OPCUA_PASSWORD", help="OPC UA password.")
    ] = None,
    certificate: Annotated[
        Path | None,
        typer.Option(help="This device's certificate: browse over Basic256Sha256 Sign & Encrypt."),
    ] = None,
    private_key: Annotated[
        Path | None, typer.Option(help="The certificate's private key (PEM).")
    ] = None,
    depth: Annotated[int, typer.Option(min=1, help="How deep to walk below Objects.")] = 8,
) -> None:
    """Walk a server's address space and write a starter edge config mapping its variables."""
    from edge.browse import browse, starter_config
    from edge.config import OpcUaSecurity

    _setup_logging(verbose=False)
    security = None
    if certificate is not None or private_key is not None:
        if certificate is None or private_key is None:
            raise _fail("--certificate and --private-key go together")
        security = OpcUaSecurity(certificate=certificate, private_key=private_key)

    plant_signals = None
    if plant_file is not None:
        machines = {m.id: m for _, m in _load(plant_file).machines()}
        if machine not in machines:
            raise _fail(f"{plant_file}: no machine {machine!r}")
        plant_signals = {signal.id for signal in machines[machine].signals}
    try:
        variables = asyncio.run(browse(url, username, password, security, depth))
    except Exception as exc:  # socket errors, timeouts, and asyncua's own for refused sessions
        raise _fail(f"cannot browse {url}: {exc or type(exc).__name__}") from None
    plant_path = os.path.relpath(plant_file or DEFAULT_PLANT, output.parent.resolve())
    text = starter_config(url, variables, machine, plant_path, plant_signals)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"{output}: {len(variables)} variables of {url}")


@edge_app.command("status")
def edge_status(
    url: Annotated[
        str, typer.Option(envvar="SHOPFLOOR_EDGE_STATUS_URL", help="The agent's health page.")
    ] = "http://127.0.0.1:9108",
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
) -> None:
    """Ask a running agent for its health figures (queue depth, readings/s, drops...)."""
    import urllib.error
    import urllib.request

    from rich.console import Console
    from rich.table import Table

    from shopfloor.messages import MessageError, decode_edge_status

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=5) as response:
            body = response.read()
        status = decode_edge_status(body)
    except (OSError, urllib.error.URLError, MessageError) as exc:
        raise _fail(f"no edge agent answers at {url}: {exc}") from None
    if as_json:
        typer.echo(body.decode())
        return
    table = Table(title=f"edge device {status.device}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for field, value in status.model_dump(exclude={"v", "device"}).items():
        table.add_row(field, str(value))
    Console().print(table)


@edge_app.command("certificate")
def edge_certificate(
    directory: Annotated[Path, typer.Argument(help="Where to write edge-cert.der, edge-key.pem.")],
    uri: Annotated[str, typer.Option(help="Application URI in the certificate.")] = (
        "urn:shopfloor:edge"
    ),
) -> None:
    """Create this device's OPC UA certificate and key (self-signed, valid one year)."""
    from shopfloor.opcua_security import create_certificate

    cert, key = asyncio.run(create_certificate(directory, "edge", uri, server=False))
    typer.echo(f"{cert}\n{key}\nTrust {cert.name} on each OPC UA server the agent reads.")


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
    client_id: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_GATEWAY_CLIENT_ID",
            help="MQTT client id; the broker keeps this gateway's session under it.",
        ),
    ] = None,
    share_group: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_GATEWAY_SHARE_GROUP",
            help="Split the stream with the other gateways of this shared-subscription group.",
        ),
    ] = None,
    mqtt_version: Annotated[
        str,
        typer.Option(
            envvar="SHOPFLOOR_GATEWAY_MQTT_VERSION",
            help="5 (persistent session, shared subscriptions) or 3.1.1 for older brokers.",
        ),
    ] = "5",
    session_expiry: Annotated[
        int,
        typer.Option(
            min=0,
            envvar="SHOPFLOOR_GATEWAY_SESSION_EXPIRY",
            help="Seconds the broker keeps this gateway's session (and its messages) while it "
            "is away.",
        ),
    ] = 7 * 86400,
    max_future: Annotated[
        float,
        typer.Option(
            min=0,
            envvar="SHOPFLOOR_GATEWAY_MAX_FUTURE",
            help="Seconds a reading may be ahead of this clock (a simulator above x1 runs ahead).",
        ),
    ] = 300,
    spill: Annotated[
        Path,
        typer.Option(
            envvar="SHOPFLOOR_GATEWAY_SPILL",
            help="Disk buffer for batches while the store is down.",
        ),
    ] = Path(".shopfloor/gateway-spill.db"),
    spill_max_mb: Annotated[float, typer.Option(min=1, help="Size bound of the spill.")] = 1024,
    http_host: Annotated[
        str, typer.Option(envvar="SHOPFLOOR_GATEWAY_HTTP_HOST", help="Address of the HTTP API.")
    ] = "127.0.0.1",
    http_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, envvar="SHOPFLOOR_GATEWAY_HTTP_PORT", help="Port of the HTTP API."
        ),
    ] = 8080,
    api_token: Annotated[
        str | None,
        typer.Option(
            envvar="SHOPFLOOR_API_TOKEN",
            help="Bearer token of the HTTP API; without one, only /health answers.",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(envvar="SHOPFLOOR_GATEWAY_CORS_ORIGINS", help="Allowed browser origin."),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Subscribe to the plant's messages, write them to the store, serve the HTTP API."""
    from gateway.api import create_app, serve
    from gateway.service import Gateway, GatewaySettings
    from shopfloor.mqtt import Session

    _setup_logging(verbose)
    if mqtt_version not in ("5", "3.1.1"):
        raise _fail("--mqtt-version is 5 or 3.1.1")
    plant = _load(plant_file)
    store = _open_store(_store_settings(store_url, store_database, store_token, store_org))
    settings = GatewaySettings(
        client_id=client_id,
        share_group=share_group,
        mqtt5=mqtt_version == "5",
        session=Session(expiry_s=session_expiry),
        max_future_s=max_future,
        spill_path=spill,
        spill_max_mb=spill_max_mb,
    )
    try:
        service = Gateway(plant, broker, store, settings)
    except (BrokerUrlError, DiskQueueError) as exc:
        store.close()
        raise _fail(str(exc)) from None
    app_ = create_app(plant, store, service.snapshot, api_token, cors_origin or ())
    try:
        api = serve(app_, http_host, http_port)
    except OSError as exc:
        store.close()
        raise _fail(f"cannot serve the HTTP API on {http_host}:{http_port}: {exc}") from None
    service.start()
    api.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    finally:
        api.stop()
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
        int, typer.Option(min=1, help="Minutes of history the rolling KPIs cover.")
    ] = 60,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between recomputations.")] = 10,
    readiness_db: Annotated[
        Path | None,
        typer.Option(
            envvar=DATABASE_ENV,
            help="Add a Lean 4.0 readiness snapshot of the plant's SME to this database daily, "
            "with evidence from the store.",
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Recompute KPIs, energy and anomalies of every machine into the store, continuously.

    Rolling KPIs (kpi.*), shift KPIs (kpi.shift.*, report.shift), anomaly scores (anomaly.*)
    and anomaly events linked to the stop that followed them; the clock is the data's.
    """
    from analytics.service import AnalyticsService, AnalyticsSettings

    _setup_logging(verbose)
    plant = _load(plant_file)
    store = _open_store(_store_settings(store_url, store_database, store_token, store_org))
    settings = AnalyticsSettings(
        window=timedelta(minutes=window), interval_s=interval, readiness_db=readiness_db
    )
    service = AnalyticsService(plant, store, settings)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            service.run()
    finally:
        store.close()


ReadinessDbOption = Annotated[
    Path,
    typer.Option("--db", envvar=DATABASE_ENV, help="SQLite file of assessments and snapshots."),
]


@app.command()
def assess(
    answers_file: Annotated[Path, typer.Argument(help="The SME's answers file (YAML).")],
    indicators_file: Annotated[
        Path | None,
        typer.Option(
            "--indicators", help="The ten measured indicators (YAML or JSON) over the window."
        ),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            help="Measure the evidence from the platform's store (with --plant): sqlite:PATH "
            "or an InfluxDB URL.",
        ),
    ] = None,
    plant_file: Annotated[
        Path | None,
        typer.Option("--plant", envvar="SHOPFLOOR_PLANT", help="The SME's plant file (YAML)."),
    ] = None,
    store_database: DatabaseOption = "shopfloor",
    store_token: TokenOption = None,
    store_org: OrgOption = None,
    window_days: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Days of store data the indicators cover, ending at the newest reading "
            "(less when the data began later).",
        ),
    ] = DEFAULT_WINDOW / timedelta(days=1),
    questionnaire_only: Annotated[
        bool,
        typer.Option(help="Score the answers alone: no dimension with indicators passes Basic."),
    ] = False,
    database: ReadinessDbOption = DEFAULT_DATABASE,
    save: Annotated[bool, typer.Option(help="Keep a dated snapshot in --db.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Lean 4.0 readiness: questionnaire and evidence per dimension, index, level, archetype,
    flags and ranked priorities with their recommendation and what-if gain."""
    from analytics.readiness.command import CommandError
    from analytics.readiness.command import assess as run

    store = None
    if store_url is not None:
        store = _store_settings(store_url, store_database, store_token, store_org)
    try:
        run(answers_file, indicators_file, store, plant_file, timedelta(days=window_days),
            questionnaire_only, database, save, as_json)  # fmt: skip
    except CommandError as exc:
        raise _fail(str(exc)) from None


@app.command("assess-history")
def assess_history(
    sme: Annotated[str, typer.Argument(help="The SME's id, as in its answers file.")],
    database: ReadinessDbOption = DEFAULT_DATABASE,
    as_json: JsonOption = False,
) -> None:
    """An SME's readiness over time: R and Fd of every snapshot, and their change."""
    from analytics.readiness.command import CommandError
    from analytics.readiness.command import assess_history as run

    try:
        run(sme, database, as_json)
    except CommandError as exc:
        raise _fail(str(exc)) from None


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
        ),
    ] = None,
) -> None:
    """Serve the Streamlit dashboard (live shop floor, demo controls)."""
    import dashboard as dashboard_package

    _load(plant_file)  # a bad plant file is reported here, not as a red box in the browser
    settings = _store_settings(store_url, store_database, store_token, store_org)
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
    _setup_logging(False)
    if plant_file is not None:
        _load(plant_file)
        source = DemoSource(plant_file, None)
    else:
        loaded = _load_scenario(DEFAULT_PLANT, scenario_file, None)
        source = DemoSource(loaded.path.parent / loaded.scenario.plant, scenario_file)
    try:
        run_demo(source, data_dir, store_url, dashboard_port, broker_server)
    except RuntimeError as exc:
        raise _fail(str(exc)) from None


kpi_app = typer.Typer(
    help="Compute KPIs from exported CSV or Parquet files, without running the platform.",
    no_args_is_help=True,
)
app.add_typer(kpi_app, name="kpi")


def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"--timezone: unknown time zone {name!r}") from None


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _instant(option: str, text: str | None, zone: Any) -> float | None:
    """Seconds since the epoch from an ISO 8601 option; a time without offset is in `zone`."""
    from datetime import datetime

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option}: {text!r} is not an ISO 8601 time") from None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()


@kpi_app.command("oee")
def kpi_oee(
    events_file: Annotated[
        Path,
        typer.Argument(
            help="Events (.csv or .parquet) with columns time (ISO 8601), state, and the "
            "cumulative total_count and bad_count; optional stop_reason and product (the "
            "product loaded from that event on). Each state holds until the next event."
        ),
    ],
    ideal_cycle_time: Annotated[
        list[str],
        typer.Option(
            "--ideal-cycle-time",
            help="Seconds per part at ideal speed, for every product; PRODUCT=SECONDS for one "
            "product of the product column (repeat the option for each).",
        ),
    ],
    start: Annotated[
        str | None, typer.Option(help="Window start, ISO 8601 (default: the first event).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            help="Window end, ISO 8601; the last state holds until it (default: the last event)."
        ),
    ] = None,
    planned_time: Annotated[
        str | None,
        typer.Option(
            help="Planned busy time, e.g. 7h or 420m (default: the --plant's shift calendar "
            "less planned stops, else the window less planned stops). Given outright, it "
            "cannot be split by product: no breakdown by product then."
        ),
    ] = None,
    plant_file: Annotated[
        Path | None,
        typer.Option("--plant", help="Plant file whose shifts and time zone to use."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Zone of times without an offset (default: the plant's, else UTC)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """OEE per ISO 22400-2 (availability, performance, quality; TEEP, NEE, MTBF, MTTR, losses)."""
    import json

    from analytics.kpi_files import KpiFileError, read_state_events
    from analytics.oee import oee_timeline, shift_calendar
    from simulators.scenario import parse_duration

    plant = _load(plant_file) if plant_file is not None else None
    zone = _zone(timezone or (plant.site.timezone if plant else "UTC"))
    try:
        planned_busy = parse_duration(planned_time) if planned_time is not None else None
    except ValueError as exc:
        raise _fail(f"--planned-time: {exc}") from None
    try:
        events = read_state_events(events_file, zone)
    except KpiFileError as exc:
        raise _fail(str(exc)) from None
    if not events:
        raise _fail(f"{events_file}: no events")
    window_start = _instant("--start", start, zone)
    window_end = _instant("--end", end, zone)
    window_start = events[0].time if window_start is None else window_start
    window_end = events[-1].time if window_end is None else window_end
    if window_end <= window_start:
        raise _fail("the window is empty: --end must come after --start (or the first event)")
    planned = None
    if plant is not None and plant.shifts and planned_busy is None:
        planned = shift_calendar(plant.shifts, plant.site.timezone, window_start, window_end)
    products = list(dict.fromkeys(e.product for e in events))
    ideal = _ideal_cycle_times(ideal_cycle_time, products)
    report = oee_timeline(events, window_start, window_end, ideal, planned, planned_busy)
    by_product = {
        product: oee_timeline(events, window_start, window_end, ideal, planned, product=product)
        for product in products
        if product and planned_busy is None
    }
    if as_json:
        detail = {p: r.to_dict() for p, r in by_product.items()}
        typer.echo(json.dumps({**report.to_dict(), "by_product": detail}, indent=2))
        return
    _print_oee(report, events_file)
    if by_product:
        _print_products(by_product)


def _ideal_cycle_times(options: list[str], products: list[str]) -> dict[str, float]:
    """Each product's ideal cycle time from `SECONDS` (every product) and `PRODUCT=SECONDS`."""
    every: float | None = None
    given: dict[str, float] = {}
    for option in options:
        product, _, text = option.rpartition("=")
        try:
            seconds = float(text)
        except ValueError:
            raise _fail(
                f"--ideal-cycle-time: {option!r} is not SECONDS or PRODUCT=SECONDS"
            ) from None
        if not seconds > 0:
            raise _fail("--ideal-cycle-time: must be above zero")
        if product:
            given[product] = seconds
        else:
            every = seconds
    missing = [p for p in products if p not in given and every is None]
    if missing:
        raise _fail(f"--ideal-cycle-time: none for product {missing[0] or '(none)'!r}")
    return {p: given.get(p, every or 0.0) for p in products}


def _print_products(reports: dict[str, OeeReport]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="By product")
    for column in ("product", "time loaded", "A", "P", "Q", "OEE", "parts (good / bad)"):
        table.add_column(column, justify="left" if column == "product" else "right")
    for product, r in reports.items():
        kpis = [r.availability, r.performance, r.quality, r.oee]
        table.add_row(
            product,
            f"{r.planned_operation_s / 3600:.2f} h",
            *("-" if v is None else f"{v:.1%}" for v in kpis),
            f"{r.produced} ({r.good} / {r.bad})",
        )
    Console().print(table)


def _print_oee(report: OeeReport, source: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def hours(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds / 3600:.2f} h"

    window = report.to_dict()
    table = Table(title=f"OEE of {source.name}, {window['start']} to {window['end']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in ("availability", "performance", "quality", "oee", "nee", "teep"):
        table.add_row(name.upper() if len(name) <= 4 else name, share(getattr(report, name)))
    table.add_section()
    for name, seconds in (
        ("planned operation time", report.planned_operation_s),
        ("planned busy time", report.planned_busy_s),
        ("actual production time", report.actual_production_s),
        ("MTBF", report.mtbf_s),
        ("MTTR", report.mttr_s),
    ):
        table.add_row(name, hours(seconds))
    table.add_row("parts (good / bad)", f"{report.produced} ({report.good} / {report.bad})")
    table.add_row("failures", str(report.failures))
    table.add_section()
    for loss, seconds in report.losses.six_big_losses.items():
        table.add_row(loss.replace("_", " "), hours(seconds))
    for reason, seconds in report.losses.availability_by_reason.items():
        table.add_row(f"stop reason: {reason}", hours(seconds))
    console = Console()
    console.print(table)
    for problem in report.problems:
        typer.echo(f"problem: {problem}", err=True)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@kpi_app.command("energy")
def kpi_energy(
    power_file: Annotated[
        Path,
        typer.Argument(
            help="Power samples (.csv or .parquet) with columns time (ISO 8601) and power (kW), "
            "each held until the next sample; optional state (platform state names, empty: "
            "unchanged), energy (a cumulative kWh meter) and good_count (cumulative good parts)."
        ),
    ],
    max_gap: Annotated[
        float | None,
        typer.Option(
            help="Longest silence between power samples, in seconds, that is still integrated; "
            "longer ones are time without data (default: 300)."
        ),
    ] = None,
    tariff_file: Annotated[
        Path | None,
        typer.Option(
            "--tariff",
            help="Time-of-use tariff (YAML): timezone, base_price_per_kwh, bands (name, days, "
            'start and end in quotes, "22:00", price_per_kwh), optional demand_charge_per_kw.',
        ),
    ] = None,
    grid_factor: Annotated[
        float | None,
        typer.Option(help="Grid emissions, kg CO2e per kWh (default: 0.251, the EU-27 in 2022)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Zone of times without an offset (default: the tariff's, else UTC)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Energy: kWh, per state, per good part, 15-minute peak demand, cost and CO2e."""
    import json

    from analytics.energy import DEFAULT_MAX_GAP_S, EU_GRID_FACTOR_KG_PER_KWH, Tariff
    from analytics.kpi_files import KpiFileError, read_series
    from shopfloor.config import load_yaml_model

    max_gap = DEFAULT_MAX_GAP_S if max_gap is None else max_gap
    if not max_gap > 0:
        raise _fail("--max-gap: must be above zero")
    grid_factor = EU_GRID_FACTOR_KG_PER_KWH if grid_factor is None else grid_factor
    if not grid_factor >= 0:
        raise _fail("--grid-factor: cannot be negative")
    try:
        tariff = load_yaml_model(tariff_file, Tariff) if tariff_file is not None else None
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    zone = _zone(timezone or (tariff.timezone if tariff else "UTC"))
    try:
        series = read_series(
            power_file, zone, ("power",), ("energy",), counts=("good_count",), states=True
        )
    except KpiFileError as exc:
        raise _fail(str(exc)) from None
    if not len(series.time):
        raise _fail(f"{power_file}: no rows")
    report = _energy_report(series, max_gap, tariff, grid_factor)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_energy(report, power_file)


def _energy_report(
    series: Series, max_gap: float, tariff: Tariff | None, grid_factor: float
) -> dict[str, Any]:
    """Every energy KPI the file allows, JSON-ready; what it lacks the data for is null."""
    from analytics.energy import (
        co2_kg,
        energy_by_state,
        energy_cost,
        energy_from_meter,
        energy_from_power,
        energy_per_good_part,
        peak_demand,
    )
    from analytics.kernels import counter_increase

    t, power = series.time, series.numbers["power"]
    total = energy_from_power(t, power, max_gap)
    report: dict[str, Any] = {
        "start": _iso(t[0]),
        "end": _iso(t[-1]),
        "kwh": total.kwh,
        "uncovered_s": total.uncovered_s,
        "meter": None,
        "states": None,
        "good_parts": None,
        "peak_demand": None,
        "cost": None,
        "co2_kg": co2_kg(total.kwh, grid_factor),
        "grid_factor_kg_per_kwh": grid_factor,
    }
    if "energy" in series.numbers:
        meter = energy_from_meter(series.numbers["energy"])
        report["meter"] = {
            "kwh": meter.kwh,
            "resets": meter.resets,
            "rollovers": meter.rollovers,
            "drops": meter.drops,
        }
    if series.states is not None:
        by_state = energy_by_state(series.state_intervals(), t, power, max_gap)
        report["states"] = {
            "kwh": {str(state): kwh for state, kwh in by_state.by_state.items()},
            "kwh_by_group": {str(group): kwh for group, kwh in by_state.by_group.items()},
            "idle_share": by_state.idle_share,
            "uncovered_s": by_state.uncovered_s,
        }
    if "good_count" in series.numbers:
        good = int(counter_increase(series.numbers["good_count"]))
        per_part = energy_per_good_part(total.kwh, good)
        report["good_parts"] = {
            "count": good,
            "kwh_per_part": per_part.kwh,
            "problem": per_part.reason,
        }
    peak = peak_demand(t, power, max_gap_s=max_gap)
    if peak is not None:
        start = _iso(peak.start.timestamp())
        report["peak_demand"] = {"kw": peak.kw, "start": start, "coverage": peak.coverage}
    if tariff is not None:
        cost = energy_cost(t, power, tariff, max_gap)
        report["cost"] = {
            "kwh_by_band": cost.kwh_by_band,
            "by_band": cost.cost_by_band,
            "energy": cost.energy_cost,
            "demand_charge": cost.demand_charge,
            "total": cost.total,
        }
    return report


def _print_energy(report: dict[str, Any], source: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    def kwh(value: float) -> str:
        return f"{value:.3f} kWh"

    table = Table(title=f"Energy of {source.name}, {report['start']} to {report['end']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("energy from power", kwh(report["kwh"]))
    table.add_row("time without data", f"{report['uncovered_s'] / 3600:.2f} h")
    if meter := report["meter"]:
        counts = f"{meter['resets']} resets, {meter['rollovers']} rollovers"
        table.add_row("energy from meter", f"{kwh(meter['kwh'])} ({counts})")
        if meter["drops"]:
            table.add_row("meter drops skipped", str(meter["drops"]))
    if states := report["states"]:
        table.add_section()
        for state, value in states["kwh"].items():
            table.add_row(f"state: {state}", kwh(value))
        for group, value in states["kwh_by_group"].items():
            table.add_row(f"all {group}", kwh(value))
        share = states["idle_share"]
        table.add_row("idle share", "-" if share is None else f"{share:.1%}")
    if parts := report["good_parts"]:
        per_part = parts["kwh_per_part"]
        text = parts["problem"] if per_part is None else f"{per_part:.4f} kWh"
        table.add_row(f"per good part ({parts['count']} parts)", text)
    table.add_section()
    if peak := report["peak_demand"]:
        table.add_row("15-min peak demand", f"{peak['kw']:.2f} kW from {peak['start']}")
    if cost := report["cost"]:
        for band, value in cost["by_band"].items():
            table.add_row(f"cost: {band}", f"{value:.2f} ({kwh(cost['kwh_by_band'][band])})")
        table.add_row("demand charge", f"{cost['demand_charge']:.2f}")
        table.add_row("total cost", f"{cost['total']:.2f}")
    factor = report["grid_factor_kg_per_kwh"]
    table.add_row("CO2e", f"{report['co2_kg']:.2f} kg ({factor:g} kg/kWh)")
    Console().print(table)


@kpi_app.command("anomalies")
def kpi_anomalies(
    signals_file: Annotated[
        Path,
        typer.Argument(
            help="Samples (.csv or .parquet): a time column (ISO 8601) and one numeric column "
            "per signal; an empty cell is a missing sample."
        ),
    ],
    threshold: Annotated[
        float,
        typer.Option(
            help="|z| at which a signal's event opens; with several signals, their joint "
            "Hotelling T² gets the level with the same false-alarm rate."
        ),
    ] = 5.0,
    warmup: Annotated[
        int | None,
        typer.Option(help="Samples that only train the detector (default: the detector's)."),
    ] = None,
    max_gap: Annotated[
        float | None,
        typer.Option(
            help="Seconds without samples after which the detector starts afresh, as after a "
            "restart or re-tooling (default: the detector's)."
        ),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Zone of times without an offset (default: UTC).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Anomalies: when each signal, or several together, left their usual range (causal)."""
    import json
    from dataclasses import replace

    import numpy as np

    from analytics.anomaly import DetectorSettings, events, hotelling, t2_level, zscore
    from analytics.kpi_files import KpiFileError, read_series

    if not 0 < threshold <= 30:
        raise _fail("--threshold: must be above 0 and at most 30")
    settings = DetectorSettings()
    if warmup is not None:
        if warmup < 1:
            raise _fail("--warmup: must be at least 1")
        settings = replace(settings, warmup=warmup)
    if max_gap is not None:
        if not max_gap > 0:
            raise _fail("--max-gap: must be above zero")
        settings = replace(settings, max_gap=max_gap)
    zone = _zone(timezone or "UTC")
    try:
        series = read_series(signals_file, zone, None)
    except KpiFileError as exc:
        raise _fail(str(exc)) from None
    if not len(series.time):
        raise _fail(f"{signals_file}: no rows")
    t, names = series.time, list(series.numbers)
    signals = np.vstack(list(series.numbers.values()))
    z = np.abs(zscore(t, signals, settings))
    found = {name: events(t, z[row], name, threshold) for row, name in enumerate(names)}
    joint_level = t2_level(threshold, len(names)) if len(names) > 1 else None
    joint = None
    if joint_level is not None:
        scores = hotelling(t, np.ascontiguousarray(signals.T), settings)
        joint = events(t, scores, "T2", joint_level)
    report = {
        "start": _iso(t[0]),
        "end": _iso(t[-1]),
        "samples": len(t),
        "warmup": settings.warmup,
        "threshold_z": threshold,
        "threshold_t2": joint_level,
        "signals": {name: [_event_dict(event) for event in found[name]] for name in names},
        "multivariate": None if joint is None else [_event_dict(event) for event in joint],
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_anomalies(report, signals_file)


def _event_dict(event: Event) -> dict[str, Any]:
    return {
        "start": _iso(event.start),
        "end": _iso(event.end),
        "peak": _iso(event.peak),
        "peak_score": event.peak_score,
    }


def _print_anomalies(report: dict[str, Any], source: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    levels = f"|z| >= {report['threshold_z']:g}"
    if report["threshold_t2"] is not None:
        levels += f", T² >= {report['threshold_t2']:.1f}"
    table = Table(title=f"Anomalies in {source.name}, {report['start']} to {report['end']}")
    table.caption = f"{report['samples']} samples, warm-up {report['warmup']}; events at {levels}"
    for column in ("signal", "start", "end", "peak score"):
        table.add_column(column, justify="right" if column == "peak score" else "left")
    rows = dict(report["signals"])
    if report["multivariate"] is not None:
        rows["all signals (T²)"] = report["multivariate"]
    for name, found in rows.items():
        if not found:
            table.add_row(name, "no events", "", "")
        for event in found:
            table.add_row(name, event["start"], event["end"], f"{event['peak_score']:.1f}")
    Console().print(table)
