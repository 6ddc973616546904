"""Shared fixtures: real servers, stores on both backends, the example plant."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


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
