"""The dashboard drives a live simulator, and a replayed shift drives the dashboard.

Real at every hop: simulator (OPC UA) -> edge -> Mosquitto -> gateway -> embedded store ->
dashboard in headless Chromium, and the dashboard's controls -> Mosquitto -> simulator.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright
from streamlit.testing.v1 import AppTest

from shopfloor.messages import (
    AssetPath,
    SetSpeed,
    SimulatorStatus,
    control_topic,
    decode_command,
    status_topic,
)
from shopfloor.mqtt import make_client, wait_connected
from shopfloor.plant import load_plant
from shopfloor.store import Scope, Store, StoreSettings, open_store
from tests.conftest import ROOT
from tests.servers import Mosquitto, free_port, port_open, require_binary
from tests.test_end_to_end import (
    gateway_options,
    plant_on_free_ports,
    shopfloor,
    stop_all,
    wait_until,
)


def scenario_for(plant: Path, directory: Path, **changes: object) -> Path:
    scenario = yaml.safe_load((ROOT / "examples" / "scenarios" / "moulding.yaml").read_text())
    scenario.update(plant=str(plant), faults=[], planned_stops=[], **changes)
    path = directory / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


@contextlib.contextmanager
def open_page(url: str, screenshot: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=require_binary("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url, timeout=60_000)
        try:
            yield page
        finally:
            screenshot_settled(page, screenshot)
            browser.close()


def start_dashboard(
    plant: Path, store_url: str, broker: str, log: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = shopfloor(
        "dashboard", "--plant", str(plant), "--port", str(port), "--store-url", store_url,
        "--broker", broker, log=log, env=env,
    )  # fmt: skip

    def listening() -> bool:
        assert process.poll() is None, log.read_text()
        return port_open(port)

    wait_until(listening, 90, "the dashboard")
    return process, port


def screenshot_settled(page: Page, path: Path, timeout_ms: float = 5_000) -> None:
    """A screenshot once Streamlit has drawn the page (no placeholder left), or after
    `timeout_ms` as it is: a screenshot is evidence, never the reason a test fails."""
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function(
            "!document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout_ms
        )
    page.screenshot(path=str(path), full_page=True)


def artifact(name: str) -> Path:
    folder = ROOT / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder / name


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox the way a user does: open, type, Enter."""
    labelled = page.get_by_text(label, exact=True)
    page.locator("[data-testid='stSelectbox']").filter(has=labelled).click()
    page.get_by_role("option").first.wait_for(timeout=10_000)
    page.keyboard.type(option)
    page.keyboard.press("Enter")


TRIMMER = AssetPath("polimer", "brest", "moulding", "line-1", "cnc-01")


def vibration(store: Store, since: datetime) -> list[float]:
    history = store.history(TRIMMER, "vibration", since, datetime.now(UTC) + timedelta(days=2))
    return [float(p.value) for p in history]


def test_fault_injected_from_the_dashboard_is_labelled_and_changes_the_signals(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plant = plant_on_free_ports(tmp_path)
    scenario = scenario_for(plant, tmp_path)
    store_url = f"sqlite:{tmp_path / 'store.db'}"
    common = ["--plant", str(plant), "--broker", mosquitto.url]
    processes = [
        shopfloor("simulate", "--scenario", str(scenario), "--broker", mosquitto.url,
                  "--speed", "60", log=tmp_path / "simulate.log"),
        shopfloor("edge", "run", *common, "--buffer", str(tmp_path / "edge.db"), log=tmp_path / "edge.log"),
        shopfloor("gateway", *common, "--store-url", store_url, *gateway_options(tmp_path),
                  log=tmp_path / "gateway.log"),
    ]  # fmt: skip
    store = open_store(StoreSettings(url=store_url))
    try:
        dashboard, port = start_dashboard(plant, store_url, mosquitto.url, tmp_path / "dash.log")
        processes.append(dashboard)
        wait_until(
            lambda: len(vibration(store, datetime(2000, 1, 1, tzinfo=UTC))) > 20,
            120,
            "baseline",
        )
        started = datetime.now(UTC) - timedelta(days=1)
        baseline = statistics.median(vibration(store, started))
        shot = artifact("dashboard-controls.png")
        with open_page(f"http://127.0.0.1:{port}/controls", shot) as page:
            page.get_by_text("Running: Injection moulding SME").wait_for(timeout=30_000)
            choose(page, "Machine", "Trimming centre")
            choose(page, "Fault", "bearing wear")
            page.get_by_role("button", name="Inject fault").click()
            page.get_by_text("bearing wear sent to Trimming centre").wait_for(timeout=30_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("bearing wear").wait_for(timeout=30_000)
            assert "ongoing" in page.inner_text("body")
        events = [p for p in store.latest(Scope("polimer")) if p.signal == "event.bearing_wear"]
        assert [p.asset.asset for p in events] == ["cnc-01"]
        fault_start = events[0].ts
        # 20 simulated minutes of wear at x60: vibration ends well above its baseline.
        wait_until(
            lambda: max(vibration(store, fault_start) or [0]) > 2.5 * baseline,
            40,
            "vibration rising under bearing wear",
        )
    finally:
        stop_all(processes)
        store.close()


def test_a_recorded_shift_replayed_at_x60_drives_the_dashboard(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plant = plant_on_free_ports(tmp_path)
    scenario = scenario_for(plant, tmp_path, duration="15m")
    recording = tmp_path / "shift.jsonl"
    fast = subprocess.run(
        [sys.executable, "-m", "launcher", "simulate", "--scenario", str(scenario), "--fast",
         "--output", str(recording)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert fast.returncode == 0, fast.stderr
    store_url = f"sqlite:{tmp_path / 'store.db'}"
    gateway = shopfloor("gateway", "--plant", str(plant), "--broker", mosquitto.url,
                        "--store-url", store_url, *gateway_options(tmp_path),
                        log=tmp_path / "gateway.log")  # fmt: skip
    dashboard, port = start_dashboard(plant, store_url, mosquitto.url, tmp_path / "dash.log")
    store = open_store(StoreSettings(url=store_url))
    try:
        replay_started = datetime.now(UTC)
        replay = shopfloor("replay", str(recording), "--speed", "60", "--broker", mosquitto.url,
                           log=tmp_path / "replay.log")  # fmt: skip
        shot = artifact("dashboard-replay.png")
        with open_page(f"http://127.0.0.1:{port}", shot) as page:
            for name in ("Injection press 1", "Trimming centre", "Packaging station"):
                page.get_by_text(name).first.wait_for(timeout=30_000)  # also in the events table
            page.get_by_text("running").first.wait_for(timeout=30_000)
            assert replay.wait(60) == 0, (tmp_path / "replay.log").read_text()
            page.wait_for_timeout(3000)
            text = page.inner_text("body")
        assert "no data yet" not in text.split("Environment")[0]
        plant_model = load_plant(plant)
        for path, _ in plant_model.machines():
            parts = [p for p in store.latest(Scope.of(path)) if p.signal == "part_count"]
            assert parts and float(parts[0].value) > 10  # 15 minutes of production
            # Timestamps moved to the replay: the recorded shift starts now.
            assert parts[0].ts >= replay_started - timedelta(seconds=5)
    finally:
        stop_all([gateway, dashboard])
        store.close()


# --- the demo controls page against a stand-in simulator, rendered by Streamlit's AppTest -----


def plant_of_tenant(directory: Path, tenant: str) -> Path:
    """The example plant under a tenant no other test uses, so its retained status is its own."""
    data = yaml.safe_load((ROOT / "examples" / "plant.yaml").read_text())
    data["tenant"]["id"] = tenant
    path = directory / "plant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextlib.contextmanager
def announcing(url: str, plant: Path, status: SimulatorStatus) -> Iterator[None]:
    """A stand-in simulator: keeps `status` retained, and announces it again, with the new speed,
    after each command, as simulators.live does."""
    model = load_plant(plant)
    tenant, site = model.tenant.id, model.site.id
    client = make_client(
        url, f"test-sim-{uuid.uuid4().hex[:8]}", [(control_topic(tenant, site), 1)]
    )
    current = [status]

    def announce() -> None:
        client.publish(
            status_topic(tenant, site), current[0].model_dump_json().encode(), qos=1, retain=True
        )

    def on_command(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        command = decode_command(msg.payload)
        if isinstance(command, SetSpeed):
            current[0] = current[0].model_copy(update={"speed": command.speed})
        announce()

    client.on_message = on_command
    client.loop_start()
    try:
        wait_connected(client, url, 10)
        announce()
        yield
    finally:
        client.disconnect()
        client.loop_stop()


def publish_retained(url: str, messages: dict[str, bytes]) -> None:
    """Keep each payload retained on its topic; an empty one clears the topic."""
    client = make_client(url, f"test-retain-{uuid.uuid4().hex[:8]}")
    client.loop_start()
    try:
        wait_connected(client, url, 10)
        for topic, payload in messages.items():
            client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def render_controls(plant_file: str, broker_url: str) -> None:
    from dashboard.controls import controls_page
    from shopfloor.plant import load_plant

    controls_page(load_plant(plant_file), broker_url)


def controls_app(plant: Path, broker_url: str) -> AppTest:
    return AppTest.from_function(render_controls, args=(str(plant), broker_url), default_timeout=30)


def texts(elements: Iterable[Any]) -> str:
    return " | ".join(str(e.value) for e in elements)


MOULDING = SimulatorStatus(
    scenario="Injection moulding SME", available=["moulding", "moulding-bad-day"], speed=60.0,
    started=datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
)  # fmt: skip


def test_controls_start_at_the_simulators_speed_and_keep_the_scenarios_after_setting_it(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plant = plant_of_tenant(tmp_path, f"t{uuid.uuid4().hex[:8]}")
    with announcing(mosquitto.url, plant, MOULDING):
        app = controls_app(plant, mosquitto.url).run()
        assert not app.exception, app.exception
        assert app.select_slider[0].value == 60
        assert "Running: Injection moulding SME, at x60" in texts(app.caption)
        [scenario] = [s for s in app.selectbox if s.label == "Scenario"]
        assert scenario.options == ["moulding", "moulding-bad-day"]
        app.select_slider[0].set_value(600).run()
        [set_speed] = [b for b in app.button if b.label == "Set speed"]
        set_speed.click().run()
        assert not app.exception, app.exception
        assert texts(app.success) == "speed set to x600"
        # The status line shows the simulator's answer to the command, not the state before it.
        assert "at x600" in texts(app.caption)
        assert "Load scenario" in [b.label for b in app.button]
        app.run()  # a reload: the slider starts where the simulator is
        assert app.select_slider[0].value == 600
        assert "Load scenario" in [b.label for b in app.button]


def test_a_status_read_that_comes_back_empty_keeps_the_last_one_seen(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plant = plant_of_tenant(tmp_path, f"t{uuid.uuid4().hex[:8]}")
    with announcing(mosquitto.url, plant, MOULDING):
        app = controls_app(plant, mosquitto.url).run()
    model = load_plant(plant)  # what a reader sees when the status does not arrive in time
    publish_retained(mosquitto.url, {status_topic(model.tenant.id, model.site.id): b""})
    app.run()
    assert not app.exception, app.exception
    assert not app.warning
    assert "as last seen" in texts(app.caption)
    assert app.select_slider[0].value == 60
    assert "Load scenario" in [b.label for b in app.button]


def test_without_a_simulator_the_scenario_section_says_why_it_is_empty(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plant = plant_of_tenant(tmp_path, f"t{uuid.uuid4().hex[:8]}")
    app = controls_app(plant, mosquitto.url).run()
    assert not app.exception, app.exception
    assert "No simulator is running" in texts(app.warning)
    assert "Scenario" in [h.value for h in app.subheader]
    assert "No scenario to load" in texts(app.caption)
    assert app.select_slider[0].value == 1


def test_a_scenario_of_another_plant_is_offered_and_handed_to_the_demo_supervisor(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The supervisor hears the request on the control topic and starts a session with it."""
    from launcher.demo import DemoSource, ScenarioSwitch
    from launcher.session import Session

    plant = plant_of_tenant(tmp_path, f"t{uuid.uuid4().hex[:8]}")
    status = MOULDING.model_copy(update={"other_plants": ["machining", "packaging"]})
    scenarios = ROOT / "examples" / "scenarios"
    session = Session(tmp_path, plant, scenarios / "moulding.yaml", MOULDING.started)
    with ScenarioSwitch(mosquitto.url, session) as switch, announcing(mosquitto.url, plant, status):
        wait_until(switch.client.is_connected, 10, "the supervisor's listener")
        app = controls_app(plant, mosquitto.url).run()
        [scenario] = [s for s in app.selectbox if s.label == "Scenario"]
        assert scenario.options == [
            "moulding", "moulding-bad-day",
            "machining (another plant: the demo restarts with it)",
            "packaging (another plant: the demo restarts with it)",
        ]  # fmt: skip
        scenario.set_value("machining").run()
        [load] = [b for b in app.button if b.label == "Load scenario"]
        load.click().run()
        assert not app.exception, app.exception
        assert "runs another plant: the demo restarts with it" in texts(app.success)
        requested = switch.requested.get(timeout=10)
    assert requested == DemoSource(
        (ROOT / "examples" / "machining-plant.yaml").resolve(), (scenarios / "machining.yaml")
    )
