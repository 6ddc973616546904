"""The time-series store: one small interface, an embedded and an InfluxDB backend.

The gateway writes the readings and events, the analytics service writes its KPIs and anomaly
scores back, the dashboard and readiness read them (the dashboard also writes acknowledgements
and its view log); none of them knows which backend is behind `open_store`. The backends,
`embedded` (SQLite) and `influx`, are opened by `open_store`; no component imports them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, NamedTuple, Protocol

from pydantic import BaseModel, BeforeValidator, SecretStr

from shopfloor.messages import AssetPath, Event, Quality, Reading, iso_utc
from shopfloor.plant import Plant

__all__ = [
    "ACK_PREFIX",
    "ANOMALY_EVENT_PREFIX",
    "ENV_VARS",
    "EVENT_PREFIX",
    "SCORE_PREFIX",
    "SILENT_EVENT_PREFIX",
    "Point",
    "Scope",
    "Store",
    "StoreError",
    "StoreSettings",
    "acknowledgements",
    "anomaly_event_name",
    "data_clock",
    "from_ns",
    "open_store",
    "to_ns",
]

log = logging.getLogger(__name__)

EVENT_PREFIX = "event."
ACK_PREFIX = "ack."
SCORE_PREFIX = "anomaly."  # the anomaly score of each sample of a signal
ANOMALY_EVENT_PREFIX = "anomaly_"
SILENT_EVENT_PREFIX = "silent_"


def anomaly_event_name(signal: str, prefix: str = ANOMALY_EVENT_PREFIX) -> str:
    """The name of the events found in a signal: event names allow no `-` nor capitals."""
    return prefix + signal.replace("-", "_").lower()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_ns(ts: datetime) -> int:
    """Nanoseconds since the epoch, exact (a float round trip would lose microseconds)."""
    return (ts - _EPOCH) // _MICROSECOND * 1000


def from_ns(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


class Point(NamedTuple):
    """A reading placed in the namespace: the unit of storage.

    Numbers (and booleans) are stored as floats, text (such as a machine state) as text. A point
    with the same asset, signal and timestamp as a stored one replaces it, so re-delivered
    messages never double the data. A named tuple, not a frozen dataclass: the gateway makes
    one a reading, and a tuple is made in half the time.
    """

    asset: AssetPath
    signal: str
    ts: datetime
    value: float | str
    quality: Quality = Quality.GOOD
    unit: str = ""

    @classmethod
    def from_event(cls, asset: AssetPath, event: Event) -> Point:
        """An event as a text point at its start: sent again with its end, it overwrites itself.
        Contributions are kept only when there are some, so events without them are stored as
        they always were."""
        fields = {"type", "end", "note", "loss"} | (
            {"contributions"} if event.contributions else set()
        )
        detail = event.model_dump(mode="json", include=fields)
        return cls(asset, f"{EVENT_PREFIX}{event.name}", event.start, json.dumps(detail))

    def as_event(self) -> Event:
        """The event an `event.*` point holds."""
        return Event.model_validate(
            {
                **json.loads(str(self.value)),
                "name": self.signal.removeprefix(EVENT_PREFIX),
                "start": self.ts,
            }
        )

    @classmethod
    def acknowledgement(cls, asset: AssetPath, event: Event, at: datetime) -> Point:
        """An operator's acknowledgement of an event: stamped with the event's start, so that it
        names the event, in a series of its own, so that updates of the event cannot erase it.
        Its value is when the operator acknowledged."""
        return cls(asset, f"{ACK_PREFIX}{event.name}", event.start, iso_utc(at))

    def acknowledged_at(self) -> datetime:
        """When the acknowledgement an `ack.*` point holds was given."""
        return datetime.fromisoformat(str(self.value))

    @classmethod
    def from_reading(cls, asset: AssetPath, reading: Reading) -> Point:
        value = reading.value if isinstance(reading.value, str) else float(reading.value)
        return cls(asset, reading.signal, reading.ts, value, reading.quality, reading.unit)


def acknowledgements(points: Iterable[Point]) -> dict[tuple[AssetPath, str, datetime], datetime]:
    """When each event was acknowledged, by asset, event name and event start, from `ack.*`
    points; one that cannot be read (written by something else) is left out and logged."""
    found = {}
    for point in points:
        try:
            at = point.acknowledged_at()
        except ValueError:
            log.warning("skipped unreadable acknowledgement %s of %s", point.signal, point.asset)
            continue
        found[(point.asset, point.signal.removeprefix(ACK_PREFIX), point.ts)] = at
    return found


@dataclass(frozen=True, slots=True)
class Scope:
    """Selects assets: a tenant, optionally narrowed down the namespace levels."""

    tenant: str
    site: str | None = None
    area: str | None = None
    cell: str | None = None
    asset: str | None = None

    def tags(self) -> dict[str, str]:
        """The levels that are set, by tag name."""
        levels = {
            "tenant": self.tenant,
            "site": self.site,
            "area": self.area,
            "cell": self.cell,
            "asset": self.asset,
        }
        return {name: value for name, value in levels.items() if value is not None}

    @classmethod
    def of(cls, path: AssetPath) -> Scope:
        return cls(*path)


class StoreError(Exception):
    """The store could not do what was asked (unreachable, rejected a write, bad query).

    `rejected` means the store refused the data itself (a malformed or out-of-range point):
    sending the same points again will fail again, whereas an unreachable store may recover.
    """

    def __init__(self, message: str, rejected: bool = False):
        super().__init__(message)
        self.rejected = rejected


class Store(Protocol):
    """What every backend offers. Timestamps in and out are timezone-aware UTC."""

    def write(self, points: list[Point]) -> None:
        """Store points atomically enough that a retry after an error is safe."""

    def latest(self, scope: Scope) -> list[Point]:
        """The newest point of every signal of every asset in `scope`."""

    def history(
        self,
        asset: AssetPath,
        signal: str,
        start: datetime,
        end: datetime,
        every: timedelta | None = None,
    ) -> list[Point]:
        """Points of one signal in [start, end); with `every`, numeric means per interval."""

    def before(self, asset: AssetPath, signal: str, ts: datetime) -> Point | None:
        """The newest point of one signal strictly before `ts`: the state or counter reading
        that still holds when a window opens, however long ago it was written."""

    def ping(self) -> None:
        """Raise StoreError unless the store answers: a cheap check while nothing is written."""

    def close(self) -> None: ...


def _names(value: object) -> object:
    """A comma-separated list (as an environment variable gives it) as a tuple of names."""
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    return value


def _env_text(value: object) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return ",".join(value) or None
    return None if value is None else str(value)


class StoreSettings(BaseModel):
    """Where the store lives. `url` is `sqlite:PATH` (embedded) or the InfluxDB HTTP URL.

    For InfluxDB, `database` is the 1.x database or the 2.x/3.x bucket written to; 2.x and 3.x
    also need `token` (and `org` for 2.x writes); 1.x with auth uses `username`/`password`.
    `read_also` names further databases (buckets) read together with it: a deployment with
    least privilege keeps the readings, which only the gateway writes, apart from what analytics
    and the dashboard derive and write (docs/security.md). `write_api` picks the write path:
    `v1` (`/write`), `v2` (influxdb-client), or `auto` from the version the server reports on
    `/ping`. The embedded store is one file and ignores `database` and `read_also`.
    """

    url: str = "sqlite:.shopfloor/store.db"
    database: str = "shopfloor"
    read_also: Annotated[tuple[str, ...], BeforeValidator(_names)] = ()
    token: SecretStr | None = None
    org: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    write_api: Literal["auto", "v1", "v2"] = "auto"

    @classmethod
    def from_env(cls) -> StoreSettings:
        """Settings from the SHOPFLOOR_STORE_* variables (see `ENV_VARS`)."""
        return cls().with_env(ENV_PREFIX)

    def with_env(self, prefix: str) -> StoreSettings:
        """These settings with each field that a `<prefix><FIELD>` variable gives replaced: how
        a second store of one process (the gateway's API) gets credentials of its own."""
        names = {field: f"{prefix}{field.upper()}" for field in type(self).model_fields}
        given = {field: os.environ[name] for field, name in names.items() if name in os.environ}
        return self.model_validate({**dict(self), **given}) if given else self

    def to_env(self) -> dict[str, str]:
        """The SHOPFLOOR_STORE_* variables that reproduce these settings in a child process."""
        values = {field: _env_text(value) for field, value in self}
        return {ENV_VARS[f]: v for f, v in values.items() if v is not None}

    @property
    def databases(self) -> tuple[str, ...]:
        """Every database read, the one written first."""
        return tuple(dict.fromkeys((self.database, *self.read_also)))

    @property
    def is_embedded(self) -> bool:
        return self.url.startswith("sqlite:")


ENV_PREFIX = "SHOPFLOOR_STORE_"
ENV_VARS = {field: f"{ENV_PREFIX}{field.upper()}" for field in StoreSettings.model_fields}


def data_clock(plant: Plant, store: Store) -> datetime | None:
    """The plant's "now": its newest reading of any plant signal. Every component that analyses
    or shows "the latest hour" counts back from it, not from the wall clock, so that a
    simulation above x1 (ahead of the wall clock) or a replayed day (behind it) is treated like
    a live line. None before the first reading."""
    catalogue = plant.catalogue()
    stamps = [
        p.ts
        for p in store.latest(Scope(plant.tenant.id, plant.site.id))
        if p.signal in catalogue.get(p.asset, {})
    ]
    return max(stamps, default=None)


def open_store(settings: StoreSettings) -> Store:
    """Open the backend named by `settings.url`."""
    if settings.is_embedded:
        from shopfloor.store.embedded import EmbeddedStore

        return EmbeddedStore(settings.url.removeprefix("sqlite:"))
    if settings.url.startswith(("http://", "https://")):
        from shopfloor.store.influx import InfluxStore

        return InfluxStore(settings)
    raise StoreError(f"store URL {settings.url!r} is neither sqlite:PATH nor http(s)://HOST:PORT")
