"""`shopfloor gateway`: from the broker into the store, and the HTTP API over it."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Annotated

import typer

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
    fail,
    read_plant,
    setup_logging,
    store_settings,
)
from shopfloor.credentials import check_api_token, hide
from shopfloor.diskqueue import DiskQueueError
from shopfloor.mqtt import DEFAULT_BROKER_URL, SESSION_EXPIRY_S, BrokerUrlError


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
            help="Bearer token of the HTTP API, 16 characters or more (better given in the "
            "environment than on a command line); without one, only /health answers.",
            callback=checked(check_api_token),
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

    setup_logging(verbose)
    hide(api_token)
    if mqtt_version not in ("5", "3.1.1"):
        raise fail("--mqtt-version is 5 or 3.1.1")
    plant = read_plant(plant_file)
    store = connect_store(store_settings(store_url, store_database, store_token, store_org))
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
    try:
        service = Gateway(plant, broker, store, settings)
    except (BrokerUrlError, DiskQueueError) as exc:
        store.close()
        raise fail(str(exc)) from None
    app_ = create_app(plant, store, service.snapshot, api_token, cors_origin or ())
    try:
        api = serve(app_, http_host, http_port)
    except OSError as exc:
        store.close()
        raise fail(f"cannot serve the HTTP API on {http_host}:{http_port}: {exc}") from None
    service.start()
    api.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    finally:
        api.stop()
        service.stop()
        store.close()
