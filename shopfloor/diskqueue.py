"""Store-and-forward on disk: every message waits in a file until the next hop has it.

The edge agent queues messages until the broker has acknowledged them (QoS 1); the gateway
queues batches of points while the database is down. A SQLite file (WAL, synchronous=FULL, so a
power cut loses nothing that was accepted) holds them in arrival order, and an entry leaves only
when the consumer acknowledges it. The queue is bounded by size and by age; when a bound is hit
the oldest entries go first, and every drop is counted, so a four-day outage costs the oldest
data, never the SD card or the server's disk.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shopfloor.sqlite import open_sqlite

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class DiskQueueError(Exception):
    """The queue file cannot be opened or written (disk full, read-only, corrupt)."""


@dataclass(frozen=True)
class Queued:
    id: int
    topic: str
    payload: bytes


class DiskQueue:
    """A bounded FIFO of (topic, payload) entries on disk, safe to use from several threads.

    `name` says whose queue it is in every error and log line ("edge buffer", ...).
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int = 256 * 1024 * 1024,
        max_age_s: float = 7 * 86400,
        name: str = "edge buffer",
    ):
        self.path, self.max_bytes, self.max_age_s = path, max_bytes, max_age_s
        self.name = name
        self._lock = threading.Lock()
        try:
            self._db = open_sqlite(path, wal=True, synchronous="FULL", any_thread=True)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise DiskQueueError(f"cannot open the {name} {path}: {exc}") from exc
        self._bytes = self._size()

    def _query_int(self, sql: str, args: tuple[object, ...] = ()) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def put(self, messages: list[tuple[str, bytes]]) -> None:
        """Accept (topic, payload) messages at once; once this returns they survive a crash
        or a power cut. On an error none of them is accepted."""
        now = time.time()
        with self._lock:
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT INTO queue (topic, payload, created) VALUES (?, ?, ?)",
                        [(topic, payload, now) for topic, payload in messages],
                    )
                    self._bytes += sum(len(p) + len(t) for t, p in messages)
                    self._enforce_bounds()
            except sqlite3.Error as exc:
                self._bytes = self._size()
                raise DiskQueueError(
                    f"{self.name} {self.path}: cannot store messages: {exc}"
                ) from exc

    def _size(self) -> int:
        return self._query_int(
            "SELECT COALESCE(SUM(LENGTH(payload) + LENGTH(topic)), 0) FROM queue"
        )

    def _enforce_bounds(self) -> None:
        """Drop the oldest messages past the age or size bound, counting every one."""
        too_old = time.time() - self.max_age_s
        dropped = self._db.execute("DELETE FROM queue WHERE created < ?", (too_old,)).rowcount
        if dropped:
            self._bytes = self._size()
        while self._bytes > self.max_bytes:
            row = self._db.execute(
                "SELECT id, LENGTH(payload) + LENGTH(topic) FROM queue ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                break
            self._db.execute("DELETE FROM queue WHERE id = ?", (row[0],))
            self._bytes -= int(row[1])
            dropped += 1
        if dropped:
            self._db.execute(
                "INSERT INTO counters VALUES ('dropped', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (dropped,),
            )
            log.warning("%s bound reached: dropped the %d oldest entries", self.name, dropped)

    def oldest(self, limit: int, after_id: int = 0) -> list[Queued]:
        """Up to `limit` messages in arrival order, starting after `after_id`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM queue WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Queued(int(i), str(t), bytes(p)) for i, t, p in rows]

    def acknowledge(self, ids: list[int]) -> None:
        """Forget messages the broker has acknowledged."""
        if not ids:
            return
        with self._lock, self._db:
            rows = self._db.execute(
                f"SELECT COALESCE(SUM(LENGTH(payload) + LENGTH(topic)), 0) FROM queue "
                f"WHERE id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchone()
            self._db.executemany("DELETE FROM queue WHERE id = ?", [(i,) for i in ids])
            self._bytes -= int(rows[0] or 0)

    @property
    def empty(self) -> bool:
        """Whether nothing waits; unlike `depth`, it does not count a long queue row by row."""
        with self._lock:
            return not self._query_int("SELECT EXISTS (SELECT 1 FROM queue)")

    @property
    def oldest_age_s(self) -> float:
        """Seconds the oldest entry has waited; 0 when none waits."""
        with self._lock:
            row = self._db.execute("SELECT created FROM queue ORDER BY id LIMIT 1").fetchone()
        return max(time.time() - float(row[0]), 0.0) if row else 0.0

    @property
    def depth(self) -> int:
        with self._lock:
            return self._query_int("SELECT COUNT(*) FROM queue")

    @property
    def size_bytes(self) -> int:
        """Bytes of payload waiting, as counted against `max_bytes`."""
        with self._lock:
            return self._bytes

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._query_int("SELECT value FROM counters WHERE name = 'dropped'")

    def close(self) -> None:
        with self._lock:
            self._db.close()
