"""The edge-devices page reads each agent's retained state and status back from a real broker."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from dashboard.edge_devices import EdgeDeviceRow, EdgeFleet, lost_sources, read_edge_devices
from shopfloor.messages import (
    EdgeState,
    EdgeStatus,
    edge_state_topic,
    edge_status_topic,
    encode_edge,
)
from shopfloor.plant import Plant
from tests.servers import Mosquitto, free_port
from tests.test_dashboard_driving import artifact, open_page, publish_retained, start_dashboard
from tests.test_end_to_end import shopfloor, stop_all, wait_until

STARTED = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def status(device: str, ts: datetime, causes: tuple[str, ...] = (), **figures: object) -> bytes:
    defaults: dict[str, float | bool] = dict(
        uptime_s=0, readings_total=0, readings_per_s=0, forwarded_total=0, queue_depth=0,
        queue_bytes=0, dropped_total=0, lost_total=0, rejected_total=0, broker_connected=True,
        broker_reconnects=0, sources_connected=0, sources_total=0, source_reconnects=0,
    )  # fmt: skip
    return encode_edge(
        EdgeStatus.model_validate(
            {"device": device, "ts": ts, "causes": causes, **defaults, **figures}
        )
    )


def tiny_plant(directory: Path, tenant: str) -> Path:
    """A plant with one sensor kit and no OPC UA machine, under a tenant no other test uses."""
    sensor = {"id": "env-01", "mqtt_topic": f"sensors/{tenant}/env-01", "signals": [{"id": "t"}]}
    zone = {"id": "hall", "sensors": [sensor]}
    plant = {
        "version": 1,
        "tenant": {"id": tenant, "name": "Edge test SME"},
        "site": {"id": "lab", "name": "Lab", "areas": [{"id": "hall", "zones": [zone]}]},
        "products": [{"id": "cap"}],
    }
    path = directory / "plant.yaml"
    path.write_text(yaml.safe_dump(plant))
    return path


def device_row(fleet: EdgeFleet, device: str) -> EdgeDeviceRow | None:
    return next((row for row in fleet.devices if row.device == device), None)


def test_rows_carry_each_devices_state_and_latest_figures(mosquitto: Mosquitto) -> None:
    tenant, site = f"t{uuid.uuid4().hex[:8]}", "lab"
    seen = STARTED + timedelta(hours=2)
    birth = EdgeState(device="pi-1", online=True, started=STARTED, version="1.4.0")
    figures = dict(
        queue_depth=1200, queue_bytes=350_000, dropped_total=7, broker_reconnects=3,
        source_reconnects=2, readings_per_s=41.5, sources_connected=2, sources_total=3,
        sources_lost={"cnc-01": STARTED},
    )  # fmt: skip
    publish_retained(
        mosquitto.url,
        {
            edge_state_topic(tenant, site, "pi-1"): encode_edge(birth),
            edge_status_topic(tenant, site, "pi-1"): status(
                "pi-1", seen, ("sources_disconnected",), **figures
            ),
            # what the broker publishes for pi-2 after it vanished: the agent's last will
            edge_state_topic(tenant, site, "pi-2"): b'{"v": 1, "device": "pi-2", "online": false}',
            edge_status_topic(tenant, site, "pi-2"): status("pi-2", STARTED, queue_depth=5),
            edge_status_topic(tenant, site, "pi-3"): b'{"device": "pi-3", "ts": "yesterday"}',
            edge_state_topic(tenant, "other-site", "pi-9"): encode_edge(birth),
        },
    )
    fleet = read_edge_devices(mosquitto.url, tenant, site)
    assert fleet.undecodable == 1
    assert fleet.devices == [
        EdgeDeviceRow(
            device="pi-1", online=True, last_seen=seen, queue_depth=1200, queue_bytes=350_000,
            dropped_total=7, broker_reconnects=3, source_reconnects=2, readings_per_s=41.5,
            sources="2/3", version="1.4.0", causes=("sources_disconnected",),
            lost=(("cnc-01", STARTED),),
        ),
        EdgeDeviceRow(
            device="pi-2", online=False, last_seen=STARTED, queue_depth=5, queue_bytes=0,
            dropped_total=0, broker_reconnects=0, source_reconnects=0, readings_per_s=0,
            sources="0/0",
        ),
    ]  # fmt: skip
    pi_1, pi_2 = fleet.devices
    assert not pi_1.stale(seen + timedelta(seconds=30))
    assert pi_1.stale(seen + timedelta(seconds=31))
    assert not pi_2.stale(seen)  # offline says more than stale


def test_a_lost_source_is_named_with_since_when_in_site_time(example_plant: Plant) -> None:
    since = datetime(2026, 11, 22, 9, 5, 9, tzinfo=UTC)
    lost = EdgeDeviceRow(
        device="pi-moulding-1", online=True, last_seen=since, sources="2/3",
        lost=(("cnc-01", since),),
    )  # fmt: skip
    healthy = EdgeDeviceRow(device="pi-2", online=True, last_seen=since, sources="1/1")
    assert lost_sources(example_plant, [lost, healthy]) == [
        "Sources 2/3 on pi-moulding-1: Trimming centre unreachable since 12:05:09 (Europe/Minsk)."
    ]


def test_a_site_without_edge_devices_has_no_rows(mosquitto: Mosquitto) -> None:
    assert read_edge_devices(mosquitto.url, f"t{uuid.uuid4().hex[:8]}", "lab") == EdgeFleet([], 0)


def test_an_unreachable_broker_is_named() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match=url):
        read_edge_devices(url, "polimer", "brest")


@pytest.mark.parametrize(
    "stop",
    [
        # The kernel closes a killed agent's connection: the broker sends its last will at once.
        signal.SIGKILL,
        # A frozen agent (or a Pi whose power or cable is cut) goes silent instead: the broker
        # sends the last will once 1.5 keep-alive periods (the agent's is 10 s) pass in silence.
        signal.SIGSTOP,
    ],
    ids=["killed", "frozen"],
)
def test_a_vanished_agent_turns_offline_by_its_last_will(
    mosquitto: Mosquitto, tmp_path: Path, stop: signal.Signals
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    agent = shopfloor(
        "edge", "run", "--plant", str(tiny_plant(tmp_path, tenant)), "--broker", mosquitto.url,
        "--buffer", str(tmp_path / "edge.db"), "--metrics-port", "0", "--device", "test-pi",
        log=tmp_path / "edge.log",
    )  # fmt: skip

    def test_pi() -> EdgeDeviceRow | None:
        return device_row(read_edge_devices(mosquitto.url, tenant, "lab"), "test-pi")

    def reported(online: bool) -> bool:
        assert agent.poll() is None or not online, (tmp_path / "edge.log").read_text()
        row = test_pi()
        return row is not None and row.online is online and row.sources is not None

    try:
        wait_until(lambda: reported(online=True), 30, "test-pi's birth and first status")
        row = test_pi()
        assert row is not None
        assert (row.sources, row.queue_depth, row.dropped_total) == ("0/0", 0, 0)
        agent.send_signal(stop)
        wait_until(lambda: reported(online=False), 45, "the broker's last will for test-pi")
    finally:
        agent.kill()
        agent.wait(10)


@pytest.mark.browser
def test_page_shows_each_device_online_or_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    publish_retained(
        mosquitto.url,
        {
            edge_state_topic(tenant, "lab", "pi-up"): encode_edge(
                EdgeState(device="pi-up", online=True, started=now)
            ),
            edge_status_topic(tenant, "lab", "pi-up"): status("pi-up", now, queue_depth=42),
            edge_state_topic(tenant, "lab", "pi-sick"): encode_edge(
                EdgeState(device="pi-sick", online=True, started=now)
            ),
            edge_status_topic(tenant, "lab", "pi-sick"): status(
                "pi-sick", now, ("broker_disconnected", "forwarder_stalled")
            ),
            edge_state_topic(tenant, "lab", "pi-gone"): encode_edge(
                EdgeState(device="pi-gone", online=False)
            ),
        },
    )
    plant = tiny_plant(tmp_path, tenant)
    dashboard, port = start_dashboard(
        plant, f"sqlite:{tmp_path / 'store.db'}", mosquitto.url, tmp_path / "dashboard.log"
    )
    try:
        with open_page(f"http://127.0.0.1:{port}/edge", artifact("edge-devices.png")) as page:
            # The table is drawn on a canvas; its cells are also in a hidden accessible grid.
            page.get_by_text("pi-gone").wait_for(state="attached", timeout=60_000)
            cells = [
                row.locator("td").all_text_contents()
                for row in page.locator("[data-testid='stDataFrame'] tbody tr").all()
            ]
            text = page.inner_text("body")
            page.set_viewport_size({"width": 1280, "height": 800})  # a laptop's window
            page.wait_for_timeout(1000)
            scroller = page.locator("[data-testid='stDataFrame'] .dvn-scroller")
            overflow = scroller.evaluate("grid => grid.scrollWidth - grid.clientWidth")
        assert overflow <= 0, f"the table is {overflow} px wider than the page"
        assert "2 / 3" in text
        assert [row[:2] for row in cells] == [
            ["pi-gone", "offline"],
            ["pi-sick", "degraded"],
            ["pi-up", "online"],
        ]
        assert cells[0][2] == "no status" and cells[2][2].endswith(" sec ago")
        assert cells[2][3] == "42"
        assert "Degraded: pi-sick (broker disconnected, forwarding stalled)." in text
    finally:
        stop_all([dashboard])


@pytest.mark.browser
def test_page_names_an_unreachable_broker(tmp_path: Path) -> None:
    broker = f"mqtt://127.0.0.1:{free_port()}"
    plant = tiny_plant(tmp_path, "nobody")
    dashboard, port = start_dashboard(
        plant, f"sqlite:{tmp_path / 'store.db'}", broker, tmp_path / "dashboard.log"
    )
    try:
        with open_page(f"http://127.0.0.1:{port}/edge", artifact("edge-no-broker.png")) as page:
            page.get_by_text(f"cannot reach the broker at {broker}").wait_for(timeout=60_000)
            assert page.locator("[data-testid='stException']").count() == 0
    finally:
        stop_all([dashboard])
