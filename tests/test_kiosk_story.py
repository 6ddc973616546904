"""The kiosk mode and the Demo story page, in headless Chromium against a real dashboard and
Mosquitto: large type, no sidebar, pages in turn with the kiosk kept; the story's buttons send
their commands to the simulator's control topic."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from playwright.sync_api import Page, expect

from dashboard.kiosk import DEFAULT_ROTATE_S, Kiosk, kiosk_from
from dashboard.story import story_steps
from shopfloor.messages import (
    Action,
    FaultKind,
    InjectFault,
    SetSpeed,
    control_topic,
    decode_command,
)
from shopfloor.mqtt import make_client, wait_connected
from shopfloor.plant import load_plant
from tests.conftest import ROOT
from tests.servers import Mosquitto
from tests.test_dashboard_driving import artifact, open_page, plant_of_tenant, start_dashboard
from tests.test_end_to_end import stop_all, wait_until


def test_the_url_sets_the_kiosk_and_a_bad_interval_is_named() -> None:
    assert kiosk_from({}) == (None, None)
    assert kiosk_from({"kiosk": "1"}) == (Kiosk(DEFAULT_ROTATE_S), None)
    assert kiosk_from({"kiosk": "1", "rotate": "12"}) == (Kiosk(12), None)
    kiosk, problem = kiosk_from({"kiosk": "1", "rotate": "soon"})
    assert kiosk == Kiosk(DEFAULT_ROTATE_S)
    assert problem is not None and problem.startswith("rotate=soon: give the seconds")
    assert Kiosk(12).query_params() == {"kiosk": "1", "rotate": "12"}


def test_the_story_in_the_app_is_the_one_in_the_docs() -> None:
    doc = (ROOT / "docs" / "demo-story.md").read_text()
    headings = re.findall(r"^### \d+\. (.+?) \((\d+) min\)$", doc, re.MULTILINE)
    steps = story_steps(None)
    assert headings == [(s.title, str(s.minutes)) for s in steps]
    assert sum(s.minutes for s in steps) == 20


@pytest.fixture
def commands(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[Path, list[Action]]]:
    """A plant of its own tenant, and the commands published on its control topic."""
    plant = plant_of_tenant(tmp_path, f"t{uuid.uuid4().hex[:8]}")
    model = load_plant(plant)
    received: list[Action] = []
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            received.append(decode_command(msg.payload))

    topic = control_topic(model.tenant.id, model.site.id)
    client = make_client(mosquitto.url, f"test-story-{uuid.uuid4().hex[:8]}", [(topic, 1)])
    client.on_message = on_message
    client.loop_start()
    try:
        wait_connected(client, mosquitto.url, 10)
        yield plant, received
    finally:
        client.disconnect()
        client.loop_stop()


def watch_console(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_kiosk_rotates_its_pages_in_large_type_and_the_story_sends_its_commands(
    mosquitto: Mosquitto, tmp_path: Path, commands: tuple[Path, list[Action]]
) -> None:
    plant, received = commands
    store_url = f"sqlite:{tmp_path / 'store.db'}"
    dashboard, port = start_dashboard(plant, store_url, mosquitto.url, tmp_path / "dash.log")
    base = f"http://127.0.0.1:{port}"
    try:
        with open_page(f"{base}/?kiosk=1&rotate=5", artifact("kiosk.png")) as page:
            errors = watch_console(page)
            page.get_by_role("heading", name=re.compile("Polimer")).wait_for(timeout=30_000)
            # The style arrives with the page's first elements, not always before its title.
            page.wait_for_function(
                "getComputedStyle(document.documentElement).fontSize === '26px'", timeout=10_000
            )
            expect(page.get_by_test_id("stSidebar")).to_be_hidden()
            expect(page.get_by_test_id("stToolbar")).to_be_hidden()
            page.wait_for_url(f"{base}/oee?kiosk=1&rotate=5&lang=en", timeout=20_000)
            page.get_by_role("heading", name="OEE").wait_for(timeout=10_000)
            # Nothing a visitor could click: choosers, help icons, table toolbars.
            page.wait_for_timeout(1_000)  # the page's script runs on after its title
            for control in ("stSelectbox", "stTooltipIcon", "stElementToolbar"):
                for element in page.get_by_test_id(control).all():
                    expect(element).to_be_hidden()
            page.wait_for_url(f"{base}/anomalies?kiosk=1&rotate=5&lang=en", timeout=20_000)
            assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "26px"
            expect(page.get_by_test_id("stSidebar")).to_be_hidden()
            assert not errors
        # Opened from the sidebar: a page's own URL typed in makes Streamlit's frontend probe
        # for its server under that path first (404s in the console).
        with open_page(base, artifact("story.png")) as page:
            errors = watch_console(page)
            page.get_by_test_id("stSidebar").get_by_role("link", name="Demo story").click()
            page.get_by_role("heading", name="Demo story").wait_for(timeout=30_000)
            page.get_by_role("button", name=re.compile("Inject bearing wear on Trimming")).click()
            page.get_by_text("Sent: Inject bearing wear").wait_for(timeout=15_000)
            page.get_by_role("button", name="Back to x1").click()
            page.get_by_text("Sent: Back to x1").wait_for(timeout=15_000)
            wait_until(lambda: len(received) == 3, 10, "the story's three commands")
            assert received == [
                InjectFault(asset="cnc-01", fault=FaultKind.BEARING_WEAR, duration_s=1800),
                SetSpeed(speed=10),
                SetSpeed(speed=1),
            ]
            page.get_by_role("link", name="Open Anomalies").click()
            page.wait_for_url(
                re.compile(rf"{re.escape(base)}/anomalies(\?lang=en)?$"), timeout=15_000
            )
            assert not errors
    finally:
        stop_all([dashboard])
