"""The InfluxDB backend: line protocol in, InfluxQL on the v1 `/query` endpoint out.

InfluxDB 1.x, 2.x and 3.x all answer InfluxQL on `/query`, so one read path serves every
version. Writes go through influxdb-client's write API on 2.x and 3.x, and through `/write` on
1.x, which has no v2 write API. The version is read from the server's `/ping`.

`/write` on 1.x is the gateway's hot path, one request a message at 1 Hz loads: it goes over a
kept-alive `http.client` connection, which costs about a quarter of the CPU of an httpx request.
"""

from __future__ import annotations

import base64
import functools
import gzip
import http.client
import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from shopfloor.credentials import hide
from shopfloor.messages import AssetPath, Quality
from shopfloor.store import Point, Scope, StoreError, StoreSettings, from_ns, to_ns

log = logging.getLogger(__name__)

MEASUREMENT = "reading"
TAGS = ("tenant", "site", "area", "cell", "asset", "signal")


def _escape_tag(text: str) -> str:
    return text.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _escape_string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=65536)
def _series_key(asset: AssetPath, signal: str) -> str:
    """`reading,tenant=...,signal=... `: the same for every point of a series, so made once."""
    tags = ",".join(
        f"{name}={_escape_tag(value)}" for name, value in zip(TAGS, (*asset, signal), strict=True)
    )
    return f"{MEASUREMENT},{tags} "


@functools.lru_cache(maxsize=4096)
def _metadata_fields(quality: Quality, unit: str) -> str:
    return f",quality={_escape_string_field(quality.value)},unit={_escape_string_field(unit)} "


def to_line_protocol(points: Iterable[Point]) -> str:
    """Serialise points as InfluxDB line protocol with nanosecond timestamps."""
    return "\n".join(
        _series_key(p.asset, p.signal)
        + (
            f"text={_escape_string_field(p.value)}"
            if isinstance(p.value, str)
            else f"value={float(p.value)!r}"
        )
        + _metadata_fields(p.quality, p.unit)
        + str(to_ns(p.ts))
        for p in points
    )


def _literal(text: str) -> str:
    """An InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(tags: dict[str, str]) -> str:
    return " AND ".join(f'"{name}" = {_literal(value)}' for name, value in tags.items())


def _points(result: dict[str, Any]) -> list[Point]:
    points = []
    for series in result.get("series", []):
        tags = series.get("tags", {})
        for row in series["values"]:
            record = dict(zip(series["columns"], row, strict=True))
            value = record.get("text") if record.get("text") is not None else record.get("value")
            if value is None:
                value = record.get("mean")
            if value is None:
                continue
            points.append(
                Point(
                    asset=AssetPath(*(tags[name] for name in TAGS[:5])),
                    signal=tags["signal"],
                    ts=from_ns(int(record["time"])),
                    value=value if isinstance(value, str) else float(value),
                    quality=Quality(record.get("quality") or Quality.GOOD),
                    unit=record.get("unit") or "",
                )
            )
    return points


# Bad request, too large, unprocessable: the points themselves; authentication, a missing
# database or an overloaded server are not the points' fault and may be put right.
REJECTED_DATA = frozenset({400, 413, 422})
TIMEOUT_S = 10.0
GZIP_FROM_BYTES = 1400  # a body that fits one packet gains nothing from compression


class _Writer:
    """POSTs to `/write` over one kept-alive connection with the client's headers, TLS context
    and timeout, one request at a time. A connection the server has closed since the last write
    is opened again once: a write repeated whole overwrites itself."""

    def __init__(self, url: str, headers: dict[str, str], params: dict[str, str], timeout: float):
        parts = urlsplit(url)
        self.url, self.timeout = url, timeout
        self.host, self.port = parts.hostname or "", parts.port
        self.tls = httpx.create_ssl_context() if parts.scheme == "https" else None
        self.path = f"{parts.path.rstrip('/')}/write?{urlencode(params)}"
        port = f":{parts.port}" if parts.port else ""
        self.where = f"{parts.scheme}://{self.host}{port}{self.path}"  # for the request log
        self.headers = {**headers, "Content-Type": "text/plain; charset=utf-8"}
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.tls
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def post(self, body: bytes) -> tuple[int, str]:
        """The status and text of the server's answer to `body`."""
        headers = self.headers
        if len(body) >= GZIP_FROM_BYTES:
            body = gzip.compress(body, compresslevel=1)
            headers = {**headers, "Content-Encoding": "gzip"}
        with self._lock:
            while True:
                fresh = self._connection is None
                try:
                    return self._post(body, headers)
                except (http.client.HTTPException, OSError) as exc:
                    self.close()
                    if fresh or isinstance(exc, TimeoutError):
                        raise StoreError(f"InfluxDB at {self.url} unreachable: {exc}") from exc

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        if self._connection is None:
            self._connection = self._connect()
        self._connection.request("POST", self.path, body, headers)
        response = self._connection.getresponse()
        text = response.read()
        if response.will_close:
            self.close()
        log.debug('HTTP Request: POST %s "%d %s"', self.where, response.status, response.reason)
        return response.status, text.decode(errors="replace")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class InfluxStore:
    """Store on an InfluxDB server of major version 1, 2 or 3."""

    def __init__(self, settings: StoreSettings):
        self.settings = settings
        self.url = settings.url.rstrip("/")
        headers = self._authorization()
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT_S)
        self.version = self._ping()
        self._v1_writer = _Writer(
            self.url, headers, {"db": settings.database, "precision": "ns"}, TIMEOUT_S
        )
        self._client: Any = None
        self._writer: Any = None
        if settings.write_api == "v2" or (
            settings.write_api == "auto" and not self.version.startswith("1")
        ):
            self._open_v2_writer()
        elif self.version.startswith("1"):
            self._create_databases()

    def _authorization(self) -> dict[str, str]:
        """The credentials as a header, where no request log shows them (a URL's query would):
        user name and password as HTTP Basic on 1.x, else the 2.x/3.x token."""
        settings = self.settings
        if settings.username and settings.password:
            password = settings.password.get_secret_value()
            basic = base64.b64encode(f"{settings.username}:{password}".encode()).decode()
            hide(password, basic)
            return {"Authorization": f"Basic {basic}"}
        if settings.token:
            hide(settings.token.get_secret_value())
            return {"Authorization": f"Token {settings.token.get_secret_value()}"}
        return {}

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreError(f"InfluxDB at {self.url} unreachable: {exc}") from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._checked(self._send(method, path, **kwargs), path)

    def _checked(self, response: httpx.Response, path: str) -> httpx.Response:
        self._check(response.status_code, response.text, path)
        return response

    def _check(self, status: int, text: str, path: str) -> None:
        if status >= 300:
            raise StoreError(
                f"InfluxDB at {self.url} answered {status} to {path}: {text.strip()[:300]}",
                rejected=status in REJECTED_DATA,
            )

    def _create_databases(self) -> None:
        """Create the 1.x databases, which only an admin may do: a user with READ or WRITE
        grants alone (docs/security.md) is refused with 403 and uses those the admin made."""
        for database in self.settings.databases:
            name = database.replace(chr(34), "")
            response = self._send("POST", "/query", params={"q": f'CREATE DATABASE "{name}"'})
            if response.status_code != 403:
                self._checked(response, "/query")

    def _ping(self) -> str:
        response = self._request("GET", "/ping")
        return str(response.headers.get("X-Influxdb-Version", "1")).lstrip("v")

    def _open_v2_writer(self) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = self.settings.token.get_secret_value() if self.settings.token else None
        self._client = InfluxDBClient(
            url=self.url, token=token, org=self.settings.org, enable_gzip=True
        )
        self._writer = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, points: list[Point]) -> None:
        if not points:
            return
        body = to_line_protocol(points)
        if self._writer is None:
            self._check(*self._v1_writer.post(body.encode()), "/write")
            return
        try:
            self._writer.write(bucket=self.settings.database, org=self.settings.org, record=body)
        except Exception as exc:  # influxdb-client raises urllib3 and ApiException types
            rejected = getattr(exc, "status", None) in REJECTED_DATA
            raise StoreError(f"InfluxDB at {self.url}: write failed: {exc}", rejected) from exc

    def _select(self, statement: str) -> list[Point]:
        """The points a SELECT finds in every database read (`StoreSettings.databases`)."""
        points = []
        for database in self.settings.databases:
            params = {"db": database, "q": statement, "epoch": "ns"}
            response = self._request("GET", "/query", params=params)
            results: list[dict[str, Any]] = response.json().get("results", [])
            for result in results:
                if "error" in result:
                    raise StoreError(f"InfluxDB at {self.url}: {result['error']}")
            points += _points(results[0])
        return points

    def latest(self, scope: Scope) -> list[Point]:
        statement = (
            f'SELECT * FROM "{MEASUREMENT}" WHERE {_where(scope.tags())} '
            "GROUP BY * ORDER BY time DESC LIMIT 1"
        )
        newest: dict[tuple[AssetPath, str], Point] = {}
        for point in self._select(statement):
            key = (point.asset, point.signal)
            if key not in newest or point.ts > newest[key].ts:
                newest[key] = point
        return sorted(newest.values(), key=lambda p: (p.asset.asset, p.signal))

    def history(
        self,
        asset: AssetPath,
        signal: str,
        start: datetime,
        end: datetime,
        every: timedelta | None = None,
    ) -> list[Point]:
        tags = dict(zip(TAGS, (*asset, signal), strict=True))
        span = f"time >= {to_ns(start)} AND time < {to_ns(end)}"
        where = f"{_where(tags)} AND {span}"
        if every is None:
            statement = (
                f'SELECT value, text, quality, unit FROM "{MEASUREMENT}" WHERE {where} '
                "GROUP BY * ORDER BY time"
            )
        else:
            micros = every // timedelta(microseconds=1)
            statement = (
                f'SELECT mean(value), last(unit) AS unit FROM "{MEASUREMENT}" WHERE {where} '
                f"GROUP BY *, time({micros}u) fill(none)"
            )
        return sorted(self._select(statement), key=lambda p: p.ts)

    def before(self, asset: AssetPath, signal: str, ts: datetime) -> Point | None:
        tags = dict(zip(TAGS, (*asset, signal), strict=True))
        statement = (
            f'SELECT value, text, quality, unit FROM "{MEASUREMENT}" WHERE {_where(tags)} '
            f"AND time < {to_ns(ts)} GROUP BY * ORDER BY time DESC LIMIT 1"
        )
        return max(self._select(statement), key=lambda p: p.ts, default=None)

    def ping(self) -> None:
        self._request("GET", "/ping")

    def close(self) -> None:
        self._http.close()
        self._v1_writer.close()
        if self._client is not None:
            self._client.close()
