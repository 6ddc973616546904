"""The one SQLite opener: each caller's journal, durability and threading, and its folder made."""

from __future__ import annotations

import threading
from pathlib import Path

from shopfloor.sqlite import open_sqlite


def test_wal_with_the_asked_durability_shared_between_threads(tmp_path: Path) -> None:
    db = open_sqlite(
        tmp_path / "new" / "folder" / "s.db", wal=True, synchronous="NORMAL", any_thread=True
    )
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    answers: list[tuple[int]] = []
    other = threading.Thread(target=lambda: answers.append(db.execute("SELECT 1").fetchone()))
    other.start()
    other.join()
    assert answers == [(1,)]
    db.close()


def test_default_is_a_rollback_journal_with_full_durability(tmp_path: Path) -> None:
    db = open_sqlite(tmp_path / "r.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    db.close()
