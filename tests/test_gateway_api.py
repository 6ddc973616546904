"""The gateway's HTTP API against real stores (embedded SQLite and InfluxDB), the example plant."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.hooks import HookContext

from analytics.oee import StateEvent, oee_timeline
from analytics.service import MachineReport
from gateway import api
from gateway.api import create_app, serve
from gateway.stats import LATENCY_BUCKETS_S, GatewayStats
from gateway.tokens import TokenChecker
from shopfloor.kpis import ShiftReportDoc
from shopfloor.messages import AssetPath, Event, Quality
from shopfloor.plant import Plant, load_plant
from shopfloor.states import MachineState
from shopfloor.store import Point, Store, StoreSettings, open_store
from tests.conftest import API_TOKEN, EXAMPLE_PLANT
from tests.servers import InfluxDB, port_open

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
TRIMMER = AssetPath("polimer", "brest", "moulding", "line-1", "cnc-01")
ENV = AssetPath("polimer", "brest", "moulding", "hall-a", "env-01")
HEALTHY = GatewayStats(
    messages_in=0,
    points_written=0,
    dead_lettered={},
    buffer_depth=0,
    buffer_dropped=0,
    write_latency_buckets=dict.fromkeys(LATENCY_BUCKETS_S, 0),
    write_latency_sum_s=0.0,
    write_latency_count=0,
    broker_connected=True,
    store_ok=True,
    receiving=True,
    writing=True,
    unwritten_age_s=0.0,
    max_lag_s=5.0,
    receive_errors=0,
)
PROTECTED = [
    "/metrics",
    "/api/v1/plant",
    "/api/v1/latest",
    "/api/v1/history/imm-01/power",
    "/api/v1/kpis",
    "/api/v1/events",
    "/api/v1/shift-reports",
]
READING_STORE = [
    "/api/v1/latest",
    "/api/v1/history/imm-01/power",
    "/api/v1/kpis",
    "/api/v1/events",
    "/api/v1/shift-reports",
]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def ref(path: AssetPath) -> dict[str, str]:
    return dict(path._asdict())


def app_on(
    plant: Plant,
    store: Store,
    token: str | None = API_TOKEN,
    stats: GatewayStats = HEALTHY,
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    return create_app(plant, store, lambda: stats, TokenChecker(None, token), cors_origins)


@pytest.fixture
def client(example_plant: Plant, store: Store) -> Iterator[TestClient]:
    """An authorised client of the API on each store backend."""
    with TestClient(app_on(example_plant, store), headers=AUTH) as test_client:
        yield test_client


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Store]:
    """For what does not depend on the backend: auth, health, metrics, CORS, serving."""
    opened = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
    yield opened
    opened.close()


def test_latest_is_the_newest_point_of_every_plant_signal_in_scope(
    client: TestClient, store: Store
) -> None:
    store.write(
        [
            Point(PRESS, "power", at(0), 1.5),
            Point(PRESS, "power", at(1), 2.5, Quality.UNCERTAIN),
            Point(PRESS, "state", at(1), "running"),
            Point(ENV, "temperature", at(2), 21.25, unit="degC"),
            Point(PRESS, "kpi.parts", at(10), 40.0, unit="pcs"),  # /kpis has those
            Point.from_event(PRESS, Event(name="bearing_wear", start=at(0))),  # /events has those
        ]
    )
    press = [
        {"asset": ref(PRESS), "signal": "power", "ts": "2026-11-02T08:00:01Z", "value": 2.5,
         "quality": "uncertain", "unit": "kW"},
        {"asset": ref(PRESS), "signal": "state", "ts": "2026-11-02T08:00:01Z",
         "value": "running", "quality": "good", "unit": ""},
    ]  # fmt: skip
    env = [
        {"asset": ref(ENV), "signal": "temperature", "ts": "2026-11-02T08:00:02Z",
         "value": 21.25, "quality": "good", "unit": "degC"},
    ]  # fmt: skip
    assert sorted(client.get("/api/v1/latest").json(), key=str) == sorted(press + env, key=str)
    assert client.get("/api/v1/latest", params={"asset": "imm-01"}).json() == press
    assert client.get("/api/v1/latest", params={"cell": "hall-a"}).json() == env
    in_area = client.get("/api/v1/latest", params={"area": "moulding", "cell": "line-1"})
    assert in_area.json() == press
    assert client.get("/api/v1/latest", params={"cell": "line-1", "asset": "env-01"}).json() == []


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"area": "assembly"}, "no area 'assembly' in polimer/brest"),
        ({"cell": "line-9"}, "no line or zone 'line-9' in polimer/brest"),
        ({"asset": "imm-99"}, "no asset 'imm-99' in polimer/brest"),
    ],
)
def test_latest_of_an_unknown_place_is_404(
    client: TestClient, params: dict[str, str], detail: str
) -> None:
    response = client.get("/api/v1/latest", params=params)
    assert response.status_code == 404
    assert response.json() == {"detail": detail}


def test_history_is_the_raw_points_in_a_half_open_range(client: TestClient, store: Store) -> None:
    store.write([Point(PRESS, "power", at(i), float(i), unit="kW") for i in range(10)])
    store.write([Point(PRESS, "power", at(2), 2.0, Quality.BAD, unit="kW")])
    response = client.get(
        "/api/v1/history/imm-01/power",
        params={"start": iso(at(2)), "end": "2026-11-02T10:00:05+02:00"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "asset": ref(PRESS),
        "signal": "power",
        "unit": "kW",
        "start": "2026-11-02T08:00:02Z",
        "end": "2026-11-02T08:00:05Z",
        "every": None,
        "points": [
            {"ts": "2026-11-02T08:00:02Z", "value": 2.0, "quality": "bad"},
            {"ts": "2026-11-02T08:00:03Z", "value": 3.0, "quality": "good"},
            {"ts": "2026-11-02T08:00:04Z", "value": 4.0, "quality": "good"},
        ],
    }


def test_history_downsampled_is_means_per_epoch_aligned_interval(
    client: TestClient, store: Store
) -> None:
    store.write([Point(PRESS, "power", at(i), float(i)) for i in range(10)])
    params = {"start": iso(at(3)), "end": iso(at(10)), "every": "5"}
    body = client.get("/api/v1/history/imm-01/power", params=params).json()
    assert body["every"] == 5.0
    assert body["unit"] == "kW"  # the plant's, as the points carry none
    assert body["points"] == [
        {"ts": "2026-11-02T08:00:00Z", "value": 3.5, "quality": "good"},
        {"ts": "2026-11-02T08:00:05Z", "value": 7.0, "quality": "good"},
    ]


def test_history_of_text_and_of_a_kpi(client: TestClient, store: Store) -> None:
    store.write(
        [
            Point(PRESS, "state", at(0), "running"),
            Point(PRESS, "state", at(30), "unplanned_stop"),
            Point(PRESS, "kpi.good_parts", at(10), 4.0, unit="pcs"),
            Point(PRESS, "kpi.good_parts", at(20), 6.0, unit="pcs"),
        ]
    )
    span = {"start": iso(T0), "end": iso(at(60))}
    states = client.get("/api/v1/history/imm-01/state", params=span).json()["points"]
    assert [p["value"] for p in states] == ["running", "unplanned_stop"]
    kpi = client.get("/api/v1/history/imm-01/kpi.good_parts", params={**span, "every": 60})
    assert kpi.json()["unit"] == "pcs"
    assert kpi.json()["points"] == [{"ts": "2026-11-02T08:00:00Z", "value": 5.0, "quality": "good"}]


def test_history_defaults_to_the_last_hour(client: TestClient, store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store.write(
        [
            Point(PRESS, "power", now - timedelta(hours=2), 1.0),
            Point(PRESS, "power", now - timedelta(minutes=30), 2.0),
        ]
    )
    body = client.get("/api/v1/history/imm-01/power").json()
    assert [p["value"] for p in body["points"]] == [2.0]
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert end - start == timedelta(hours=1)
    assert abs(end - datetime.now(UTC)) < timedelta(seconds=10)


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/api/v1/history/imm-99/power", "no asset 'imm-99' in polimer/brest"),
        ("/api/v1/history/imm-01/temperature", "asset 'imm-01' has no signal 'temperature'"),
        ("/api/v1/history/imm-01/kpi.oee", "asset 'imm-01' has no signal 'kpi.oee'"),
    ],
)
def test_history_of_an_unknown_asset_or_signal_is_404(
    client: TestClient, path: str, detail: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"start": iso(at(5)), "end": iso(at(5))}, "start", "must be before end"),
        ({"start": iso(at(6)), "end": iso(at(5))}, "start", "must be before end"),
        ({"start": "2026-11-02T08:00:00"}, "start", "Input should have timezone info"),
        (
            {"end": "yesterday"},
            "end",
            "Input should be a valid datetime or date, input is too short",
        ),
        ({"start": "1969-12-31T23:00:00Z"}, "start", "must be between 1970-01-01 and 2262-01-01"),
        ({"end": "2262-04-12T00:00:00Z"}, "end", "must be between 1970-01-01 and 2262-01-01"),
        ({"every": "0"}, "every", "Input should be greater than or equal to 0.001"),
        ({"every": "-5"}, "every", "Input should be greater than or equal to 0.001"),
        ({"start": iso(T0), "end": iso(at(86401))}, "every", "needed for a range over 1 day"),
        (
            {"start": iso(T0), "end": iso(at(100_001)), "every": "1"},
            "every",
            "gives more than 100000 intervals: make it longer",
        ),
    ],
)
def test_bad_history_ranges_are_422_naming_the_parameter(
    client: TestClient, params: dict[str, str], parameter: str, message: str
) -> None:
    response = client.get("/api/v1/history/imm-01/power", params=params)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", parameter]
    assert error["msg"] == message


def test_a_range_over_the_point_cap_is_422(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "MAX_POINTS", 3)
    store.write([Point(PRESS, "power", at(i), float(i)) for i in range(4)])
    span = {"start": iso(T0), "end": iso(at(60))}
    response = client.get("/api/v1/history/imm-01/power", params=span)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "every"]
    assert (
        error["msg"] == "more than 3 points between start and end: set every or shorten the range"
    )
    downsampled = client.get("/api/v1/history/imm-01/power", params={**span, "every": 30})
    assert downsampled.json()["points"] == [
        {"ts": "2026-11-02T08:00:00Z", "value": 1.5, "quality": "good"}
    ]


def kpi(path: AssetPath, name: str, seconds: float, value: float, unit: str = "pcs") -> Point:
    return Point(path, f"kpi.{name}", at(seconds), value, unit=unit)


def test_kpis_are_the_latest_of_each_or_all_in_a_range(client: TestClient, store: Store) -> None:
    store.write(
        [
            kpi(PRESS, "good_parts", 10, 4.0),
            kpi(PRESS, "good_parts", 20, 6.0),
            kpi(PRESS, "energy_per_good_part", 20, 0.125, "kWh/pcs"),
            kpi(TRIMMER, "good_parts", 20, 5.0),
            Point(PRESS, "power", at(20), 2.0),
        ]
    )
    latest = client.get("/api/v1/kpis").json()
    assert latest == [
        {"asset": ref(TRIMMER), "kpi": "good_parts", "ts": "2026-11-02T08:00:20Z", "value": 5.0, "unit": "pcs"},
        {"asset": ref(PRESS), "kpi": "energy_per_good_part", "ts": "2026-11-02T08:00:20Z", "value": 0.125, "unit": "kWh/pcs"},
        {"asset": ref(PRESS), "kpi": "good_parts", "ts": "2026-11-02T08:00:20Z", "value": 6.0, "unit": "pcs"},
    ]  # fmt: skip
    press = client.get("/api/v1/kpis", params={"asset": "imm-01"}).json()
    assert press == latest[1:]
    in_range = client.get(
        "/api/v1/kpis", params={"asset": "imm-01", "start": iso(T0), "end": iso(at(15))}
    )
    assert in_range.json() == [
        {"asset": ref(PRESS), "kpi": "good_parts", "ts": "2026-11-02T08:00:10Z", "value": 4.0, "unit": "pcs"},
    ]  # fmt: skip
    whole = client.get("/api/v1/kpis", params={"start": iso(T0), "end": iso(at(60))}).json()
    assert [(k["asset"]["asset"], k["kpi"], k["value"]) for k in whole] == [
        ("cnc-01", "good_parts", 5.0),
        ("imm-01", "energy_per_good_part", 0.125),
        ("imm-01", "good_parts", 4.0),
        ("imm-01", "good_parts", 6.0),
    ]
    too_long = client.get("/api/v1/kpis", params={"start": iso(T0), "end": iso(at(86401))})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["msg"] == "a KPI range may span at most 1 day"
    assert client.get("/api/v1/kpis", params={"asset": "nope"}).status_code == 404


def test_events_come_back_with_their_asset_in_a_range(client: TestClient, store: Store) -> None:
    wear = Event(name="bearing_wear", start=at(0), end=at(600), note="injected")
    stuck = Event(name="sensor_stuck", start=at(3600))
    store.write([Point.from_event(ENV, stuck), Point.from_event(PRESS, wear)])
    store.write([Point.acknowledgement(PRESS, wear, at(95))])
    span = {"start": iso(at(-3600)), "end": iso(at(7200))}
    events = client.get("/api/v1/events", params=span).json()
    assert events == [
        {"asset": ref(PRESS), "type": "fault", "name": "bearing_wear",
         "start": "2026-11-02T08:00:00Z", "end": "2026-11-02T08:10:00Z", "note": "injected",
         "loss": None, "contributions": {}, "acknowledged": "2026-11-02T08:01:35Z"},
        {"asset": ref(ENV), "type": "fault", "name": "sensor_stuck",
         "start": "2026-11-02T09:00:00Z", "end": None, "note": "", "loss": None,
         "contributions": {}, "acknowledged": None},
    ]  # fmt: skip
    assert client.get("/api/v1/events", params={**span, "asset": "env-01"}).json() == events[1:]
    early = client.get("/api/v1/events", params={"start": iso(at(-3600)), "end": iso(at(3600))})
    assert early.json() == events[:1]
    too_long = client.get("/api/v1/events", params={"start": iso(T0), "end": iso(at(32 * 86400))})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["msg"] == "an event range may span at most 31 days"


def test_an_unreadable_event_is_skipped(client: TestClient, store: Store) -> None:
    store.write(
        [
            Point(PRESS, "event.garbled", at(0), "not json"),
            Point.from_event(PRESS, Event(name="spike", start=at(1))),
        ]
    )
    events = client.get("/api/v1/events", params={"start": iso(T0), "end": iso(at(60))})
    assert [e["name"] for e in events.json()] == ["spike"]


def test_an_asset_id_used_twice_in_the_site_is_409(example_plant: Plant, embedded: Store) -> None:
    layout = example_plant.model_dump()
    press = layout["site"]["areas"][0]["lines"][0]["machines"][0]
    layout["site"]["areas"][0]["lines"].append({"id": "line-2", "machines": [press]})
    client = TestClient(app_on(Plant.model_validate(layout), embedded), headers=AUTH)
    response = client.get("/api/v1/history/imm-01/power")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "asset id 'imm-01' names several assets: "
        "polimer/brest/moulding/line-1/imm-01, polimer/brest/moulding/line-2/imm-01"
    }


def test_shift_reports_come_back_as_the_analytics_wrote_them(
    client: TestClient, store: Store
) -> None:
    log = [StateEvent(at(0).timestamp(), MachineState.RUNNING, 0, 0),
           StateEvent(at(3600).timestamp(), MachineState.RUNNING, 300, 12)]  # fmt: skip
    oee = oee_timeline(log, at(0).timestamp(), at(3600).timestamp(), 12.0)
    report = MachineReport(at(0).timestamp(), at(3600).timestamp(), oee, 4.5, None, 3.0, 1.0)
    written = report.document("early", at(0).date())
    store.write(
        [
            Point(PRESS, "report.shift", at(0), written.model_dump_json()),
            Point(PRESS, "report.shift", at(7200), '{"shift": "late"}'),  # not the analytics'
        ]
    )
    span = {"start": iso(at(-60)), "end": iso(at(9000))}
    [got] = client.get("/api/v1/shift-reports", params=span).json()
    assert (got["asset"], got["start"]) == (ref(PRESS), "2026-11-02T08:00:00Z")
    assert ShiftReportDoc.model_validate(got["report"]) == written
    assert got["report"]["oee"]["good"] == 288 and got["report"]["kpis"]["energy"] == 4.5


def test_events_default_to_the_last_24_hours(client: TestClient, store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store.write(
        [
            Point.from_event(PRESS, Event(name="overheating", start=now - timedelta(days=2))),
            Point.from_event(PRESS, Event(name="tool_wear", start=now - timedelta(hours=1))),
        ]
    )
    assert [e["name"] for e in client.get("/api/v1/events").json()] == ["tool_wear"]


def test_plant_model_without_connection_details(client: TestClient) -> None:
    body = client.get("/api/v1/plant").json()
    assert body["tenant"] == {"id": "polimer", "name": "Polimer Moulding (demo SME)"}
    assert body["site"] == {
        "id": "brest",
        "name": "Brest demonstration centre",
        "timezone": "Europe/Minsk",
    }
    assert body["products"] == [
        {"id": "cap-28mm", "name": "28 mm bottle cap"},
        {"id": "cap-38mm", "name": "38 mm jar cap"},
    ]
    [area] = body["areas"]
    assert (area["id"], area["name"]) == ("moulding", "Moulding hall")
    [line] = area["lines"]
    assert (line["id"], line["name"]) == ("line-1", "Cap moulding line")
    assert [(m["id"], m["name"], m["type"]) for m in line["machines"]] == [
        ("imm-01", "Injection press 1", "injection_moulding"),
        ("cnc-01", "Trimming centre", "cnc"),
        ("pack-01", "Packaging station", "packaging"),
    ]
    assert line["machines"][1]["signals"][-1] == {
        "id": "vibration",
        "unit": "mm/s",
        "description": "vibration velocity RMS",
    }
    assert area["zones"] == [
        {
            "id": "hall-a",
            "name": "Moulding hall floor",
            "sensors": [
                {
                    "id": "env-01",
                    "name": "Environment sensor kit",
                    "signals": [
                        {"id": "temperature", "unit": "degC", "description": ""},
                        {"id": "humidity", "unit": "%RH", "description": ""},
                        {"id": "noise", "unit": "dBA", "description": ""},
                        {"id": "pm2_5", "unit": "ug/m3", "description": ""},
                    ],
                }
            ],
        }
    ]
    assert "opc.tcp" not in str(body) and "sensors/hall-a" not in str(body)


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_routes_need_the_right_bearer_token(
    example_plant: Plant, embedded: Store, path: str
) -> None:
    anonymous = TestClient(app_on(example_plant, embedded))
    refused: list[tuple[dict[bytes, bytes], str]] = [
        ({}, "missing bearer token"),
        ({b"Authorization": f"Basic {API_TOKEN}".encode()}, "missing bearer token"),
        ({b"Authorization": b"Bearer wrong"}, "unknown bearer token"),
        ({b"Authorization": f"Bearer {API_TOKEN[:-1]}ñ".encode("latin-1")}, "unknown bearer token"),
    ]
    for headers, detail in refused:
        response = anonymous.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": detail}
    assert anonymous.get(path, headers=AUTH).status_code == 200


@pytest.mark.parametrize("token", [None, ""])
def test_without_a_token_every_protected_request_is_refused(
    example_plant: Plant, embedded: Store, token: str | None
) -> None:
    anonymous = TestClient(app_on(example_plant, embedded, token=token))
    for path in PROTECTED:
        for headers in [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}]:
            response = anonymous.get(path, headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
    assert anonymous.get("/health").status_code == 200


def test_health_spec_and_docs_are_public(example_plant: Plant, embedded: Store) -> None:
    anonymous = TestClient(app_on(example_plant, embedded, token=None))
    assert anonymous.get("/health").json() == {
        "status": "ok",
        "causes": [],
        "broker_connected": True,
        "store_ok": True,
        "receiving": True,
        "writing": True,
        "unwritten_age_s": 0.0,
    }
    spec = anonymous.get("/openapi.json").json()
    assert anonymous.get("/docs").status_code == 200
    assert anonymous.get("/redoc").status_code == 404
    assert sorted(spec["paths"]) == sorted(
        [
            "/health",
            *PROTECTED[:3],
            "/api/v1/history/{asset}/{signal}",
            *PROTECTED[4:],
            "/api/v1/events/{asset}/{name}/acknowledgement",
        ]
    )
    assert "security" not in spec["paths"]["/health"]["get"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


DEGRADED = [
    ({"receiving": False}, ["receive_thread_dead"]),
    ({"writing": False}, ["writer_thread_dead"]),
    ({"broker_connected": False}, ["broker_disconnected"]),
    ({"store_ok": False}, ["store_failing"]),
    ({"unwritten_age_s": 5.5}, ["ingest_lagging"]),
    ({"broker_connected": False, "store_ok": False}, ["broker_disconnected", "store_failing"]),
]


@pytest.mark.parametrize(("changes", "causes"), DEGRADED)
def test_health_is_503_degraded_naming_each_cause(
    example_plant: Plant, embedded: Store, changes: dict[str, object], causes: list[str]
) -> None:
    stats = replace(HEALTHY, **changes)  # type: ignore[arg-type]
    response = TestClient(app_on(example_plant, embedded, stats=stats)).get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["causes"] == causes
    for field, value in changes.items():
        assert body[field] == value


def test_metrics_in_prometheus_text(example_plant: Plant, embedded: Store) -> None:
    stats = GatewayStats(
        messages_in=1234567,
        points_written=9876543,
        dead_lettered={"unknown_asset": 2, "not_json": 5, 'we"ird\\': 1},
        buffer_depth=3,
        buffer_dropped=1,
        write_latency_buckets={0.005: 2, 0.01: 5, 0.025: 5, 1.0: 6},
        write_latency_sum_s=0.375,
        write_latency_count=7,
        broker_connected=True,
        store_ok=False,
        receiving=True,
        writing=True,
        unwritten_age_s=7.25,
        max_lag_s=5.0,
        receive_errors=1,
    )
    response = TestClient(app_on(example_plant, embedded, stats=stats)).get(
        "/metrics", headers=AUTH
    )
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.text == (
        "# HELP shopfloor_gateway_messages_in_total MQTT messages received\n"
        "# TYPE shopfloor_gateway_messages_in_total counter\n"
        "shopfloor_gateway_messages_in_total 1234567\n"
        "# HELP shopfloor_gateway_points_written_total points written to the store\n"
        "# TYPE shopfloor_gateway_points_written_total counter\n"
        "shopfloor_gateway_points_written_total 9876543\n"
        "# HELP shopfloor_gateway_dead_lettered_total messages refused, by reason\n"
        "# TYPE shopfloor_gateway_dead_lettered_total counter\n"
        'shopfloor_gateway_dead_lettered_total{reason="not_json"} 5\n'
        'shopfloor_gateway_dead_lettered_total{reason="unknown_asset"} 2\n'
        'shopfloor_gateway_dead_lettered_total{reason="we\\"ird\\\\"} 1\n'
        "# HELP shopfloor_gateway_buffer_depth batches spilled to disk, waiting for the store\n"
        "# TYPE shopfloor_gateway_buffer_depth gauge\n"
        "shopfloor_gateway_buffer_depth 3\n"
        "# HELP shopfloor_gateway_buffer_dropped_total spilled batches dropped by the buffer's size or age bound\n"
        "# TYPE shopfloor_gateway_buffer_dropped_total counter\n"
        "shopfloor_gateway_buffer_dropped_total 1\n"
        "# HELP shopfloor_gateway_write_latency_seconds seconds per store write\n"
        "# TYPE shopfloor_gateway_write_latency_seconds histogram\n"
        'shopfloor_gateway_write_latency_seconds_bucket{le="0.005"} 2\n'
        'shopfloor_gateway_write_latency_seconds_bucket{le="0.01"} 5\n'
        'shopfloor_gateway_write_latency_seconds_bucket{le="0.025"} 5\n'
        'shopfloor_gateway_write_latency_seconds_bucket{le="1.0"} 6\n'
        'shopfloor_gateway_write_latency_seconds_bucket{le="+Inf"} 7\n'
        "shopfloor_gateway_write_latency_seconds_sum 0.375\n"
        "shopfloor_gateway_write_latency_seconds_count 7\n"
        "# HELP shopfloor_gateway_broker_connected 1 while connected to the broker\n"
        "# TYPE shopfloor_gateway_broker_connected gauge\n"
        "shopfloor_gateway_broker_connected 1\n"
        "# HELP shopfloor_gateway_store_ok 1 while the last store write succeeded\n"
        "# TYPE shopfloor_gateway_store_ok gauge\n"
        "shopfloor_gateway_store_ok 0\n"
        "# HELP shopfloor_gateway_receive_thread_alive 1 while the MQTT network thread runs\n"
        "# TYPE shopfloor_gateway_receive_thread_alive gauge\n"
        "shopfloor_gateway_receive_thread_alive 1\n"
        "# HELP shopfloor_gateway_writer_thread_alive 1 while the store writer thread runs\n"
        "# TYPE shopfloor_gateway_writer_thread_alive gauge\n"
        "shopfloor_gateway_writer_thread_alive 1\n"
        "# HELP shopfloor_gateway_unwritten_age_seconds age of the oldest message received and not yet stored\n"
        "# TYPE shopfloor_gateway_unwritten_age_seconds gauge\n"
        "shopfloor_gateway_unwritten_age_seconds 7.25\n"
        "# HELP shopfloor_gateway_receive_errors_total messages the receive path could not take\n"
        "# TYPE shopfloor_gateway_receive_errors_total counter\n"
        "shopfloor_gateway_receive_errors_total 1\n"
        "# HELP shopfloor_gateway_degraded 1 for each cause that degrades the gateway now (/health answers 503)\n"
        "# TYPE shopfloor_gateway_degraded gauge\n"
        'shopfloor_gateway_degraded{cause="receive_thread_dead"} 0\n'
        'shopfloor_gateway_degraded{cause="writer_thread_dead"} 0\n'
        'shopfloor_gateway_degraded{cause="broker_disconnected"} 0\n'
        'shopfloor_gateway_degraded{cause="store_failing"} 1\n'
        'shopfloor_gateway_degraded{cause="ingest_lagging"} 1\n'
    )


def test_cors_headers_only_when_configured(example_plant: Plant, embedded: Store) -> None:
    origin = "https://dashboard.example"
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = TestClient(app_on(example_plant, embedded), headers=AUTH)
    assert (
        "access-control-allow-origin"
        not in closed.get("/api/v1/plant", headers={"Origin": origin}).headers
    )
    assert (
        "access-control-allow-origin"
        not in closed.options("/api/v1/plant", headers=preflight).headers
    )

    open_ = TestClient(app_on(example_plant, embedded, cors_origins=(origin,)), headers=AUTH)
    allowed = open_.get("/api/v1/plant", headers={"Origin": origin})
    assert allowed.headers["access-control-allow-origin"] == origin
    answered = open_.options("/api/v1/plant", headers=preflight)
    assert answered.status_code == 200
    assert answered.headers["access-control-allow-origin"] == origin
    assert "authorization" in answered.headers["access-control-allow-headers"].lower()
    other = open_.get("/api/v1/plant", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.fixture(params=["embedded", "influxdb"])
def broken_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A real store that worked when opened and fails now: closed, or its server stopped."""
    if request.param == "embedded":
        closed = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
        closed.close()
        yield closed
        return
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    try:
        orphan = open_store(StoreSettings(url=server.url, database="gone"))
    finally:
        server.stop()
    yield orphan
    orphan.close()


@pytest.mark.parametrize("path", READING_STORE)
def test_a_failing_store_is_503_with_the_reason(
    example_plant: Plant, broken_store: Store, path: str
) -> None:
    client = TestClient(app_on(example_plant, broken_store), headers=AUTH)
    response = client.get(path)
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("store unavailable: ")
    assert "read failed: Cannot operate on a closed database" in detail or "unreachable" in detail


def test_served_in_a_thread_on_a_free_port_and_stopped_promptly(
    example_plant: Plant, embedded: Store
) -> None:
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = serve(app_on(example_plant, embedded), "127.0.0.1", 0)
    assert server.port > 0
    with pytest.raises(OSError):
        serve(app_on(example_plant, embedded), "127.0.0.1", server.port)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as http:
            assert http.get("/health").json()["status"] == "ok"
            assert http.get("/api/v1/plant", headers=AUTH).status_code == 200
            began = time.monotonic()
            server.stop()  # with the keep-alive connection still open
            assert time.monotonic() - began < 2
    finally:
        server.stop()
    assert not port_open(server.port)
    assert handlers == {sig: signal.getsignal(sig) for sig in handlers}


# The spec depends on the plant only; an in-memory store stands in for the real ones. The schema
# is loaded at import, not through `schemathesis.pytest.from_fixture`, whose lazy loader breaks on
# pytest 9.2 (it sets `Node._nodeid`); the app under test comes from the parametrised fixture.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    app_on(load_plant(EXAMPLE_PLANT), open_store(StoreSettings(url="sqlite::memory:"))),
)
REAL_PATHS = {
    "/api/v1/history/{asset}/{signal}": [
        {"asset": "imm-01", "signal": "power"},
        {"asset": "imm-01", "signal": "state"},
        {"asset": "imm-01", "signal": "kpi.good_parts"},
    ],
    "/api/v1/events/{asset}/{name}/acknowledgement": [{"asset": "imm-01", "name": "bearing_wear"}],
}


def before_generate_path_parameters(
    context: HookContext, strategy: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Random ids are all 404: let requests also name real series and events, to reach the
    store."""
    real = REAL_PATHS.get(context.operation.path, []) if context.operation else []
    return strategy | st.sampled_from(real) if real else strategy


schema.hook(before_generate_path_parameters)


@pytest.fixture
def app_with_data(example_plant: Plant, store: Store) -> FastAPI:
    """The app on each backend, with data for the generated requests to find."""
    store.write(
        [
            *(Point(PRESS, "power", T0 + timedelta(minutes=i), float(i)) for i in range(60)),
            Point(PRESS, "state", T0, "running"),
            kpi(PRESS, "good_parts", 600, 4.0),
            Point.from_event(PRESS, Event(name="bearing_wear", start=T0)),
        ]
    )
    return app_on(example_plant, store)


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the app is only read
)
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case[Any], app_with_data: FastAPI
) -> None:
    case.call_and_validate(app=app_with_data, headers=AUTH, checks=[not_a_server_error])
