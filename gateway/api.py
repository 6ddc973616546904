"""The gateway's HTTP API: the plant model, its data in the store and the gateway's own figures.

    GET /health                              public: 200 when ok, 503 when degraded
    GET /metrics                             Prometheus text: counters, buffer, write latency
    GET /api/v1/plant                        the plant: site, areas, lines, machines, zones
    GET /api/v1/latest?area=&cell=&asset=    newest point of every plant signal in scope
    GET /api/v1/history/{asset}/{signal}?start=&end=&every=
                                             a signal's (or kpi.<name>'s) points or means
    GET /api/v1/kpis?asset=&start=&end=      analytics KPIs: latest of each, or all in a range
    GET /api/v1/events?asset=&start=&end=    labelled events starting in a range
    POST /api/v1/events/{asset}/{name}/acknowledgement   {"start": ...}: an operator's ack
    GET /api/v1/shift-reports?asset=&start=&end=
                                             each machine's shift: loss tree, OEE by product, energy
    GET /openapi.json, /docs                 public: the spec and its browsable page

/health answers 503 when the gateway is degraded, as load balancers expect of a node that should
get no traffic; the body names each cause: its receive or writer thread has died, the broker is
disconnected, the store is failing, or ingest lags (a message received longer ago than the
gateway's lag bound is not yet stored). What it cannot see is the queue the broker keeps for it
beyond the messages it was sent: MQTT tells a subscriber nothing of that.

Everything else but the spec needs `Authorization: Bearer <token>` (see gateway/tokens.py): a
token of the plant's tenant, or of the platform (tenant `*`). The GET routes need the `read`
role, acknowledging needs `admin`. A gateway serves one tenant's site, so all it serves is that
tenant's: a token of another tenant is 403 on every route (an empty answer would pass for a
plant without data). A missing, unknown, revoked or expired token is 401; with no token
configured at all, every request is.

Times go in as ISO 8601 with a zone and come out in UTC. A range is [start, end): end defaults
to now, start to end minus the endpoint's default span (history 1 h, KPIs 1 h, events 24 h).
Raw ranges are capped (history and KPIs 1 day, events 31 days; a day of a 1 Hz signal is 86,400
points), downsampled ones at 100,000 intervals, and no answer holds more than 100,000 points;
past a cap the answer is 422 naming the parameter to change. Assets are named by id, which must
be unique in the site (409 otherwise). A failing store answers 503 with its reason.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.stats import GatewayStats
from gateway.tokens import PLATFORM, Grant, Role, TokenChecker, TokenFileError, TokenRefusedError
from shopfloor import prometheus
from shopfloor.kpis import KPI_PREFIX, KPI_UNITS, SHIFT_REPORT, ShiftReportDoc
from shopfloor.messages import AssetPath, Event, EventType, LossLink, Quality
from shopfloor.plant import MachineType, Plant
from shopfloor.store import (
    ACK_PREFIX,
    EVENT_PREFIX,
    Point,
    Scope,
    Store,
    StoreError,
    acknowledgements,
)

log = logging.getLogger(__name__)

MAX_POINTS = 100_000
HISTORY_SPAN = timedelta(hours=1)
KPI_SPAN = timedelta(hours=1)
EVENT_SPAN = timedelta(hours=24)
MAX_RAW_SPAN = timedelta(days=1)
MAX_EVENT_SPAN = timedelta(days=31)
MAX_EVERY_S = 366 * 86400.0
# The store keeps nanoseconds since 1970 in 64 bits (InfluxDB's range ends in April 2262).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)
STOP_TIMEOUT_S = 2


class ApiError(BaseModel):
    """Why a request failed."""

    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    causes: list[str]
    broker_connected: bool
    store_ok: bool
    receiving: bool
    writing: bool
    unwritten_age_s: float


class _Out(BaseModel):
    """Answer models read plant objects by attribute and drop what they do not declare."""

    model_config = ConfigDict(from_attributes=True)


class TenantOut(_Out):
    id: str
    name: str


class SiteOut(_Out):
    id: str
    name: str
    timezone: str


class SignalOut(_Out):
    id: str
    unit: str
    description: str


class MachineOut(_Out):
    id: str
    name: str
    type: MachineType
    signals: list[SignalOut]


class LineOut(_Out):
    id: str
    name: str
    machines: list[MachineOut]


class SensorOut(_Out):
    id: str
    name: str
    signals: list[SignalOut]


class ZoneOut(_Out):
    id: str
    name: str
    sensors: list[SensorOut]


class AreaOut(_Out):
    id: str
    name: str
    lines: list[LineOut]
    zones: list[ZoneOut]


class ProductOut(_Out):
    id: str
    name: str


class PlantOut(_Out):
    tenant: TenantOut
    site: SiteOut
    areas: list[AreaOut]
    products: list[ProductOut]


class AssetRef(BaseModel):
    """Where an asset sits: the five levels of its topic."""

    tenant: str
    site: str
    area: str
    cell: str
    asset: str


class PointOut(BaseModel):
    asset: AssetRef
    signal: str
    ts: datetime
    value: float | str
    quality: Quality
    unit: str


class Sample(BaseModel):
    ts: datetime
    value: float | str
    quality: Quality


class HistoryOut(BaseModel):
    """One signal's points; with `every`, numeric means per epoch-aligned interval."""

    asset: AssetRef
    signal: str
    unit: str
    start: datetime
    end: datetime
    every: float | None
    points: list[Sample]


class ShiftReportOut(BaseModel):
    """One machine's shift as the analytics service reported it, from the shift's start."""

    asset: AssetRef
    start: datetime
    report: ShiftReportDoc


class KpiOut(BaseModel):
    """A KPI over the analytics window ending at `ts`."""

    asset: AssetRef
    kpi: str = Field(
        description="a name of the rolling window's KPIs, or shift.<name> for a shift's: "
        + ", ".join(KPI_UNITS)
    )
    ts: datetime
    value: float
    unit: str


class EventOut(BaseModel):
    asset: AssetRef
    type: EventType
    name: str
    start: datetime
    end: datetime | None
    note: str
    loss: LossLink | None = None
    contributions: dict[str, float] = Field(
        default={}, description="each signal's share of the anomaly score that raised the event"
    )
    acknowledged: datetime | None = None


class EventKey(BaseModel):
    """Which of the asset's events of that name: the one starting at `start`."""

    start: AwareDatetime = Field(description="the event's start, as /api/v1/events gives it")


def _ref(path: AssetPath) -> AssetRef:
    return AssetRef(**path._asdict())


def _invalid(
    parameter: str, message: str, value: object, where: str = "query"
) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, naming the parameter to change."""
    error = {"type": "value_error", "loc": (where, parameter), "msg": message, "input": value}
    return RequestValidationError([error])


def _range(
    start: datetime | None, end: datetime | None, default_span: timedelta
) -> tuple[datetime, datetime]:
    """[start, end) in UTC from optional bounds: end defaults to now, start to end - span."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise _invalid(name, "must be between 1970-01-01 and 2262-01-01", value)
    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = max(start or end - default_span, EARLIEST).astimezone(UTC)
    if start >= end:
        raise _invalid("start", "must be before end", start)
    return start, end


def _check_span(
    start: datetime, end: datetime, limit: timedelta, parameter: str, message: str
) -> None:
    if end - start > limit:
        raise _invalid(parameter, message, None)


def _check_count(points: list[Point], advice: str, parameter: str) -> None:
    if len(points) > MAX_POINTS:
        message = f"more than {MAX_POINTS} points between start and end: {advice}"
        raise _invalid(parameter, message, None)


def prometheus_text(stats: GatewayStats) -> str:
    """The figures in Prometheus' text exposition format 0.0.4."""
    p = "shopfloor_gateway"

    def one(
        name: str, kind: Literal["counter", "gauge"], help_text: str, value: float
    ) -> prometheus.Family:
        return prometheus.Family(f"{p}_{name}", kind, help_text, [prometheus.Sample(value)])

    return prometheus.render(
        [
            one("messages_in_total", "counter", "MQTT messages received", stats.messages_in),
            one(
                "points_written_total",
                "counter",
                "points written to the store",
                stats.points_written,
            ),
            prometheus.Family(
                f"{p}_dead_lettered_total",
                "counter",
                "messages refused, by reason",
                [
                    prometheus.Sample(n, {"reason": r})
                    for r, n in sorted(stats.dead_lettered.items())
                ],
            ),
            one(
                "buffer_depth",
                "gauge",
                "batches spilled to disk, waiting for the store",
                stats.buffer_depth,
            ),
            one(
                "buffer_dropped_total",
                "counter",
                "spilled batches dropped by the buffer's size or age bound",
                stats.buffer_dropped,
            ),
            prometheus.histogram(
                f"{p}_write_latency_seconds",
                "seconds per store write",
                stats.write_latency_buckets,
                stats.write_latency_sum_s,
                stats.write_latency_count,
            ),
            one(
                "broker_connected",
                "gauge",
                "1 while connected to the broker",
                stats.broker_connected,
            ),
            one("store_ok", "gauge", "1 while the last store write succeeded", stats.store_ok),
            one(
                "receive_thread_alive",
                "gauge",
                "1 while the MQTT network thread runs",
                stats.receiving,
            ),
            one(
                "writer_thread_alive",
                "gauge",
                "1 while the store writer thread runs",
                stats.writing,
            ),
            one(
                "unwritten_age_seconds",
                "gauge",
                "age of the oldest message received and not yet stored",
                round(stats.unwritten_age_s, 3),
            ),
            one(
                "receive_errors_total",
                "counter",
                "messages the receive path could not take",
                stats.receive_errors,
            ),
            prometheus.Family(
                f"{p}_degraded",
                "gauge",
                "1 for each cause that degrades the gateway now (/health answers 503)",
                [
                    prometheus.Sample(failed, {"cause": cause})
                    for cause, failed in stats.checks().items()
                ],
            ),
        ]
    )


class PrometheusResponse(PlainTextResponse):
    media_type = prometheus.CONTENT_TYPE


_bearer = HTTPBearer(
    auto_error=False,
    description="an API token of `shopfloor gateway token issue`, or the platform token of "
    "--api-token; the role each route needs is listed with the scheme",
)


def _authoriser(tokens: TokenChecker, tenant: str) -> Callable[..., Grant]:
    """The dependency guarding a route: `Security(authorise, scopes=[role])` lets in a token
    of `tenant` (or of the platform) with that role or a wider one."""

    def authorise(
        needed: SecurityScopes,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Grant:
        try:
            grant = tokens.grant(credentials.credentials if credentials else None)
        except TokenRefusedError as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        except TokenFileError:
            raise HTTPException(503, "the gateway cannot read its token file") from None
        refusal = grant.refusal(tenant, Role(needed.scopes[0]))
        if refusal is not None:
            raise HTTPException(403, refusal)
        return grant

    return authorise


def _scope_text(role: Role, tenant: str) -> str:
    return (
        f"Needs a bearer token with the `{role}` role (or a wider one) of tenant `{tenant}` "
        f"or of the platform (tenant `{PLATFORM}`)."
    )


def _auth_errors(role: Role, tenant: str) -> dict[int | str, dict[str, Any]]:
    return {
        401: {"model": ApiError, "description": "missing, unknown, revoked or expired token"},
        403: {
            "model": ApiError,
            "description": f"the token is of another tenant than `{tenant}`"
            + (", or has only the `read` role" if role is Role.ADMIN else ""),
        },
    }


def _guarded(authorise: Callable[..., Grant], role: Role, tenant: str) -> APIRouter:
    """A router whose routes need `role`, and say so in the spec."""
    return APIRouter(
        dependencies=[Security(authorise, scopes=[role])],
        responses={**_auth_errors(role, tenant), **_ERRORS},
    )


def _state_scope(router: APIRouter, role: Role, tenant: str) -> None:
    """Add the scope a route needs to its description in the spec, after its docstring."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            route.description = f"{route.description}\n\n{_scope_text(role, tenant)}".strip()


class _PlantIndex:
    """The plant's lookups, built once: asset ids to paths, area and cell ids, signals."""

    def __init__(self, plant: Plant):
        self.catalogue = plant.catalogue()
        self.site = Scope(plant.tenant.id, plant.site.id)
        self.paths: dict[str, list[AssetPath]] = {}
        for path in self.catalogue:
            self.paths.setdefault(path.asset, []).append(path)
        self.areas = {area.id for area in plant.site.areas}
        self.cells = {path.cell for path in self.catalogue}  # every line and zone has assets

    def _where(self) -> str:
        return f"{self.site.tenant}/{self.site.site}"

    def path(self, asset: str) -> AssetPath:
        paths = self.paths.get(asset, [])
        if not paths:
            raise HTTPException(404, f"no asset {asset!r} in {self._where()}")
        if len(paths) > 1:
            names = ", ".join(str(p) for p in paths)
            raise HTTPException(409, f"asset id {asset!r} names several assets: {names}")
        return paths[0]

    def scope(self, area: str | None, cell: str | None, asset: str | None) -> Scope:
        if area is not None and area not in self.areas:
            raise HTTPException(404, f"no area {area!r} in {self._where()}")
        if cell is not None and cell not in self.cells:
            raise HTTPException(404, f"no line or zone {cell!r} in {self._where()}")
        if asset is not None and asset not in self.paths:
            raise HTTPException(404, f"no asset {asset!r} in {self._where()}")
        return Scope(self.site.tenant, self.site.site, area, cell, asset)

    def asset_scope(self, asset: str | None) -> Scope:
        return self.site if asset is None else Scope.of(self.path(asset))

    def unit(self, path: AssetPath, signal: str, stored: str) -> str:
        """The stored unit, else the plant's: readings may leave it out."""
        declared = self.catalogue.get(path, {}).get(signal)
        return stored or (declared.unit if declared else "")


def _series(store: Store, points: list[Point], start: datetime, end: datetime) -> list[Point]:
    """Every point in [start, end) of the series that `points` (from `latest`) stand for."""
    return [p for series in points for p in store.history(series.asset, series.signal, start, end)]


def _event_at(
    store: Store, path: AssetPath, name: str, start: datetime
) -> tuple[Event, datetime | None] | None:
    """The event `name` of `path` starting at `start`, and when it was acknowledged, if ever."""
    signal = f"{EVENT_PREFIX}{name}"
    if not any(p.signal == signal for p in store.latest(Scope.of(path))):
        return None  # the store is asked only for series it has, never for a name as sent
    end = start + timedelta(microseconds=1)
    for point in store.history(path, signal, start, end):
        try:
            event = point.as_event()
        except ValueError as exc:  # written by something other than the gateway
            log.warning("skipped unreadable event %s of %s: %s", signal, path, exc)
            continue
        acks = acknowledgements(store.history(path, f"{ACK_PREFIX}{name}", start, end))
        return event, acks.get((path, name, event.start))
    return None


_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ApiError,
        "description": "the store failed, or the token file cannot be read: the detail says which",
    },
}
_ASSET_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiError, "description": "unknown asset, area, line, zone, signal or event"},
    409: {"model": ApiError, "description": "the asset id names several assets"},
}

Start = Annotated[
    AwareDatetime | None,
    Query(description="ISO 8601 with a zone, inclusive; default: end minus the default span"),
]
End = Annotated[
    AwareDatetime | None, Query(description="ISO 8601 with a zone, exclusive; default: now")
]
AssetId = Annotated[str | None, Query(description="an asset id (machine or sensor device)")]


def create_app(
    plant: Plant,
    store: Store,
    stats: Callable[[], GatewayStats],
    tokens: TokenChecker,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The API over `plant` and `store`; `stats` gives a fresh snapshot of the gateway's figures,
    `tokens` tells what a request's token may do."""
    index = _PlantIndex(plant)
    tenant = plant.tenant.id
    plant_out = PlantOut.model_validate(
        {
            "tenant": plant.tenant,
            "site": plant.site,
            "areas": plant.site.areas,
            "products": plant.products,
        }
    )
    app = FastAPI(
        title="shopfloor gateway",
        summary=f"Plant {tenant}/{plant.site.id}: model, data, KPIs, events, health.",
        description=f"Every route but /health needs a bearer token of tenant `{tenant}` or of "
        f"the platform (`{PLATFORM}`): the `read` role to read, `admin` to acknowledge events.",
        version="1",
        redoc_url=None,
    )
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(StoreError)
    async def store_failed(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": f"store unavailable: {exc}"}, status_code=503)

    @app.get(
        "/health",
        responses={503: {"model": Health, "description": "degraded: `causes` says why"}},
    )
    def health(response: Response) -> Health:
        """503 when degraded, so a load balancer stops sending traffic without parsing JSON."""
        now = stats()
        if now.causes:
            response.status_code = 503
        return Health(
            status="degraded" if now.causes else "ok",
            causes=now.causes,
            broker_connected=now.broker_connected,
            store_ok=now.store_ok,
            receiving=now.receiving,
            writing=now.writing,
            unwritten_age_s=round(now.unwritten_age_s, 3),
        )

    authorise = _authoriser(tokens, tenant)
    readers = _guarded(authorise, Role.READ, tenant)
    admins = _guarded(authorise, Role.ADMIN, tenant)

    @readers.get("/metrics", response_class=PrometheusResponse)
    def metrics() -> PrometheusResponse:
        """The gateway's figures for a Prometheus scrape."""
        return PrometheusResponse(prometheus_text(stats()))

    @readers.get("/api/v1/plant")
    def plant_model() -> PlantOut:
        """The plant's layout, without connection details such as OPC UA endpoints."""
        return plant_out

    @readers.get("/api/v1/latest", responses=_ASSET_ERRORS)
    def latest(
        area: Annotated[str | None, Query(description="an area id")] = None,
        cell: Annotated[str | None, Query(description="a line or zone id")] = None,
        asset: AssetId = None,
    ) -> list[PointOut]:
        """The newest point of every plant signal in scope; KPIs and events have their own."""
        points = store.latest(index.scope(area, cell, asset))
        return [
            PointOut(
                asset=_ref(p.asset),
                signal=p.signal,
                ts=p.ts,
                value=p.value,
                quality=p.quality,
                unit=index.unit(p.asset, p.signal, p.unit),
            )
            for p in points
            if p.signal in index.catalogue.get(p.asset, {})
        ]

    @readers.get("/api/v1/history/{asset}/{signal}", responses=_ASSET_ERRORS)
    def history(
        asset: Annotated[str, Path(description="an asset id")],
        signal: Annotated[str, Path(description="one of the asset's signal ids, or kpi.<name>")],
        start: Start = None,
        end: End = None,
        every: Annotated[
            float | None,
            Query(
                ge=0.001,
                le=MAX_EVERY_S,
                description="seconds per interval: answer numeric means per interval",
            ),
        ] = None,
    ) -> HistoryOut:
        """Raw points (at most 1 day), or numeric means per `every` seconds (text gives none)."""
        path = index.path(asset)
        if signal not in index.catalogue[path] and not (
            signal.startswith(KPI_PREFIX)
            and any(p.signal == signal for p in store.latest(Scope.of(path)))
        ):
            raise HTTPException(404, f"asset {asset!r} has no signal {signal!r}")
        begin, finish = _range(start, end, HISTORY_SPAN)
        step = None if every is None else timedelta(seconds=every)
        if step is None:
            _check_span(begin, finish, MAX_RAW_SPAN, "every", "needed for a range over 1 day")
        elif (finish - begin) / step > MAX_POINTS:
            raise _invalid(
                "every", f"gives more than {MAX_POINTS} intervals: make it longer", every
            )
        points = store.history(path, signal, begin, finish, step)
        _check_count(points, "set every or shorten the range", "every")
        return HistoryOut(
            asset=_ref(path),
            signal=signal,
            unit=index.unit(path, signal, next((p.unit for p in points if p.unit), "")),
            start=begin,
            end=finish,
            every=every,
            points=[Sample(ts=p.ts, value=p.value, quality=p.quality) for p in points],
        )

    @readers.get("/api/v1/kpis", responses=_ASSET_ERRORS)
    def kpis(asset: AssetId = None, start: Start = None, end: End = None) -> list[KpiOut]:
        """The latest value of each KPI; with start or end, every KPI point in the range."""
        scope = index.asset_scope(asset)
        points = [
            p
            for p in store.latest(scope)
            if p.signal.startswith(KPI_PREFIX) and p.asset in index.catalogue
        ]
        if start is not None or end is not None:
            begin, finish = _range(start, end, KPI_SPAN)
            _check_span(begin, finish, MAX_RAW_SPAN, "start", "a KPI range may span at most 1 day")
            points = _series(store, points, begin, finish)
            _check_count(points, "shorten the range or name an asset", "start")
        return [
            KpiOut(
                asset=_ref(p.asset),
                kpi=p.signal.removeprefix(KPI_PREFIX),
                ts=p.ts,
                value=p.value,
                unit=p.unit,
            )
            for p in sorted(points, key=lambda p: (p.asset, p.signal, p.ts))
            if not isinstance(p.value, str)
        ]

    @readers.get("/api/v1/shift-reports", responses=_ASSET_ERRORS)
    def shift_reports(
        asset: AssetId = None, start: Start = None, end: End = None
    ) -> list[ShiftReportOut]:
        """The analysed shifts that began in the range (default: the last 24 hours)."""
        begin, finish = _range(start, end, EVENT_SPAN)
        _check_span(
            begin, finish, MAX_EVENT_SPAN, "start", "a shift range may span at most 31 days"
        )
        latest = [p for p in store.latest(index.asset_scope(asset)) if p.asset in index.catalogue]
        points = _series(store, [p for p in latest if p.signal == SHIFT_REPORT], begin, finish)
        found = []
        for point in points:
            try:
                report = ShiftReportDoc.model_validate_json(str(point.value))
            except ValueError as exc:  # pydantic's ValidationError is one
                log.warning("skipped unreadable shift report of %s: %s", point.asset, exc)
                continue
            found.append(ShiftReportOut(asset=_ref(point.asset), start=point.ts, report=report))
        return sorted(found, key=lambda out: (out.start, out.asset.asset))

    @readers.get("/api/v1/events", responses=_ASSET_ERRORS)
    def events(asset: AssetId = None, start: Start = None, end: End = None) -> list[EventOut]:
        """Events whose start lies in the range (default: the last 24 hours)."""
        begin, finish = _range(start, end, EVENT_SPAN)
        _check_span(
            begin, finish, MAX_EVENT_SPAN, "start", "an event range may span at most 31 days"
        )
        latest = [p for p in store.latest(index.asset_scope(asset)) if p.asset in index.catalogue]
        points = _series(
            store, [p for p in latest if p.signal.startswith(EVENT_PREFIX)], begin, finish
        )
        _check_count(points, "shorten the range or name an asset", "start")
        acks = acknowledgements(
            _series(store, [p for p in latest if p.signal.startswith(ACK_PREFIX)], begin, finish)
        )
        found = []
        for point in points:
            try:
                found.append((point.asset, point.as_event()))
            except ValueError as exc:  # written by something other than the gateway
                log.warning("skipped unreadable event %s of %s: %s", point.signal, point.asset, exc)
        return [
            EventOut(
                asset=_ref(path),
                acknowledged=acks.get((path, event.name, event.start)),
                **event.model_dump(),
            )
            for path, event in sorted(found, key=lambda item: (item[1].start, item[0]))
        ]

    @admins.post("/api/v1/events/{asset}/{name}/acknowledgement", responses=_ASSET_ERRORS)
    def acknowledge(
        asset: Annotated[str, Path(description="an asset id")],
        name: Annotated[str, Path(description="the event's name")],
        event: EventKey,
    ) -> EventOut:
        """Acknowledge an event as an operator does on the dashboard, now (never before it
        began); one already acknowledged keeps its first acknowledgement."""
        path = index.path(asset)
        if not EARLIEST <= event.start < LATEST:  # checked first: UTC cannot hold them all
            raise _invalid(
                "start", "must be between 1970-01-01 and 2262-01-01", event.start, "body"
            )
        start = event.start.astimezone(UTC)
        found = _event_at(store, path, name, start)
        if found is None:
            raise HTTPException(404, f"asset {asset!r} has no event {name!r} starting at {start}")
        stored, at = found
        if at is None:
            at = max(datetime.now(UTC), stored.start)
            store.write([Point.acknowledgement(path, stored, at)])
        return EventOut(asset=_ref(path), acknowledged=at, **stored.model_dump())

    for router, role in ((readers, Role.READ), (admins, Role.ADMIN)):
        _state_scope(router, role, tenant)
        app.include_router(router)
    return app


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handlers: the gateway's main thread owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The API served by uvicorn in a background thread, on a socket bound at construction.

    Binding first means a taken address fails in the caller's thread and `port` is the real
    one, also when 0 asked for a free port.
    """

    def __init__(self, app: FastAPI, host: str, port: int):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=STOP_TIMEOUT_S,
        )
        self._server = _ThreadServer(config)
        self._thread = threading.Thread(
            target=self._server.run, args=([self._socket],), name="gateway-api", daemon=True
        )

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP API did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        log.info("HTTP API on http://%s:%d (docs at /docs)", self.host, self.port)

    def stop(self) -> None:
        """Stop within about STOP_TIMEOUT_S: requests still running after that are cancelled."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S + 1)
        self._socket.close()


def serve(app: FastAPI, host: str, port: int) -> ApiServer:
    """Bind `host:port` for `app`; `start()` serves it, `stop()` ends it."""
    return ApiServer(app, host, port)
