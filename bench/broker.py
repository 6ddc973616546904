"""Mosquitto as the platform ships it (MOSQUITTO_POLICY): what a SIGKILL loses, what saving
costs.

`python -m bench.broker`. A persistent session subscribes and goes away, as a stopped gateway
does, and one-reading messages (115 bytes) are published to it at QoS 1:

- loss: a steady stream at `RATE`, the broker killed with SIGKILL at moments spread over one
  save cycle, restarted on its data, the session drained: acknowledged messages missing, also
  as seconds of the stream; Mosquitto's default (a save every 30 minutes) for comparison;
- cost: messages/s acknowledged and the broker's CPU per message over `FLOOD_S`, as ratios to
  the same broker without persistence, in turns, best of `ROUNDS`; saving at every change for
  comparison;
- at the per-client bound: how long one save of that queue stops the broker, and how much it
  writes.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from bench.edge import _cpu_seconds
from shopfloor.mqtt import MOSQUITTO_POLICY
from tests.servers import Mosquitto
from tests.test_broker_durability import TOPIC, Counters, Gateway, Publisher, payload, sigkill
from tests.test_end_to_end import wait_until

AUTOSAVE_S = int(MOSQUITTO_POLICY["autosave_interval"])
BOUND = int(MOSQUITTO_POLICY["max_queued_messages"])
RATE = 2000  # messages/s of the stream the broker is killed in
KILLS = 5
FLOOD_S = 8.0
ROUNDS = 3
NO_PERSISTENCE = {"persistence": "false"}
EVERY_CHANGE = {"autosave_on_changes": "true", "autosave_interval": "1"}
MOSQUITTO_DEFAULT = {"autosave_interval": "1800"}


@contextmanager
def broker(folder: Path, settings: dict[str, str]) -> Iterator[Mosquitto]:
    """A broker with the shipped settings, `settings` on top, and the gateway's session
    subscribed and gone."""
    server = Mosquitto(folder / f"broker-{len(list(folder.iterdir()))}", settings)
    server.start()
    try:
        Gateway(server, "gateway").leave()
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Loss:
    acknowledged: int
    lost: int
    killed_after_s: float


def killed(folder: Path, settings: dict[str, str], after_s: float) -> Loss:
    """A stream at RATE, SIGKILL after `after_s`, the session drained after the restart."""
    with broker(folder, settings) as server:
        publisher = Publisher(server)
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < after_s:
            if sent < elapsed * RATE:
                publisher.publish(sent)
                sent += 1
            else:
                time.sleep(0.0005)
        sigkill(server)
        publisher.client.loop_stop()
        acked = set(publisher.acked)
        server.start()
        gateway = Gateway(server, "gateway")
        wait_until(gateway.connected, 10, "the session back")
        received = set(gateway.drain(0))
        gateway.close()
    return Loss(len(acked), len(acked - received), after_s)


@dataclass(frozen=True)
class Flood:
    messages_per_s: float
    cpu_us: float  # the broker's CPU per message


def flood(folder: Path, settings: dict[str, str]) -> Flood:
    """As many messages as one publisher gets acknowledged in FLOOD_S, queued for the gone
    session."""
    with broker(folder, settings) as server:
        assert server.process is not None
        publisher = fast_publisher(server)
        acked = 0

        def on_publish(*_: object) -> None:
            nonlocal acked
            acked += 1

        publisher.on_publish = on_publish
        cpu, start = _cpu_seconds(server.process.pid), time.monotonic()
        sent = 0
        while time.monotonic() - start < FLOOD_S:
            if sent - acked < 1000:
                publisher.publish(TOPIC, payload(sent), qos=1)
                sent += 1
            else:
                time.sleep(0.0002)
        done, elapsed = acked, time.monotonic() - start
        cpu = _cpu_seconds(server.process.pid) - cpu
        publisher.disconnect()
        publisher.loop_stop()
    return Flood(done / elapsed, cpu / done * 1e6)


def fast_publisher(server: Mosquitto) -> mqtt.Client:
    """A bare paho client that may have 1,000 messages in flight (the edge's client has 20)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", server.port)
    client.loop_start()
    wait_until(client.is_connected, 10, "the publisher's connection")
    return client


@dataclass(frozen=True)
class Save:
    seconds: float  # the longest a request waited while one save ran
    file_mb: float
    heap_mb: float


def save_at_the_bound(folder: Path) -> Save:
    """The per-client bound filled, then three saves: the median time one stops the broker."""
    with broker(folder, {"autosave_interval": "0", "sys_interval": "1"}) as server:
        assert server.process is not None
        publisher = fast_publisher(server)
        infos = []
        for index in range(BOUND):
            infos.append(publisher.publish(TOPIC, payload(index), qos=1))
            if len(infos) == 1000:
                infos.pop(0).wait_for_publish(60)
        for info in infos:
            info.wait_for_publish(60)
        counters = Counters(server)
        wait_until(lambda: int(counters.values.get("store/messages/count", 0)) >= BOUND, 30, "$SYS")
        heap = int(counters.values["heap/current"])
        counters.close()
        waits = sorted(stopped_by_a_save(server, publisher) for _ in range(3))
        size = (server.workdir / "mosquitto.db").stat().st_size
        publisher.disconnect()
        publisher.loop_stop()
    return Save(waits[1], size / 1e6, heap / 1e6)


def stopped_by_a_save(server: Mosquitto, publisher: mqtt.Client) -> float:
    """The longest a probe publishing one message at a time waits while a save, forced with
    SIGUSR1, runs."""
    assert server.process is not None
    stop = threading.Event()
    longest = 0.0

    def probe() -> None:
        nonlocal longest
        while not stop.is_set():
            start = time.perf_counter()
            publisher.publish("probe", b"x", qos=1).wait_for_publish(60)
            longest = max(longest, time.perf_counter() - start)

    thread = threading.Thread(target=probe)
    thread.start()
    time.sleep(0.5)
    os.kill(server.process.pid, signal.SIGUSR1)
    time.sleep(5)
    stop.set()
    thread.join()
    return longest


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        cycle = AUTOSAVE_S + 1
        kills = [killed(folder, {}, AUTOSAVE_S + 2 + cycle * k / KILLS) for k in range(KILLS)]
        default = killed(folder, MOSQUITTO_DEFAULT, AUTOSAVE_S + 2)
        floods: dict[str, list[Flood]] = {"none": [], "shipped": [], "every": []}
        for _ in range(ROUNDS):
            floods["none"].append(flood(folder, NO_PERSISTENCE))
            floods["shipped"].append(flood(folder, {}))
        floods["every"].append(flood(folder, EVERY_CHANGE))
        save = save_at_the_bound(folder)
    best = {kind: max(runs, key=lambda f: f.messages_per_s) for kind, runs in floods.items()}
    base = best["none"]

    table = Table(
        title=f"broker: Mosquitto as shipped (autosave every {AUTOSAVE_S} s), SIGKILL and saves",
        caption=(
            "one-reading messages (115 bytes) at QoS 1 queued for a gone persistent session; "
            f"rates: best of {ROUNDS} floods of {FLOOD_S:g} s in turns; ratio: to no persistence, "
            "or the loss in seconds of the stream"
        ),
    )
    for column in ("what", "figure", "baseline", "ratio"):
        table.add_column(column, justify="left" if column == "what" else "right")
    worst = max(kills, key=lambda loss: loss.lost)
    table.add_row(
        f"SIGKILL in a stream of {RATE:,}/s, {KILLS} moments over one save cycle: worst loss",
        f"{worst.lost:,} of {worst.acknowledged:,} acknowledged",
        f"bound {cycle} s + the save",
        f"{worst.lost / RATE:.2f} s",
    )
    table.add_row(
        "  every kill: lost",
        ", ".join(f"{loss.lost:,}" for loss in kills),
        "",
        "",
    )
    table.add_row(
        "SIGKILL with Mosquitto's default (a save every 1800 s)",
        f"{default.lost:,} of {default.acknowledged:,} acknowledged",
        "",
        f"{default.lost / RATE:.2f} s",
    )
    for kind, label in (
        ("shipped", f"autosave every {AUTOSAVE_S} s"),
        ("every", "a save at every change"),
    ):
        flood_ = best[kind]
        table.add_row(
            f"flood, {label}: acknowledged",
            f"{flood_.messages_per_s:,.0f} messages/s",
            f"{base.messages_per_s:,.0f} (no persistence)",
            f"{flood_.messages_per_s / base.messages_per_s:.2f}",
        )
        table.add_row(
            f"flood, {label}: broker CPU per message",
            f"{flood_.cpu_us:.1f} µs",
            f"{base.cpu_us:.1f} µs",
            f"{flood_.cpu_us / base.cpu_us:.2f}",
        )
    table.add_row(
        f"one save of a queue at the per-client bound ({BOUND:,} messages)",
        f"{save.seconds:.2f} s stopped, {save.file_mb:.0f} MB written",
        f"every {cycle} s",
        f"{save.seconds / cycle:.2f}",
    )
    table.add_row("  heap holding that queue", f"{save.heap_mb:.0f} MB", "", "")
    Console().print(table)


if __name__ == "__main__":
    main()
