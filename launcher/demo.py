"""`shopfloor demo`: the whole platform on one laptop, with nothing to install but Python.

The supervisor starts a broker (Mosquitto when it is installed, otherwise an embedded amqtt
broker in this process), then the simulator, edge agent, gateway and dashboard as child
processes. Ctrl-C (or SIGTERM) stops every child; children also ask the kernel to stop them
if the supervisor dies, so a demo never leaves orphans behind.

Each run writes into a session directory of its own (`launcher.session`), and says where its
servers listen in `running.json` for the rest of the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import logging
import math
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from launcher.broker import Account, Listeners, Role, account_for, write_broker_config
from launcher.sandboxes import Sandboxes
from launcher.session import BROKER_DIR, RunningDemo, Session, clear_running, new_session
from readiness import DATABASE_ENV as READINESS_DB_ENV
from shopfloor.config import ConfigError
from shopfloor.credentials import hide
from shopfloor.messages import LoadScenario, MessageError, control_topic, decode_command
from shopfloor.mqtt import BROKER_URL_ENV, close
from shopfloor.plant import Plant, load_plant
from shopfloor.sandboxes import SESSION_DIR_ENV
from shopfloor.store import ENV_VARS

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
BROKER_PORT = 1883
API_PORT = 8080
SEED_WAIT_S = 60.0  # for the session's first readings, which date the demo SMEs' snapshots
SEED_JOIN_S = 30.0  # for a seeding under way at the stop (one SME's fast run, about a second)
DEMO_MAX_FUTURE_S = 365 * 86400
BACKGROUND_NICE = 10
# The simulator's OPC UA servers listen seconds after the edge agent starts beside it.
EDGE_STARTUP_WAIT_S = 60


def _port_free(port: int) -> bool:
    """Whether a server could listen on `port` now. The probe binds as the demo's servers do
    (Mosquitto, uvicorn, Tornado, asyncio all set SO_REUSEADDR), so a port left in TIME_WAIT
    by a demo stopped a moment ago counts as free, and only a listener elsewhere as taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def choose_port(preferred: int, server: str, announce: Callable[[str], None]) -> int:
    """`preferred` if free, else a free port chosen by the kernel, said out loud."""
    if _port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    announce(f"port {preferred} is in use by another process; {server} listens on {port} instead")
    return port


def wait_for_port(port: int, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _die_with_parent() -> None:
    """Runs in each child before exec: the kernel sends it SIGTERM when the supervisor dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(
    argv: list[str], log_file: Path, env: dict[str, str] | None = None, own_group: bool = False
) -> subprocess.Popen[bytes]:
    """Start a child logging to `log_file`; `own_group` puts it in a process group of its own
    (in the demo's session still), so that a Ctrl-C in the terminal reaches it only through
    the supervisor."""
    output = log_file.open("ab")
    return subprocess.Popen(
        argv, stdout=output, stderr=output, env=env, preexec_fn=_die_with_parent,
        process_group=0 if own_group else None,
    )  # fmt: skip


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from its creation on."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text + "\n")


class DemoBroker:
    """The session's broker: its address, and each component's login to it.

    Mosquitto runs with the accounts and ACLs of `launcher.broker`, generated into the
    session's `broker/` folder for the demo's plant; a trainee sandbox's tenant is added while
    it runs (`add_sandboxes`: files regenerated, then SIGHUP, on which Mosquitto reloads its
    password and ACL files). The embedded broker has no accounts: it listens on loopback only
    and lets every local client do anything."""

    def __init__(self, kind: str, port: int, directory: Path | None = None):
        self.kind, self.url, self.directory = kind, f"mqtt://127.0.0.1:{port}", directory
        self.accounts: list[Account] = []

    def url_for(self, tenant: str, role: Role) -> str:
        """The broker URL logging in as `tenant`'s `role` (the bare URL on the embedded one)."""
        if not self.accounts:
            return self.url
        account = account_for(self.accounts, tenant, role)
        hide(account.password)
        return account.url(self.url)


class _Mosquitto(DemoBroker):
    def __init__(self, binary: str, port: int, session: Session):
        super().__init__("Mosquitto", port, session.directory / BROKER_DIR)
        self.binary, self.port = binary, port
        self.plant = load_plant(session.plant)
        self.sandboxes: list[Plant] = []
        self.process: subprocess.Popen[bytes] | None = None

    def _configure(self) -> None:
        assert self.directory is not None
        self.accounts = write_broker_config(
            self.directory, [self.plant], Listeners(self.port, "127.0.0.1"),
            replay_only=self.sandboxes, run_as=getpass.getuser(),
        )  # fmt: skip

    def add_sandboxes(self, plants: list[Plant]) -> None:
        """Give these trainee sandboxes' tenants accounts, and make Mosquitto load them."""
        self.sandboxes += plants
        self._configure()
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)

    def __enter__(self) -> _Mosquitto:
        self._configure()
        assert self.directory is not None
        config = str(self.directory / "mosquitto.conf")
        # Stopped last, by the supervisor: a Ctrl-C that stopped it with the rest would leave
        # the simulator waiting seconds for the broker to take its goodbye (its status cleared).
        self.process = _spawn(
            [self.binary, "-c", config], self.directory / "mosquitto.log", own_group=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            _stop([self.process])


class _Embedded(DemoBroker):
    """An amqtt broker on its own event loop in a thread of this process."""

    def __init__(self, port: int):
        super().__init__("embedded amqtt broker", port)
        self.port = port

    def add_sandboxes(self, plants: list[Plant]) -> None:
        """Nothing to do: the embedded broker has no accounts."""

    def __enter__(self) -> _Embedded:
        from amqtt.broker import Broker

        self.loop = loop = asyncio.new_event_loop()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

        async def start() -> Broker:
            broker = Broker(config)
            await broker.start()
            return broker

        self.thread = threading.Thread(target=loop.run_forever, name="embedded-broker", daemon=True)
        self.thread.start()
        self.broker = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def _stop(processes: list[subprocess.Popen[bytes]], timeout_s: float = 10) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class BrokerChoice(StrEnum):
    AUTO = "auto"
    MOSQUITTO = "mosquitto"
    EMBEDDED = "embedded"


def _broker(choice: BrokerChoice, port: int, session: Session) -> _Mosquitto | _Embedded:
    """The broker to run, as a context manager that runs it."""
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if choice is BrokerChoice.MOSQUITTO and not mosquitto:
        raise RuntimeError("mosquitto is not installed (apt-get install -y mosquitto)")
    if mosquitto and choice is not BrokerChoice.EMBEDDED:
        return _Mosquitto(mosquitto, port, session)
    return _Embedded(port)


@dataclass(frozen=True)
class DemoSource:
    """What the demo's simulator runs: a scenario, or a plant with default behaviour."""

    plant: Path
    scenario: Path | None

    def simulator_args(self) -> list[str]:
        return ["--scenario", str(self.scenario)] if self.scenario else ["--plant", str(self.plant)]


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs, the same for every session it goes through."""

    data_dir: Path
    influx_url: str | None = None
    dashboard_port: int = 8501
    broker_choice: BrokerChoice = BrokerChoice.AUTO
    announce: Callable[[str], None] = print
    broker_port: int = BROKER_PORT  # each preferred: another is chosen, and said, if taken
    api_port: int = API_PORT


def run_demo(session: Session, options: DemoOptions) -> None:
    """Run the demo until Ctrl-C or SIGTERM, or until one of its processes fails.

    A scenario of another plant asked for on the dashboard's controls page ends this session
    and starts a new one with that scenario (see `ScenarioSwitch`)."""
    current: Session | None = session
    try:
        while current is not None:
            current = _run_session(current, options)
    finally:
        clear_running(options.data_dir)
    options.announce("demo stopped")


def _run_session(session: Session, options: DemoOptions) -> Session | None:
    """Run one session; returns the session to run next (another plant's), or None to stop."""
    directory, announce = session.directory, options.announce
    port = choose_port(options.broker_port, "the broker", announce)
    broker = _broker(options.broker_choice, port, session)
    store_url = options.influx_url or session.store_url
    api_port = choose_port(options.api_port, "the API", announce)
    api_token = secrets.token_urlsafe(16)
    hide(api_token)
    token_file = directory / "api-token"
    _write_private(token_file, api_token)
    readiness_db = _readiness_database(directory)
    # The store, the token and the broker logins reach the children in their environment,
    # which only their user can read, not on their command lines, which every user of the
    # machine can (ps).
    env = {
        **os.environ, ENV_VARS["url"]: store_url, SESSION_DIR_ENV: str(directory),
        READINESS_DB_ENV: str(readiness_db),
    }  # fmt: skip
    newest = session.last_data_time()  # of a resumed session; None for a new one
    plant = load_plant(session.plant)
    edge_config = write_demo_edge_config(session, plant)
    commands = _commands(
        session, newest, broker.kind, api_port, options.dashboard_port, edge_config
    )
    running = RunningDemo(
        directory, broker.url, f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{options.dashboard_port}", session.plant, session.scenario, os.getpid(),
    )  # fmt: skip
    requested: DemoSource | None = None
    with broker:
        if not wait_for_port(port):
            raise RuntimeError(f"the MQTT broker did not start on port {port}")
        running.write(options.data_dir)
        what = (session.scenario or session.plant).name
        since = f"data until {newest:%Y-%m-%d %H:%M} UTC" if newest else "new"
        announce(f"session: {session.id} ({what}, {since})")
        logins = f" (accounts in {broker.directory}/)" if broker.accounts else ""
        announce(f"broker: {broker.kind} on {broker.url}{logins}; store: {store_url}; "
                 f"logs in {directory}/")  # fmt: skip
        announce(f"API: {running.api_url}/docs  (bearer token in {token_file})")
        if modbus_meters(plant):
            announce(f"energy meters: read over Modbus TCP (the edge's config: {edge_config})")
        children: dict[str, subprocess.Popen[bytes]] = {}
        tenant = plant.tenant.id
        stopping, analytics_due, seeder = threading.Event(), threading.Event(), None
        sandboxes = Sandboxes(
            directory, broker, _mqtt_version(broker.kind),
            lambda argv, log_file, login: _spawn(argv, log_file, {**env, **login}), announce,
        )  # fmt: skip

        def spawn(*names: str) -> None:
            for name in names:
                child_env = {**env, **_child_env(name, broker, tenant)}
                if name == "gateway":
                    child_env["SHOPFLOOR_API_TOKEN"] = api_token
                children[name] = _spawn(commands[name], directory / f"{name}.log", child_env)

        try:
            # On two cores what the first live values wait for goes first: the machines, the
            # gateway that stores their readings, the dashboard that shows them (the longest
            # start of all) and the edge agent, which starts up beside them and waits quietly
            # for the OPC UA servers (`--startup-wait`); the analytics (its kernels take
            # seconds of CPU) and the readiness seeding once the first readings are stored.
            spawn("simulate", "gateway", "dashboard", "edge")
            seeding = (readiness_db, session.plant, store_url, stopping, analytics_due)
            seeder = threading.Thread(target=_seed_readiness, args=seeding, daemon=True)
            seeder.start()

            def tick() -> None:
                sandboxes.poll()
                if analytics_due.is_set() and "analytics" not in children:
                    spawn("analytics")

            # It hears the site's controls as the simulator does, with the simulator's login.
            switch_url = broker.url_for(tenant, Role.SIMULATOR)
            with ScenarioSwitch(switch_url, session) as switch:
                requested = _watch(
                    children, directory, options.dashboard_port, announce, switch, tick
                )
        except KeyboardInterrupt:
            announce("stopping the demo...")
        finally:
            stopping.set()  # a seeding under way begins no further SME
            _stop([*children.values(), *sandboxes.processes])
    if requested is None:
        return None  # a seeding under way dies with the process: each SME is saved whole or not
    if seeder is not None:  # the next session's seeding must not assess the same SMEs beside it
        seeder.join(SEED_JOIN_S)
    announce(f"loading {requested.scenario or requested.plant}, another plant: a new session")
    return new_session(options.data_dir, requested.plant, requested.scenario)


# The broker account of each child: its component's role in the demo's tenant.
CHILD_ROLES = {"simulate": Role.SIMULATOR, "edge": Role.EDGE, "gateway": Role.GATEWAY,
               "dashboard": Role.DASHBOARD}  # fmt: skip


def _child_env(name: str, broker: DemoBroker, tenant: str) -> dict[str, str]:
    """The broker login of child `name` (analytics has none: it reads the store only)."""
    role = CHILD_ROLES.get(name)
    return {BROKER_URL_ENV: broker.url_for(tenant, role)} if role else {}


def modbus_meters(plant: Plant) -> list[str]:
    """The machines whose energy meter the plant gives a Modbus address."""
    return [m.id for _, m in plant.machines() if m.energy_meter and m.energy_meter.modbus]


def write_demo_edge_config(session: Session, plant: Plant) -> Path | None:
    """The demo edge's config, in the session's folder: every energy meter the plant gives a
    Modbus address is read over Modbus, stamped with the simulator's clock from the meter's
    clock registers, and the rest of each machine over OPC UA as the plant has it; every sensor
    kit is read on its own topics, its timestamps (the simulator's clock, which runs ahead of
    this one above x1 and from the next shift's start at odd hours) accepted as far ahead as
    the gateway accepts them. None for a plant with neither meters nor kits."""
    from edge.sensors import plant_sensor_mappings
    from simulators.modbus import CLOCK_ADDRESS

    meters = modbus_meters(plant)
    kits = plant_sensor_mappings(plant, max_ahead_s=DEMO_MAX_FUTURE_S)
    if not meters and not kits:
        return None
    clock = {"table": "input", "address": CLOCK_ADDRESS, "type": "float64"}
    config: dict[str, object] = {"version": 1, "plant": str(session.plant.resolve())}
    if meters:
        config["modbus"] = [{"machine": machine, "ts": dict(clock)} for machine in meters]
    if kits:
        config["sensors"] = [kit.model_dump(mode="json", exclude_defaults=True) for kit in kits]
    path = session.directory / "edge.yaml"
    path.write_text(
        "# Written by `shopfloor demo` for this session: its energy meters and sensor kits.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return path


def _commands(
    session: Session, newest: datetime | None, kind: str, api_port: int, dashboard_port: int,
    edge_config: Path | None,
) -> dict[str, list[str]]:  # fmt: skip
    """Each child's command line, by name (the broker's URL, with the child's login, is in
    its environment). A resumed session's simulated clock goes on from its `newest` reading,
    never back behind it."""
    shopfloor = [sys.executable, "-m", "launcher"]
    source = DemoSource(session.plant, session.scenario)
    common = ["--plant", str(session.plant)]
    directory = session.directory
    return {
        "simulate": [
            *shopfloor, "simulate", *source.simulator_args(),
            "--shift-calendar",  # something to show at any hour
            *(["--not-before", _whole_second_after(newest).isoformat()] if newest else []),
        ],
        "edge": [
            *shopfloor, "edge", "run", *common, "--buffer", str(directory / "edge-buffer.db"),
            *(["--config", str(edge_config)] if edge_config else []),
            "--startup-wait", str(EDGE_STARTUP_WAIT_S),
        ],
        "gateway": [
            *shopfloor, "gateway", *common, "--mqtt-version", _mqtt_version(kind),
            # The simulated clock runs ahead of this one: above x1, and to the next shift.
            "--max-future", str(DEMO_MAX_FUTURE_S),
            "--spill", str(directory / "gateway-spill.db"),
            "--http-port", str(api_port),
        ],
        "analytics": [*shopfloor, "analytics", *common],
        "dashboard": [
            *shopfloor, "dashboard", *common, "--port", str(dashboard_port),
        ],
    }  # fmt: skip


def _mqtt_version(broker_kind: str) -> str:
    """MQTT 5 on Mosquitto; the embedded broker speaks 3.1.1 only."""
    return "5" if broker_kind == "Mosquitto" else "3.1.1"


def _whole_second_after(moment: datetime) -> datetime:
    return datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC)


def _readiness_database(session_dir: Path) -> Path:
    """The readiness page's database: SHOPFLOOR_READINESS_DB if set, else the session's."""
    return Path(os.environ.get(READINESS_DB_ENV) or session_dir / "readiness.db")


def _seed_readiness(
    database: Path,
    plant_file: Path,
    store_url: str,
    stopping: threading.Event,
    analytics_due: threading.Event,
) -> None:
    """Assess the three demo SMEs for the dashboard's readiness page once the session's first
    readings are stored (or at SEED_WAIT_S without them), at a low priority: its seconds of
    simulation must not hold up the dashboard's first page. `analytics_due` is set when that
    wait ends: the analytics start then too, for the same reason.

    The snapshots are dated by the session's data clock, not the wall clock: the demo's
    simulated clock can run days from the wall clock (a Saturday's demo runs Monday's shift),
    and a snapshot a day older than the data would be rescored at once, on a store that holds
    only the session's first minutes, every measured gate then falling."""
    from launcher.seeding import seed_demo_smes
    from readiness.persistence import ReadinessStoreError

    try:
        try:
            taken_at = _first_data_time(plant_file, store_url, stopping)
        finally:
            analytics_due.set()  # with the first readings, or once the wait for them ended
        _lower_this_threads_priority()
        seed_demo_smes(database, taken_at=taken_at, stopping=stopping)
    except (ConfigError, ReadinessStoreError, OSError) as exc:
        log.warning("the demo SMEs were not assessed: %s", exc)


def _lower_this_threads_priority() -> None:
    """Lower the calling thread's CPU priority to nice BACKGROUND_NICE (on Linux, where a nice
    value is a thread's own; elsewhere it would be the whole process's)."""
    if sys.platform.startswith("linux"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def _first_data_time(
    plant_file: Path, store_url: str, stopping: threading.Event
) -> datetime | None:
    """The session's data clock once its first readings are stored (None if none come within
    SEED_WAIT_S, the store cannot be read or the session stops: the snapshots then take the
    wall clock)."""
    from shopfloor.store import StoreError, StoreSettings, data_clock, open_store

    plant = load_plant(plant_file)
    deadline = time.monotonic() + SEED_WAIT_S
    try:
        store = open_store(StoreSettings(url=store_url))
    except StoreError:
        return None
    try:
        while time.monotonic() < deadline and not stopping.is_set():
            with contextlib.suppress(StoreError):
                clock = data_clock(plant, store)
                if clock is not None:
                    return clock
            stopping.wait(1)
        return None
    finally:
        store.close()


class ScenarioSwitch:
    """Hears the dashboard ask for a scenario of another plant, which the supervisor must run.

    The simulator loads a scenario of its own plant itself (`LoadScenario`), but another plant
    means other machines, OPC UA servers and topics for every component: a new session. The
    supervisor therefore listens on the site's control topic beside the simulator (which
    leaves such a request alone) rather than have the simulator relay it: the request comes
    to the one process that can act on it, by the channel every demo control already uses.
    """

    def __init__(self, broker_url: str, session: Session):
        from shopfloor.mqtt import make_client

        self.plant = session.plant.resolve()
        self.directory = session.scenario.parent if session.scenario else None
        self.requested: queue.SimpleQueue[DemoSource] = queue.SimpleQueue()
        plant = load_plant(session.plant)
        topic = control_topic(plant.tenant.id, plant.site.id)
        self.client = make_client(
            broker_url, f"shopfloor-demo-{uuid.uuid4().hex[:8]}", [(topic, 1)]
        )
        self.client.on_message = self._on_message

    def __enter__(self) -> ScenarioSwitch:
        self.client.loop_start()
        return self

    def __exit__(self, *exc: object) -> None:
        close(self.client)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            command = decode_command(msg.payload)
        except MessageError:
            return
        if isinstance(command, LoadScenario) and self.directory is not None:
            source = other_plant_scenario(self.directory, command.name, self.plant)
            if source is not None:
                self.requested.put(source)


def other_plant_scenario(directory: Path, name: str, plant: Path) -> DemoSource | None:
    """The scenario `name` in `directory` if it runs a plant other than `plant`, else None."""
    from simulators.scenario import load_scenario

    for path in directory.glob("*.y*ml"):
        if path.stem != name:
            continue
        try:
            loaded = load_scenario(path)
        except ConfigError:
            return None
        other = (loaded.path.parent / loaded.scenario.plant).resolve()
        return DemoSource(other, path.resolve()) if other != plant else None
    return None


def _watch(
    children: dict[str, subprocess.Popen[bytes]], log_dir: Path, dashboard_port: int,
    announce: Callable[[str], None], switch: ScenarioSwitch, tick: Callable[[], None],
) -> DemoSource | None:  # fmt: skip
    """Announce the dashboard once it listens and `tick` every half second; return when any
    child exits (naming its log), or with the scenario of another plant that was asked for."""
    dashboard_up = False
    while True:
        tick()
        if not dashboard_up and wait_for_port(dashboard_port, timeout_s=0.5):
            dashboard_up = True
            announce(f"dashboard: http://127.0.0.1:{dashboard_port}  (Ctrl-C stops the demo)")
        for name, process in children.items():
            if process.poll() is not None:
                announce(f"{name} exited with code {process.returncode}; see {log_dir / name}.log")
                return None
        with contextlib.suppress(queue.Empty):
            return switch.requested.get(timeout=0.5)
