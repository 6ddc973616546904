""" "Breakdown now" and waiting faults on the Demo controls page: against a stand-in simulator
(Streamlit's AppTest) and, in headless Chromium, against a live simulator."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

import paho.mqtt.client as mqtt
import pytest
from playwright.sync_api import expect

from dashboard.oee import stopped_now
from dashboard.shop_floor import read_shop_floor
from shopfloor.messages import (
    Action,
    Breakdown,
    FaultKind,
    MessageKind,
    PendingFault,
    control_topic,
    decode_command,
    decode_events,
    subscription,
)
from shopfloor.mqtt import make_client, wait_connected
from shopfloor.plant import Plant, load_plant
from shopfloor.states import BREAKDOWN_REASONS
from shopfloor.store import Point, Store
from tests.servers import Mosquitto
from tests.test_dashboard_driving import (
    MOULDING,
    announcing,
    artifact,
    choose,
    controls_app,
    open_page,
    plant_of_tenant,
    scenario_for,
    start_dashboard,
    texts,
)
from tests.test_end_to_end import plant_on_free_ports, shopfloor, stop_all, wait_until

T = TypeVar("T")


def test_a_stopped_machine_shows_its_reason_and_a_running_one_none(
    example_plant: Plant, store: Store
) -> None:
    now = datetime(2026, 11, 16, 9, tzinfo=UTC)
    press, trimmer, packer = (path for path, _ in example_plant.machines())
    store.write(
        [
            Point(press, "state", now, "unplanned_stop"),
            Point(press, "stop_reason", now, "heater_fault"),
            Point(trimmer, "state", now, "running"),
            Point(trimmer, "stop_reason", now - timedelta(minutes=5), "chip_jam"),  # repaired
            Point(packer, "state", now, "planned_stop"),
            Point(packer, "stop_reason", now, "lunch"),
        ]
    )
    views = {view.path.asset: view for view in read_shop_floor(example_plant, store).machines}
    assert [views[m].stop_reason for m in ("imm-01", "cnc-01", "pack-01")] == [
        "heater_fault",
        None,
        "lunch",
    ]
    names = ["Injection press 1", "Trimming centre"]
    assert stopped_now(example_plant, store, names) == [
        "Injection press 1: Stopped (breakdown), heater fault"
    ]


class Heard(Generic[T]):
    """What arrives on one MQTT topic filter, decoded."""

    def __init__(
        self, url: str, topic: str, decode: Callable[[bytes | bytearray], list[T]]
    ) -> None:
        self.items: list[T] = []
        self.lock = threading.Lock()
        self.decode = decode
        self.client = make_client(url, f"test-heard-{uuid.uuid4().hex[:8]}", [(topic, 1)])
        self.client.on_message = self._on_message
        self.client.loop_start()
        wait_connected(self.client, url, 10)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        decoded = self.decode(msg.payload)
        with self.lock:
            self.items += decoded

    def seen(self) -> list[T]:
        with self.lock:
            return list(self.items)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def plant(tmp_path: Path) -> Path:
    return plant_of_tenant(tmp_path, f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def commands(mosquitto: Mosquitto, plant: Path) -> Iterator[Heard[Action]]:
    model = load_plant(plant)
    topic = control_topic(model.tenant.id, model.site.id)
    heard = Heard(mosquitto.url, topic, lambda payload: [decode_command(payload)])
    yield heard
    heard.close()


def test_breakdown_now_offers_the_announced_reasons_and_sends_the_command(
    mosquitto: Mosquitto, plant: Path, commands: Heard[Action]
) -> None:
    status = MOULDING.model_copy(
        update={
            "stop_reasons": {"imm-01": ["mould_jam", "heater_fault", *BREAKDOWN_REASONS]},
            "pending": [PendingFault(asset="cnc-01", fault=FaultKind.TOOL_WEAR, waits_for="lunch")],
        }
    )
    with announcing(mosquitto.url, plant, status):
        app = controls_app(plant, mosquitto.url).run()
        assert not app.exception, app.exception
        [reason] = [s for s in app.selectbox if s.label == "Stop reason"]
        assert reason.options[:3] == ["mould jam", "heater fault", "mechanical"]
        assert "tool wear on Trimming centre waits for the stop 'lunch' to end" in texts(app.info)
        reason.set_value("heater_fault").run()
        [button] = [b for b in app.button if b.label == "Breakdown now"]
        button.click().run()
        assert not app.exception, app.exception
        assert texts(app.success) == "Injection press 1 broken down: heater fault"
    expected: Action = Breakdown(asset="imm-01", reason="heater_fault", duration_s=900)
    wait_until(lambda: expected in commands.seen(), 10, "the breakdown command")


def test_without_an_announcement_the_common_reasons_are_offered(
    mosquitto: Mosquitto, plant: Path
) -> None:
    app = controls_app(plant, mosquitto.url).run()
    [reason] = [s for s in app.selectbox if s.label == "Stop reason"]
    assert reason.options == [r.replace("_", " ") for r in BREAKDOWN_REASONS]


@pytest.mark.browser
def test_breakdown_now_from_the_browser_stops_the_live_machine_with_its_reason(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plant = plant_on_free_ports(tmp_path)
    scenario = scenario_for(plant, tmp_path)
    events = Heard(mosquitto.url, subscription("polimer", MessageKind.EVENT), decode_events)
    simulator = shopfloor(
        "simulate", "--scenario", str(scenario), "--broker", mosquitto.url, "--speed", "60",
        log=tmp_path / "simulate.log",
    )  # fmt: skip
    processes = [simulator]
    try:
        store_url = f"sqlite:{tmp_path / 'store.db'}"
        dashboard, port = start_dashboard(plant, store_url, mosquitto.url, tmp_path / "dash.log")
        processes.append(dashboard)
        with open_page(f"http://127.0.0.1:{port}/controls", artifact("breakdown.png")) as page:
            page.get_by_text("Running: Injection moulding SME").wait_for(timeout=30_000)
            choose(page, "Machine to break down", "Trimming centre")
            reason = page.get_by_role("combobox", name="Stop reason")
            expect(reason).to_have_value("tool break")  # the trimming centre's reasons
            choose(page, "Stop reason", "chip jam")
            expect(reason).to_have_value("chip jam")
            page.get_by_role("button", name="Breakdown now").click()
            page.get_by_text("Trimming centre broken down: chip jam").wait_for(timeout=30_000)
        wait_until(
            lambda: any(
                e.name == "breakdown" and e.note == "reason=chip_jam" for e in events.seen()
            ),
            10,
            "the breakdown event",
        )
    finally:
        stop_all(processes)
        events.close()
