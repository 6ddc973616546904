"""The influxdb-client write path (InfluxDB 2.x/3.x) against a real v2 write API.

No InfluxDB 2.x server can be installed here; VictoriaMetrics serves the same `/api/v2/write`
endpoint, so the points are checked through its export API instead of InfluxQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from shopfloor.messages import AssetPath
from shopfloor.store import Point, StoreSettings
from shopfloor.store.influx import InfluxStore
from tests.conftest import STORE_TOKEN
from tests.servers import VictoriaMetrics

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(Path(tmp_path_factory.mktemp("victoria")))
    server.start()
    yield server
    server.stop()


def exported(server: VictoriaMetrics, metric: str) -> list[dict[str, object]]:
    response = httpx.post(
        f"{server.url}/api/v1/export", data={"match[]": f"{metric}{{}}", "start": "0"}
    )
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines()]


def test_points_written_through_influxdb_client_arrive_with_tags_and_timestamps(
    victoria: VictoriaMetrics,
) -> None:
    settings = StoreSettings(
        url=victoria.url,
        database="shopfloor",
        token=SecretStr(STORE_TOKEN),
        org="demo",
        write_api="v2",
    )
    store = InfluxStore(settings)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    points = [
        Point(PRESS, "power", t0 + timedelta(seconds=i), 1.5 * i, unit="kW") for i in range(50)
    ]
    store.write(points)
    store.close()
    deadline = time.monotonic() + 20
    while not (series := exported(victoria, "reading_value")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(series) == 1
    labels = series[0]["metric"]
    assert isinstance(labels, dict)
    assert {k: labels[k] for k in ("tenant", "site", "area", "cell", "asset", "signal")} == {
        "tenant": "polimer", "site": "brest", "area": "moulding", "cell": "line-1",
        "asset": "imm-01", "signal": "power",
    }  # fmt: skip
    assert series[0]["values"] == [1.5 * i for i in range(50)]
    stamps = series[0]["timestamps"]
    assert isinstance(stamps, list)
    assert stamps == [int((t0 + timedelta(seconds=i)).timestamp() * 1000) for i in range(50)]
