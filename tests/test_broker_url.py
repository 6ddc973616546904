"""A broker URL carries its port: one without is refused with the fix, wherever a broker URL is
taken (every command's --broker and SHOPFLOOR_BROKER_URL, the edge config, the client every
component connects with), instead of quietly connecting to 1883."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from edge.config import load_edge_config
from shopfloor.config import ConfigError
from shopfloor.mqtt import BrokerUrlError, broker_address, publish_once, read_retained
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import Mosquitto

PORTLESS = "mqtt://edge:s3cret-pw@127.0.0.1"
REFUSAL = (
    "broker URL 'mqtt://edge:***@127.0.0.1' has no port: write mqtt://edge:***@127.0.0.1:1883 "
    "(1883 is the usual mqtt:// port) or the port the broker listens on"
)


@pytest.mark.parametrize(
    "command",
    [["simulate"], ["edge", "run"], ["gateway"], ["dashboard"], ["control", "speed", "60"]],
    ids=" ".join,
)
def test_every_command_refuses_a_broker_url_without_a_port(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "launcher", *command, "--plant", str(EXAMPLE_PLANT)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "SHOPFLOOR_BROKER_URL": PORTLESS},
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (
        2,
        f"error: SHOPFLOOR_BROKER_URL (--broker): {REFUSAL}\n",
    )


def test_edge_check_refuses_a_broker_url_without_a_port_on_its_line(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(f"plant: {EXAMPLE_PLANT}\nbroker:\n  url: mqtts://broker.local/?ca=ca.pem\n")
    with pytest.raises(ConfigError) as refused:
        load_edge_config(config)
    assert str(refused.value) == (
        f"{config}:3: broker.url: broker URL 'mqtts://broker.local/?ca=ca.pem' has no port: "
        "write mqtts://broker.local:8883/?ca=ca.pem (8883 is the usual mqtts:// port) or the port "
        "the broker listens on"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mqtt://h:99999", "broker URL 'mqtt://h:99999': the port is not a number from 1 to 65535"),
        ("mqtt://h:0", "broker URL 'mqtt://h:0': the port is not a number from 1 to 65535"),
        (
            "http://h:1883",
            "broker URL 'http://h:1883' is not mqtt://host:port or mqtts://host:port",
        ),
        ("mqtt://:1883", "broker URL 'mqtt://:1883' is not mqtt://host:port or mqtts://host:port"),
    ],
)
def test_other_unusable_broker_urls_are_named(url: str, problem: str) -> None:
    with pytest.raises(BrokerUrlError) as refused:
        broker_address(url)
    assert str(refused.value) == problem


def test_a_client_refuses_the_url_without_a_port_and_works_with_it(mosquitto: Mosquitto) -> None:
    """The run-time check, for what takes a URL without a command line (the dashboard's pages,
    a supervisor's environment): the broker's own URL without its port is refused before any
    connection is tried, and with the port the message goes through."""
    topic = f"test/broker-url/{uuid.uuid4().hex[:8]}"
    portless = mosquitto.url.rsplit(":", 1)[0]
    assert broker_address(mosquitto.url) == ("127.0.0.1", mosquitto.port)
    with pytest.raises(BrokerUrlError, match=r"has no port: write mqtt://127\.0\.0\.1:1883 "):
        publish_once(portless, topic, b"lost", timeout_s=2)
    publish_once(mosquitto.url, topic, b"kept", retain=True)
    assert read_retained(mosquitto.url, topic) == b"kept"
