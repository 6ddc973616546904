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
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
import streamlit as st

from dashboard.i18n import N_, _, ngettext
from dashboard.kpis import MISSING
from dashboard.labels import KPI_HELP, age_text, number_text, time_text
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

if TYPE_CHECKING:
    from streamlit.elements.lib.column_types import ColumnConfig

REFRESH_S = 5.0
# Three status intervals of the agent's default 10 s: one lost status is no reason to worry.
STALE_AFTER_S = 30.0
CONNECT_TIMEOUT_S = 3.0
QUIET_S = 0.5  # the broker sends every retained message at once after the subscription
GATHER_CAP_S = 2.0

# Why an agent says it is degraded (edge.agent.EdgeAgent.causes), in words; another cause as
# the agent names it.
CAUSE_NAMES = {
    "receive_thread_dead": N_("reading thread stopped"),
    "broker_disconnected": N_("broker disconnected"),
    "forwarder_stalled": N_("forwarding stalled"),
    "buffer_failing": N_("disk buffer failing"),
    "sources_disconnected": N_("sources disconnected"),
}


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
    st.title(_("Edge devices"))
    st.caption(f"{plant.tenant.name} · {plant.site.name}")
    if not broker_url:
        st.info(_("Start the dashboard with --broker to see the edge devices reporting to it."))
        return
    live_edge_devices(plant, broker_url)


@st.fragment(run_every=REFRESH_S)
def live_edge_devices(plant: Plant, broker_url: str) -> None:
    try:
        fleet = read_edge_devices(broker_url, plant.tenant.id, plant.site.id)
    except (ConnectionError, BrokerUrlError) as exc:
        st.error(_("The edge devices cannot be read: {error}").format(error=exc))
        return
    now = datetime.now(UTC)
    if not fleet.devices:
        st.info(
            _("No edge device of {site} has reported to the broker yet.").format(
                site=f"{plant.tenant.id}/{plant.site.id}"
            )
        )
    else:
        _edge_table(fleet.devices, now)
        for note in lost_sources(plant, fleet.devices):
            st.warning(note)
    if fleet.undecodable:
        st.warning(
            ngettext(
                "{count} message on the edge topics could not be read.",
                "{count} messages on the edge topics could not be read.",
                fleet.undecodable,
            ).format(count=fleet.undecodable)
        )
    st.caption(
        _("Refreshed {time} ({zone}), every {interval}").format(
            time=time_text(now, plant),
            zone=plant.site.timezone,
            interval=number_text(REFRESH_S, "s", digits=0),
        )
    )


def lost_sources(plant: Plant, devices: list[EdgeDeviceRow]) -> list[str]:
    """A line per device that cannot reach some of its machines, naming them and since when
    (on the device's clock, in the site's zone)."""
    names = {machine.id: machine.name for _, machine in plant.machines()}
    return [
        _("Sources {sources} on {device}: {machines} ({zone}).").format(
            sources=device.sources,
            device=device.device,
            machines="; ".join(
                _("{machine} unreachable since {time}").format(
                    machine=names.get(machine, machine), time=time_text(since, plant)
                )
                for machine, since in device.lost
            ),
            zone=plant.site.timezone,
        )
        for device in devices
        if device.lost
    ]


# The table's columns, by key: (header, config). Widths in pixels (810 in all) fit the table
# beside the sidebar in a 1280-pixel window; columns left to size themselves by their headers
# pushed the last ones out of sight. Figures are text in the visitor's digits (1 234,5).
COLUMN_HEADERS = {
    "device": N_("Device"),
    "status": N_("Status"),
    "last_seen": N_("Last seen"),
    "queue": N_("Queue"),
    "queue_kb": N_("Queue kB"),
    "dropped": N_("Dropped"),
    "reconnects": N_("Reconnects"),
    "readings": N_("Readings/s"),
    "sources": N_("Sources"),
    "version": N_("Version"),
}


def _columns() -> dict[str, ColumnConfig]:
    """The columns' configuration by header, in the visitor's language."""
    text = st.column_config.TextColumn
    config = {
        "device": text(width=110),
        "status": text(width=65),
        "last_seen": text(width=115),
        "queue": text(width=70, help=KPI_HELP["queue"]),
        "queue_kb": text(width=75),
        "dropped": text(width=70, help=_("Messages dropped since the agent started: buffer full")),
        "reconnects": text(
            width=90, help=_("Reconnections to the broker / to the device's sources")
        ),
        "readings": text(width=80),
        "sources": text(width=70, help=KPI_HELP["sources"]),
        "version": text(width=65),
    }
    return {_(COLUMN_HEADERS[key]): column for key, column in config.items()}


def _count(value: float | None, digits: int = 0) -> str | None:
    return None if value is None else number_text(value, digits=digits)


def _edge_table(devices: list[EdgeDeviceRow], now: datetime) -> None:
    online, queued, dropped = st.columns(3)
    online.metric(_("Devices online"), f"{sum(d.online for d in devices)} / {len(devices)}")
    queued.metric(
        _("Queued messages"), number_text(sum(d.queue_depth or 0 for d in devices), digits=0)
    )
    dropped.metric(
        _("Dropped messages"), number_text(sum(d.dropped_total or 0 for d in devices), digits=0)
    )
    st.dataframe(
        [_table_row(d, now) for d in devices],
        hide_index=True,
        column_config=_columns(),
        placeholder=MISSING,  # the figures of a device that has sent no status
    )
    degraded = [f"{d.device} ({', '.join(map(cause_text, d.causes))})" for d in devices if d.causes]
    if degraded:
        st.warning(_("Degraded: {devices}.").format(devices="; ".join(degraded)))
    stale = [d.device for d in devices if d.stale(now)]
    if stale:
        st.warning(
            _(
                "No status for over {interval} from: {devices} "
                "(hung, or cut off from the broker before it noticed)."
            ).format(interval=number_text(STALE_AFTER_S, "s", digits=0), devices=", ".join(stale))
        )


def cause_text(cause: str) -> str:
    """Why a device is degraded, in words: broker_disconnected -> broker disconnected."""
    known = CAUSE_NAMES.get(cause)
    return _(known) if known else cause


def status_text(d: EdgeDeviceRow) -> str:
    if not d.online:
        return _("offline")
    return _("degraded") if d.causes else _("online")


def _table_row(d: EdgeDeviceRow, now: datetime) -> dict[str, object]:
    """Plain text throughout: a status emoji is a box in a browser without an emoji font."""
    row: dict[str, object] = {
        "device": d.device,
        "status": status_text(d),
        "last_seen": _last_seen(d, now),
        "queue": _count(d.queue_depth),
        "queue_kb": None if d.queue_bytes is None else _count(d.queue_bytes / 1024, digits=1),
        "dropped": _count(d.dropped_total),
        "reconnects": None
        if d.broker_reconnects is None
        else f"{d.broker_reconnects}/{d.source_reconnects}",
        "readings": _count(d.readings_per_s, digits=1),
        "sources": d.sources,
        "version": d.version,
    }
    return {_(COLUMN_HEADERS[key]): value for key, value in row.items()}


def _last_seen(device: EdgeDeviceRow, now: datetime) -> str:
    age = device.age_s(now)
    if age is None:  # a last will without any status before it
        return _("no status")
    if device.stale(now):
        return _("{age} ago (stale)").format(age=age_text(age))
    return _("{age} ago").format(age=age_text(age))
