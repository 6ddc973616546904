"""The one way the platform opens a SQLite file: the edge's queue, the gateway's buffer, the
embedded store and the readiness records differ only in the arguments below."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

__all__ = ["BUSY_TIMEOUT_S", "open_sqlite"]

BUSY_TIMEOUT_S = 10.0  # a writer in another process holds the file at most this long


def open_sqlite(
    path: Path,
    *,
    wal: bool = False,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    any_thread: bool = False,
) -> sqlite3.Connection:
    """A connection to `path`, its folder created; writers wait BUSY_TIMEOUT_S for each other.

    `wal` lets readers in other processes go on while one writes. `synchronous` FULL loses
    nothing accepted to a power cut; NORMAL in WAL mode may lose the last commits but never
    corrupts the file. `any_thread` lets the threads of one process share the connection, which
    the caller then serialises itself. Raises OSError or sqlite3.Error, for the caller to name
    what the file is; a connection that fails half-way is closed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=not any_thread)
    try:
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.Error:
        db.close()
        raise
    return db
