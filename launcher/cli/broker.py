"""`shopfloor broker config`: Mosquitto accounts and ACLs for the tenants of some plant files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import app, fail, read_plant

broker_app = typer.Typer(help="The MQTT broker's accounts and access rules.")
app.add_typer(broker_app, name="broker")


@broker_app.command("config")
def broker_config(
    plant_files: Annotated[
        list[Path], typer.Argument(help="Plant files: every tenant and site to serve.")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", help="Folder for passwd, acl, mosquitto.conf and accounts.json."),
    ],
    port: Annotated[int, typer.Option(help="Plain MQTT listener's port.")] = 1883,
    bind: Annotated[
        str | None,
        typer.Option(help="Address the plain listener binds to only (e.g. an internal one)."),
    ] = None,
    tls_port: Annotated[
        int | None,
        typer.Option(help="Add a TLS listener on this port (with --certfile, --keyfile)."),
    ] = None,
    certfile: Annotated[
        str | None, typer.Option(help="The broker's certificate (PEM), as the broker sees it.")
    ] = None,
    keyfile: Annotated[
        str | None, typer.Option(help="The certificate's private key (PEM), as the broker sees it.")
    ] = None,
    cafile: Annotated[
        str | None, typer.Option(help="CA certificates for the TLS listener (PEM), optional.")
    ] = None,
    rotate: Annotated[
        list[str] | None,
        typer.Option(help="Give this account (a username of accounts.json) a new password."),
    ] = None,
) -> None:
    """Write the broker's accounts and ACLs for these plants: one account per tenant and role,
    each allowed only its own tenant's topics. Passwords go to OUTPUT/accounts.json only (never
    printed); existing accounts keep theirs."""
    from launcher.broker import BrokerConfigError, Listeners, TlsListener, write_broker_config

    tls_options = (certfile, keyfile)
    if tls_port is None and any((*tls_options, cafile)):
        raise fail("--certfile, --keyfile and --cafile need --tls-port")
    if tls_port is not None and not all(tls_options):
        raise fail("--tls-port needs --certfile and --keyfile")
    tls = (
        TlsListener(tls_port, certfile, keyfile, cafile)
        if tls_port and certfile and keyfile
        else None
    )
    plants = [read_plant(path) for path in plant_files]
    try:
        accounts = write_broker_config(output, plants, Listeners(port, bind, tls), rotate or ())
    except BrokerConfigError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{output}: {exc.strerror or exc}") from None
    tenants = sorted({a.tenant for a in accounts} - {"*"})
    typer.echo(
        f"{len(accounts)} broker accounts for {', '.join(tenants)} in {output / 'accounts.json'}; "
        f"start Mosquitto with -c {output / 'mosquitto.conf'}"
    )
