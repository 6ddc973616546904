"""Broker settings and the paho-mqtt client every component connects with.

A broker is named by one URL, `mqtt://[user:password@]host[:port]` or `mqtts://...` for TLS,
so the same setting works on the command line, in environment variables and in compose files.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used."""


def make_client(url: str, client_id: str, clean_session: bool = True) -> mqtt.Client:
    """A paho client configured (not yet connected) for the broker at `url`.

    MQTT 3.1.1 is used so that every broker the platform runs on, including the embedded demo
    broker, accepts it.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise BrokerUrlError(f"broker URL {url!r} is not mqtt://host:port or mqtts://host:port")
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
    )
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set()
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    client.connect_async(parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883))
    return client


def broker_address(url: str) -> tuple[str, int]:
    """Host and port of a broker URL, for logs and readiness checks."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (8883 if parts.scheme == "mqtts" else 1883)
