"""The private internals of paho-mqtt and asyncua that shopfloor._paho and shopfloor._asyncua
rely on: a release that changes them fails here, naming the library, its version and the
attribute, rather than in a deployment."""

from __future__ import annotations

import re
from importlib.metadata import version

import paho.mqtt.client as mqtt
import pytest
from asyncua.common.subscription import Subscription
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shopfloor import _asyncua, _paho
from shopfloor.mqtt import close, make_client, wait_connected
from tests.servers import Mosquitto


def test_paho_holds_what_lean_properties_rely_on() -> None:
    assert _paho.unmet() == []


def test_lean_properties_unpack_as_paho_does() -> None:
    _paho.lean_mqtt5_decoding()
    sent = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    sent.MessageExpiryInterval = 30
    sent.UserProperty = [("line", "press-1")]
    packed = sent.pack()  # type: ignore[no-untyped-call]
    lean = _paho.LeanProperties(PacketTypes.PUBLISH).unpack(packed)
    plain = Properties(PacketTypes.PUBLISH).unpack(packed)  # type: ignore[no-untyped-call]
    assert (lean[0].json(), lean[1]) == (plain[0].json(), plain[1])  # type: ignore[no-untyped-call]
    assert _paho.LeanProperties(PacketTypes.PUBLISH).unpack(b"\x00")[1] == 1


def test_paho_network_thread_is_the_loop_started(mosquitto: Mosquitto) -> None:
    client = make_client(mosquitto.url, "shopfloor-adapter-probe")
    client.loop_start()
    try:
        wait_connected(client, mosquitto.url, 10)
        thread = _paho.network_thread(client)
        assert thread.is_alive()
    finally:
        close(client)
    assert not thread.is_alive()


def test_closing_a_client_whose_network_thread_has_ended_is_quiet(mosquitto: Mosquitto) -> None:
    """paho's loop_stop on a thread that ended after the disconnect (and cleared
    Client._thread) fails with AttributeError or is refused; `close` takes both in its stride."""
    client = make_client(mosquitto.url, "shopfloor-close-probe")
    client.loop_start()
    wait_connected(client, mosquitto.url, 10)
    thread = _paho.network_thread(client)
    client.disconnect()
    thread.join(10)  # the thread ends on the disconnect and clears Client._thread
    assert not thread.is_alive()
    close(client)
    close(client)


def test_asyncua_holds_what_monitor_relies_on() -> None:
    assert _asyncua.unmet() == []


def test_the_checks_name_library_version_and_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the guards: each one fails by name when its internal is gone."""
    monkeypatch.delattr(Subscription, "_subscribe")
    assert _asyncua.unmet() == [
        f"asyncua {version('asyncua')}: asyncua.common.subscription.Subscription._subscribe "
        "is None, not a coroutine method"
    ]
    monkeypatch.delattr(_packet, "Properties")
    assert _paho.unmet() == [
        f"paho-mqtt {version('paho-mqtt')}: paho.mqtt._packet.Properties is None, "
        "not paho.mqtt.properties.Properties"
    ]
    never_started = mqtt.Client(CallbackAPIVersion.VERSION2)
    message = (
        f"paho-mqtt {version('paho-mqtt')} no longer keeps its network thread in Client._thread"
    )
    with pytest.raises(RuntimeError, match=re.escape(message)):
        _paho.network_thread(never_started)
