"""The embedded backend: one SQLite file in WAL mode.

WAL lets the dashboard and analytics processes read while the gateway process writes, with no
server to install; this is what `make demo` runs on a laptop.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

from shopfloor.messages import AssetPath, Quality
from shopfloor.sqlite import open_sqlite
from shopfloor.store import Point, Scope, StoreError, from_ns, to_ns

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, site TEXT NOT NULL, area TEXT NOT NULL,
    cell TEXT NOT NULL, asset TEXT NOT NULL, signal TEXT NOT NULL,
    UNIQUE (tenant, site, area, cell, asset, signal)
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL REFERENCES series(id),
    ts INTEGER NOT NULL,
    value REAL,
    text TEXT,
    quality TEXT NOT NULL,
    unit TEXT NOT NULL,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;
"""

_SERIES_COLUMNS = "s.tenant, s.site, s.area, s.cell, s.asset, s.signal"
_POINT_COLUMNS = "p.ts, p.value, p.text, p.quality, p.unit"


_QUALITY = {q.value: q for q in Quality}  # a dict lookup: an Enum call costs more than a row


def _point(row: tuple[object, ...]) -> Point:
    tenant, site, area, cell, asset, signal, ts, value, text, quality, unit = row
    return Point(
        asset=AssetPath(str(tenant), str(site), str(area), str(cell), str(asset)),
        signal=str(signal),
        ts=from_ns(int(str(ts))),
        value=str(text) if text is not None else float(str(value)),
        quality=_QUALITY[str(quality)],
        unit=str(unit),
    )


class EmbeddedStore:
    """SQLite-backed store; safe to share between threads of one process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._db = open_sqlite(self.path, wal=True, synchronous="NORMAL", any_thread=True)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open embedded store {self.path}: {exc}") from exc
        self._lock = threading.Lock()
        self._series_ids: dict[tuple[str, ...], int] = {}

    def _series_id(self, key: tuple[str, ...]) -> int:
        if key not in self._series_ids:
            self._db.execute(
                "INSERT OR IGNORE INTO series (tenant, site, area, cell, asset, signal) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                key,
            )
            row = self._db.execute(
                "SELECT id FROM series WHERE tenant=? AND site=? AND area=? AND cell=? "
                "AND asset=? AND signal=?",
                key,
            ).fetchone()
            self._series_ids[key] = int(row[0])
        return self._series_ids[key]

    def write(self, points: list[Point]) -> None:
        with self._lock:
            try:
                with self._db:
                    rows = [
                        (
                            self._series_id((*p.asset, p.signal)),
                            to_ns(p.ts),
                            None if isinstance(p.value, str) else p.value,
                            p.value if isinstance(p.value, str) else None,
                            p.quality.value,
                            p.unit,
                        )
                        for p in points
                    ]
                    self._db.executemany(
                        "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?)", rows
                    )
            except sqlite3.Error as exc:
                self._series_ids.clear()  # ids inserted in the rolled-back transaction are gone
                raise StoreError(f"embedded store {self.path}: write failed: {exc}") from exc
            except OverflowError as exc:
                self._series_ids.clear()
                raise StoreError(
                    f"embedded store {self.path}: a timestamp outside 1677-2262 "
                    "(64-bit nanoseconds since 1970)",
                    rejected=True,
                ) from exc

    def _query(self, sql: str, args: list[object]) -> list[Point]:
        with self._lock:
            try:
                return [_point(row) for row in self._db.execute(sql, args)]
            except sqlite3.Error as exc:
                raise StoreError(f"embedded store {self.path}: read failed: {exc}") from exc

    def latest(self, scope: Scope) -> list[Point]:
        tags = scope.tags()
        where = " AND ".join(f"s.{name} = ?" for name in tags)
        sql = (
            f"SELECT {_SERIES_COLUMNS}, {_POINT_COLUMNS} FROM series s "
            "JOIN points p ON p.series = s.id "
            "AND p.ts = (SELECT MAX(ts) FROM points WHERE series = s.id) "
            f"WHERE {where} ORDER BY s.asset, s.signal"
        )
        return self._query(sql, list(tags.values()))

    def history(
        self,
        asset: AssetPath,
        signal: str,
        start: datetime,
        end: datetime,
        every: timedelta | None = None,
    ) -> list[Point]:
        where = (
            "s.tenant=? AND s.site=? AND s.area=? AND s.cell=? AND s.asset=? AND s.signal=? "
            "AND p.ts >= ? AND p.ts < ?"
        )
        args: list[object] = [*asset, signal, to_ns(start), to_ns(end)]
        if every is None:
            sql = (
                f"SELECT {_SERIES_COLUMNS}, {_POINT_COLUMNS} FROM series s "
                f"JOIN points p ON p.series = s.id WHERE {where} ORDER BY p.ts"
            )
            return self._query(sql, args)
        # Buckets are aligned to the epoch, as InfluxQL's GROUP BY time() aligns them.
        step = every // timedelta(microseconds=1) * 1000
        sql = (
            f"SELECT {_SERIES_COLUMNS}, (p.ts / ?) * ? AS bucket, AVG(p.value), NULL, "
            f"'good', MAX(p.unit) FROM series s JOIN points p ON p.series = s.id "
            f"WHERE {where} AND p.value IS NOT NULL GROUP BY bucket ORDER BY bucket"
        )
        return self._query(sql, [step, step, *args])

    def before(self, asset: AssetPath, signal: str, ts: datetime) -> Point | None:
        sql = (
            f"SELECT {_SERIES_COLUMNS}, {_POINT_COLUMNS} FROM series s "
            "JOIN points p ON p.series = s.id WHERE s.tenant=? AND s.site=? AND s.area=? "
            "AND s.cell=? AND s.asset=? AND s.signal=? AND p.ts < ? ORDER BY p.ts DESC LIMIT 1"
        )
        found = self._query(sql, [*asset, signal, to_ns(ts)])
        return found[0] if found else None

    def ping(self) -> None:
        with self._lock:
            try:
                self._db.execute("SELECT 1 FROM series LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"embedded store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
