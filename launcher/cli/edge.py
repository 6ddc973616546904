"""`shopfloor edge`: the agent on a device, and the tools to configure and watch it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from launcher.cli.common import (
    DEFAULT_PLANT,
    PlantOption,
    VerboseOption,
    app,
    checked,
    exit_now,
    fail,
    read_plant,
    run_until_interrupted,
    setup_logging,
)
from shopfloor.config import ConfigError
from shopfloor.diskqueue import DiskQueueError
from shopfloor.mqtt import BrokerUrlError, check_broker_url
from shopfloor.plant import Plant, load_plant

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
            envvar="SHOPFLOOR_BROKER_URL",
            help="MQTT broker (overrides the config's broker.url).",
            callback=checked(check_broker_url),
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
    startup_wait: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Seconds an OPC UA server or Modbus TCP device may take to listen once the agent "
            "starts, waited for quietly (overrides the config's startup_wait_s).",
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Read machines (OPC UA) and sensors (MQTT), buffer on disk, forward to the broker."""
    from edge.agent import EdgeAgent
    from shopfloor.diskqueue import DiskQueue

    setup_logging(verbose)
    overrides = {
        "device": device,
        "opcua_host": opcua_host,
        "broker": {"url": broker},
        "buffer": {"path": buffer, "max_mb": buffer_max_mb, "max_age_h": buffer_max_age_h},
        "health": {"metrics_port": metrics_port},
        "startup_wait_s": startup_wait,
    }
    config, plant = _edge_config(config_file, plant_file, overrides)
    settings = config.buffer
    try:
        queue = DiskQueue(
            settings.path, int(settings.max_mb * 1024 * 1024), settings.max_age_h * 3600
        )
    except DiskQueueError as exc:
        raise fail(str(exc)) from None
    try:
        agent = EdgeAgent(config, plant, queue)
    except BrokerUrlError as exc:
        queue.close()
        raise fail(str(exc)) from None
    try:
        run_until_interrupted(agent.serve)
    finally:
        queue.close()
    exit_now()


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
        raise fail(str(exc)) from None
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
        raise fail(f"--{str(first['loc'][-1]).replace('_', '-')}: {first['msg']}") from None


@edge_app.command("check")
def edge_check(file: EdgeConfigArgument) -> None:
    """Validate an edge config and its plant; print what the agent would read."""
    from edge.config import load_edge_config

    try:
        config, plant = load_edge_config(file)
    except ConfigError as exc:
        raise fail(str(exc)) from None
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
    modbus = [f"{device.asset_id}@{device.endpoint}" for device in _modbus_devices(config, plant)]
    typer.echo(
        f"{file}: ok: device {config.device}, OPC UA machines {', '.join(machines) or 'none'}, "
        f"{sensors} sensor topics, {len(config.current_clamps)} current clamps"
        f", Modbus devices {', '.join(modbus) or 'none'}"
    )


def _modbus_devices(config: Any, plant: Plant) -> list[Any]:
    """The config's Modbus devices with their endpoints from the plant where they leave it out."""
    from edge.config import resolve_modbus

    return [resolve_modbus(device, plant) for device in config.modbus]


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
    """Walk a server's address space and write a starter edge config mapping its variables,
    logging in as the browse did (the password as a ${VARIABLE} reference)."""
    import asyncio

    from edge.browse import Login, browse, password_variable, starter_config
    from edge.config import OpcUaSecurity

    setup_logging(verbose=False)
    security = None
    if certificate is not None or private_key is not None:
        if certificate is None or private_key is None:
            raise fail("--certificate and --private-key go together")
        security = OpcUaSecurity(certificate=certificate, private_key=private_key)

    plant_signals = None
    if plant_file is not None:
        machines = {m.id: m for _, m in read_plant(plant_file).machines()}
        if machine not in machines:
            raise fail(f"{plant_file}: no machine {machine!r}")
        plant_signals = {signal.id for signal in machines[machine].signals}
    try:
        variables = asyncio.run(browse(url, username, password, security, depth))
    except Exception as exc:  # socket errors, timeouts, and asyncua's own for refused sessions
        raise fail(f"cannot browse {url}: {exc or type(exc).__name__}") from None
    folder = output.parent.resolve()
    files = None
    if certificate is not None and private_key is not None:
        files = (os.path.relpath(certificate, folder), os.path.relpath(private_key, folder))
    login = Login(username, username is not None and password is not None, files)
    plant_path = os.path.relpath(plant_file or DEFAULT_PLANT, folder)
    text = starter_config(url, variables, machine, plant_path, plant_signals, login)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    reference = (
        f"; the agent reads the password from {password_variable(machine)}"
        if login.with_password
        else ""
    )
    typer.echo(f"{output}: {len(variables)} variables of {url}{reference}")


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
    from http.client import HTTPException, InvalidURL

    from rich.console import Console
    from rich.table import Table

    from shopfloor.messages import MessageError, decode_edge_status

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=5) as response:
            body = response.read()
        status = decode_edge_status(body)
    except (InvalidURL, ValueError) as exc:
        if isinstance(exc, MessageError):  # an answer, but not an agent's
            raise fail(f"no edge agent answers at {url}: {exc}") from None
        raise fail(  # not a URL: a space in it, a broken address
            f"--url / SHOPFLOOR_EDGE_STATUS_URL: {url!r} is not a usable URL: {exc}"
        ) from None
    except (OSError, HTTPException) as exc:
        raise fail(f"no edge agent answers at {url}: {exc}") from None
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
    import asyncio

    from shopfloor.opcua_security import create_certificate

    cert, key = asyncio.run(create_certificate(directory, "edge", uri, server=False))
    typer.echo(f"{cert}\n{key}\nTrust {cert.name} on each OPC UA server the agent reads.")
