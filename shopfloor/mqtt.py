"""Broker settings and the paho-mqtt client every component connects with.

A broker is named by one URL, `mqtt://[user:password@]host:port` or `mqtts://...` for TLS,
so the same setting works on the command line, in environment variables and in compose files.
The port is always written: a URL without one is refused, never quietly sent to 1883.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from shopfloor._paho import lean_mqtt5_decoding
from shopfloor._paho import network_thread as network_thread
from shopfloor._paho import read_ahead as read_ahead
from shopfloor.credentials import check_broker_password, hide
from shopfloor.messages import MAX_PAYLOAD_BYTES

log = logging.getLogger(__name__)

DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"
BROKER_URL_ENV = "SHOPFLOOR_BROKER_URL"  # how a supervisor hands a component its login

# How long a broker keeps a persistent session, and the messages queued for it, while its
# client is away: a weekend. The Mosquitto the platform ships forgets any session after this
# long (persistent_client_expiration), so a client asking for more would not get it.
SESSION_EXPIRY_S = 3 * 86400


# What Mosquitto keeps, how much of it and for how long: the demo's broker, the tests' and
# deploy/mosquitto/mosquitto.conf carry these same settings (a test holds them equal), and that
# file says what happens at each bound and where it is counted.
MOSQUITTO_POLICY = {
    "persistence": "true",
    "autosave_interval": "5",  # a SIGKILL loses what was queued since the last save
    "max_inflight_messages": "1000",
    "max_queued_messages": "500000",  # per client
    "max_queued_bytes": str(128 * 2**20),  # per client, payloads only
    "memory_limit": str(2**30),  # the whole broker's heap
    "max_packet_size": str(4 * MAX_PAYLOAD_BYTES),
    "persistent_client_expiration": f"{SESSION_EXPIRY_S // 3600}h",
}


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used."""


_USUAL_PORTS = {"mqtt": 1883, "mqtts": 8883}


def broker_address(url: str) -> tuple[str, int]:
    """The host and port of a broker URL. A URL without a port is refused with the fix: a
    port chosen silently may be the wrong broker, or the plain port of a TLS one, found late."""
    parts, shown = urlsplit(url), redacted(url)
    if parts.scheme not in _USUAL_PORTS or not parts.hostname:
        raise BrokerUrlError(f"broker URL {shown!r} is not mqtt://host:port or mqtts://host:port")
    try:
        port = parts.port
    except ValueError:  # not a number, or beyond 65535
        port = 0
    if port is None:
        usual = _USUAL_PORTS[parts.scheme]
        written = urlsplit(shown)
        fixed = written._replace(netloc=f"{written.netloc}:{usual}").geturl()
        raise BrokerUrlError(
            f"broker URL {shown!r} has no port: write {fixed} ({usual} is the usual "
            f"{parts.scheme}:// port) or the port the broker listens on"
        )
    if not port:
        raise BrokerUrlError(f"broker URL {shown!r}: the port is not a number from 1 to 65535")
    return parts.hostname, port


def check_broker_url(name: str, url: str | None) -> None:
    """Refuse a broker URL given as `name` that cannot be used or whose password is a
    placeholder of .env.example, in one line naming `name`, before anything starts."""
    if url:
        try:
            broker_address(url)
        except BrokerUrlError as exc:
            raise BrokerUrlError(f"{name}: {exc}") from None
    check_broker_password(name, url)


@dataclass(frozen=True)
class Presence:
    """A retained topic saying whether a client is connected: `online` is published on every
    connect, and the broker publishes `offline` (the last will) when the client vanishes."""

    topic: str
    online: bytes
    offline: bytes


@dataclass(frozen=True)
class Session:
    """A persistent MQTT 5 session: QoS 1 messages wait at the broker while the client is
    away, and the application acknowledges each one itself once it has done its job."""

    expiry_s: int = SESSION_EXPIRY_S
    receive_maximum: int = 1000  # unacknowledged messages the broker may send at once


def make_client(
    url: str,
    client_id: str,
    subscriptions: Sequence[tuple[str, int]] = (),
    clean_session: bool = True,
    presence: Presence | None = None,
    keepalive_s: int = 60,
    session: Session | None = None,
) -> mqtt.Client:
    """A paho client configured (not yet connected) for the broker at `url`.

    `subscriptions` (topic filter, QoS) are made again on every connect, so a broker restart
    never silently leaves a component deaf. MQTT 3.1.1 is used so that every broker the
    platform runs on, including the embedded demo broker, accepts it; a `session` asks for
    MQTT 5 with manual acknowledgements, its packets decoded with shopfloor._paho's
    LeanProperties. `mqtts://` verifies the broker against the system's certificate
    authorities, or the one in `?ca=/path/to/ca.pem`.
    """
    host, port = broker_address(url)
    parts = urlsplit(url)
    if session is None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
    else:
        lean_mqtt5_decoding()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
    if parts.username:
        password = unquote(parts.password or "")
        hide(password, parts.password)
        client.username_pw_set(unquote(parts.username), password)
    if parts.scheme == "mqtts":
        client.tls_set(ca_certs=parse_qs(parts.query).get("ca", [None])[0])
    # Back within a second or two of the broker's return, so health recovers as fast.
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    if presence:
        client.will_set(presence.topic, presence.offline, qos=1, retain=True)
    client.on_connect = functools.partial(
        _on_connect, subscriptions=list(subscriptions), presence=presence
    )
    if session is None:
        client.connect_async(host, port, keepalive=keepalive_s)
    else:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = session.expiry_s
        properties.ReceiveMaximum = session.receive_maximum
        client.connect_async(
            host, port, keepalive=keepalive_s, clean_start=False, properties=properties
        )
    return client


def _on_connect(
    client: mqtt.Client,
    userdata: object,
    flags: object,
    reason: ReasonCode,
    properties: object,
    subscriptions: list[tuple[str, int]],
    presence: Presence | None,
) -> None:
    if reason.is_failure:
        log.warning("broker refused the connection: %s", reason)
        return
    if presence:
        client.publish(presence.topic, presence.online, qos=1, retain=True)
    if subscriptions:
        client.subscribe(subscriptions)
    log.info("connected to the broker; subscribed to %d topic filters", len(subscriptions))


def redacted(url: str) -> str:
    """The broker URL without its password, for messages a user sees."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def wait_connected(client: mqtt.Client, url: str, timeout_s: float) -> None:
    """Block until a started client is connected; ConnectionError naming the broker if not."""
    deadline = time.monotonic() + timeout_s
    while not client.is_connected():
        if time.monotonic() > deadline:
            raise ConnectionError(f"cannot reach the broker at {redacted(url)}")
        time.sleep(0.02)


def close(client: mqtt.Client) -> None:
    """Disconnect and stop the client's network thread. paho's `loop_stop` reads the thread
    twice while the thread, ending after the disconnect, clears it: in between, `loop_stop`
    fails with AttributeError on a thread that has already ended, which is all it waits for."""
    client.disconnect()
    with contextlib.suppress(AttributeError):
        client.loop_stop()


def publish_once(
    url: str, topic: str, payload: bytes, timeout_s: float = 10.0, retain: bool = False
) -> None:
    """Connect, publish one message with QoS 1, wait for the broker's acknowledgement, leave.

    For commands from the CLI and the dashboard, and a replay's status; raises ConnectionError
    naming the broker when it cannot be reached or does not acknowledge in time.
    """
    client = make_client(url, f"shopfloor-once-{uuid.uuid4().hex[:12]}")
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout_s
        wait_connected(client, url, timeout_s)
        info = client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(max(deadline - time.monotonic(), 0.1))
        if not info.is_published():
            raise ConnectionError(f"the broker at {redacted(url)} did not acknowledge the message")
    finally:
        close(client)


def read_retained(url: str, topic: str, timeout_s: float = 1.5) -> bytes | None:
    """The message retained on `topic`, or None when there is none within `timeout_s`."""
    received: list[bytes] = []
    arrived = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        arrived.set()

    client = make_client(url, f"shopfloor-read-{uuid.uuid4().hex[:12]}", [(topic, 1)])
    client.on_message = on_message
    client.loop_start()
    try:
        arrived.wait(timeout_s)
    finally:
        close(client)
    return received[0] if received else None
