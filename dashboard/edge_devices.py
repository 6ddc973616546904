"""The edge-devices page: each edge agent of the site, from its retained health messages.

Every agent keeps two retained messages on the broker (see shopfloor.messages): its state
(birth, or the broker's last will) and its latest status figures. Reading them back needs no
store and no request to the devices, so the page works even while a device is unreachable.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import streamlit as st

from dashboard.kpis import MISSING
from dashboard.labels import KPI_HELP, time_text
from shopfloor.messages import (
    EdgeState,
    EdgeStatus,
    MessageError,
    decode_edge_state,
    decode_edge_status,
    edge_subscription,
)
from shopfloor.mqtt import BrokerUrlError, close, make_client, wait_connected
from shopfloor.plant import Plant

REFRESH_S = 5.0
# Three status intervals of the agent's default 10 s: one lost status is no reason to worry.
STALE_AFTER_S = 30.0
CONNECT_TIMEOUT_S = 3.0
QUIET_S = 0.5  # the broker sends every retained message at once after the subscription
GATHER_CAP_S = 2.0


@dataclass(frozen=True)
class EdgeDeviceRow:
    """One edge device as the page shows it; the figures are None until its first status."""

    device: str
    online: bool
    last_seen: datetime | None
    queue_depth: int | None = None
    queue_bytes: int | None = None
    dropped_total: int | None = None
    broker_reconnects: int | None = None
    source_reconnects: int | None = None
    readings_per_s: float | None = None
    sources: str | None = None  # "connected/total"
    version: str = ""
    causes: tuple[str, ...] = ()  # why the device says it is degraded
    lost: tuple[tuple[str, datetime], ...] = ()  # machines it cannot reach, and since when

    def age_s(self, now: datetime) -> float | None:
        return None if self.last_seen is None else (now - self.last_seen).total_seconds()

    def stale(self, now: datetime) -> bool:
        """Online by its state, but silent for longer than a few status intervals."""
        age = self.age_s(now)
        return self.online and age is not None and age > STALE_AFTER_S


@dataclass(frozen=True)
class EdgeFleet:
    devices: list[EdgeDeviceRow]
    undecodable: int  # retained messages under the edge topics that are not the contract's


def read_edge_devices(broker_url: str, tenant: str, site: str) -> EdgeFleet:
    """Every edge device of a site, from the retained messages on the broker.

    Raises ConnectionError naming the broker when it cannot be reached, BrokerUrlError (a
    ValueError) when the URL is not a broker URL.
    """
    return _fleet(_gather(broker_url, edge_subscription(tenant, site)))


def _gather(url: str, topic_filter: str) -> dict[str, bytes]:
    """The latest payload of every topic matching the filter: the retained ones arrive right
    after the subscription, so stop once the broker has been quiet for a moment."""
    payloads: dict[str, bytes] = {}
    last_activity = time.monotonic()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal last_activity
        payloads[msg.topic] = bytes(msg.payload)
        last_activity = time.monotonic()

    def on_subscribe(
        client: mqtt.Client, userdata: object, mid: int, codes: object, properties: object
    ) -> None:
        nonlocal last_activity
        last_activity = time.monotonic()

    client = make_client(url, f"shopfloor-edge-view-{uuid.uuid4().hex[:12]}", [(topic_filter, 1)])
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.loop_start()
    try:
        wait_connected(client, url, CONNECT_TIMEOUT_S)
        cap = time.monotonic() + GATHER_CAP_S
        last_activity = time.monotonic()
        while time.monotonic() < min(last_activity + QUIET_S, cap):
            time.sleep(0.05)
    finally:
        close(client)
    return payloads


def _fleet(payloads: Mapping[str, bytes]) -> EdgeFleet:
    """Rows from the edge messages by topic (`<tenant>/<site>/_edge/<device>/<kind>`)."""
    states: dict[str, EdgeState] = {}
    statuses: dict[str, EdgeStatus] = {}
    undecodable = 0
    for topic, payload in payloads.items():
        device, kind = topic.split("/")[-2:]
        try:
            if kind == "state":
                states[device] = decode_edge_state(payload)
            elif kind == "status":
                statuses[device] = decode_edge_status(payload)
            else:
                undecodable += 1
        except MessageError:
            undecodable += 1
    rows = [_row(d, states.get(d), statuses.get(d)) for d in sorted(states | statuses)]
    return EdgeFleet(rows, undecodable)


def _row(device: str, state: EdgeState | None, status: EdgeStatus | None) -> EdgeDeviceRow:
    # A restarted agent's birth is newer than the status its previous run left behind.
    seen = [ts for ts in (state.started if state else None, status.ts if status else None) if ts]
    row = EdgeDeviceRow(
        device=device,
        online=state is not None and state.online,
        last_seen=max(seen) if seen else None,
        version=state.version if state else "",
    )
    if status is None:
        return row
    return replace(
        row,
        queue_depth=status.queue_depth,
        queue_bytes=status.queue_bytes,
        dropped_total=status.dropped_total,
        broker_reconnects=status.broker_reconnects,
        source_reconnects=status.source_reconnects,
        readings_per_s=status.readings_per_s,
        sources=f"{status.sources_connected}/{status.sources_total}",
        causes=tuple(status.causes) if row.online else (),
        lost=tuple(sorted(status.sources_lost.items())) if row.online else (),
    )


def edge_devices_page(plant: Plant, broker_url: str | None) -> None:
    st.title("Edge devices")
    st.caption(f"{plant.tenant.name} · {plant.site.name}")
    if not broker_url:
        st.info("Start the dashboard with --broker to see the edge devices reporting to it.")
        return
    live_edge_devices(plant, broker_url)


@st.fragment(run_every=REFRESH_S)
def live_edge_devices(plant: Plant, broker_url: str) -> None:
    try:
        fleet = read_edge_devices(broker_url, plant.tenant.id, plant.site.id)
    except (ConnectionError, BrokerUrlError) as exc:
        st.error(f"The edge devices cannot be read: {exc}")
        return
    now = datetime.now(UTC)
    if not fleet.devices:
        st.info(
            f"No edge device of {plant.tenant.id}/{plant.site.id} has reported to the broker yet."
        )
    else:
        _edge_table(fleet.devices, now)
        for note in lost_sources(plant, fleet.devices):
            st.warning(note)
    if fleet.undecodable:
        st.warning(f"{fleet.undecodable} message(s) on the edge topics could not be read.")
    st.caption(
        f"Refreshed {time_text(now, plant)} ({plant.site.timezone}), every {REFRESH_S:.0f} s"
    )


def lost_sources(plant: Plant, devices: list[EdgeDeviceRow]) -> list[str]:
    """A line per device that cannot reach some of its machines, naming them and since when
    (on the device's clock, in the site's zone)."""
    names = {machine.id: machine.name for _, machine in plant.machines()}
    return [
        f"Sources {device.sources} on {device.device}: "
        + "; ".join(
            f"{names.get(machine, machine)} unreachable since {time_text(since, plant)}"
            for machine, since in device.lost
        )
        + f" ({plant.site.timezone})."
        for device in devices
        if device.lost
    ]


# Widths in pixels (810 in all) that fit the table beside the sidebar in a 1280-pixel window;
# columns left to size themselves by their headers pushed the last ones out of sight.
COLUMNS = {
    "Device": st.column_config.TextColumn(width=110),
    "Status": st.column_config.TextColumn(width=65),
    "Last seen": st.column_config.TextColumn(width=115),
    "Queue": st.column_config.NumberColumn(width=70, format="%d", help=KPI_HELP["queue"]),
    "Queue kB": st.column_config.NumberColumn(width=75, format="%.1f"),
    "Dropped": st.column_config.NumberColumn(
        width=70, format="%d", help="Messages dropped since the agent started: buffer full"
    ),
    "Reconnects": st.column_config.TextColumn(
        width=90, help="Reconnections to the broker / to the device's sources"
    ),
    "Readings/s": st.column_config.NumberColumn(width=80, format="%.1f"),
    "Sources": st.column_config.TextColumn(width=70, help=KPI_HELP["sources"]),
    "Version": st.column_config.TextColumn(width=65),
}


def _edge_table(devices: list[EdgeDeviceRow], now: datetime) -> None:
    online, queued, dropped = st.columns(3)
    online.metric("Devices online", f"{sum(d.online for d in devices)} / {len(devices)}")
    queued.metric("Queued messages", f"{sum(d.queue_depth or 0 for d in devices):,}")
    dropped.metric("Dropped messages", f"{sum(d.dropped_total or 0 for d in devices):,}")
    st.dataframe(
        [_table_row(d, now) for d in devices],
        hide_index=True,
        column_config=COLUMNS,
        placeholder=MISSING,  # the figures of a device that has sent no status
    )
    degraded = [f"{d.device} ({', '.join(d.causes)})" for d in devices if d.causes]
    if degraded:
        st.warning(f"Degraded: {'; '.join(degraded)}.")
    stale = [d.device for d in devices if d.stale(now)]
    if stale:
        st.warning(
            f"No status for over {STALE_AFTER_S:.0f} s from: {', '.join(stale)} "
            "(hung, or cut off from the broker before it noticed)."
        )


def _table_row(d: EdgeDeviceRow, now: datetime) -> dict[str, object]:
    """Plain text throughout: a status emoji is a box in a browser without an emoji font."""
    return {
        "Device": d.device,
        "Status": ("degraded" if d.causes else "online") if d.online else "offline",
        "Last seen": _last_seen(d, now),
        "Queue": d.queue_depth,
        "Queue kB": None if d.queue_bytes is None else d.queue_bytes / 1024,
        "Dropped": d.dropped_total,
        "Reconnects": None
        if d.broker_reconnects is None
        else f"{d.broker_reconnects}/{d.source_reconnects}",
        "Readings/s": d.readings_per_s,
        "Sources": d.sources,
        "Version": d.version,
    }


def _last_seen(device: EdgeDeviceRow, now: datetime) -> str:
    age = device.age_s(now)
    if age is None:  # a last will without any status before it
        return "no status"
    text = f"{max(age, 0):.0f} s ago"
    return f"{text} (stale)" if device.stale(now) else text
