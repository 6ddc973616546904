"""Shared fixtures: real servers, stores on both backends, the example plant; and the guard
that fails a test when a secret of the suite shows in a log."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopfloor.plant import Plant, load_plant
from shopfloor.store import Store, StoreSettings, open_store
from tests.servers import InfluxDB, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLANT = ROOT / "examples" / "plant.yaml"

# The async OPC UA server and client fixtures, for every test module that asks for them.
pytest_plugins = ["tests.opcua_fixtures"]

# Every secret the tests hand to servers and components: none may appear in any log.
MQTT_PASSWORD = "mqtt-test-password-5f3a"
INFLUX_USER = "admin"
INFLUX_PASSWORD = "influx-test-password-9c1e"
STORE_TOKEN = "store-test-token-2d7b"
API_TOKEN = "api-test-token-0e48b6"
OPCUA_PASSWORD = "opcua-test-password-81d4"
SECRETS = (MQTT_PASSWORD, INFLUX_PASSWORD, STORE_TOKEN, API_TOKEN, OPCUA_PASSWORD)


def leaks(text: str) -> list[str]:
    """The secrets of the suite that `text` shows."""
    return [secret for secret in SECRETS if secret in text]


def assert_no_secret_in_logs(directory: Path) -> None:
    """The log files a server or process wrote in `directory` show no secret."""
    found = {
        log.name: leaks(log.read_text(errors="replace")) for log in sorted(directory.glob("*.log"))
    }
    assert not {name: shown for name, shown in found.items() if shown}


class _SecretWatch(logging.Handler):
    """Keeps the log records that show a secret of the suite."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaked: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if leaks(text):
            self.leaked.append(text)


@pytest.fixture(autouse=True)
def _no_secret_in_log_records() -> Iterator[None]:
    """Fail a test when a record logged in this process shows a secret of the suite."""
    watch = _SecretWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    try:
        yield
    finally:
        root.removeHandler(watch)
    assert not watch.leaked, f"secrets logged: {watch.leaked}"


@pytest.fixture(autouse=True)
def _real_main_module() -> Iterator[None]:
    """Streamlit's AppTest runs a page as `__main__` and leaves it there; a process started with
    "spawn" imports `__main__` again, so every test gets the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()
    assert_no_secret_in_logs(server.workdir)


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()
    assert_no_secret_in_logs(server.workdir)


@pytest.fixture(scope="session")
def secured_influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """InfluxDB 1.x that lets in only INFLUX_USER with INFLUX_PASSWORD, and logs every request."""
    server = InfluxDB(tmp_path_factory.mktemp("influxdb-auth"), (INFLUX_USER, INFLUX_PASSWORD))
    server.start()
    yield server
    server.stop()
    assert_no_secret_in_logs(server.workdir)


@pytest.fixture(params=["embedded", "influxdb"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """Settings for a fresh, empty store on each backend."""
    if request.param == "embedded":
        return StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}")
    server: InfluxDB = request.getfixturevalue("influxdb")
    return StoreSettings(url=server.url, database=f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[Store]:
    opened = open_store(store_settings)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def example_plant() -> Plant:
    return load_plant(EXAMPLE_PLANT)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), to fill up; needs root, as `make test` in CI has."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)
