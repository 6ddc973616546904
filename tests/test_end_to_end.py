"""The whole slice, real at every hop: simulator (OPC UA, MQTT) -> edge -> Mosquitto -> gateway
-> store -> dashboard in headless Chromium. Runs once per store backend."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from asyncua import ua

from shopfloor.messages import Event
from shopfloor.plant import load_plant
from shopfloor.store import Scope, Store, StoreSettings, open_store
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.opcua_fixtures import ConnectClient, eventually
from tests.servers import (
    InfluxDB,
    Mosquitto,
    free_port,
    machine_on_free_ports,
    port_open,
    require_binary,
)


@dataclass
class Pipeline:
    plant_file: Path
    store_settings: StoreSettings
    store: Store
    broker_url: str
    workdir: Path


def plant_on_free_ports(directory: Path) -> Path:
    """The example plant with every OPC UA endpoint moved to a free port."""
    data = yaml.safe_load(EXAMPLE_PLANT.read_text())
    for area in data["site"]["areas"]:
        for line in area["lines"]:
            for machine in line["machines"]:
                machine_on_free_ports(machine)
    path = directory / "plant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shopfloor(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    output = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "launcher", *args],
        stdout=output,
        stderr=output,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def gateway_options(workdir: Path) -> list[str]:
    """A gateway of this test's own: its session, spill file and a free API port; simulated
    clocks above x1 run ahead of this one, so far-future timestamps are let through."""
    return [
        "--client-id", f"gw-{uuid.uuid4().hex[:8]}", "--spill", str(workdir / "gateway-spill.db"),
        "--http-port", "0", "--max-future", str(7 * 86400), "--session-expiry", "120",
    ]  # fmt: skip


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll until `condition` holds; return how long it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - start


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"{process.args!r} did not stop within 15 s of SIGTERM")


@pytest.fixture(scope="module", params=["embedded", "influxdb"])
def pipeline(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mosquitto: Mosquitto,
) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp(f"pipeline-{request.param}")
    if request.param == "embedded":
        settings = StoreSettings(url=f"sqlite:{workdir / 'store.db'}")
    else:
        influxdb: InfluxDB = request.getfixturevalue("influxdb")
        settings = StoreSettings(url=influxdb.url, database="e2e")
    plant_file = plant_on_free_ports(workdir)
    common = ["--plant", str(plant_file), "--broker", mosquitto.url]
    processes = [
        shopfloor("simulate", *common, log=workdir / "simulate.log"),
        shopfloor("edge", "run", *common, "--buffer", str(workdir / "edge.db"), log=workdir / "edge.log"),
        shopfloor("gateway", *common, "--store-url", settings.url, *gateway_options(workdir),
                  "--store-database", settings.database, log=workdir / "gateway.log"),
    ]  # fmt: skip
    store = open_store(settings)
    try:
        yield Pipeline(plant_file, settings, store, mosquitto.url, workdir)
    finally:
        stop_all(processes)
        store.close()


def signals_of(store: Store, asset: str) -> set[str]:
    return {p.signal for p in store.latest(Scope("polimer")) if p.asset.asset == asset}


def has_signals(store: Store, asset: str, signals: set[str]) -> bool:
    return signals_of(store, asset) == signals


def test_every_machine_and_sensor_reaches_the_store(pipeline: Pipeline) -> None:
    plant = load_plant(pipeline.plant_file)
    expected = {path.asset: {s.id for s in a.signals} for path, a in plant.machines()}
    expected |= {path.asset: {s.id for s in a.signals} for path, a in plant.sensors()}
    for asset, signals in expected.items():
        has_all = functools.partial(has_signals, pipeline.store, asset, signals)
        wait_until(has_all, 60, f"all signals of {asset}")
    latest = {(p.asset.asset, p.signal): p for p in pipeline.store.latest(Scope("polimer"))}
    assert latest[("imm-01", "state")].value in {"running", "idle", "unplanned_stop"}
    assert latest[("cnc-01", "power")].unit == "kW"
    assert 15 < float(latest[("env-01", "temperature")].value) < 30


@pytest.mark.asyncio
async def test_value_changed_on_opcua_node_is_stored_within_5_s(
    pipeline: Pipeline, opcua_client: ConnectClient
) -> None:
    plant = load_plant(pipeline.plant_file)
    path, machine = next((p, m) for p, m in plant.machines() if m.id == "cnc-01")
    assert machine.opcua is not None
    await eventually(
        lambda: "spindle_load" in signals_of(pipeline.store, "cnc-01"), 60, "first data"
    )
    client = await opcua_client(machine.opcua.endpoint)
    namespace = await client.get_namespace_index(machine.opcua.namespace)
    variable = client.get_node(f"ns={namespace};s=cnc-01.spindle_load")
    marker = 4242.25
    started = datetime.now(UTC)
    await variable.write_value(ua.DataValue(ua.Variant(marker, ua.VariantType.Double)))

    def marker_stored() -> bool:
        history = pipeline.store.history(
            path, "spindle_load", started - timedelta(seconds=5), started + timedelta(minutes=1)
        )
        return marker in [p.value for p in history]

    await eventually(marker_stored, 5, "the written value in the store")


def test_a_breakdown_command_stops_the_machine_at_once_with_its_reason(
    pipeline: Pipeline,
) -> None:
    """`shopfloor control breakdown` on the control topic: the state, the reason (a text
    signal) and the event travel simulator -> edge -> broker -> gateway -> store."""
    from dashboard.shop_floor import read_shop_floor

    plant = load_plant(pipeline.plant_file)
    wait_until(lambda: "state" in signals_of(pipeline.store, "imm-01"), 60, "first data")
    control = subprocess.run(
        [sys.executable, "-m", "launcher", "control", "breakdown", "imm-01",
         "--reason", "heater_fault", "--plant", str(pipeline.plant_file),
         "--broker", pipeline.broker_url],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert control.returncode == 0, control.stderr
    sent = time.monotonic()

    def press() -> tuple[object, str | None]:
        view = next(
            m for m in read_shop_floor(plant, pipeline.store).machines if m.path.asset == "imm-01"
        )
        return view.value("state"), view.stop_reason

    def breakdown_events() -> list[Event]:
        floor = read_shop_floor(plant, pipeline.store)
        return [
            e.event for e in floor.events if e.asset == "imm-01" and e.event.name == "breakdown"
        ]

    wait_until(lambda: press() == ("unplanned_stop", "heater_fault"), 15, "the stop and reason")
    assert time.monotonic() - sent < 10
    wait_until(lambda: bool(breakdown_events()), 15, "the breakdown event")
    breakdown = breakdown_events()[0]
    assert breakdown.end is None
    assert breakdown.note == "reason=heater_fault"


@pytest.mark.browser
def test_dashboard_shows_the_three_machines(pipeline: Pipeline, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = require_binary("chromium")
    port = free_port()
    dashboard = shopfloor(
        "dashboard", "--plant", str(pipeline.plant_file), "--port", str(port),
        "--store-url", pipeline.store_settings.url,
        "--store-database", pipeline.store_settings.database,
        log=pipeline.workdir / "dashboard.log",
    )  # fmt: skip
    try:
        wait_until(lambda: signals_of(pipeline.store, "pack-01") != set(), 60, "data")

        def dashboard_listening() -> bool:
            assert dashboard.poll() is None, (pipeline.workdir / "dashboard.log").read_text()
            return port_open(port)

        wait_until(dashboard_listening, 90, "the dashboard to listen")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}", timeout=60_000)
            for name in ("Injection press 1", "Trimming centre", "Packaging station"):
                page.get_by_text(name).first.wait_for(timeout=60_000)  # also in the events table
            page.get_by_text("Parts").first.wait_for(timeout=30_000)
            page.get_by_text("updated").first.wait_for(timeout=30_000)
            artifacts = ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            shot = artifacts / f"dashboard-{pipeline.workdir.name}.png"
            page.screenshot(path=str(shot), full_page=True)
            text = page.inner_text("body")
            browser.close()
        assert shot.stat().st_size > 10_000
        for name in ("Injection press 1", "Trimming centre", "Packaging station"):
            assert name in text
        assert "Polimer Moulding" in text
        assert "temperature" in text
    finally:
        stop_all([dashboard])
