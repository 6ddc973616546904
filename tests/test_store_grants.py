"""Least privilege on InfluxDB 1.x: the users and grants of docs/security.md, run as written on a
real influxd with authentication, give each service what it needs and nothing of the admin's."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr

from shopfloor.messages import AssetPath, Reading, encode_readings
from shopfloor.mqtt import make_client
from shopfloor.plant import Plant
from shopfloor.store import Point, Scope, StoreError, StoreSettings
from shopfloor.store.influx import InfluxStore
from tests.conftest import INFLUX_PASSWORD, INFLUX_USER, ROOT, assert_no_secret_in_logs
from tests.servers import InfluxDB, Mosquitto
from tests.test_gateway import start_gateway, wait_until

SECURITY_DOC = ROOT / "docs" / "security.md"
DATABASE = "shopfloor"
SERVICE_USERS = ("gateway", "analytics", "dashboard")
PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
ADMIN_STATEMENTS = (
    "CREATE USER intruder WITH PASSWORD 'intruder-password'",
    f"GRANT ALL ON {DATABASE} TO reader",
    f"DROP DATABASE {DATABASE}",
    "SHOW USERS",
)


def documented_grants() -> list[str]:
    """The InfluxQL statements of docs/security.md's `sql` block, comments left out."""
    blocks = re.findall(r"```sql\n(.*?)```", SECURITY_DOC.read_text(), re.DOTALL)
    assert len(blocks) == 1, "docs/security.md has one InfluxQL block"
    lines = (line.strip() for line in blocks[0].splitlines())
    return [line for line in lines if line and not line.startswith("--")]


def query(server: InfluxDB, auth: tuple[str, str], statement: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/query", params={"db": DATABASE}, data={"q": statement}, auth=auth
    )


def opened(server: InfluxDB, user: str, password: str) -> InfluxStore:
    return InfluxStore(
        StoreSettings(
            url=server.url,
            database=DATABASE,
            username=user,
            password=SecretStr(password),
            write_api="v1",
        )
    )


def power(second: int) -> Point:
    return Point(PRESS, "power", T0 + timedelta(seconds=second), float(second), unit="kW")


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
    assert set(made) == {*SERVICE_USERS, "reader"}
    return made


@pytest.mark.parametrize("user", SERVICE_USERS)
def test_each_service_user_writes_and_reads_its_database(
    server: InfluxDB, passwords: dict[str, str], user: str
) -> None:
    store = opened(server, user, passwords[user])
    try:
        store.write([power(SERVICE_USERS.index(user))])
        assert power(SERVICE_USERS.index(user)) in store.latest(Scope.of(PRESS)) + store.history(
            PRESS, "power", T0, T0 + timedelta(minutes=1)
        )
    finally:
        store.close()


def test_the_reader_reads_but_cannot_write(server: InfluxDB, passwords: dict[str, str]) -> None:
    writer, reader = (
        opened(server, "gateway", passwords["gateway"]),
        opened(server, "reader", passwords["reader"]),
    )
    try:
        writer.write([power(30)])
        assert reader.history(
            PRESS, "power", T0 + timedelta(seconds=30), T0 + timedelta(seconds=31)
        ) == [power(30)]
        with pytest.raises(StoreError, match="403") as refused:
            reader.write([power(31)])
        assert not refused.value.rejected  # not the points' fault: the spill keeps them
        assert (
            writer.history(PRESS, "power", T0 + timedelta(seconds=31), T0 + timedelta(seconds=32))
            == []
        )
    finally:
        writer.close()
        reader.close()
    line = f"reading,tenant=polimer value=1 {int(T0.timestamp()) * 10**9}"
    response = httpx.post(
        f"{server.url}/write",
        params={"db": DATABASE},
        content=line,
        auth=("reader", passwords["reader"]),
    )
    assert response.status_code == 403


def test_a_wrong_password_opens_nothing(server: InfluxDB, passwords: dict[str, str]) -> None:
    with pytest.raises(StoreError, match="401"):
        opened(server, "gateway", "not-the-password")


@pytest.mark.parametrize("user", [*SERVICE_USERS, "reader"])
def test_no_service_user_administers_the_server(
    server: InfluxDB, passwords: dict[str, str], user: str
) -> None:
    for statement in ADMIN_STATEMENTS:
        response = query(server, (user, passwords[user]), statement)
        assert response.status_code == 403, statement
        assert "requires admin privilege" in response.json()["error"], statement
    shown = query(server, (INFLUX_USER, INFLUX_PASSWORD), "SHOW DATABASES").text
    assert f'"{DATABASE}"' in shown


def test_the_write_grant_also_deletes(server: InfluxDB, passwords: dict[str, str]) -> None:
    """What docs/security.md says remains: WRITE on a database includes DELETE (and DROP
    SERIES), so a service user can erase history; backups are the answer, not grants."""
    writer = opened(server, "gateway", passwords["gateway"])
    try:
        writer.write([power(40)])
        window = (T0 + timedelta(seconds=40), T0 + timedelta(seconds=41))
        assert writer.history(PRESS, "power", *window) == [power(40)]
        statement = f"DELETE FROM reading WHERE signal = 'power' AND time >= '{window[0].isoformat()}' AND time < '{window[1].isoformat()}'"
        assert query(server, ("gateway", passwords["gateway"]), statement).status_code == 200
        assert writer.history(PRESS, "power", *window) == []
    finally:
        writer.close()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    client = make_client(mosquitto.url, client_id=f"grants-publisher-{uuid.uuid4().hex[:8]}")
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def test_a_gateway_with_the_write_grant_alone_stores_readings_it_cannot_read(
    server: InfluxDB,
    passwords: dict[str, str],
    mosquitto: Mosquitto,
    publisher: mqtt.Client,
    example_plant: Plant,
    tmp_path: Path,
) -> None:
    """Ingest needs WRITE only; the gateway's HTTP API is what needs READ (docs/security.md)."""
    admin = (INFLUX_USER, INFLUX_PASSWORD)
    password = secrets.token_urlsafe(16)
    for statement in (
        f"CREATE USER ingest WITH PASSWORD '{password}'",
        f"GRANT WRITE ON {DATABASE} TO ingest",
    ):
        assert query(server, admin, statement).status_code == 200
    ingest = opened(server, "ingest", password)
    reader = opened(server, "reader", passwords["reader"])
    gateway = start_gateway(example_plant, mosquitto.url, ingest, tmp_path)
    window = (T0 + timedelta(seconds=50), T0 + timedelta(seconds=60))
    try:
        for second in range(50, 55):
            reading = Reading(
                signal="power", value=float(second), ts=T0 + timedelta(seconds=second)
            )
            publisher.publish(PRESS.topic(), encode_readings([reading]), qos=1)
        wait_until(lambda: len(reader.history(PRESS, "power", *window)) == 5, 20, "5 readings")
        assert [p.value for p in reader.history(PRESS, "power", *window)] == [
            50.0,
            51.0,
            52.0,
            53.0,
            54.0,
        ]
        assert gateway.snapshot().points_written == 5
        with pytest.raises(StoreError, match="ingest not authorized to execute statement"):
            ingest.history(PRESS, "power", *window)
    finally:
        gateway.stop()
        ingest.close()
        reader.close()


def test_a_second_grant_replaces_the_first(server: InfluxDB, passwords: dict[str, str]) -> None:
    """Why docs/security.md grants ALL, not READ and WRITE: on 1.x the second replaces the
    first, and the user could no longer write."""
    admin, password = (INFLUX_USER, INFLUX_PASSWORD), secrets.token_urlsafe(16)
    for statement in (
        f"CREATE USER both WITH PASSWORD '{password}'",
        f"GRANT WRITE ON {DATABASE} TO both",
        f"GRANT READ ON {DATABASE} TO both",
    ):
        assert query(server, admin, statement).status_code == 200
    writer, store = (
        opened(server, "gateway", passwords["gateway"]),
        opened(server, "both", password),
    )
    window = (T0 + timedelta(seconds=60), T0 + timedelta(seconds=62))
    try:
        writer.write([power(60)])
        assert store.history(PRESS, "power", *window) == [power(60)]
        with pytest.raises(StoreError, match="403"):
            store.write([power(61)])
        assert writer.history(PRESS, "power", *window) == [power(60)]
    finally:
        writer.close()
        store.close()
