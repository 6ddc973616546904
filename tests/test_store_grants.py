"""Least privilege on InfluxDB 1.x: the users and grants of docs/security.md, run as written on a
real influxd with authentication, give each service what it needs and nothing of the admin's."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr

from shopfloor.messages import AssetPath, Event, Reading, encode_readings, iso_utc
from shopfloor.mqtt import make_client
from shopfloor.store import ACK_PREFIX, Point, Scope, StoreError, StoreSettings
from shopfloor.store.influx import InfluxStore
from tests.conftest import (
    API_TOKEN,
    EXAMPLE_PLANT,
    INFLUX_PASSWORD,
    INFLUX_USER,
    ROOT,
    assert_no_secret_in_logs,
)
from tests.servers import InfluxDB, Mosquitto, free_port
from tests.test_end_to_end import gateway_options, shopfloor, stop_all, wait_until

SECURITY_DOC = ROOT / "docs" / "security.md"
READINGS, RESULTS = "shopfloor", "shopfloor-results"
# Each user of docs/security.md with the database it writes and the others it reads, as the
# document tells each service to be configured.
LAYOUT = {
    "gateway": (READINGS, ()),
    "gateway_api": (RESULTS, (READINGS,)),
    "analytics": (RESULTS, (READINGS,)),
    "dashboard": (RESULTS, (READINGS,)),
    "reader": (RESULTS, (READINGS,)),
}
RESULT_WRITERS = ("gateway_api", "analytics", "dashboard")
PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
ADMIN_STATEMENTS = (
    "CREATE USER intruder WITH PASSWORD 'intruder-password'",
    f"GRANT ALL ON {READINGS} TO reader",
    f"DROP DATABASE {READINGS}",
    "SHOW USERS",
)


def documented_grants() -> list[str]:
    """The InfluxQL statements of docs/security.md's `sql` block, comments left out."""
    blocks = re.findall(r"```sql\n(.*?)```", SECURITY_DOC.read_text(), re.DOTALL)
    assert len(blocks) == 1, "docs/security.md has one InfluxQL block"
    lines = (line.strip() for line in blocks[0].splitlines())
    return [line for line in lines if line and not line.startswith("--")]


def query(
    server: InfluxDB, auth: tuple[str, str], statement: str, database: str = READINGS
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/query", params={"db": database}, data={"q": statement}, auth=auth
    )


def opened(
    server: InfluxDB, user: str, password: str, layout: tuple[str, tuple[str, ...]] | None = None
) -> InfluxStore:
    """The store as the service of `user` opens it (LAYOUT), or with another layout."""
    database, read_also = layout or LAYOUT.get(user, (READINGS, ()))
    return InfluxStore(
        StoreSettings(
            url=server.url,
            database=database,
            read_also=read_also,
            username=user,
            password=SecretStr(password),
            write_api="v1",
        )
    )


def power(second: int) -> Point:
    return Point(PRESS, "power", T0 + timedelta(seconds=second), float(second), unit="kW")


def oee(second: int) -> Point:
    return Point(PRESS, "kpi.oee", T0 + timedelta(seconds=second), 0.5 + second / 1000)


def window(first: int, last: int) -> tuple[datetime, datetime]:
    return T0 + timedelta(seconds=first), T0 + timedelta(seconds=last + 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    started = InfluxDB(tmp_path_factory.mktemp("influxdb-grants"), (INFLUX_USER, INFLUX_PASSWORD))
    started.start()
    yield started
    started.stop()
    assert_no_secret_in_logs(started.workdir)


@pytest.fixture(scope="module")
def passwords(server: InfluxDB) -> dict[str, str]:
    """The documented statements run by the admin, each user with a password of its own."""
    made: dict[str, str] = {}
    for statement in documented_grants():
        created = re.fullmatch(r"CREATE USER (\w+) WITH PASSWORD '<password>'", statement)
        if created:
            made[created.group(1)] = secrets.token_urlsafe(16)
            statement = statement.replace("<password>", made[created.group(1)])
        response = query(server, (INFLUX_USER, INFLUX_PASSWORD), statement)
        assert response.status_code == 200 and "error" not in response.text, statement
    assert set(made) == set(LAYOUT)
    return made


@pytest.fixture(scope="module")
def stores(server: InfluxDB, passwords: dict[str, str]) -> Iterator[dict[str, InfluxStore]]:
    """Each documented user's store, opened as its service opens it."""
    opened_stores = {user: opened(server, user, passwords[user]) for user in LAYOUT}
    yield opened_stores
    for store in opened_stores.values():
        store.close()


def test_only_the_gateway_writes_readings_and_it_reads_nothing_back(
    stores: dict[str, InfluxStore], server: InfluxDB, passwords: dict[str, str]
) -> None:
    stores["gateway"].write([power(0)])
    for user in (*RESULT_WRITERS, "reader"):
        assert stores[user].history(PRESS, "power", *window(0, 0)) == [power(0)], user
    with pytest.raises(StoreError, match="gateway not authorized to execute statement"):
        stores["gateway"].history(PRESS, "power", *window(0, 0))
    for user in (*RESULT_WRITERS, "reader"):  # a forged reading, from any other service
        forger = opened(server, user, passwords[user], (READINGS, ()))
        try:
            with pytest.raises(StoreError, match="403") as refused:
                forger.write([power(1)])
            assert not refused.value.rejected, user  # not the points' fault: a spill keeps them
        finally:
            forger.close()
    assert stores["reader"].history(PRESS, "power", *window(1, 1)) == []


@pytest.mark.parametrize("user", RESULT_WRITERS)
def test_the_results_are_written_apart_and_read_with_the_readings(
    stores: dict[str, InfluxStore], user: str
) -> None:
    second = 10 + RESULT_WRITERS.index(user)
    stores["gateway"].write([power(second)])
    stores[user].write([oee(second)])
    for reader in (*RESULT_WRITERS, "reader"):
        latest = stores[reader].latest(Scope.of(PRESS))
        assert {p.signal for p in latest} >= {"power", "kpi.oee"}, reader
        assert stores[reader].history(PRESS, "kpi.oee", *window(second, second)) == [oee(second)]
        assert stores[reader].before(PRESS, "power", window(second, second)[1]) == power(second)
    with pytest.raises(StoreError, match="403"):
        stores["reader"].write([oee(second)])


def test_a_wrong_password_opens_nothing(server: InfluxDB, passwords: dict[str, str]) -> None:
    with pytest.raises(StoreError, match="401"):
        opened(server, "gateway", "not-the-password")


@pytest.mark.parametrize("user", list(LAYOUT))
def test_no_service_user_administers_the_server(
    server: InfluxDB, passwords: dict[str, str], user: str
) -> None:
    for statement in ADMIN_STATEMENTS:
        response = query(server, (user, passwords[user]), statement)
        assert response.status_code == 403, statement
        assert "requires admin privilege" in response.json()["error"], statement
    shown = query(server, (INFLUX_USER, INFLUX_PASSWORD), "SHOW DATABASES").text
    assert f'"{READINGS}"' in shown and f'"{RESULTS}"' in shown


def test_the_write_grant_also_deletes(
    stores: dict[str, InfluxStore], server: InfluxDB, passwords: dict[str, str]
) -> None:
    """What docs/security.md says remains: WRITE on a database includes DELETE (and DROP
    SERIES), so a service user can erase history; backups are the answer, not grants."""
    stores["gateway"].write([power(40)])
    assert stores["reader"].history(PRESS, "power", *window(40, 40)) == [power(40)]
    start, end = (stamp.isoformat() for stamp in window(40, 40))
    statement = (
        f"DELETE FROM reading WHERE signal = 'power' AND time >= '{start}' AND time < '{end}'"
    )
    assert query(server, ("gateway", passwords["gateway"]), statement).status_code == 200
    assert stores["reader"].history(PRESS, "power", *window(40, 40)) == []


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    client = make_client(mosquitto.url, client_id=f"grants-publisher-{uuid.uuid4().hex[:8]}")
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def test_the_gateway_stores_with_its_write_grant_and_serves_with_its_api_user(
    server: InfluxDB,
    passwords: dict[str, str],
    stores: dict[str, InfluxStore],
    mosquitto: Mosquitto,
    publisher: mqtt.Client,
    tmp_path: Path,
) -> None:
    """`shopfloor gateway` configured as docs/security.md says: ingest with the `gateway` user,
    the HTTP API with `gateway_api` (SHOPFLOOR_API_STORE_*), which reads the readings and
    writes an acknowledgement into the results."""
    port = free_port()
    env = {
        "SHOPFLOOR_STORE_USERNAME": "gateway",
        "SHOPFLOOR_STORE_PASSWORD": passwords["gateway"],
        "SHOPFLOOR_API_STORE_USERNAME": "gateway_api",
        "SHOPFLOOR_API_STORE_PASSWORD": passwords["gateway_api"],
        "SHOPFLOOR_API_STORE_DATABASE": RESULTS,
        "SHOPFLOOR_API_STORE_READ_ALSO": READINGS,
        "SHOPFLOOR_STORE_WRITE_API": "v1",
    }
    command = [
        "gateway", "--plant", str(EXAMPLE_PLANT), "--broker", mosquitto.url,
        "--store-url", server.url, "--store-database", READINGS, "--api-token", API_TOKEN,
        *gateway_options(tmp_path), "--http-port", str(port),
    ]  # fmt: skip
    stores["analytics"].write([Point.from_event(PRESS, Event(name="bearing_wear", start=T0))])
    process = shopfloor(*command, log=tmp_path / "gateway.log", env=env)
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    try:
        wait_until(lambda: "HTTP API on" in (tmp_path / "gateway.log").read_text(), 30, "the API")
        time.sleep(0.5)  # the subscription settles at the broker
        readings = [
            Reading(signal="power", value=float(s), ts=window(s, s)[0]) for s in range(50, 55)
        ]
        publisher.publish(PRESS.topic(), encode_readings(readings), qos=1)
        span = {"start": iso_utc(window(50, 54)[0]), "end": iso_utc(window(50, 54)[1])}
        history = f"/api/v1/history/{PRESS.asset}/power"
        wait_until(lambda: len(api.get(history, params=span).json()["points"]) == 5, 20, "5 points")
        acknowledged = api.post(
            f"/api/v1/events/{PRESS.asset}/bearing_wear/acknowledgement",
            json={"start": iso_utc(T0)},
        )
        assert acknowledged.status_code == 200, acknowledged.text
    finally:
        api.close()
        stop_all([process])
    values = [p.value for p in stores["reader"].history(PRESS, "power", *window(50, 54))]
    assert values == [50.0, 51.0, 52.0, 53.0, 54.0]
    acks = stores["dashboard"].latest(Scope.of(PRESS))
    assert any(p.signal == f"{ACK_PREFIX}bearing_wear" for p in acks)
    in_readings = query(server, (INFLUX_USER, INFLUX_PASSWORD), "SHOW TAG VALUES WITH KEY = signal")
    assert f"{ACK_PREFIX}bearing_wear" not in in_readings.text  # the ack went to the results
    assert_no_secret_in_logs(tmp_path)


def test_a_second_grant_replaces_the_first(
    server: InfluxDB, stores: dict[str, InfluxStore]
) -> None:
    """Why docs/security.md grants ALL, not READ and WRITE, on the results: on 1.x the second
    grant on a database replaces the first, and the user could no longer write."""
    admin, password = (INFLUX_USER, INFLUX_PASSWORD), secrets.token_urlsafe(16)
    for statement in (
        f"CREATE USER both WITH PASSWORD '{password}'",
        f"GRANT WRITE ON {READINGS} TO both",
        f"GRANT READ ON {READINGS} TO both",
    ):
        assert query(server, admin, statement).status_code == 200
    store = opened(server, "both", password)
    try:
        stores["gateway"].write([power(60)])
        assert store.history(PRESS, "power", *window(60, 60)) == [power(60)]
        with pytest.raises(StoreError, match="403"):
            store.write([power(61)])
        assert stores["reader"].history(PRESS, "power", *window(61, 61)) == []
    finally:
        store.close()


def test_the_buckets_read_come_from_the_environment_and_go_to_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOOR_STORE_DATABASE", RESULTS)
    monkeypatch.setenv("SHOPFLOOR_STORE_READ_ALSO", f" {READINGS}, {RESULTS} ,")
    settings = StoreSettings.from_env()
    assert settings.databases == (RESULTS, READINGS)  # the one written first, each once
    assert settings.to_env()["SHOPFLOOR_STORE_READ_ALSO"] == f"{READINGS},{RESULTS}"
    monkeypatch.setenv("SHOPFLOOR_API_STORE_READ_ALSO", "")
    monkeypatch.setenv("SHOPFLOOR_API_STORE_DATABASE", READINGS)
    api = settings.with_env("SHOPFLOOR_API_STORE_")
    assert (api.databases, api.url) == ((READINGS,), settings.url)
    assert "SHOPFLOOR_STORE_READ_ALSO" not in api.to_env()
