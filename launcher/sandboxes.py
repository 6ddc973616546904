"""Trainee sandboxes in a running demo: for each plant file that `shopfloor replay --tenant`
leaves in the session's `tenants/` folder, broker accounts for that tenant (the replay logs in
as its simulator), a gateway and an analytics service of that tenant, on the demo's broker and
store, stopped with the demo."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from launcher.broker import BrokerConfigError, Role
from shopfloor.config import ConfigError
from shopfloor.mqtt import BROKER_URL_ENV
from shopfloor.plant import Plant, load_plant
from shopfloor.sandboxes import tenant_plants

Spawn = Callable[[list[str], Path, Mapping[str, str]], subprocess.Popen[bytes]]


class SandboxBroker(Protocol):
    def add_sandboxes(self, plants: list[Plant]) -> None: ...

    def url_for(self, tenant: str, role: Role) -> str: ...


class Sandboxes:
    """Starts the services of each new sandbox when polled; `processes` are theirs."""

    def __init__(
        self,
        session_dir: Path,
        broker: SandboxBroker,
        mqtt_version: str,
        spawn: Spawn,
        announce: Callable[[str], None],
    ):
        self.session_dir, self.broker, self.mqtt_version = session_dir, broker, mqtt_version
        self.spawn, self.announce = spawn, announce
        self.started: dict[str, list[subprocess.Popen[bytes]]] = {}

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [process for processes in self.started.values() for process in processes]

    def poll(self) -> None:
        """Start the services of every sandbox that has none yet, its accounts first; a bad
        plant file is named once and skipped."""
        new: dict[str, tuple[Path, Plant]] = {}
        for tenant, plant_file in tenant_plants(self.session_dir).items():
            if tenant in self.started:
                continue
            try:
                new[tenant] = (plant_file, load_plant(plant_file))
            except ConfigError as exc:
                self.announce(f"trainee sandbox {tenant} not started: {exc}")
                self.started[tenant] = []
        if not new:
            return
        try:
            self.broker.add_sandboxes([plant for _, plant in new.values()])
        except BrokerConfigError as exc:
            self.announce(f"trainee sandboxes {', '.join(new)} not started: {exc}")
            self.started.update({tenant: [] for tenant in new})
            return
        for tenant, (plant_file, _) in new.items():
            self.started[tenant] = self._start(tenant, plant_file)
            self.announce(f"trainee sandbox {tenant}: gateway and analytics started")

    def _start(self, tenant: str, plant_file: Path) -> list[subprocess.Popen[bytes]]:
        shopfloor = [sys.executable, "-m", "launcher"]
        folder = plant_file.parent
        gateway = [
            *shopfloor, "gateway", "--plant", str(plant_file),
            "--mqtt-version", self.mqtt_version, "--http-port", "0",
            "--spill", str(folder / f"{tenant}-gateway-spill.db"),
        ]  # fmt: skip
        analytics = [*shopfloor, "analytics", "--plant", str(plant_file)]
        login = {BROKER_URL_ENV: self.broker.url_for(tenant, Role.GATEWAY)}
        return [
            self.spawn(gateway, folder / f"{tenant}-gateway.log", login),
            self.spawn(analytics, folder / f"{tenant}-analytics.log", {}),
        ]
