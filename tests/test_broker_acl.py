"""Broker accounts and ACLs generated from plant files, on a real Mosquitto serving two tenants
(polimer's moulding plant and metalform's machining plant): nothing crosses tenants, each role
does its own job and no more, over the plain and the TLS listener, and in the demo.

Mosquitto's `acl_file` grants every subscription (its SUBACK says so) and checks each message
as it delivers it, so a refused read shows as nothing arriving. Every such check therefore ends
with a sentinel: a message the same client may read, published once the broker has
acknowledged the refused ones, which it delivers after anything it would have delivered before.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from getpass import getuser
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import BrokerConfig
from launcher.broker import (
    ACCOUNTS_FILE,
    Account,
    BrokerConfigError,
    Listeners,
    TlsListener,
    acl_rules,
    hash_password,
    write_broker_config,
)
from launcher.session import BROKER_DIR, running_demo
from shopfloor.messages import SetSpeed, encode_command
from shopfloor.mqtt import close, make_client, publish_once, wait_connected
from shopfloor.plant import Plant, load_plant
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import ServerProcess, free_port, require_binary
from tests.test_demo import command_lines, start_demo, stop_if_running
from tests.test_end_to_end import wait_until
from tests.test_gateway_tls import write_certificates

MACHINING_PLANT = ROOT / "examples" / "machining-plant.yaml"
OBSERVER = "observer"  # a test-only account that reads everything: what got through
OBSERVER_PASSWORD = f"observer-{uuid.uuid4().hex}"
ROLES = ("edge", "simulator", "gateway", "analytics", "dashboard")

P, M = "polimer/brest", "metalform/kragujevac"  # the two tenants' sites
P_DATA, M_DATA = f"{P}/moulding/line-1/imm-01/data", f"{M}/machining/cell-1/cnc-01/data"
P_EVENT, M_EVENT = P_DATA.replace("/data", "/event"), M_DATA.replace("/data", "/event")
P_RAW = "sensors/hall-a/env-01/temperature"


def example_plants() -> list[Plant]:
    return [load_plant(EXAMPLE_PLANT), load_plant(MACHINING_PLANT)]


@dataclass
class Broker:
    server: ServerProcess
    accounts: dict[str, Account]
    tls_port: int
    ca: Path

    def url(self, username: str) -> str:
        if username == OBSERVER:
            return f"mqtt://{OBSERVER}:{OBSERVER_PASSWORD}@127.0.0.1:{self.server.port}"
        return self.accounts[username].url(f"mqtt://127.0.0.1:{self.server.port}")

    def publish(self, username: str, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish and wait for the broker's acknowledgement (which it gives a refused
        message too: MQTT 3.1.1 has no way to say no)."""
        publish_once(self.url(username), topic, payload, retain=retain)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    directory = tmp_path_factory.mktemp("broker")
    ca, cert, key = write_certificates(directory)
    port, tls_port = free_port(), free_port()
    config = directory / "config"
    listeners = Listeners(port, "127.0.0.1", TlsListener(tls_port, str(cert), str(key)))
    accounts = write_broker_config(config, example_plants(), listeners, run_as=getuser())
    with (config / "passwd").open("a") as passwd:
        passwd.write(f"{OBSERVER}:{hash_password(OBSERVER_PASSWORD)}\n")
    with (config / "acl").open("a") as acl:
        acl.write(f"\nuser {OBSERVER}\ntopic read #\n")
    mosquitto = [require_binary("mosquitto"), "-c", str(config / "mosquitto.conf")]
    server = ServerProcess("mosquitto", mosquitto, port, directory)
    server.start()
    try:
        yield Broker(server, {a.username: a for a in accounts}, tls_port, ca)
    finally:
        server.stop()


@dataclass
class Listener:
    """A connected client recording what arrives, by topic, and its subscriptions' SUBACKs."""

    client: mqtt.Client
    arrived: dict[str, list[bytes]] = field(default_factory=dict)
    granted: list[int] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.arrived.setdefault(msg.topic, []).append(bytes(msg.payload))
            self.changed.notify_all()

    def on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                     codes: list[ReasonCode], properties: Properties) -> None:  # fmt: skip
        with self.changed:
            self.granted += [code.value for code in codes]
            self.changed.notify_all()

    def wait_for(self, topic: str, payload: bytes) -> None:
        with self.changed:
            done = self.changed.wait_for(lambda: payload in self.arrived.get(topic, []), 20)
        assert done, f"{payload!r} never arrived on {topic}; got {self.arrived}"

    def got(self, marker: bytes) -> list[str]:
        """The topics on which a payload holding `marker` arrived."""
        with self.changed:
            return sorted(
                t for t, payloads in self.arrived.items() if any(marker in p for p in payloads)
            )


@contextlib.contextmanager
def listening(url: str, filters: list[str]) -> Iterator[Listener]:
    """A client subscribed to `filters` (QoS 1), once the broker has answered the subscription."""
    client = make_client(url, f"test-{uuid.uuid4().hex[:8]}", [(f, 1) for f in filters])
    listener = Listener(client)
    client.on_message, client.on_subscribe = listener.on_message, listener.on_subscribe
    client.loop_start()
    try:
        wait_connected(client, url, 15)
        with listener.changed:
            assert listener.changed.wait_for(lambda: len(listener.granted) == len(filters), 15)
        yield listener
    finally:
        close(client)


def connack(url: str) -> str:
    """The broker's answer to a login, in paho's words ("Success", "Not authorized"...)."""
    answer: list[str] = []
    done = threading.Event()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object,
                   properties: object) -> None:  # fmt: skip
        answer.append(str(reason))
        done.set()

    client = make_client(url, f"test-{uuid.uuid4().hex[:8]}")
    client.on_connect = on_connect
    client.loop_start()
    try:
        assert done.wait(15), "no CONNACK"
    finally:
        close(client)
    return answer[0]


# --- the generated files -------------------------------------------------------------------


def test_files_are_private_passwords_random_and_hashed_as_mosquitto_passwd(tmp_path: Path) -> None:
    accounts = write_broker_config(tmp_path / "out", example_plants())
    out = tmp_path / "out"
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == dict.fromkeys(
        ["passwd", "acl", "mosquitto.conf", "accounts.json"], 0o600
    )
    assert [(a.username, a.tenant, a.role.value) for a in accounts] == [
        *((f"metalform-{r}", "metalform", r) for r in ROLES),
        *((f"polimer-{r}", "polimer", r) for r in ROLES),
        ("staff", "*", "staff"),
    ]
    records = json.loads((out / ACCOUNTS_FILE).read_text())
    assert [set(r) for r in records] == [{"username", "password", "tenant", "role"}] * 11
    passwords = [a.password for a in accounts]
    assert len(set(passwords)) == 11 and min(map(len, passwords)) >= 40
    for line, account in zip((out / "passwd").read_text().splitlines(), accounts, strict=True):
        name, _, hashed = line.partition(":")
        _, kind, iterations, salt, digest = hashed.split("$")
        expected = hashlib.pbkdf2_hmac(
            "sha512", account.password.encode(), base64.b64decode(salt), int(iterations)
        )
        assert (name, kind, base64.b64decode(digest)) == (account.username, "7", expected)
    written = "".join(p.read_text() for p in out.iterdir() if p.name != ACCOUNTS_FILE)
    assert not [p for p in passwords if p in written]


def test_running_again_keeps_passwords_rotates_one_and_drops_a_removed_tenant(
    tmp_path: Path,
) -> None:
    first = {a.username: a.password for a in write_broker_config(tmp_path, example_plants())}
    again = {a.username: a.password for a in write_broker_config(tmp_path, example_plants())}
    assert again == first
    rotated = write_broker_config(tmp_path, example_plants(), rotate=["polimer-edge"])
    changed = {a.username for a in rotated if first[a.username] != a.password}
    assert changed == {"polimer-edge"}
    with pytest.raises(BrokerConfigError, match="no account nobody-edge"):
        write_broker_config(tmp_path, example_plants(), rotate=["nobody-edge"])
    only_polimer = write_broker_config(tmp_path, [load_plant(EXAMPLE_PLANT)])
    assert {a.tenant for a in only_polimer} == {"polimer", "*"}
    assert "metalform" not in (tmp_path / "passwd").read_text() + (tmp_path / "acl").read_text()


def test_every_rule_names_its_own_tenant_and_site_or_sensor_kit() -> None:
    """No rule starts with a wildcard or names another tenant: staff's span every tenant, but
    only their status (read) and control (write) topics."""
    plants = example_plants()
    kits = {"polimer": ("sensors/hall-a/env-01/",), "metalform": ("sensors/metalform/hall/",)}
    for username, grants in acl_rules(plants).items():
        tenant = username.rpartition("-")[0]
        for access, topic in grants:
            if username == "staff":
                assert (access, topic.split("/", 2)[2]) in {("read", "_control/status"),
                                                            ("write", "_control")}  # fmt: skip
                continue
            site = P if tenant == "polimer" else M
            assert topic.startswith((f"{site}/", *kits[tenant])), (username, topic)


def write_plant(directory: Path, tenant: str, sensor_topic: str) -> Path:
    """The machining plant under another tenant, its sensor kit on `sensor_topic`."""
    data = yaml.safe_load(MACHINING_PLANT.read_text())
    data["tenant"]["id"] = tenant
    for area in data["site"]["areas"]:
        for zone in area.get("zones", []):
            for sensor in zone["sensors"]:
                sensor["mqtt_topic"] = sensor_topic
    path = directory / f"{tenant}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("sensor_topic", "reason"),
    [
        ("sensors/hall-a/env-01", "overlaps tenant 'polimer'"),
        ("sensors/hall-a", "overlaps tenant 'polimer'"),
        ("sensors/hall-a/env-01/extra", "overlaps tenant 'polimer'"),
        ("polimer/brest/spy", "lies in tenant 'polimer'"),
        ("kit\nuser staff", "control characters"),
        ("$SYS/kit", "control characters or \\$"),
    ],
)
def test_a_sensor_kit_topic_that_reaches_another_tenant_is_refused(
    tmp_path: Path, sensor_topic: str, reason: str
) -> None:
    intruder = load_plant(write_plant(tmp_path, "intruder", sensor_topic))
    with pytest.raises(BrokerConfigError, match=reason):
        write_broker_config(tmp_path / "out", [load_plant(EXAMPLE_PLANT), intruder])
    assert not (tmp_path / "out").exists()


def test_the_command_writes_the_files_says_where_and_prints_no_password(tmp_path: Path) -> None:
    shopfloor = [sys.executable, "-m", "launcher", "broker", "config"]
    out = tmp_path / "out"
    done = subprocess.run(
        [*shopfloor, "--output", str(out), "--port", "1884", "--tls-port", "8884",
         "--certfile", "/certs/server.pem", "--keyfile", "/certs/key.pem", "--bind", "10.0.0.2",
         str(EXAMPLE_PLANT), str(MACHINING_PLANT)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"11 broker accounts for metalform, polimer in {out / ACCOUNTS_FILE}; "
        f"start Mosquitto with -c {out / 'mosquitto.conf'}\n"
    )
    passwords = [r["password"] for r in json.loads((out / ACCOUNTS_FILE).read_text())]
    assert not [p for p in passwords if p in done.stdout + done.stderr]
    conf = (out / "mosquitto.conf").read_text().splitlines()
    assert {"listener 1884 10.0.0.2", "listener 8884", "certfile /certs/server.pem",
            "keyfile /certs/key.pem", "allow_anonymous false",
            f"acl_file {out.resolve() / 'acl'}"} <= set(conf)  # fmt: skip
    for options, error in [
        (["--tls-port", "8884"], "error: --tls-port needs --certfile and --keyfile\n"),
        (["--certfile", "c.pem"], "error: --certfile, --keyfile and --cafile need --tls-port\n"),
    ]:
        bad = subprocess.run([*shopfloor, "--output", str(out), *options, str(EXAMPLE_PLANT)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
        assert (bad.returncode, bad.stderr) == (2, error)
    intruder = write_plant(tmp_path, "intruder", "polimer/brest/spy")
    bad = subprocess.run([*shopfloor, "--output", str(out), str(EXAMPLE_PLANT), str(intruder)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "lies in tenant 'polimer'" in bad.stderr


# --- on Mosquitto ---------------------------------------------------------------------------


def test_logins_need_an_account_and_its_password(broker: Broker) -> None:
    port = broker.server.port
    assert connack(broker.url("polimer-edge")) == "Success"
    assert connack(f"mqtt://127.0.0.1:{port}") == "Not authorized"  # anonymous
    other_password = broker.accounts["metalform-edge"].password
    assert connack(f"mqtt://polimer-edge:{other_password}@127.0.0.1:{port}") == "Not authorized"
    assert connack(f"mqtt://nobody:x@127.0.0.1:{port}") == "Not authorized"


# What each polimer account may read, for a sentinel published by polimer's own simulator.
SENTINELS = {
    "polimer-edge": f"{P}/_control",
    "polimer-simulator": f"{P}/_control",
    "polimer-gateway": f"{P}/_control/status",
    "polimer-analytics": P_DATA,
    "polimer-dashboard": f"{P}/_control/status",
}
SENTINEL_SENDERS = {f"{P}/_control": "polimer-dashboard", f"{P}/_control/status":
                    "polimer-simulator", P_DATA: "polimer-simulator"}  # fmt: skip


def test_no_polimer_account_reads_anything_of_metalform(broker: Broker) -> None:
    marker = uuid.uuid4().hex.encode()
    # Retained before anyone subscribes: delivered on subscription if a read were allowed.
    broker.publish("metalform-simulator", f"{M}/_control/status", marker + b" status", retain=True)
    broker.publish("metalform-edge", f"{M}/_edge/pi-1/status", marker + b" edge", retain=True)
    filters = ["#", "metalform/#", M_DATA, M_EVENT, f"{M}/_control", f"{M}/_control/status",
               f"{M}/_edge/+/+", f"{M}/_deadletter", "sensors/metalform/hall/env-01/+"]  # fmt: skip
    with contextlib.ExitStack() as stack:
        observer = stack.enter_context(listening(broker.url(OBSERVER), ["#"]))
        spies = {name: stack.enter_context(listening(broker.url(name), filters))
                 for name in SENTINELS}  # fmt: skip
        assert all(spy.granted == [1] * len(filters) for spy in spies.values())
        legit = [("metalform-simulator", M_DATA), ("metalform-simulator", M_EVENT),
                 ("metalform-simulator", "sensors/metalform/hall/env-01/temperature"),
                 ("metalform-dashboard", f"{M}/_control"), ("staff", f"{M}/_control"),
                 ("metalform-gateway", f"{M}/_deadletter"),
                 ("metalform-edge", f"{M}/_edge/pi-1/state")]  # fmt: skip
        for sender, topic in legit:
            broker.publish(sender, topic, marker + b" " + sender.encode())
            observer.wait_for(topic, marker + b" " + sender.encode())
        sentinel = uuid.uuid4().hex.encode()
        for topic, sender in SENTINEL_SENDERS.items():
            broker.publish(sender, topic, sentinel)
        for name, spy in spies.items():
            spy.wait_for(SENTINELS[name], sentinel)
            assert spy.got(marker) == [], name
    broker.publish("metalform-simulator", f"{M}/_control/status", b"", retain=True)
    broker.publish("metalform-edge", f"{M}/_edge/pi-1/status", b"", retain=True)


FORGERIES = [
    ("data", M_DATA, b'{"v":1,"readings":[{"signal":"spindle_load","value":1,"ts":"2026-11-02T08:00:00Z"}]}'),
    ("event", M_EVENT, b'{"v":1,"events":[{"name":"bearing_wear","start":"2026-11-02T08:00:00Z"}]}'),
    ("control", f"{M}/_control", encode_command(SetSpeed(speed=1000))),
    ("status", f"{M}/_control/status", b'{"v":1,"scenario":"forged"}'),
    ("edge status", f"{M}/_edge/pi-1/status", b'{"v":1,"device":"pi-1"}'),
    ("edge state", f"{M}/_edge/pi-1/state", b'{"v":1,"device":"pi-1","online":false}'),
    ("dead letter", f"{M}/_deadletter", b'{"v":1,"reason":"forged"}'),
    ("raw sensor", "sensors/metalform/hall/env-01/temperature", b"99"),
]  # fmt: skip


@pytest.mark.parametrize("forger", [f"polimer-{r}" for r in ROLES])
def test_no_polimer_account_writes_anything_into_metalform(broker: Broker, forger: str) -> None:
    """Forged readings, events, `set_speed 1000`, a spoofed status and edge state, a forged
    dead letter and a forged raw sensor value: none reaches a subscriber, retained or live."""
    marker = f"forged-by-{forger}-{uuid.uuid4().hex}".encode()
    with listening(broker.url(OBSERVER), ["#"]) as observer:
        for _, topic, payload in FORGERIES:
            broker.publish(forger, topic, marker + payload, retain=True)
        sentinel = uuid.uuid4().hex.encode()
        broker.publish("metalform-dashboard", f"{M}/_control", sentinel)
        observer.wait_for(f"{M}/_control", sentinel)
        assert observer.got(marker) == []
    with listening(broker.url(OBSERVER), ["#"]) as late:  # nothing retained either
        broker.publish("metalform-dashboard", f"{M}/_control", sentinel)
        late.wait_for(f"{M}/_control", sentinel)
        assert late.got(marker) == []


# Within its own tenant, what each role may not send: least privilege.
NOT_ITS_JOB = {
    "polimer-edge": [f"{P}/_control", f"{P}/_control/status", f"{P}/_deadletter"],
    "polimer-simulator": [f"{P}/_control", f"{P}/_edge/pi-1/status", f"{P}/_deadletter"],
    "polimer-gateway": [P_DATA, P_EVENT, f"{P}/_control", f"{P}/_control/status"],
    "polimer-analytics": [P_DATA, P_EVENT, f"{P}/_control", f"{P}/_deadletter"],
    "polimer-dashboard": [P_DATA, P_EVENT, f"{P}/_control/status", f"{P}/_edge/pi-1/state"],
    "staff": [P_DATA, M_EVENT, f"{P}/_edge/pi-1/status", f"{M}/_deadletter", P_RAW],
}


def test_each_role_sends_only_what_its_component_sends(broker: Broker) -> None:
    marker = uuid.uuid4().hex.encode()
    with listening(broker.url(OBSERVER), ["#"]) as observer:
        for sender, topics in NOT_ITS_JOB.items():
            for topic in topics:
                broker.publish(sender, topic, marker + sender.encode())
        sentinel = uuid.uuid4().hex.encode()
        broker.publish("polimer-dashboard", f"{P}/_control", sentinel)
        observer.wait_for(f"{P}/_control", sentinel)
        assert observer.got(marker) == []


# Who sends what in its own tenant, and every account that must receive it.
JOBS = [
    ("polimer-simulator", P_DATA, ["polimer-gateway", "polimer-analytics"]),
    ("polimer-simulator", P_EVENT, ["polimer-gateway", "polimer-analytics"]),
    ("polimer-simulator", P_RAW, ["polimer-edge"]),
    ("polimer-simulator", f"{P}/_control/status", ["polimer-gateway", "polimer-dashboard", "staff"]),
    ("polimer-edge", P_DATA, ["polimer-gateway", "polimer-analytics"]),
    ("polimer-edge", P_EVENT, ["polimer-gateway"]),
    ("polimer-edge", f"{P}/_edge/pi-1/state", ["polimer-dashboard"]),
    ("polimer-edge", f"{P}/_edge/pi-1/status", ["polimer-dashboard"]),
    ("polimer-dashboard", f"{P}/_control", ["polimer-simulator", "polimer-edge"]),
    ("polimer-gateway", f"{P}/_deadletter", [OBSERVER]),
    ("staff", f"{P}/_control", ["polimer-simulator"]),
    ("staff", f"{M}/_control", ["metalform-simulator"]),
    ("metalform-simulator", f"{M}/_control/status", ["staff", "metalform-dashboard"]),
]  # fmt: skip
# What each account's component subscribes to (gateway: its data, events and status).
SUBSCRIPTIONS = {
    "polimer-simulator": [f"{P}/_control"],
    "polimer-edge": ["sensors/hall-a/env-01/+", f"{P}/_control"],
    "polimer-gateway": [f"{P}/+/+/+/data", f"{P}/+/+/+/event", f"{P}/_control/status"],
    "polimer-analytics": [f"{P}/+/+/+/data", f"{P}/+/+/+/event"],
    "polimer-dashboard": [f"{P}/_control/status", f"{P}/_edge/+/+"],
    "metalform-simulator": [f"{M}/_control"],
    "metalform-dashboard": [f"{M}/_control/status"],
    "staff": [f"{P}/_control/status", f"{M}/_control/status"],
    OBSERVER: ["#"],
}


def test_each_role_does_its_own_job(broker: Broker) -> None:
    with contextlib.ExitStack() as stack:
        clients = {name: stack.enter_context(listening(broker.url(name), filters))
                   for name, filters in SUBSCRIPTIONS.items()}  # fmt: skip
        for sender, topic, receivers in JOBS:
            payload = f"{sender} {uuid.uuid4().hex}".encode()
            broker.publish(sender, topic, payload)
            for receiver in receivers:
                clients[receiver].wait_for(topic, payload)
    broker.publish("polimer-simulator", f"{P}/_control/status", b"", retain=False)


def test_the_tls_listener_takes_the_accounts_with_the_edge_trusting_the_centres_ca(
    broker: Broker, tmp_path: Path
) -> None:
    account = broker.accounts["polimer-edge"]
    settings = BrokerConfig(url=f"mqtts://127.0.0.1:{broker.tls_port}", username=account.username,
                            password=account.password, ca_file=broker.ca)  # type: ignore[arg-type]  # fmt: skip
    payload = uuid.uuid4().hex.encode()
    with listening(broker.url("polimer-gateway"), [P_DATA]) as gateway:
        client = make_client(settings.url_with_credentials(), "edge-tls")
        client.loop_start()
        try:
            wait_connected(client, settings.url_with_credentials(), 15)
            client.publish(P_DATA, payload, qos=1).wait_for_publish(15)
        finally:
            close(client)
        gateway.wait_for(P_DATA, payload)
    other_ca, _, _ = write_certificates(tmp_path)  # a CA that did not sign the broker's
    untrusted = settings.model_copy(update={"ca_file": other_ca}).url_with_credentials()
    client = make_client(untrusted, "edge-untrusted")
    client.loop_start()
    try:
        with pytest.raises(ConnectionError):
            wait_connected(client, untrusted, 3)
    finally:
        close(client)
    with pytest.raises(ValueError, match="ca_file is for an mqtts:// broker url"):
        BrokerConfig(url="mqtt://127.0.0.1:1883", ca_file=broker.ca)
    # The plain listener is bound to 127.0.0.1 only; the TLS one to every address.
    for port, reachable in ((broker.server.port, False), (broker.tls_port, True)):
        with socket.socket() as sock:
            sock.settimeout(2)
            assert (sock.connect_ex(("127.0.0.2", port)) == 0) is reachable


# --- in the demo ----------------------------------------------------------------------------


def test_the_demo_runs_every_component_with_its_own_account(tmp_path: Path) -> None:
    require_binary("mosquitto")
    demo = start_demo(tmp_path, "mosquitto")
    try:
        running = demo.wait_until_up()
        wait_until(lambda: {"imm-01", "env-01"} <= demo.machines_with_data(), 120,
                   "readings of a machine and the sensor kit in the store")  # fmt: skip
        folder = running.session_dir / BROKER_DIR
        accounts = json.loads((folder / ACCOUNTS_FILE).read_text())
        assert {a["username"] for a in accounts} == {*(f"polimer-{r}" for r in ROLES), "staff"}
        assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir() if p.suffix != ".db"
                and p.name != "mosquitto.log"} == dict.fromkeys(
            ["passwd", "acl", "mosquitto.conf", ACCOUNTS_FILE], 0o600)  # fmt: skip
        port = int(running.broker_url.rsplit(":", 1)[1])
        assert connack(f"mqtt://127.0.0.1:{port}") == "Not authorized"  # no anonymous client
        assert running.broker_url.startswith("mqtt://staff:")  # `shopfloor control`'s login
        passwords = [a["password"] for a in accounts]
        commands = " ".join(command_lines(demo.process.pid))
        assert " gateway " in commands and not [p for p in passwords if p in commands]
        assert json.loads((demo.data_dir / "running.json").read_text())["broker_url"] == (
            f"mqtt://127.0.0.1:{port}"
        )
        demo.stop()
        logs = "".join(p.read_text(errors="replace") for p in running.session_dir.rglob("*.log"))
        assert not [p for p in passwords if p in logs + "".join(demo.output)]
        assert logs.count("not authorised") == 1  # the anonymous client above, no component
        assert running_demo(demo.data_dir) is None
    finally:
        stop_if_running(demo)
