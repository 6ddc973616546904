"""The edge agent as a device runs it, against real Mosquitto and the simulator's OPC UA servers:
browse -> config -> run, a secured machine, a retrofit current clamp, and the health messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from shopfloor.messages import (
    decode_edge_state,
    decode_edge_status,
    edge_subscription,
    subscription,
)
from shopfloor.mqtt import make_client
from shopfloor.plant import load_plant
from tests.conftest import OPCUA_PASSWORD, ROOT, assert_no_secret_in_logs
from tests.servers import Mosquitto, free_port, port_open
from tests.test_edge import Received
from tests.test_edge_config import RETROFIT_PLANT
from tests.test_end_to_end import plant_on_free_ports, shopfloor, stop_all, wait_until


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


class Listener:
    """Readings of a tenant, and the latest retained edge message per topic."""

    def __init__(self, broker: Mosquitto, tenant: str):
        self.received = Received()
        self.edge: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.client = make_client(
            broker.url,
            f"listener-{uuid.uuid4().hex[:8]}",
            [(subscription(tenant), 1), (edge_subscription(tenant), 1)],
        )
        self.client.on_message = self._on_message
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "the listener")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if "/_edge/" in msg.topic:
            with self._lock:
                self.edge[msg.topic] = bytes(msg.payload)
        else:
            self.received.on_message(client, userdata, msg)

    def edge_message(self, topic: str) -> bytes | None:
        with self._lock:
            return self.edge.get(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop_all([p for p in started if p.poll() is None])


def run_agent(
    processes: list[subprocess.Popen[bytes]],
    config: Path,
    broker: Mosquitto,
    *options: str,
    env: dict[str, str] | None = None,
) -> None:
    """Start the agent on a config file, logging next to it; the fixture stops it."""
    command = ["edge", "run", "--config", str(config), "--broker", broker.url, *options]
    processes.append(shopfloor(*command, log=config.parent / "edge.log", env=env))


def opcua_url(plant_file: Path, machine_id: str) -> str:
    machines = {m.id: m for _, m in load_plant(plant_file).machines()}
    endpoint = machines[machine_id].opcua
    assert endpoint is not None
    return endpoint.endpoint


def wait_for_port(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    wait_until(lambda: port_open(port), 60, f"the OPC UA server on {port}")


def test_browse_writes_a_config_the_agent_runs(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    plant = plant_on_free_ports(tmp_path)
    args = ["--plant", str(plant), "--broker", mosquitto.url]
    processes.append(shopfloor("simulate", *args, log=tmp_path / "simulate.log"))
    url = opcua_url(plant, "imm-01")
    wait_for_port(url)
    config = tmp_path / "edge.yaml"
    browsed = run(
        "edge", "browse", url, "--machine", "imm-01", "--plant", str(plant), "-o", str(config)
    )
    assert browsed.returncode == 0, browsed.stderr
    text = config.read_text()
    node = "nsu=urn:shopfloor:machines;s=imm-01.melt_temperature"
    assert (
        f'      - {{signal: melt_temperature, node: "{node}"}}  # imm-01/melt_temperature = '
        in text
    )
    assert "manufacturer" not in text.lower()  # identification properties are not signals
    assert "start" not in text.lower().replace("starter", "")  # nor are methods
    config.write_text(text + "sensors: []\n")
    checked = run("edge", "check", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "OPC UA machines imm-01, 0 sensor topics" in checked.stdout

    listener = Listener(mosquitto, "polimer")
    try:
        run_agent(
            processes,
            config,
            mosquitto,
            "--buffer",
            str(tmp_path / "edge.db"),
            "--metrics-port",
            "0",
        )
        wait_until(lambda: listener.received.seen(0, "imm-01"), 30, "imm-01 through the config")
        signals = {r.signal for r in listener.received.since(0, "imm-01")}
        assert {"state", "part_count", "melt_temperature"} <= signals
        time.sleep(1)
        assert not listener.received.seen(0, "cnc-01") and not listener.received.seen(0, "env-01")
    finally:
        listener.close()


def test_secured_machine_is_read_with_a_certificate_and_a_password(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    made = run("edge", "certificate", str(tmp_path / "certs"))
    assert made.returncode == 0, made.stderr
    key = tmp_path / "certs" / "edge-key.pem"
    assert (tmp_path / "certs" / "edge-cert.der").is_file()
    assert key.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    plant = plant_on_free_ports(tmp_path)
    processes.append(
        shopfloor(
            "simulate",
            "--plant",
            str(plant),
            "--broker",
            mosquitto.url,
            "--opcua-secure",
            str(tmp_path / "server-certs"),
            log=tmp_path / "simulate.log",
            env={"SHOPFLOOR_OPCUA_USERS": f"operator:{OPCUA_PASSWORD}"},
        )
    )
    url = opcua_url(plant, "imm-01")
    wait_for_port(url)
    certs = ["--certificate", str(tmp_path / "certs" / "edge-cert.der"), "--private-key", str(key)]
    browse = ["edge", "browse", url, "--machine", "imm-01", "-o", str(tmp_path / "browsed.yaml")]
    refused = run(
        *browse, "--username", "operator", *certs, env={"SHOPFLOOR_OPCUA_PASSWORD": "wrong"}
    )
    assert refused.returncode == 2 and refused.stderr.startswith(f"error: cannot browse {url}: ")
    browsed = run(
        *browse, "--username", "operator", *certs, env={"SHOPFLOOR_OPCUA_PASSWORD": OPCUA_PASSWORD}
    )
    assert browsed.returncode == 0, browsed.stderr
    assert "{signal: melt_temperature, " in (tmp_path / "browsed.yaml").read_text()
    config = tmp_path / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "plant": "plant.yaml",
                "device": "pi-secure",
                "health": {"metrics_port": 0},
                "sensors": [],
                "opcua": [
                    {
                        "machine": "imm-01",
                        "username": "operator",
                        "password": "${TEST_OPCUA_PASSWORD}",
                        "security": {
                            "policy": "Basic256Sha256",
                            "mode": "SignAndEncrypt",
                            "certificate": "certs/edge-cert.der",
                            "private_key": "certs/edge-key.pem",
                        },
                    }
                ],
            }
        )
    )
    listener = Listener(mosquitto, "polimer")
    try:
        run_agent(processes, config, mosquitto, env={"TEST_OPCUA_PASSWORD": OPCUA_PASSWORD})
        wait_until(lambda: listener.received.seen(0, "imm-01"), 45, "imm-01 over Sign & Encrypt")
    finally:
        listener.close()
    assert_no_secret_in_logs(tmp_path)


def retrofit_config(directory: Path, metrics_port: int) -> Path:
    (directory / "plant.yaml").write_text(RETROFIT_PLANT)
    config = directory / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "plant": "plant.yaml",
                "device": "pi-lathe",
                "buffer": {"path": "edge.db"},
                "health": {"status_interval_s": 1, "metrics_port": metrics_port},
                "sensors": [
                    {
                        "topic": "kit/lathe-02",
                        "asset": "lathe-02",
                        "signal": "current",
                        "value": "i",
                        "ts": None,
                        "scale": 0.001,
                    },
                ],
                "current_clamps": [
                    {
                        "machine": "lathe-02",
                        "current_signal": "current",
                        "idle_above": 1.0,
                        "running_above": 5.0,
                        "hysteresis": 0.5,
                    },
                ],
            }
        )
    )
    return config


def publish(broker: Mosquitto, topic: str, payloads: list[bytes]) -> None:
    client = make_client(broker.url, f"kit-{uuid.uuid4().hex[:6]}")
    client.loop_start()
    wait_until(client.is_connected, 10, "the sensor kit")
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
        time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


def test_current_clamp_gives_a_retrofit_machine_its_state_and_health_is_reported(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    config = retrofit_config(tmp_path, port)
    listener = Listener(mosquitto, "sf")
    state_topic, status_topic = "sf/lab/_edge/pi-lathe/state", "sf/lab/_edge/pi-lathe/status"
    command = ["edge", "run", "--config", str(config), "--broker", mosquitto.url]
    try:
        agent = shopfloor(*command, log=tmp_path / "edge.log")
        processes.append(agent)
        wait_until(lambda: listener.edge_message(state_topic) is not None, 20, "the birth message")
        birth = decode_edge_state(listener.edge_message(state_topic) or b"")
        assert (birth.device, birth.online, birth.started is not None) == ("pi-lathe", True, True)

        payloads = [json.dumps({"i": m}).encode() for m in (200, 6000, 5800, 4700, 2500, 300)]
        publish(mosquitto, "kit/lathe-02", [*payloads, b"broken"])
        wait_until(lambda: len(listener.received.since(0, "lathe-02")) >= 9, 20, "lathe readings")
        lathe = listener.received.since(0, "lathe-02")
        assert [r.value for r in lathe if r.signal == "current"] == pytest.approx(
            [0.2, 6.0, 5.8, 4.7, 2.5, 0.3]
        )
        assert [r.value for r in lathe if r.signal == "state"] == ["off", "running", "idle", "off"]

        def reported() -> bool:
            payload = listener.edge_message(status_topic)
            return payload is not None and decode_edge_status(payload).rejected_total == 1

        wait_until(reported, 10, "a status counting the broken payload")
        status = decode_edge_status(listener.edge_message(status_topic) or b"")
        assert (status.readings_total, status.sources_total, status.broker_connected) == (
            10,
            0,
            True,
        )
        assert status.forwarded_total >= 1 and status.dropped_total == 0

        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        )
        assert 'shopfloor_edge_readings_total{device="pi-lathe"} 10\n' in metrics
        assert 'shopfloor_edge_rejected_total{device="pi-lathe"} 1\n' in metrics
        asked = run("edge", "status", "--url", f"http://127.0.0.1:{port}", "--json")
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["readings_total"] == 10

        agent.send_signal(signal.SIGKILL)  # a power cut: the broker says it, after the keep-alive
        agent.wait()
        killed = time.monotonic()
        wait_until(
            lambda: not decode_edge_state(listener.edge_message(state_topic) or b"{}").online,
            25, "the last will",
        )  # fmt: skip
        assert time.monotonic() - killed <= 25

        agent = shopfloor(*command, log=tmp_path / "edge.log")
        processes.append(agent)
        wait_until(
            lambda: decode_edge_state(listener.edge_message(state_topic) or b"").online,
            20,
            "a new birth",
        )
        agent.terminate()  # a clean stop says offline itself, at once
        assert agent.wait(15) == 0 or agent.returncode == -signal.SIGTERM
        wait_until(
            lambda: not decode_edge_state(listener.edge_message(state_topic) or b"").online,
            5,
            "the goodbye",
        )
    finally:
        listener.close()


def test_an_agent_of_sensor_kits_runs_without_asyncio_and_says_goodbye(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Without an OPC UA or Modbus source the agent's jobs run in its own thread and asyncio is
    never imported (Python logs every import the process makes)."""
    config = retrofit_config(tmp_path, metrics_port=0)
    log = tmp_path / "edge.log"
    listener = Listener(mosquitto, "sf")
    state_topic = "sf/lab/_edge/pi-lathe/state"

    def online() -> bool:
        payload = listener.edge_message(state_topic)
        return payload is not None and decode_edge_state(payload).online

    try:
        command = ["edge", "run", "--config", str(config), "--broker", mosquitto.url]
        agent = shopfloor(*command, log=log, env={"PYTHONPROFILEIMPORTTIME": "1"})
        processes.append(agent)
        wait_until(online, 20, "the birth message")
        publish(mosquitto, "kit/lathe-02", [json.dumps({"i": 6000}).encode()])
        wait_until(lambda: len(listener.received.since(0, "lathe-02")) >= 2, 10, "the readings")
        agent.terminate()
        assert agent.wait(15) == 0
        wait_until(lambda: not online(), 5, "the goodbye")
        lathe = listener.received.since(0, "lathe-02")
    finally:
        listener.close()
    assert [(r.signal, r.value) for r in lathe] == [("current", 6.0), ("state", "running")]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in log.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert "paho.mqtt.client" in imported and "asyncio" not in imported


def test_status_of_an_agent_that_is_not_running_is_one_line() -> None:
    result = run("edge", "status", "--url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no edge agent answers at http://127.0.0.1:9")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("url", ["http://a b", "http://[::1"])
def test_status_at_a_url_that_is_no_url_is_one_line(url: str) -> None:
    result = run("edge", "status", "--url", url)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: --url / SHOPFLOOR_EDGE_STATUS_URL: {url!r}")
    assert result.stderr.count("\n") == 1


def test_bad_edge_config_is_one_line_from_run_and_check(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(f"plant: {ROOT / 'examples' / 'plant.yaml'}\nopcua:\n  - machine: imm-99\n")
    for command in (["edge", "check", str(config)], ["edge", "run", "--config", str(config)]):
        result = run(*command)
        assert result.returncode == 2
        assert (
            result.stderr == f"error: {config}:3: opcua[0].machine: names no machine of the plant\n"
        )


def test_bad_broker_url_is_one_line(tmp_path: Path) -> None:
    result = run("edge", "run", "--broker", "http://nowhere", "--buffer", str(tmp_path / "q.db"))
    assert result.returncode == 2
    assert result.stderr == (
        "error: SHOPFLOOR_BROKER_URL (--broker): "
        "broker URL 'http://nowhere' is not mqtt://host:port or mqtts://host:port\n"
    )
    assert not os.path.exists(tmp_path / "q.db")  # refused before anything is opened


_SOURCE_LIBRARIES_PROBE = """
import sys
from edge.agent import EdgeAgent
from edge.config import load_edge_config
from shopfloor.diskqueue import DiskQueue
config, plant = load_edge_config(sys.argv[1])
agent = EdgeAgent(config, plant, DiskQueue(config.buffer.path, 2**20, 3600))
libraries = {"asyncio", "asyncua", "pymodbus"} & set(sys.modules)
print(len(agent.sources), len(agent.modbus), sorted(libraries))
"""


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (None, "0 0 []"),  # the retrofit kit: sensors and a current clamp
        ({"opcua": None}, "3 0 ['asyncio', 'asyncua']"),  # every machine with an endpoint
        ({"opcua": [], "modbus": [{"machine": "imm-01"}]}, "0 1 ['asyncio', 'pymodbus']"),
    ],
)
def test_the_agent_imports_only_the_libraries_of_its_sources(
    sources: dict[str, object] | None, expected: str, tmp_path: Path
) -> None:
    """asyncua alone costs a device 23 MB: an agent reading sensor kits never loads it."""
    config = tmp_path / "edge.yaml"
    if sources is None:
        retrofit_config(tmp_path, metrics_port=0)
    else:
        plant = str(ROOT / "examples/plant.yaml")
        config.write_text(yaml.safe_dump({"plant": plant, "buffer": {"path": "q.db"}, **sources}))
    probe = [sys.executable, "-c", _SOURCE_LIBRARIES_PROBE, str(config)]
    result = subprocess.run(probe, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
