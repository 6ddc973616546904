"""`make bench`: every benchmark of the project (`PARTS`), each figure against a baseline
measured in the same run and, where the project has one, its goal.

Figures are ratios because the machines that run them are shared and noisy: the baseline runs
next to the measured code, on the same data, in the same process. `--readme README.md`
replaces the README's performance block with what the run printed and the host it ran on, so
that the README's figures are those of one run; `--skip` leaves parts out (a quick re-run; the
block then says which were not run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx
from rich.console import Console
from rich.table import Table

from bench import (
    anomaly,
    broker,
    capacity,
    demo_start,
    edge,
    faults,
    gateway,
    kernels,
    nodered,
    normal,
    recompute,
)
from bench.host import host_line
from bench.simulator import fast_speed_factor, machines_per_process
from shopfloor.messages import AssetPath, Reading, decode_readings, encode_readings
from shopfloor.sqlite import open_sqlite
from shopfloor.store import Point, StoreSettings, open_store
from shopfloor.store.influx import to_line_protocol
from tests.servers import InfluxDB

PATH = AssetPath("polimer", "brest", "moulding", "line-1", "cnc-01")
T0 = datetime(2026, 11, 2, tzinfo=UTC)
BATCH = 100


def rate(work: Callable[[], int], seconds: float = 2.0) -> float:
    """Items per second of `work` (which returns how many items it handled), best of 3 runs."""
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            done += work()
        best = max(best, done / (time.perf_counter() - start))
    return best


def readings(count: int) -> list[Reading]:
    return [
        Reading(signal="spindle_load", value=50 + i % 7, ts=T0 + timedelta(seconds=i), unit="%")
        for i in range(count)
    ]


def codec() -> tuple[float, float]:
    """Readings/s through encode+decode, and through bare json.dumps+loads of the same data."""
    batch = readings(BATCH)
    payload = encode_readings(batch)
    plain = json.loads(payload)

    def contract() -> int:
        return len(decode_readings(encode_readings(batch)))

    def bare_json() -> int:
        return len(json.loads(json.dumps(plain))["readings"])

    return rate(contract), rate(bare_json)


def points(start: int, count: int) -> list[Point]:
    return [Point(PATH, "power", T0 + timedelta(seconds=start + i), float(i)) for i in range(count)]


def store_writes(settings: StoreSettings, batch: int = 5000) -> float:
    store = open_store(settings)
    written = 0

    def write() -> int:
        nonlocal written
        store.write(points(written, batch))
        written += batch
        return batch

    try:
        return rate(write, seconds=4.0)
    finally:
        store.close()


def raw_influx_posts(server: InfluxDB, batch: int = 5000) -> float:
    """The server's own limit: pre-serialised line protocol posted straight to /write."""
    client = httpx.Client(base_url=server.url)
    client.post("/query", params={"q": "CREATE DATABASE raw"})
    sent = 0

    def post() -> int:
        nonlocal sent
        body = to_line_protocol(points(sent, batch))
        sent += batch
        client.post("/write", params={"db": "raw", "precision": "ns"}, content=body)
        return batch

    try:
        return rate(post, seconds=4.0)
    finally:
        client.close()


def raw_sqlite_inserts(path: Path, batch: int = 5000) -> float:
    """The disk's and SQLite's own limit: prebuilt rows inserted with executemany, WAL mode."""
    db = open_sqlite(path, wal=True, synchronous="NORMAL")  # as the embedded store opens it
    db.execute(
        "CREATE TABLE points (series INTEGER, ts INTEGER, value REAL, text TEXT, quality TEXT, "
        "unit TEXT, PRIMARY KEY (series, ts)) WITHOUT ROWID"
    )
    sent = 0

    def insert() -> int:
        nonlocal sent
        rows = [(1, sent + i, float(i), None, "good", "") for i in range(batch)]
        with db:
            db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?)", rows)
        sent += batch
        return batch

    try:
        return rate(insert, seconds=4.0)
    finally:
        db.close()


def contract() -> None:
    """The shared contract's codec and stores, and the simulator."""
    table = Table(title="shopfloor benchmarks")
    for column in ("what", "rate", "baseline", "ratio"):
        table.add_column(column, justify="right" if column != "what" else "left")
    measured, baseline = codec()
    table.add_row(
        f"codec: encode+decode, {BATCH} readings a message",
        f"{measured:,.0f} readings/s",
        f"{baseline:,.0f} (bare json)",
        f"{measured / baseline:.2f}",
    )
    with tempfile.TemporaryDirectory() as folder:
        embedded = store_writes(StoreSettings(url=f"sqlite:{Path(folder) / 'bench.db'}"))
        sqlite_limit = raw_sqlite_inserts(Path(folder) / "raw.db")
        server = InfluxDB(Path(folder) / "influxdb")
        server.start()
        try:
            influx = store_writes(StoreSettings(url=server.url, database="bench"))
            raw = raw_influx_posts(server)
        finally:
            server.stop()
    table.add_row(
        "embedded store: write, 5,000-point batches",
        f"{embedded:,.0f} points/s",
        f"{sqlite_limit:,.0f} (raw SQLite)",
        f"{embedded / sqlite_limit:.2f}",
    )
    table.add_row(
        "InfluxDB 1.x store: write, 5,000-point batches",
        f"{influx:,.0f} points/s",
        f"{raw:,.0f} (raw InfluxDB)",
        f"{influx / raw:.2f}",
    )
    cpu, per_core = machines_per_process()
    table.add_row(
        "simulator: 20 machines x 7 signals at 1 Hz, OPC UA",
        f"{cpu:.1%} of one core",
        "one core",
        f"{per_core:,.0f} machines/core",
    )
    bare, recorded = fast_speed_factor()
    table.add_row(
        "simulator: 8 h shift as fast as possible", f"x{bare:,.0f}", "real time", f"{bare:,.0f}"
    )
    table.add_row(
        "simulator: same, recording every change at 1 Hz",
        f"x{recorded:,.0f}",
        "real time",
        f"{recorded:,.0f}",
    )
    Console().print(table)


# Each part of `make bench`, in the order it runs: the capacity search, half an hour, last.
PARTS: dict[str, Callable[[], None]] = {
    "contract": contract,
    "edge": edge.main,
    "gateway": gateway.main,
    "nodered": nodered.main,
    "kernels": kernels.main,
    "recompute": recompute.main,
    "anomaly": anomaly.main,
    "normal": normal.main,
    "faults": faults.main,
    "broker": broker.main,
    "demo_start": demo_start.main,
    "capacity": lambda: capacity.main([]),
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


class _Tee(io.TextIOBase):
    """Standard output that also keeps what it was given, for the report; never a terminal,
    so that the tables come out as plain text in both."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.kept = out, io.StringIO()

    def write(self, text: str) -> int:
        self.out.write(text)
        self.out.flush()
        return self.kept.write(text)

    def isatty(self) -> bool:
        return False


def report(output: str, ran: list[str], skipped: list[str]) -> str:
    """The README's performance block: the host, the parts run and what they printed."""
    command = f"python -m bench --skip {' '.join(skipped)}" if skipped else "make bench"
    return (
        f"{BEGIN}\n"
        f"Printed by `{command}` ({', '.join(ran)}), {host_line()}.\n\n"
        f"```text\n{output.strip()}\n```\n"
        f"{END}"
    )


def write_readme(readme: Path, block: str) -> None:
    """Replace the block between the markers in `readme` with `block`."""
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} block to regenerate")
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    readme.write_text(before + block + after, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--skip", nargs="*", default=[], choices=PARTS, help="parts not to run")
    parser.add_argument("--readme", type=Path, help="regenerate this README's performance block")
    options = parser.parse_args(argv)
    ran = [name for name in PARTS if name not in options.skip]
    os.environ.setdefault("COLUMNS", "120")  # rich's tables, off a terminal
    tee = _Tee(sys.stdout)
    failed = []
    with contextlib.redirect_stdout(tee):
        for name in ran:
            try:
                PARTS[name]()
            except Exception as exc:  # one broken part must not cost the hour of the others
                print(f"{name}: FAILED: {type(exc).__name__}: {exc}")
                failed.append(name)
    if options.readme:
        write_readme(options.readme, report(tee.kept.getvalue(), ran, options.skip))
        print(f"{options.readme}: performance block regenerated from this run")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
