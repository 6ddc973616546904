"""Secrets stay secret: in no log line at any level, on no command line, and the placeholders of
.env.example (or a guessable API token) refused at start."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr

from shopfloor.credentials import RedactingFilter, hide
from shopfloor.messages import AssetPath, Reading, encode_readings
from shopfloor.mqtt import make_client
from shopfloor.store import Point, StoreError, StoreSettings
from shopfloor.store.influx import InfluxStore
from tests.conftest import (
    API_TOKEN,
    EXAMPLE_PLANT,
    INFLUX_PASSWORD,
    INFLUX_USER,
    MQTT_PASSWORD,
    ROOT,
    assert_no_secret_in_logs,
    leaks,
)
from tests.servers import InfluxDB, free_port
from tests.test_end_to_end import wait_until
from tests.test_gateway_tls import SecureMosquitto

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def secured_store(server: InfluxDB, database: str, password: str = INFLUX_PASSWORD) -> InfluxStore:
    settings = StoreSettings(
        url=server.url,
        database=database,
        username=INFLUX_USER,
        password=SecretStr(password),
        write_api="v1",
    )
    return InfluxStore(settings)


def test_influxdb_1x_credentials_travel_in_a_header_that_no_request_log_shows(
    secured_influxdb: InfluxDB, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = secured_store(secured_influxdb, "header_auth")
    try:
        store.write([Point(PRESS, "power", T0, 12.5)])
        got = store.history(PRESS, "power", T0, T0 + timedelta(seconds=1))
    finally:
        store.close()
    assert [p.value for p in got] == [12.5]
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("HTTP Request: POST") and "/write?" in m for m in messages), messages
    assert not [m for m in messages if INFLUX_PASSWORD in m]


def test_a_wrong_influxdb_password_is_refused_without_being_shown(
    secured_influxdb: InfluxDB,
) -> None:
    with pytest.raises(StoreError) as refused:
        secured_store(secured_influxdb, "header_auth", password="not-the-password")
    assert "answered 401" in str(refused.value)
    assert "not-the-password" not in str(refused.value)


def test_redacting_filter_masks_hidden_secrets_in_messages_and_tracebacks() -> None:
    secret = "filter-test-secret-41"
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger(f"test.redacting.{uuid.uuid4().hex}")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    hide(secret)
    log.debug("POST http://h/write?u=admin&p=%s", secret)
    try:
        raise ValueError(f"refused mqtt://u:{secret}@broker")
    except ValueError:
        log.exception("connection failed")
    text = output.getvalue()
    assert secret not in text
    assert "POST http://h/write?u=admin&p=***" in text
    assert "ValueError: refused mqtt://u:***@broker" in text


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecureMosquitto]:
    server = SecureMosquitto(tmp_path / "broker", "gateway", MQTT_PASSWORD)
    server.start()
    yield server
    server.stop()


def command_lines() -> dict[int, str]:
    """The command line of every process, as `ps` shows it to every user of the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue  # exited meanwhile
    return found


@pytest.mark.parametrize("verbose", [True, False], ids=["debug", "info"])
def test_gateway_shows_no_secret_in_any_log_nor_on_any_command_line(
    secured_influxdb: InfluxDB, broker: SecureMosquitto, tmp_path: Path, verbose: bool
) -> None:
    """A gateway on a broker and an InfluxDB 1.x that both demand a password, its API guarded by
    a token; at DEBUG it logs every request it makes, at INFO no line per write."""
    database = f"gateway_secrets_{uuid.uuid4().hex[:8]}"
    api = f"http://127.0.0.1:{free_port()}"
    broker_url = broker.url("gateway", MQTT_PASSWORD)
    env = {
        **os.environ,
        "SHOPFLOOR_BROKER_URL": broker_url,
        "SHOPFLOOR_STORE_URL": secured_influxdb.url,
        "SHOPFLOOR_STORE_DATABASE": database,
        "SHOPFLOOR_STORE_USERNAME": INFLUX_USER,
        "SHOPFLOOR_STORE_PASSWORD": INFLUX_PASSWORD,
        "SHOPFLOOR_API_TOKEN": API_TOKEN,
    }
    argv = [
        sys.executable, "-m", "launcher", "gateway", "--plant", str(EXAMPLE_PLANT),
        "--client-id", f"gw-{uuid.uuid4().hex[:8]}", "--session-expiry", "60",
        "--spill", str(tmp_path / "spill.db"), "--http-port", api.rsplit(":", 1)[1],
        *(["--verbose"] if verbose else []),
    ]  # fmt: skip
    log_file = tmp_path / "gateway.log"
    with log_file.open("wb") as output:
        gateway = subprocess.Popen(argv, stdout=output, stderr=output, cwd=ROOT, env=env)
    publisher = make_client(broker_url, f"publisher-{uuid.uuid4().hex[:8]}")
    publisher.loop_start()
    reader = None
    try:
        wait_until(lambda: _answers(f"{api}/health"), 30, "the gateway's API")
        wait_until(publisher.is_connected, 15, "the publisher")
        reader = secured_store(secured_influxdb, database)
        stored = _publish_and_wait(publisher, reader, 0)
        lines_after_first_write = len(log_file.read_text().splitlines())
        for second in range(1, 5):
            stored = _publish_and_wait(publisher, reader, second)
        assert [p.value for p in stored] == [0.0, 1.0, 2.0, 3.0, 4.0]
        bearer = {"Authorization": f"Bearer {API_TOKEN}"}
        assert httpx.get(f"{api}/api/v1/plant", headers=bearer).status_code == 200
        processes = command_lines()
        assert "gateway" in processes[gateway.pid]
        assert not {pid: leaks(line) for pid, line in processes.items() if leaks(line)}
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        if reader is not None:
            reader.close()
        gateway.terminate()
        gateway.wait(15)
    lines = log_file.read_text().splitlines()
    if verbose:  # every request logged, so the check below has something to look at
        assert any(" DEBUG " in line for line in lines)
        requests = [line for line in lines if "HTTP Request: POST" in line and "/write?" in line]
        assert len(requests) >= 5, lines
    else:
        assert len(lines) == lines_after_first_write, lines  # no line per write
        assert not [line for line in lines if "/write" in line]
    assert_no_secret_in_logs(tmp_path)
    assert_no_secret_in_logs(broker.workdir)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _publish_and_wait(publisher: mqtt.Client, reader: InfluxStore, second: int) -> list[Point]:
    """Publish the press's power at T0 + `second` s with the value `second`; wait until the
    gateway has written it (one store write at least), and return what is stored."""
    reading = Reading(signal="power", value=float(second), ts=T0 + timedelta(seconds=second))
    publisher.publish(PRESS.topic(), encode_readings([reading]), qos=1)
    end = T0 + timedelta(seconds=60)
    wait_until(lambda: len(reader.history(PRESS, "power", T0, end)) > second, 20, "the point")
    return reader.history(PRESS, "power", T0, end)


ONE_LINE_REFUSALS = [
    (["gateway"], {"SHOPFLOOR_API_TOKEN": "change-me-api-token"}, "SHOPFLOOR_API_TOKEN (--api-token) is still the placeholder of .env.example"),
    (["gateway"], {"SHOPFLOOR_API_TOKEN": "fifteen-chars15"}, "SHOPFLOOR_API_TOKEN (--api-token) has 15 characters; an API token needs at least 16"),
    (["gateway"], {"SHOPFLOOR_STORE_TOKEN": "change-me-influxdb-admin-token"}, "SHOPFLOOR_STORE_TOKEN (--store-token) is still the placeholder"),
    (["analytics"], {"SHOPFLOOR_STORE_TOKEN": "change-me-influxdb-admin-token"}, "SHOPFLOOR_STORE_TOKEN (--store-token) is still the placeholder"),
    (["dashboard"], {"SHOPFLOOR_STORE_PASSWORD": "change-me-influxdb-password"}, "SHOPFLOOR_STORE_PASSWORD is still the placeholder"),
    (["gateway"], {"SHOPFLOOR_STORE_PASSWORD": "change-me-influxdb-password"}, "SHOPFLOOR_STORE_PASSWORD is still the placeholder"),
    (["simulate"], {"SHOPFLOOR_BROKER_URL": "mqtt://shopfloor:change-me-mqtt-password@mosquitto:1883"}, "the password in SHOPFLOOR_BROKER_URL (--broker) is still the placeholder"),
    (["edge", "run"], {"SHOPFLOOR_BROKER_URL": "mqtt://shopfloor:change-me-mqtt-password@mosquitto:1883"}, "the password in SHOPFLOOR_BROKER_URL (--broker) is still the placeholder"),
    (["gateway"], {"SHOPFLOOR_BROKER_URL": "mqtt://shopfloor:change-me-mqtt-password@mosquitto:1883"}, "the password in SHOPFLOOR_BROKER_URL (--broker) is still the placeholder"),
    (["dashboard"], {"SHOPFLOOR_BROKER_URL": "mqtt://shopfloor:change-me-mqtt-password@mosquitto:1883"}, "the password in SHOPFLOOR_BROKER_URL (--broker) is still the placeholder"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "env", "message"), ONE_LINE_REFUSALS)
def test_placeholders_and_short_api_tokens_are_refused_at_start_in_one_line(
    command: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "launcher", *command, "--plant", str(EXAMPLE_PLANT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1
    assert next(iter(env.values())) not in result.stderr


def test_an_api_token_of_16_characters_is_accepted() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "gateway", "--plant", str(EXAMPLE_PLANT),
         "--store-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "SHOPFLOOR_API_TOKEN": "sixteen-chars-16"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: InfluxDB at http://127.0.0.1:9 unreachable")
