"""Real Mosquitto and InfluxDB servers for the tests, on free ports in temporary folders."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopfloor.mqtt import MOSQUITTO_POLICY

INSTALL_HINT = (
    "install it with: apt-get install -y mosquitto mosquitto-clients influxdb victoria-metrics "
    "chromium faketime socat"
)


# How long the outage tests keep a server down: 20 s in the suite, 60 s under `make bench`,
# which runs them again as the soak they are (the durations an outage is specified for).
OUTAGE_S = float(os.environ.get("SHOPFLOOR_TEST_OUTAGE_S", "20"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine_on_free_ports(machine: dict[str, Any]) -> str:
    """Move a machine of a plant file (as YAML data) to free ports: its OPC UA server and, if
    the plant gives one, its energy meter's Modbus server; returns the OPC UA endpoint."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    machine["opcua"]["endpoint"] = endpoint
    meter = machine.get("energy_meter") or {}
    if "modbus" in meter:
        meter["modbus"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    return endpoint


def require_binary(name: str) -> str:
    """The path of a server binary; a failure in CI, a skip on a developer's laptop."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        message = f"{name} is not installed; {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ServerProcess:
    """A server binary run with a config file; can be stopped and started again (fault tests)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        workdir: Path,
        env: dict[str, str] | None = None,
    ):
        self.name, self.argv, self.port, self.workdir, self.env = name, argv, port, workdir, env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=log, cwd=self.workdir, env=self.env
        )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.workdir / f"{self.name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{tail}")
            time.sleep(0.05)

    def ready(self) -> bool:
        return port_open(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Mosquitto(ServerProcess):
    """Mosquitto with the settings the platform ships (MOSQUITTO_POLICY), `settings` on top."""

    def __init__(self, workdir: Path, settings: Mapping[str, str] | None = None):
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        options = {**MOSQUITTO_POLICY, **(settings or {})}
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"
            f"persistence_location {workdir}/\n"
            "log_type error\nlog_type warning\n"
            + "".join(f"{option} {value}\n" for option, value in options.items())
        )
        super().__init__(
            "mosquitto", [require_binary("mosquitto"), "-c", str(config)], port, workdir
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class InfluxDB(ServerProcess):
    """InfluxDB 1.x; with `auth` (user, password), one admin account and every request logged,
    for the tests to look for credentials in the server's log too."""

    def __init__(self, workdir: Path, auth: tuple[str, str] | None = None):
        self.auth = auth
        self.admin_created = False
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "influxdb.conf"
        super().__init__(
            "influxd", [require_binary("influxd"), "-config", str(self.config)], free_port(),
            workdir,
        )  # fmt: skip

    def _write_config(self) -> None:
        """The config, with a backup (RPC) port free now: a restart keeps the HTTP port its
        clients know, while the RPC port it had may have been taken in the meantime."""
        auth, workdir = bool(self.auth), self.workdir
        self.config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = {str(auth).lower()}
[http]
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {str(auth).lower()}
  log-enabled = {str(auth).lower()}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "{"info" if auth else "warn"}"
"""
        )

    def start(self, timeout: float = 30) -> None:
        self._write_config()
        super().start(timeout)
        if self.auth and not self.admin_created:
            # The first account may be made without logging in; its password goes in the body.
            user, password = self.auth
            statement = f"CREATE USER {user} WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
            httpx.post(f"{self.url}/query", data={"q": statement}).raise_for_status()
            self.admin_created = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False


class VictoriaMetrics(ServerProcess):
    """Serves InfluxDB's v2 write API (`/api/v2/write`): a real peer for influxdb-client."""

    def __init__(self, workdir: Path):
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            require_binary("victoria-metrics"),
            f"-storageDataPath={workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ]
        super().__init__("victoria-metrics", argv, port, workdir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False
