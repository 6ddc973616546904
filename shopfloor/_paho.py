"""Every use of paho-mqtt's private internals, in one place: tests/test_library_adapters.py fails
naming the one a new paho no longer has, before a deployment finds out.

Three are used: the module `paho.mqtt._packet`, whose `Properties` is swapped for LeanProperties
when MQTT 5 sessions are decoded, `Client._thread`, the network thread health checks watch, and
`Client._create_socket`, wrapped by `read_ahead` so that the network loop says when it has read
everything the broker sent.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = [
    "PAHO",
    "LeanProperties",
    "ReadAheadSocket",
    "lean_mqtt5_decoding",
    "network_thread",
    "read_ahead",
    "unmet",
]

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
    if not callable(getattr(mqtt.Client, "_create_socket", None)):
        problems.append(f"{PAHO}: paho.mqtt.client.Client._create_socket is not a method")
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


class ReadAheadSocket:
    """A connected socket that paho reads through. paho takes a packet in three reads or more
    (its type, its length a byte at a time, its body) and waits in select() before each
    packet: a flood of small messages costs four system calls a message. Here one read takes
    all the kernel holds, `pending()` tells paho's loop that packets are buffered (as an SSL
    socket does), and `on_idle` is called from the network loop whenever it has read
    everything the broker has sent so far and is about to wait for more."""

    CHUNK = 256 * 1024

    def __init__(self, inner: Any, on_idle: Callable[[], None]):
        self.inner, self.on_idle = inner, on_idle
        self._buffer = memoryview(b"")
        self._closed = False  # the broker closed the connection: the next recv says so

    def recv(self, size: int) -> bytes:
        if not self._buffer and not self._fill():
            return b""
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(taken)

    def _fill(self) -> bool:
        """Read what the kernel holds; False at the end of the connection. Raises what the
        socket raises, BlockingIOError (or ssl.SSLWantReadError) when there is nothing."""
        if self._closed:
            return False
        data = self.inner.recv(self.CHUNK)
        self._buffer, self._closed = memoryview(data), not data
        return bool(data)

    def pending(self) -> int:
        """Bytes to read without waiting (paho asks before it waits in select); when there
        are none, the broker has gone quiet: `on_idle` is called."""
        if self._buffer or self._closed:
            return len(self._buffer) or 1
        try:
            if self._fill():
                return len(self._buffer)
        except (BlockingIOError, ssl.SSLWantReadError):
            self.on_idle()
            return 0
        except OSError:
            return 1  # paho's own read meets the error again and handles it
        return 1  # closed: paho's read finds the end

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def read_ahead(client: mqtt.Client, on_idle: Callable[[], None]) -> None:
    """Have `client` read each connection it makes through a ReadAheadSocket calling
    `on_idle`; a paho without `Client._create_socket` (see `unmet`) is left as it is."""
    create = getattr(client, "_create_socket", None)
    if not callable(create):
        return

    def create_socket() -> ReadAheadSocket:
        sock: socket.socket = create()
        return ReadAheadSocket(sock, on_idle)

    client._create_socket = create_socket  # type: ignore[method-assign]
