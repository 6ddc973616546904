"""Every use of paho-mqtt's private internals, in one place: tests/test_library_adapters.py fails
naming the one a new paho no longer has, before a deployment finds out.

Two are used: the module `paho.mqtt._packet`, whose `Properties` is swapped for LeanProperties
when MQTT 5 sessions are decoded, and `Client._thread`, the network thread health checks watch.
"""

from __future__ import annotations

import threading
from importlib.metadata import version
from typing import ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["PAHO", "LeanProperties", "lean_mqtt5_decoding", "network_thread", "unmet"]

PAHO = f"paho-mqtt {version('paho-mqtt')}"
_FIELDS = {"packetType", "types", "names", "properties"}  # what a fresh Properties holds


class LeanProperties(Properties):
    """paho's MQTT 5 properties without two costs it pays for every packet it decodes: it
    builds its lookup tables again, and it clears every property name before unpacking into
    an object that has none yet. In a flood of small messages that is about 30 of the 100 µs
    paho spends on each PUBLISH, which makes MQTT 5 dearer than 3.1.1 to receive. Here the
    tables are shared (paho only reads them) and an empty property list returns at once; any
    other list is unpacked by paho itself."""

    tables: ClassVar[dict[str, object]] = {}

    def __init__(self, packet_type: int) -> None:
        self.__dict__.update(self.tables, packetType=packet_type)

    def unpack(self, buffer: bytes | bytearray) -> tuple[Properties, int]:
        if buffer[:1] == b"\x00":
            return self, 1
        unpacked: tuple[Properties, int] = super().unpack(buffer)  # type: ignore[no-untyped-call]
        return unpacked


def unmet() -> list[str]:
    """What LeanProperties assumes of paho and the installed one does not hold, each naming
    paho's version and the attribute; empty when all holds."""
    problems = []
    found = getattr(_packet, "Properties", None)
    if found is not Properties and found is not LeanProperties:
        problems.append(
            f"{PAHO}: paho.mqtt._packet.Properties is {found!r}, "
            "not paho.mqtt.properties.Properties"
        )
    fields = set(Properties(PacketTypes.PUBLISH).__dict__)  # type: ignore[no-untyped-call]
    if fields != _FIELDS:
        problems.append(
            f"{PAHO}: a new paho.mqtt.properties.Properties holds {sorted(fields)}, "
            f"not {sorted(_FIELDS)}"
        )
    return problems


def lean_mqtt5_decoding() -> None:
    """Have paho decode packets with LeanProperties, as long as its internals are the ones
    this was written against (see `unmet`); otherwise paho is left as it is."""
    if unmet() or _packet.Properties is LeanProperties:  # type: ignore[attr-defined]
        return
    template = Properties(PacketTypes.PUBLISH).__dict__  # type: ignore[no-untyped-call]
    LeanProperties.tables = {
        name: table for name, table in template.items() if name != "packetType"
    }
    _packet.Properties = LeanProperties  # type: ignore[attr-defined]


def network_thread(client: mqtt.Client) -> threading.Thread:
    """The thread `loop_start` runs the client's network loop in, so that a health check can
    see it die. paho keeps it private; a paho that no longer does fails here, by name."""
    thread = getattr(client, "_thread", None)
    if not isinstance(thread, threading.Thread):
        raise RuntimeError(f"{PAHO} no longer keeps its network thread in Client._thread")
    return thread
