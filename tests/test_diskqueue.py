"""The disk queue (edge buffer, gateway spill): FIFO, durable, bounded, and honest about drops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shopfloor.diskqueue import DiskQueue, DiskQueueError


def messages(start: int, count: int, size: int = 10) -> list[tuple[str, bytes]]:
    return [(f"t/{i}", str(i).encode().ljust(size, b" ")) for i in range(start, start + count)]


def test_fifo_and_acknowledge(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.db")
    assert queue.empty
    queue.put(messages(0, 5))
    assert not queue.empty
    first = queue.oldest(3)
    assert [m.topic for m in first] == ["t/0", "t/1", "t/2"]
    assert [m.topic for m in queue.oldest(10, after_id=first[-1].id)] == ["t/3", "t/4"]
    queue.acknowledge([m.id for m in first])
    assert queue.depth == 2
    assert [m.topic for m in queue.oldest(10)] == ["t/3", "t/4"]
    queue.acknowledge([m.id for m in queue.oldest(10)])
    assert queue.empty and queue.depth == 0


def test_accepted_messages_survive_reopening(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.db")
    queue.put(messages(0, 100))
    queue.close()
    reopened = DiskQueue(tmp_path / "q.db")
    assert reopened.depth == 100
    assert reopened.oldest(1)[0].payload.strip() == b"0"


def test_size_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.db", max_bytes=1000)  # each message is 13-14 bytes
    queue.put(messages(0, 200))
    assert queue.dropped > 0
    assert queue.depth + queue.dropped == 200
    kept = [int(m.payload) for m in queue.oldest(1000)]
    assert kept == list(range(200 - len(kept), 200))  # the newest survive, in order
    assert sum(len(m.payload) + len(m.topic) for m in queue.oldest(1000)) <= 1000


def test_age_bound_drops_what_is_too_old(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.db", max_age_s=0.2)
    queue.put(messages(0, 10))
    time.sleep(0.3)
    queue.put(messages(10, 1))
    assert queue.dropped == 10
    assert [m.topic for m in queue.oldest(10)] == ["t/10"]


def test_disk_full_refuses_new_messages_and_keeps_the_accepted_ones(tiny_disk: Path) -> None:
    queue = DiskQueue(tiny_disk / "q.db", max_bytes=100 * 1024 * 1024)
    queue.put(messages(0, 10))
    with pytest.raises(DiskQueueError, match="full"):
        for start in range(10, 1_000_000, 1000):
            queue.put(messages(start, 1000, size=200))
    assert [m.topic for m in queue.oldest(10)] == [f"t/{i}" for i in range(10)]


def test_unopenable_buffer_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DiskQueueError, match="cannot open the edge buffer"):
        DiskQueue(blocker / "q.db")
