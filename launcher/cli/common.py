"""What several command groups share: the app, common options, and how a command fails or stops.

Imports stay light here (typer and the shopfloor contract modules): every command imports it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from shopfloor.config import ConfigError
from shopfloor.credentials import CredentialError, RedactingFilter, check_secret
from shopfloor.mqtt import BrokerUrlError, check_broker_url
from shopfloor.plant import Plant, load_plant
from shopfloor.store import ENV_VARS, Store, StoreError, StoreSettings, open_store

# Loggers of the HTTP libraries that write a line per request at INFO or DEBUG.
REQUEST_LOGGERS = ("httpx", "httpcore", "urllib3", "influxdb_client", "uvicorn.access")


def fail(message: str) -> typer.Exit:
    """Print the error; the caller raises what this returns (exit code 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def checked(
    check: Callable[[str, str | None], None],
) -> Callable[[typer.CallbackParam, str | None], str | None]:
    """An option callback that refuses a value `check` refuses, in one line naming the option
    and its variable, before the command starts anything."""

    def callback(param: typer.CallbackParam, value: str | None) -> str | None:
        name = (
            f"{param.envvar} ({param.opts[0]})" if isinstance(param.envvar, str) else param.opts[0]
        )
        try:
            check(name, value)
        except (CredentialError, BrokerUrlError) as exc:
            raise fail(str(exc)) from None
        return value

    return callback


app = typer.Typer(
    help="shopfloor: a smart-manufacturing demonstration platform "
    "(simulated lines, edge agent, gateway, analytics, dashboard).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

PlantOption = Annotated[
    Path, typer.Option("--plant", envvar="SHOPFLOOR_PLANT", help="Plant file (YAML).")
]
BrokerOption = Annotated[
    str,
    typer.Option(
        "--broker",
        envvar="SHOPFLOOR_BROKER_URL",
        help="MQTT broker, mqtt[s]://[user:pw@]host:port.",
        callback=checked(check_broker_url),
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
    typer.Option(
        "--store-token",
        envvar=ENV_VARS["token"],
        help="InfluxDB 2.x/3.x token.",
        callback=checked(check_secret),
    ),
]
OrgOption = Annotated[
    str | None,
    typer.Option("--store-org", envvar=ENV_VARS["org"], help="InfluxDB 2.x organisation."),
]
DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SHOPFLOOR_DATA_DIR",
        help="The demo's directory: its sessions, and running.json while it runs.",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

DEFAULT_PLANT = Path("examples/plant.yaml")
DEFAULT_STORE = StoreSettings().url


def _interrupt(signum: int, frame: object) -> None:
    """Stop like Ctrl-C; a second polite signal must not break the clean stop it started."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def setup_logging(verbose: bool) -> None:
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
    # HTTP clients and servers log a line per request (a line per store write): shown only
    # with --verbose, and even then without a credential (RedactingFilter).
    if not verbose:
        for requests in REQUEST_LOGGERS:
            logging.getLogger(requests).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


def read_plant(plant_file: Path) -> Plant:
    """The plant file, or exit naming what is wrong with it."""
    try:
        return load_plant(plant_file)
    except ConfigError as exc:
        raise fail(str(exc)) from None


# Container objects allocated, beyond those freed, before the youngest generation is collected
# (Python's default is 700), then how many such collections before the next generation's.
YOUNG_COLLECTION_EVERY = 10_000
OLDER_COLLECTION_EVERY = 10


def settle_heap() -> None:
    """Tune the garbage collector for a long-running service, once it has started up.

    A service turns each message into objects that live a few milliseconds: a 500-reading
    message is some 2,000 of them. At Python's defaults the collector ran after every message
    and, in its older generations, walked every object the imports had made (FastAPI, pydantic,
    asyncua: hundreds of thousands), which took half of the gateway's CPU in a 500-reading
    flood, and building the OPC UA address spaces took the simulator 3 s of CPU instead of 1.8.
    What start-up made is frozen out of the collector's walks (`gc.freeze`), and the young
    generation is collected less often; cycles are still collected. Not for the edge agent: on a
    Raspberry Pi memory counts more, and at its rates it gained no CPU and held 1.5 MB more.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, OLDER_COLLECTION_EVERY, OLDER_COLLECTION_EVERY)


def run_until_interrupted(service: Coroutine[Any, Any, None] | Callable[[], None]) -> None:
    """Run a service, a coroutine or a blocking call, until Ctrl-C or SIGTERM (see
    setup_logging). asyncio is imported only for a coroutine: an edge agent reading sensor kits
    runs without it."""
    with contextlib.suppress(KeyboardInterrupt):
        if callable(service):
            service()
        else:
            import asyncio

            asyncio.run(service)


def exit_now() -> NoReturn:
    """End a service's process once the service has stopped and closed what it holds, without
    the interpreter's teardown: freeing a heap of hundreds of thousands of objects one by one
    (the simulator's OPC UA address spaces) took a second of every demo's stop. Logs and the
    standard streams are flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


def read_scenario(plant_file: Path, scenario_file: Path | None, seed: int | None) -> Any:
    """The scenario file, else the plant's default scenario, with `seed` if given; or exit."""
    from simulators.scenario import default_scenario, load_scenario

    try:
        loaded = load_scenario(scenario_file) if scenario_file else default_scenario(plant_file)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if seed is not None:
        loaded = loaded.model_copy(
            update={"scenario": loaded.scenario.model_copy(update={"seed": seed})}
        )
    return loaded


def store_settings(url: str, database: str, token: str | None, org: str | None) -> StoreSettings:
    """The store options, with user name, password and write API from the environment (the
    password only there: never on a command line)."""
    password = os.environ.get(ENV_VARS["password"])
    try:
        check_secret(ENV_VARS["password"], password)
    except CredentialError as exc:
        raise fail(str(exc)) from None
    return StoreSettings.model_validate(
        {
            "url": url,
            "database": database,
            "token": token,
            "org": org,
            "username": os.environ.get(ENV_VARS["username"]),
            "password": password,
            "write_api": os.environ.get(ENV_VARS["write_api"], "auto"),
            "read_also": os.environ.get(ENV_VARS["read_also"], ""),
        }
    )


def connect_store(settings: StoreSettings) -> Store:
    """The store, or exit saying why it cannot be opened."""
    try:
        return open_store(settings)
    except StoreError as exc:
        raise fail(str(exc)) from None
