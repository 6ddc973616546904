"""One contract, run against every store backend (embedded SQLite and a real InfluxDB)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shopfloor.messages import AssetPath, Quality
from shopfloor.store import Point, Scope, Store, StoreError, StoreSettings, open_store
from tests.servers import InfluxDB

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PRESS = AssetPath("acme", "brest", "moulding", "line-1", "imm-01")
LATHE = AssetPath("acme", "brest", "machining", "line-2", "cnc-01")
OTHER_TENANT = AssetPath("globex", "novi-sad", "moulding", "line-1", "imm-01")


def series(asset: AssetPath, signal: str, values: list[float], step_s: float = 1.0) -> list[Point]:
    return [
        Point(asset, signal, T0 + timedelta(seconds=i * step_s), v, unit="kW")
        for i, v in enumerate(values)
    ]


def test_history_returns_what_was_written_in_order(store: Store) -> None:
    store.write(series(PRESS, "power", [1.5, 2.5, 3.25]))
    got = store.history(PRESS, "power", T0, T0 + timedelta(minutes=1))
    assert [p.value for p in got] == [1.5, 2.5, 3.25]
    assert [p.ts for p in got] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    assert all(p.unit == "kW" and p.asset == PRESS and p.signal == "power" for p in got)


def test_timestamps_keep_microseconds(store: Store) -> None:
    ts = T0 + timedelta(microseconds=123_457)
    store.write([Point(PRESS, "power", ts, 1.0)])
    assert store.history(PRESS, "power", T0, T0 + timedelta(seconds=1))[0].ts == ts


def test_history_range_is_half_open(store: Store) -> None:
    store.write(series(PRESS, "power", [1, 2, 3, 4]))
    got = store.history(PRESS, "power", T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))
    assert [p.value for p in got] == [2.0, 3.0]


def test_same_series_and_timestamp_overwrites_instead_of_doubling(store: Store) -> None:
    store.write(series(PRESS, "power", [1, 2]))
    store.write(series(PRESS, "power", [1, 2]))
    store.write([Point(PRESS, "power", T0, 9.0)])
    got = store.history(PRESS, "power", T0, T0 + timedelta(minutes=1))
    assert [p.value for p in got] == [9.0, 2.0]


def test_text_values_such_as_machine_state(store: Store) -> None:
    store.write([Point(PRESS, "state", T0, "running"), Point(PRESS, "state", T0, "idle")])
    store.write([Point(PRESS, "state", T0 + timedelta(seconds=5), "unplanned_stop")])
    got = store.history(PRESS, "state", T0, T0 + timedelta(minutes=1))
    assert [p.value for p in got] == ["idle", "unplanned_stop"]


def test_latest_gives_newest_point_of_each_signal_in_scope(store: Store) -> None:
    store.write(series(PRESS, "power", [1, 2, 3]) + series(PRESS, "part_count", [10, 11]))
    store.write(series(LATHE, "power", [7, 8]))
    store.write([Point(PRESS, "state", T0, "running", Quality.UNCERTAIN)])
    latest = {(p.asset.asset, p.signal): p for p in store.latest(Scope("acme"))}
    assert {k: p.value for k, p in latest.items()} == {
        ("imm-01", "power"): 3.0,
        ("imm-01", "part_count"): 11.0,
        ("imm-01", "state"): "running",
        ("cnc-01", "power"): 8.0,
    }
    assert latest[("imm-01", "state")].quality is Quality.UNCERTAIN
    assert latest[("imm-01", "power")].ts == T0 + timedelta(seconds=2)
    only_press = store.latest(Scope.of(PRESS))
    assert {p.signal for p in only_press} == {"power", "part_count", "state"}


def test_tenants_are_isolated(store: Store) -> None:
    store.write(series(PRESS, "power", [1.0]) + series(OTHER_TENANT, "power", [99.0]))
    assert [p.value for p in store.latest(Scope("acme"))] == [1.0]
    assert [p.value for p in store.latest(Scope("globex"))] == [99.0]
    assert store.latest(Scope("nobody")) == []


def test_awkward_characters_survive(store: Store) -> None:
    odd = AssetPath("acme", "site one", "a,b", "c=d", 'it\'s "x"\\y')
    store.write([Point(odd, "note", T0, 'say "hi", \\ ok', unit="°C")])
    got = store.latest(Scope("acme", site="site one"))
    assert [(p.asset, p.value, p.unit) for p in got] == [(odd, 'say "hi", \\ ok', "°C")]


def test_downsampling_averages_per_epoch_aligned_interval(store: Store) -> None:
    store.write(series(PRESS, "power", [float(i) for i in range(120)]))
    got = store.history(PRESS, "power", T0, T0 + timedelta(minutes=2), every=timedelta(minutes=1))
    assert [p.ts for p in got] == [T0, T0 + timedelta(minutes=1)]
    assert [p.value for p in got] == [pytest.approx(29.5), pytest.approx(89.5)]


def test_before_gives_the_newest_point_strictly_before(store: Store) -> None:
    store.write(series(PRESS, "state", [1.0, 2.0, 3.0], step_s=3600.0))
    store.write(series(LATHE, "state", [9.0]))
    found = store.before(PRESS, "state", T0 + timedelta(hours=2))
    assert found is not None and found.value == 2.0 and found.ts == T0 + timedelta(hours=1)
    assert store.before(PRESS, "state", T0) is None
    assert store.before(PRESS, "other", T0 + timedelta(days=1)) is None


def test_empty_history(store: Store) -> None:
    assert store.history(PRESS, "power", T0, T0 + timedelta(hours=1)) == []


def _write_in_other_process(settings: StoreSettings) -> None:
    writer = open_store(settings)
    writer.write(series(LATHE, "power", [float(i) for i in range(500)]))
    writer.close()


def test_another_process_reads_while_one_writes(store_settings: StoreSettings) -> None:
    reader = open_store(store_settings)
    reader.write(series(PRESS, "power", [1.0]))
    child = multiprocessing.get_context("spawn").Process(
        target=_write_in_other_process, args=(store_settings,)
    )
    child.start()
    while child.is_alive():
        assert reader.latest(Scope.of(PRESS))[0].value == 1.0
    child.join()
    assert child.exitcode == 0
    assert reader.latest(Scope.of(LATHE))[0].value == 499.0
    reader.close()


def test_unreachable_influxdb_is_a_clear_store_error() -> None:
    from tests.servers import free_port

    with pytest.raises(StoreError, match="unreachable"):
        open_store(StoreSettings(url=f"http://127.0.0.1:{free_port()}"))


def test_unknown_store_url_is_a_clear_store_error() -> None:
    with pytest.raises(StoreError, match="neither sqlite:PATH nor http"):
        open_store(StoreSettings(url="ftp://example"))


def test_influxdb_restarted_between_writes_takes_the_next_write(tmp_path: Path) -> None:
    """The kept-alive `/write` connection dies with the server: the next write opens a new one
    rather than failing, and a server that stays down is a clear store error."""
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    store = open_store(StoreSettings(url=server.url))
    try:
        store.write(series(PRESS, "power", [1.0]))
        server.stop()
        server.start()
        store.write(series(PRESS, "power", [1.0, 2.0]))
        got = store.history(PRESS, "power", T0, T0 + timedelta(minutes=1))
        assert [p.value for p in got] == [1.0, 2.0]
        server.stop()
        with pytest.raises(StoreError, match="unreachable") as refused:
            store.write(series(PRESS, "power", [3.0]))
        assert not refused.value.rejected
    finally:
        store.close()
        server.stop()
