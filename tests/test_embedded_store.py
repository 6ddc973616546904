"""Fault paths of the embedded store: a full disk loses nothing already written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shopfloor.messages import AssetPath
from shopfloor.store import Point, StoreError
from shopfloor.store.embedded import EmbeddedStore

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def batch(start: int, count: int) -> list[Point]:
    return [
        Point(PRESS, "power", T0 + timedelta(seconds=i), float(i), unit="kW")
        for i in range(start, start + count)
    ]


def test_disk_full_is_a_store_error_and_earlier_points_survive(tiny_disk: Path) -> None:
    store = EmbeddedStore(tiny_disk / "store.db")
    store.write(batch(0, 100))
    with pytest.raises(StoreError, match="full"):
        for start in range(100, 1_000_000, 5_000):
            store.write(batch(start, 5_000))
    history = store.history(PRESS, "power", T0, T0 + timedelta(days=30))
    assert [p.value for p in history[:100]] == [float(i) for i in range(100)]
    assert len(history) % 5_000 == 100  # whole batches or nothing: the failed one left no trace
    store.close()


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open embedded store"):
        EmbeddedStore(blocker / "store.db")
