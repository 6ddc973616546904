"""`shopfloor gateway`: from the broker into the store, and the HTTP API over it; `shopfloor
gateway token issue|revoke|list` manage the API's tokens."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from gateway.tokens import Role  # light: the token file's model, no server libraries
from launcher.cli.common import (
    DEFAULT_PLANT,
    DEFAULT_STORE,
    BrokerOption,
    DatabaseOption,
    OrgOption,
    PlantOption,
    StoreUrlOption,
    TokenOption,
    VerboseOption,
    app,
    checked,
    connect_store,
    exit_now,
    fail,
    read_plant,
    settle_heap,
    setup_logging,
    store_settings,
)
from shopfloor.credentials import check_api_token, hide
from shopfloor.diskqueue import DiskQueueError
from shopfloor.mqtt import DEFAULT_BROKER_URL, SESSION_EXPIRY_S, BrokerUrlError

# The API's own store credentials, where ingest's may only write (docs/security.md): any
# SHOPFLOOR_API_STORE_<FIELD> replaces that field of the store settings for the API alone.
API_STORE_PREFIX = "SHOPFLOOR_API_STORE_"

gateway_app = typer.Typer(
    help="Subscribe to the plant's messages, write them to the store, serve the HTTP API; "
    "`token` manages the API's tokens."
)
app.add_typer(gateway_app, name="gateway")
token_app = typer.Typer(
    help="Issue, revoke and list the HTTP API's tokens (kept hashed in the token file).",
    no_args_is_help=True,
)
gateway_app.add_typer(token_app, name="token")

TokensFileOption = Annotated[
    Path,
    typer.Option(
        "--api-tokens-file",
        envvar="SHOPFLOOR_API_TOKENS_FILE",
        help="The API's token file (hashes only, mode 0600), read again when it changes.",
    ),
]
DEFAULT_TOKENS_FILE = Path(".shopfloor/api-tokens.json")


@gateway_app.callback(invoke_without_command=True)
def gateway(
    context: typer.Context,
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
    ] = SESSION_EXPIRY_S,
    max_future: Annotated[
        float,
        typer.Option(
            min=0,
            envvar="SHOPFLOOR_GATEWAY_MAX_FUTURE",
            help="Seconds a reading may be ahead of this clock (a simulator above x1 runs ahead).",
        ),
    ] = 300,
    max_lag: Annotated[
        float,
        typer.Option(
            min=0.1,
            envvar="SHOPFLOOR_GATEWAY_MAX_LAG",
            help="Seconds a received message may wait to be stored before /health says "
            "ingest lags.",
        ),
    ] = 5,
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
            help="The platform's admin token of the HTTP API (every tenant, every route), 16 "
            "characters or more, better given in the environment than on a command line.",
            callback=checked(check_api_token),
        ),
    ] = None,
    api_tokens_file: TokensFileOption = DEFAULT_TOKENS_FILE,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(envvar="SHOPFLOOR_GATEWAY_CORS_ORIGINS", help="Allowed browser origin."),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Subscribe to the plant's messages, write them to the store, serve the HTTP API."""
    if context.invoked_subcommand is not None:
        return
    from gateway.api import create_app, serve
    from gateway.service import Gateway, GatewaySettings
    from gateway.tokens import TokenChecker, TokenFileError, read_book
    from shopfloor.mqtt import Session

    setup_logging(verbose)
    hide(api_token)
    try:
        read_book(api_tokens_file)  # the gateway reads it again at each request
    except TokenFileError as exc:
        raise fail(str(exc)) from None
    if mqtt_version not in ("5", "3.1.1"):
        raise fail("--mqtt-version is 5 or 3.1.1")
    plant = read_plant(plant_file)
    ingest_settings = store_settings(store_url, store_database, store_token, store_org)
    api_settings = ingest_settings.with_env(API_STORE_PREFIX)
    store = connect_store(ingest_settings)
    api_store = store if api_settings == ingest_settings else connect_store(api_settings)
    settings = GatewaySettings(
        client_id=client_id,
        share_group=share_group,
        mqtt5=mqtt_version == "5",
        session=Session(expiry_s=session_expiry),
        max_future_s=max_future,
        max_lag_s=max_lag,
        spill_path=spill,
        spill_max_mb=spill_max_mb,
    )
    with contextlib.ExitStack() as stores:
        stores.callback(store.close)
        if api_store is not store:
            stores.callback(api_store.close)
        try:
            service = Gateway(plant, broker, store, settings)
        except (BrokerUrlError, DiskQueueError) as exc:
            raise fail(str(exc)) from None
        tokens = TokenChecker(api_tokens_file, api_token)
        app_ = create_app(plant, api_store, service.snapshot, tokens, cors_origin or ())
        try:
            api = serve(app_, http_host, http_port)
        except OSError as exc:
            raise fail(f"cannot serve the HTTP API on {http_host}:{http_port}: {exc}") from None
        settle_heap()
        service.start()
        api.start()
        try:
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        finally:
            api.stop()
            service.stop()
    exit_now()


@token_app.command("issue")
def token_issue(
    tenant: Annotated[
        str,
        typer.Option(help="The tenant whose data the token reads; '*' for the platform (staff)."),
    ],
    role: Annotated[
        Role, typer.Option(help="read: the tenant's data; admin: also acknowledgements.")
    ],
    name: Annotated[
        str | None, typer.Option(help="A label to find the token by (and revoke it by).")
    ] = None,
    expires: Annotated[
        int | None, typer.Option(min=1, help="Days until the token stops working.")
    ] = None,
    tokens_file: TokensFileOption = DEFAULT_TOKENS_FILE,
) -> None:
    """Issue a token and print it, once, on standard output: the file keeps only its hash."""
    from gateway.tokens import TokenFileError, issue

    valid_for = None if expires is None else timedelta(days=expires)
    try:
        token, record = issue(tokens_file, tenant, role, name, valid_for)
    except (ValueError, TokenFileError) as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"issued token {record.id} ({record.role} of tenant {record.tenant!r}"
        + (f", until {record.expires:%Y-%m-%d %H:%M} UTC" if record.expires else "")
        + f") in {tokens_file}; it is shown only now:",
        err=True,
    )
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(
    key: Annotated[str, typer.Argument(metavar="ID|NAME", help="The token's id or name.")],
    tokens_file: TokensFileOption = DEFAULT_TOKENS_FILE,
) -> None:
    """Revoke a token: gateways reading the file refuse it from their next request."""
    from gateway.tokens import TokenFileError, revoke

    try:
        record = revoke(tokens_file, key)
    except TokenFileError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"revoked token {record.id} ({record.role} of tenant {record.tenant!r})")


@token_app.command("list")
def token_list(tokens_file: TokensFileOption = DEFAULT_TOKENS_FILE) -> None:
    """The tokens of the file, without secrets: id, name, tenant, role, dates and state."""
    from rich.console import Console
    from rich.table import Table

    from gateway.tokens import TokenFileError, read_book

    try:
        book = read_book(tokens_file)
    except TokenFileError as exc:
        raise fail(str(exc)) from None
    if not book.tokens:
        typer.echo(f"no tokens in {tokens_file}")
        return
    table = Table(title=f"{tokens_file} (times in UTC)")
    for column in ("id", "name", "tenant", "role", "created", "expires", "state"):
        table.add_column(column)
    now = datetime.now(UTC)
    for record in book.tokens:
        table.add_row(
            record.id,
            record.name or "",
            record.tenant,
            record.role,
            f"{record.created:%Y-%m-%d %H:%M}",
            f"{record.expires:%Y-%m-%d %H:%M}" if record.expires else "never",
            record.state(now),
        )
    Console(width=120).print(table)
