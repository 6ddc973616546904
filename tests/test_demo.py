"""`shopfloor demo` as a user runs it: it comes up, data flows, and Ctrl-C leaves no orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shopfloor.store import Scope, StoreSettings, open_store
from tests.conftest import ROOT
from tests.servers import free_port, require_binary
from tests.test_end_to_end import plant_on_free_ports, wait_until


def session_members(session_id: int) -> list[int]:
    """Every live process of a session (the demo runs in its own)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def command_lines(session_id: int) -> list[str]:
    """The command lines of a session's processes, as `ps` shows them to every user."""
    found = []
    for pid in session_members(session_id):
        with contextlib.suppress(OSError):
            found.append((Path("/proc") / str(pid) / "cmdline").read_text().replace("\0", " "))
    return found


def assert_session_ends(session_id: int, timeout_s: float) -> None:
    """Wait for every process of the session to exit; name the ones that do not."""
    deadline = time.monotonic() + timeout_s
    while (members := session_members(session_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    commands = command_lines(session_id) if members else []
    assert not commands, f"still running after {timeout_s} s: {commands}"


@dataclass
class Demo:
    process: subprocess.Popen[str]
    data_dir: Path
    dashboard_port: int
    output: list[str]

    def wait_for_line(self, prefix: str, timeout_s: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            self.output.append(line)
            if line.startswith(prefix):
                return line
            if not line and self.process.poll() is not None:
                break
        raise AssertionError(f"no {prefix!r} line; demo printed {self.output}")

    def machines_with_data(self) -> set[str]:
        store = open_store(StoreSettings(url=f"sqlite:{self.data_dir / 'store.db'}"))
        try:
            return {p.asset.asset for p in store.latest(Scope("polimer"))}
        finally:
            store.close()


def start_demo(tmp_path: Path, broker: str) -> Demo:
    port = free_port()
    data_dir = tmp_path / "data"
    argv = [
        sys.executable, "-m", "launcher", "demo", "--plant", str(plant_on_free_ports(tmp_path)),
        "--data-dir", str(data_dir), "--dashboard-port", str(port), "--broker-server", broker,
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    return Demo(process, data_dir, port, [])


@pytest.fixture(params=["mosquitto", "embedded"])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Demo]:
    if request.param == "mosquitto":
        require_binary("mosquitto")
    running = start_demo(tmp_path, request.param)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
        running.process.wait()


def test_demo_runs_the_shop_floor_and_ctrl_c_stops_every_process(demo: Demo) -> None:
    broker_line = demo.wait_for_line("broker:", 60)
    assert "store: sqlite:" in broker_line
    api_line = demo.wait_for_line("API:", 10)
    api_url, _, token_note = api_line.partition("/docs  ")
    token_file = demo.data_dir / "api-token"
    assert token_note.strip() == f"(bearer token in {token_file})"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 16
    url_line = demo.wait_for_line("dashboard:", 120)
    assert f"http://127.0.0.1:{demo.dashboard_port}" in url_line
    wait_until(
        lambda: {"imm-01", "cnc-01", "pack-01", "env-01"} <= demo.machines_with_data(),
        60,
        "data from every machine",
    )
    assert len(session_members(demo.process.pid)) >= 6  # supervisor and its children
    # The gateway got the token (from its environment): the API answers with it, not without.
    plant_url = api_url.removeprefix("API: ") + "/api/v1/plant"
    assert httpx.get(plant_url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(plant_url).status_code == 401
    commands = command_lines(demo.process.pid)
    assert any(" gateway " in command for command in commands), commands
    assert not [command for command in commands if token in command]
    os.killpg(demo.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert demo.process.wait(30) == 0
    assert_session_ends(demo.process.pid, 10)
    logs = sorted(demo.data_dir.glob("*.log"))
    assert {log.name for log in logs} >= {"gateway.log", "edge.log", "simulate.log"}
    assert not [log.name for log in logs if token in log.read_text(errors="replace")]
    assert not [line for line in demo.output if token in line]


def test_killing_the_supervisor_takes_its_children_along(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, "embedded")
    try:
        demo.wait_for_line("dashboard:", 120)
        children = [p for p in session_members(demo.process.pid) if p != demo.process.pid]
        assert len(children) >= 5
        demo.process.kill()
        demo.process.wait()
        assert_session_ends(demo.process.pid, 30)
    finally:
        if session_members(demo.process.pid):
            os.killpg(demo.process.pid, signal.SIGKILL)
