"""Trainee sandboxes in a running demo: for each plant file that `shopfloor replay --tenant`
leaves in the session's `tenants/` folder, a gateway and an analytics service of that tenant,
on the demo's broker and store, stopped with the demo."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from shopfloor.config import ConfigError
from shopfloor.plant import load_plant
from shopfloor.sandboxes import tenant_plants

Spawn = Callable[[list[str], Path], subprocess.Popen[bytes]]


class Sandboxes:
    """Starts the services of each new sandbox when polled; `processes` are theirs."""

    def __init__(
        self,
        session_dir: Path,
        broker_url: str,
        mqtt_version: str,
        spawn: Spawn,
        announce: Callable[[str], None],
    ):
        self.session_dir, self.broker_url, self.mqtt_version = session_dir, broker_url, mqtt_version
        self.spawn, self.announce = spawn, announce
        self.started: dict[str, list[subprocess.Popen[bytes]]] = {}

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [process for processes in self.started.values() for process in processes]

    def poll(self) -> None:
        """Start the services of every sandbox that has none yet; a bad plant file is named
        once and skipped."""
        for tenant, plant_file in tenant_plants(self.session_dir).items():
            if tenant in self.started:
                continue
            try:
                load_plant(plant_file)
            except ConfigError as exc:
                self.announce(f"trainee sandbox {tenant} not started: {exc}")
                self.started[tenant] = []
                continue
            self.started[tenant] = self._start(tenant, plant_file)
            self.announce(f"trainee sandbox {tenant}: gateway and analytics started")

    def _start(self, tenant: str, plant_file: Path) -> list[subprocess.Popen[bytes]]:
        shopfloor = [sys.executable, "-m", "launcher"]
        folder = plant_file.parent
        gateway = [
            *shopfloor, "gateway", "--plant", str(plant_file), "--broker", self.broker_url,
            "--mqtt-version", self.mqtt_version, "--http-port", "0",
            "--spill", str(folder / f"{tenant}-gateway-spill.db"),
        ]  # fmt: skip
        analytics = [*shopfloor, "analytics", "--plant", str(plant_file)]
        return [
            self.spawn(gateway, folder / f"{tenant}-gateway.log"),
            self.spawn(analytics, folder / f"{tenant}-analytics.log"),
        ]
