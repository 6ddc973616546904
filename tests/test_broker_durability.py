"""The broker the platform ships keeps what it acknowledged, within bounds: a real Mosquitto
with MOSQUITTO_POLICY, killed with SIGKILL while it holds messages for a stopped gateway; each
bound reached, with what happens there and where it is counted."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from getpass import getuser
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from launcher.broker import Listeners, write_broker_config
from shopfloor.messages import MAX_PAYLOAD_BYTES
from shopfloor.mqtt import MOSQUITTO_POLICY, Session, make_client, wait_connected
from shopfloor.plant import load_plant
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import Mosquitto, ServerProcess, free_port, require_binary
from tests.test_end_to_end import wait_until

TOPIC = "polimer/brest/moulding/line-1/imm-01/data"
AUTOSAVE_S = int(MOSQUITTO_POLICY["autosave_interval"])
# Saves start every autosave_interval + 1 whole seconds, and a save of a few thousand
# messages takes milliseconds: a message acknowledged this long before a SIGKILL survives it.
LOSS_WINDOW_S = AUTOSAVE_S + 2
# Counters every second, and the notices that name a client (drops, expiry).
WATCHED = {"sys_interval": "1", "log_type": "notice"}


def payload(index: int, size: int = 115) -> bytes:
    """A message that says its own index, padded to the size of a one-reading message."""
    return str(index).encode().ljust(size)


def index_of(message: bytes | bytearray) -> int:
    return int(message)


def hours(duration: str) -> int:
    """A persistent_client_expiration duration (`72h`, `3d`, `1w`) in hours."""
    unit = {"h": 1, "d": 24, "w": 168, "m": 720, "y": 8760}[duration[-1]]
    return int(duration[:-1]) * unit


class Publisher:
    """Publishes at QoS 1 with MQTT 3.1.1, as the edge agent does, and notes when the broker
    acknowledged each message."""

    def __init__(self, broker: Mosquitto, size: int = 115):
        self.size = size
        self.client = make_client(broker.url, f"publisher-{uuid.uuid4().hex[:8]}")
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.mids: dict[int, int] = {}  # message id -> index
        self._acked: dict[int, float] = {}  # message id -> time of the acknowledgement
        self.dropped_connection = threading.Event()
        self.client.loop_start()
        wait_connected(self.client, broker.url, 10)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, *_: object) -> None:
        self._acked[mid] = time.monotonic()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, *_: object) -> None:
        self.dropped_connection.set()

    def publish(self, index: int) -> None:
        info = self.client.publish(TOPIC, payload(index, self.size), qos=1)
        self.mids[info.mid] = index

    @property
    def unacknowledged(self) -> int:
        return len(self.mids) - len(self._acked)

    def publish_all(self, indices: range, timeout_s: float = 30) -> None:
        """Publish and wait for the broker's acknowledgement of every one (paho numbers at
        most 65,535 unacknowledged messages: keep well below)."""
        for index in indices:
            while self.unacknowledged > 1000:
                time.sleep(0.001)
            self.publish(index)
        wait_until(lambda: self.unacknowledged == 0, timeout_s, "every PUBACK")

    @property
    def acked(self) -> dict[int, float]:
        """Index -> when the broker acknowledged it."""
        return {self.mids[mid]: at for mid, at in list(self._acked.items())}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Gateway:
    """The gateway's persistent session (its own client factory: MQTT 5, clean start off,
    manual acknowledgements), without the gateway: it acknowledges what it receives."""

    def __init__(self, broker: Mosquitto, client_id: str, expiry_s: int = 3600):
        self.received: list[int] = []
        self.session_present: bool | None = None
        self.subscribed = threading.Event()
        session = Session(expiry_s=expiry_s)
        self.client = make_client(broker.url, client_id, session=session)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.loop_start()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.session_present = flags.session_present
        client.subscribe(TOPIC, qos=1)

    def connected(self) -> bool:
        """Whether the broker has answered the CONNECT."""
        return self.session_present is not None

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.received.append(index_of(msg.payload))
        client.ack(msg.mid, msg.qos)

    def leave(self) -> None:
        """Subscribe, then go away as a stopped gateway does: the broker keeps the session."""
        assert self.subscribed.wait(10), "no SUBACK"
        self.close()

    def drain(self, expected: int, timeout_s: float = 30) -> list[int]:
        """What the session receives: `expected` messages, then a quiet second."""
        wait_until(lambda: len(self.received) >= expected, timeout_s, f"{expected} messages")
        count = -1
        while count != len(self.received):
            count = len(self.received)
            time.sleep(1)
        return self.received

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Counters:
    """The broker's $SYS counters, as a monitoring client would read them."""

    def __init__(self, broker: Mosquitto):
        self.values: dict[str, str] = {}
        self.client = make_client(broker.url, f"sys-{uuid.uuid4().hex[:8]}", [("$SYS/broker/#", 0)])
        self.client.on_message = lambda _c, _u, msg: self.values.__setitem__(
            msg.topic.removeprefix("$SYS/broker/"), msg.payload.decode()
        )
        self.client.loop_start()

    def wait_for(self, name: str, value: int, timeout_s: float = 10) -> None:
        wait_until(lambda: self.values.get(name) == str(value), timeout_s, f"{name} = {value}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker_with(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Starts a Mosquitto of its own with the shipped settings, `settings` on top."""
    started: list[Mosquitto] = []

    def start(**settings: str) -> Mosquitto:
        server = Mosquitto(tmp_path / f"broker-{len(started)}", {**WATCHED, **settings})
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def sigkill(broker: Mosquitto) -> None:
    assert broker.process is not None
    broker.process.kill()
    broker.process.wait()


def log_of(broker: Mosquitto) -> str:
    return (broker.workdir / "mosquitto.log").read_text()


def test_a_broker_killed_with_sigkill_delivers_what_it_acknowledged_before_its_last_save(
    broker_with: Callable[..., Mosquitto],
) -> None:
    broker = broker_with()
    Gateway(broker, "gateway").leave()
    publisher = Publisher(broker)
    held = 10_000
    publisher.publish_all(range(held))  # held for the stopped gateway
    # Then a steady stream, killed mid-flow once the held messages are older than a save.
    rate = 500
    start = time.monotonic()
    index = held
    while time.monotonic() - start < LOSS_WINDOW_S + 1:
        publisher.publish(index)
        index += 1
        time.sleep(max(0.0, start + (index - held) / rate - time.monotonic()))
    killed_at = time.monotonic()
    sigkill(broker)
    publisher.client.loop_stop()  # what it would send again after a reconnect is not counted
    acked = publisher.acked
    broker.start()

    received = Gateway(broker, "gateway").drain(held)
    assert set(range(held)) <= set(received), f"{held - len(set(received) & set(range(held)))} lost"
    safe = {i for i, at in acked.items() if at < killed_at - LOSS_WINDOW_S}
    assert safe - set(received) == set(), "lost messages acknowledged before the last save"
    assert set(received) <= set(range(index))
    lost = set(acked) - set(received)
    assert len(lost) <= rate * LOSS_WINDOW_S, f"{len(lost)} lost at {rate} messages/s"


def test_mosquittos_default_autosave_loses_everything_a_sigkill_finds_queued(
    broker_with: Callable[..., Mosquitto],
) -> None:
    """The setting matters: saved only every 30 minutes, a SIGKILL loses the whole queue."""
    broker = broker_with(autosave_interval="1800")
    Gateway(broker, "gateway").leave()
    publisher = Publisher(broker)
    publisher.publish_all(range(1000))
    publisher.close()
    time.sleep(LOSS_WINDOW_S)
    sigkill(broker)
    broker.start()
    gateway = Gateway(broker, "gateway")
    wait_until(gateway.connected, 10, "the CONNACK")
    time.sleep(1)
    gateway.close()
    assert gateway.received == []


@pytest.mark.parametrize(
    ("setting", "size", "kept"),
    [
        ({"max_queued_messages": "1000"}, 115, 1000),
        # payload bytes only; a message is queued while the queue holds less than the bound
        ({"max_queued_bytes": "50000"}, 500, 100),
    ],
    ids=["messages", "bytes"],
)
def test_past_the_per_client_queue_bound_new_messages_are_acknowledged_dropped_and_counted(
    broker_with: Callable[..., Mosquitto], setting: dict[str, str], size: int, kept: int
) -> None:
    broker = broker_with(**setting)
    Gateway(broker, "gateway").leave()
    publisher = Publisher(broker, size)
    sent = kept + 500
    counters = Counters(broker)
    try:
        publisher.publish_all(range(sent))  # every one acknowledged to its publisher
        counters.wait_for("publish/messages/dropped", sent - kept)
    finally:
        counters.close()
        publisher.close()
    assert "Outgoing messages are being dropped for client gateway." in log_of(broker)
    assert Gateway(broker, "gateway").drain(kept) == list(range(kept))  # the oldest are kept


def test_the_memory_limit_leaves_room_for_three_sessions_at_their_per_client_bound(
    broker_with: Callable[..., Mosquitto],
) -> None:
    """Heap per queued message measured on 10,000, at the payload size where both per-client
    bounds meet (the size that holds the most heap), extrapolated to the shipped bound."""
    bound = int(MOSQUITTO_POLICY["max_queued_messages"])
    size = int(MOSQUITTO_POLICY["max_queued_bytes"]) // bound
    count = 10_000
    broker = broker_with(max_queued_messages=str(count))
    Gateway(broker, "gateway").leave()
    publisher = Publisher(broker, size)
    counters = Counters(broker)
    try:
        counters.wait_for("clients/connected", 2)
        time.sleep(1.5)  # a fresh heap figure
        before = int(counters.values["heap/current"])
        publisher.publish_all(range(count + 10))
        counters.wait_for("publish/messages/dropped", 10)
        time.sleep(1.5)
        per_message = (int(counters.values["heap/current"]) - before) / count
    finally:
        counters.close()
        publisher.close()
    assert 300 < per_message < 1000, per_message  # a measure, not noise
    assert 3 * per_message * bound < int(MOSQUITTO_POLICY["memory_limit"])


def test_a_broker_stopped_at_its_memory_limit_starts_again_only_with_a_higher_one(
    broker_with: Callable[..., Mosquitto],
) -> None:
    """At the limit the publisher is disconnected without an acknowledgement; what was
    acknowledged is saved, and comes back once the limit is raised by a fifth."""
    limit = 4_000_000
    broker = broker_with(memory_limit=str(limit), max_queued_messages="0")
    Gateway(broker, "gateway").leave()
    publisher = Publisher(broker)
    index = 0
    deadline = time.monotonic() + 30
    while not publisher.dropped_connection.is_set():
        assert time.monotonic() < deadline, "the broker never reached its memory limit"
        if publisher.unacknowledged < 100:
            publisher.publish(index)
            index += 1
        else:
            time.sleep(0.001)
    publisher.client.loop_stop()
    acked = publisher.acked
    assert len(acked) < index  # the message that found the heap full was not acknowledged
    assert "disconnected due to out of memory" in log_of(broker)

    broker.stop()
    with pytest.raises(RuntimeError, match="Out of memory"):
        broker.start()
    config = broker.workdir / "mosquitto.conf"
    raised = config.read_text().replace(f"memory_limit {limit}", f"memory_limit {limit * 6 // 5}")
    config.write_text(raised)
    broker.start()
    received = Gateway(broker, "gateway").drain(len(acked))
    assert set(acked) <= set(received)


def test_a_persistent_session_expires_with_its_queue(
    broker_with: Callable[..., Mosquitto],
) -> None:
    broker = broker_with()
    Gateway(broker, "gone", expiry_s=2).leave()
    publisher = Publisher(broker)
    publisher.publish_all(range(10))
    publisher.close()
    counters = Counters(broker)
    try:
        counters.wait_for("clients/expired", 1, timeout_s=10)
    finally:
        counters.close()
    assert "Expiring client gone due to timeout." in log_of(broker)
    back = Gateway(broker, "gone", expiry_s=2)
    wait_until(back.connected, 10, "the CONNACK")
    time.sleep(1)
    back.close()
    assert back.session_present is False and back.received == []


def test_the_broker_keeps_a_session_as_long_as_the_gateway_asks() -> None:
    """persistent_client_expiration caps every session (an hour at least, so it is not run
    here): the gateway asks for exactly that long."""
    assert hours(MOSQUITTO_POLICY["persistent_client_expiration"]) * 3600 == Session().expiry_s


def test_a_packet_over_the_limit_is_refused_but_a_message_too_large_for_the_contract_passes(
    broker_with: Callable[..., Mosquitto],
) -> None:
    broker = broker_with()
    limit = int(MOSQUITTO_POLICY["max_packet_size"])
    assert limit > MAX_PAYLOAD_BYTES  # the gateway dead-letters what lies between
    publisher = Publisher(broker, size=MAX_PAYLOAD_BYTES + 1000)
    publisher.publish_all(range(1))
    publisher.size = limit
    publisher.publish(1)
    assert publisher.dropped_connection.wait(10)
    publisher.client.loop_stop()
    assert set(publisher.acked) == {0}
    assert "disconnected due to oversize packet" in log_of(broker)


def settings_of(config: str) -> dict[str, str]:
    """Option -> value of a mosquitto.conf (the last one of a repeated option)."""
    lines = (line.strip() for line in config.splitlines())
    pairs = (line.split(None, 1) for line in lines if line and not line.startswith("#"))
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def test_the_shipped_configuration_carries_the_policy() -> None:
    deployed = settings_of((ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text())
    assert {option: deployed.get(option) for option in MOSQUITTO_POLICY} == MOSQUITTO_POLICY


def test_the_generated_broker_configuration_runs_with_the_policy(tmp_path: Path) -> None:
    """`shopfloor broker config`'s, which the demo runs too."""
    port = free_port()
    write_broker_config(
        tmp_path, [load_plant(EXAMPLE_PLANT)], Listeners(port, "127.0.0.1"), run_as=getuser()
    )
    config = tmp_path / "mosquitto.conf"
    broker = ServerProcess(
        "mosquitto", [require_binary("mosquitto"), "-c", str(config)], port, tmp_path
    )
    broker.start()
    broker.stop()
    written = settings_of(config.read_text())
    assert {option: written.get(option) for option in MOSQUITTO_POLICY} == MOSQUITTO_POLICY
