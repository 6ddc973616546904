"""`shopfloor demo`: the whole platform on one laptop, with nothing to install but Python.

The supervisor starts a broker (Mosquitto when it is installed, otherwise an embedded amqtt
broker in this process), then the simulator, edge agent, gateway and dashboard as child
processes. Ctrl-C (or SIGTERM) stops every child; children also ask the kernel to stop them
if the supervisor dies, so a demo never leaves orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from launcher.sandboxes import Sandboxes
from launcher.session import RunningDemo, announced
from shopfloor.credentials import hide
from shopfloor.mqtt import MOSQUITTO_POLICY
from shopfloor.plant import load_plant
from shopfloor.sandboxes import SESSION_DIR_ENV
from shopfloor.store import ENV_VARS, StoreSettings

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
BROKER_PORT = 1883
API_PORT = 8080


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _wait_for_machines(plant_file: Path, timeout_s: float = 20) -> None:
    """Until every machine's OPC UA server listens (or `timeout_s`: the watch names a
    simulator that failed)."""
    endpoints = [m.opcua.endpoint for _, m in load_plant(plant_file).machines() if m.opcua]
    ports = [port for port in (urlsplit(e).port for e in endpoints) if port is not None]
    deadline = time.monotonic() + timeout_s
    for port in ports:
        wait_for_port(port, max(deadline - time.monotonic(), 0.1))


def _die_with_parent() -> None:
    """Runs in each child before exec: the kernel sends it SIGTERM when the supervisor dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(
    argv: list[str], log_file: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    output = log_file.open("ab")
    return subprocess.Popen(
        argv, stdout=output, stderr=output, env=env, preexec_fn=_die_with_parent
    )


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from its creation on."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text + "\n")


@contextlib.contextmanager
def mosquitto_broker(binary: str, port: int, data_dir: Path) -> Iterator[None]:
    config = data_dir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
        f"persistence_location {data_dir.resolve()}/\n"
        + "".join(f"{option} {value}\n" for option, value in MOSQUITTO_POLICY.items())
    )
    process = _spawn([binary, "-c", str(config)], data_dir / "mosquitto.log")
    try:
        yield
    finally:
        _stop([process])


@contextlib.contextmanager
def embedded_broker(port: int) -> Iterator[None]:
    """An amqtt broker on its own event loop in a thread of this process."""
    from amqtt.broker import Broker

    loop = asyncio.new_event_loop()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def start() -> Broker:
        broker = Broker(config)
        await broker.start()
        return broker

    thread = threading.Thread(target=loop.run_forever, name="embedded-broker", daemon=True)
    thread.start()
    broker = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


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


def _broker(
    choice: BrokerChoice, port: int, data_dir: Path
) -> tuple[str, contextlib.AbstractContextManager[None]]:
    """The broker to run, by name, as a context manager that runs it."""
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if choice is BrokerChoice.MOSQUITTO and not mosquitto:
        raise RuntimeError("mosquitto is not installed (apt-get install -y mosquitto)")
    if mosquitto and choice is not BrokerChoice.EMBEDDED:
        return "Mosquitto", mosquitto_broker(mosquitto, port, data_dir)
    return "embedded amqtt broker", embedded_broker(port)


@dataclass(frozen=True)
class DemoSource:
    """What the demo's simulator runs: a scenario, or a plant with default behaviour."""

    plant: Path
    scenario: Path | None

    def simulator_args(self) -> list[str]:
        return ["--scenario", str(self.scenario)] if self.scenario else ["--plant", str(self.plant)]


def run_demo(
    source: DemoSource, data_dir: Path, influx_url: str | None, dashboard_port: int,
    broker_choice: BrokerChoice = BrokerChoice.AUTO, announce: Callable[[str], None] = print,
) -> None:  # fmt: skip
    """Run the demo until Ctrl-C or SIGTERM, or until one of its processes fails."""
    data_dir.mkdir(parents=True, exist_ok=True)
    readiness_db = _readiness_database(data_dir)
    port = _free_port(BROKER_PORT)
    broker_url = f"mqtt://127.0.0.1:{port}"
    kind, broker = _broker(broker_choice, port, data_dir)
    store = StoreSettings(url=influx_url or f"sqlite:{data_dir / 'store.db'}")
    api_port, api_token = _free_port(API_PORT), secrets.token_urlsafe(16)
    hide(api_token)
    token_file = data_dir / "api-token"
    _write_private(token_file, api_token)
    # The store and the token reach the children in their environment, which only their user
    # can read, not on their command lines, which every user of the machine can (ps).
    env = {**os.environ, ENV_VARS["url"]: store.url, SESSION_DIR_ENV: str(data_dir.resolve())}
    gateway_env = {**env, "SHOPFLOOR_API_TOKEN": api_token}
    shopfloor = [sys.executable, "-m", "launcher"]
    common = ["--plant", str(source.plant)]
    commands = {
        "simulate": [*shopfloor, "simulate", *source.simulator_args(), "--broker", broker_url],
        "edge": [
            *shopfloor, "edge", "run", *common, "--broker", broker_url,
            "--buffer", str(data_dir / "edge-buffer.db"),
        ],
        "gateway": [
            *shopfloor, "gateway", *common, "--broker", broker_url,
            "--mqtt-version", "5" if kind == "Mosquitto" else "3.1.1",
            "--spill", str(data_dir / "gateway-spill.db"),
            "--http-port", str(api_port),
        ],
        "analytics": [*shopfloor, "analytics", *common],
        "dashboard": [
            *shopfloor, "dashboard", *common, "--port", str(dashboard_port),
            "--broker", broker_url,
        ],
    }  # fmt: skip
    session = RunningDemo(
        data_dir.resolve(), broker_url, f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{dashboard_port}", source.plant.resolve(),
        source.scenario and source.scenario.resolve(), os.getpid(),
    )  # fmt: skip
    sandboxes = Sandboxes(
        session.session_dir, broker_url, "5" if kind == "Mosquitto" else "3.1.1",
        lambda argv, log_file: _spawn(argv, log_file, env), announce,
    )  # fmt: skip
    with broker, announced(session, data_dir):
        if not wait_for_port(port):
            raise RuntimeError(f"the MQTT broker did not start on port {port}")
        announce(f"broker: {kind} on {broker_url}; store: {store.url}; logs in {data_dir}/")
        announce(f"API: http://127.0.0.1:{api_port}/docs  (bearer token in {token_file})")
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            # The machines first: an edge agent started before their OPC UA servers would
            # log refused connections and count reconnects on a demo that just began.
            children["simulate"] = _spawn(commands.pop("simulate"), data_dir / "simulate.log", env)
            _wait_for_machines(source.plant)
            for name, argv in commands.items():
                children[name] = _spawn(
                    argv, data_dir / f"{name}.log", gateway_env if name == "gateway" else env
                )
            threading.Thread(target=_seed_readiness, args=(readiness_db,), daemon=True).start()
            _watch(children, data_dir, dashboard_port, announce, sandboxes.poll)
        except KeyboardInterrupt:
            announce("stopping the demo...")
        finally:
            _stop([*children.values(), *sandboxes.processes])
    announce("demo stopped")


def _readiness_database(data_dir: Path) -> Path:
    """The readiness page's database: SHOPFLOOR_READINESS_DB, set for the children if unset."""
    from readiness import DATABASE_ENV

    return Path(os.environ.setdefault(DATABASE_ENV, str(data_dir / "readiness.db")))


def _seed_readiness(database: Path) -> None:
    """Assess the three demo SMEs for the dashboard's readiness page, beside the demo's start
    (it takes a few seconds of simulation, which the dashboard need not wait for)."""
    from launcher.seeding import seed_demo_smes
    from readiness.persistence import ReadinessStoreError
    from shopfloor.config import ConfigError

    try:
        seed_demo_smes(database)
    except (ConfigError, ReadinessStoreError, OSError) as exc:
        log.warning("the demo SMEs were not assessed: %s", exc)


def _watch(
    children: dict[str, subprocess.Popen[bytes]],
    data_dir: Path,
    dashboard_port: int,
    announce: Callable[[str], None],
    tick: Callable[[], None],
) -> None:
    """Announce the dashboard once it listens, `tick` every half second; return when any
    child exits, naming its log."""
    dashboard_up = False
    while True:
        tick()
        if not dashboard_up and wait_for_port(dashboard_port, timeout_s=0.5):
            dashboard_up = True
            announce(f"dashboard: http://127.0.0.1:{dashboard_port}  (Ctrl-C stops the demo)")
        for name, process in children.items():
            if process.poll() is not None:
                announce(f"{name} exited with code {process.returncode}; see {data_dir / name}.log")
                return
        time.sleep(0.5)
