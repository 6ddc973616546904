"""`shopfloor kpi oee` on an SME's own export: JSON, a table, and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from launcher.cli import app
from tests.conftest import EXAMPLE_PLANT

HEADER = "time,state,total_count,bad_count,stop_reason"
# The first worked example: 420 min planned, 373 min running, 19,271 parts, 18,848 good.
ROWS = [
    "2026-03-02T06:00:00+01:00,running,0,0,",
    "2026-03-02T12:13:00+01:00,unplanned_stop,19271,423,hydraulics",
]
END = "2026-03-02T13:00:00+01:00"


def csv_file(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def kpi(*args: str) -> Result:
    return CliRunner().invoke(app, ["kpi", "oee", *args])


def test_json_has_the_kpis_of_the_worked_example(tmp_path: Path) -> None:
    result = kpi(str(csv_file(tmp_path, ROWS)), "--ideal-cycle-time", "1", "--end", END, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    got = [data[key] for key in ("availability", "performance", "quality", "oee")]
    assert got == pytest.approx([0.888095, 0.861081, 0.978050, 0.747937], abs=1e-6)
    assert (data["start"], data["end"]) == ("2026-03-02T05:00:00Z", "2026-03-02T12:00:00Z")
    assert (data["produced"], data["good"], data["failures"]) == (19271, 18848, 1)
    assert data["mttr_s"] == 47 * 60
    assert data["losses"]["availability_by_reason"] == {"hydraulics": 47 * 60}
    assert data["problems"] == []


def test_table_output(tmp_path: Path) -> None:
    result = kpi(str(csv_file(tmp_path, ROWS)), "--ideal-cycle-time", "1", "--end", END)
    assert result.exit_code == 0, result.output
    for text in ("availability", "88.8%", "OEE", "74.8%", "breakdowns", "stop reason: hydraulics"):
        assert text in result.stdout


def test_planned_time_and_window_options(tmp_path: Path) -> None:
    # The second worked example inside a longer window: 480 min planned, 420 running.
    rows = [
        "2026-03-02 06:00:00,running,0,0,",
        "2026-03-02 13:00:00,unplanned_stop,400,20,",
        "2026-03-02 14:00:00,off,400,20,",
    ]
    args = ["--ideal-cycle-time", "60", "--planned-time", "8h", "--json"]
    result = kpi(str(csv_file(tmp_path, rows)), *args, "--end", "2026-03-02T15:00:00")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["planned_busy_s"] == 480 * 60
    got = [data[key] for key in ("availability", "performance", "quality", "oee")]
    assert got == pytest.approx([0.875, 0.952381, 0.95, 0.791667], abs=1e-6)
    assert data["start"] == "2026-03-02T06:00:00Z"  # no offset: UTC without a plant


def test_planned_time_from_the_plant_shift_calendar(tmp_path: Path) -> None:
    # The example plant works 06:00-22:00 Europe/Minsk on weekdays; times without an offset
    # are read in the plant's time zone. The machine is off from 20:00 to 08:00.
    rows = [
        "2026-03-02T08:00:00,running,0,0,",
        "2026-03-02T20:00:00,off,36000,0,",
    ]
    args = ["--ideal-cycle-time", "1", "--plant", str(EXAMPLE_PLANT), "--json"]
    result = kpi(str(csv_file(tmp_path, rows)), *args, "--start", "2026-03-02T00:00:00",
                 "--end", "2026-03-03T00:00:00")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["planned_operation_s"] == 16 * 3600
    assert data["unknown_s"] == 2 * 3600  # 06:00-08:00: no event yet
    assert data["availability"] == pytest.approx(12 / 14)
    assert data["teep"] == pytest.approx(36000 / 86400)


@pytest.mark.parametrize(
    ("header", "row", "expected"),
    [
        (
            HEADER,
            "2026-13-02T06:00:00Z,running,0,0,",
            ":2: time: '2026-13-02T06:00:00Z' is not a time (ISO 8601 or dd.mm.yyyy hh:mm[:ss])",
        ),
        (
            HEADER,
            "2026-03-02T06:00:00Z,runing,0,0,",
            ":2: state: unknown state 'runing' (one of running, micro_stop,",
        ),
        (HEADER, "2026-03-02T06:00:00Z,running,-3,0,", ":2: total_count: -3 is negative"),
        (
            HEADER,
            "2026-03-02T06:00:00Z,running,0,1.5,",
            ":2: bad_count: '1.5' is not a whole number",
        ),
        (
            "time,state,total_count",
            "2026-03-02T06:00:00Z,running,0",
            ":1: bad_count: missing column (the file has: time, state, total_count)",
        ),
        (HEADER, "2026-03-02T06:00:00Z,running,0", ":2: row: 3 cells where the header has 5"),
    ],
)
def test_bad_input_is_one_line_naming_file_row_and_column(
    tmp_path: Path, header: str, row: str, expected: str
) -> None:
    path = csv_file(tmp_path, [row], header)
    result = kpi(str(path), "--ideal-cycle-time", "1")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}{expected}")


def test_rows_out_of_order_name_the_row(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[1], "2026-03-02T07:00:00+01:00,idle,19271,423,"]
    path = csv_file(tmp_path, rows)
    result = kpi(str(path), "--ideal-cycle-time", "1")
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}:4: time: earlier than the row before: sort by time\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ideal-cycle-time", "0"], "error: --ideal-cycle-time: must be above zero\n"),
        (
            ["--ideal-cycle-time", "1", "--planned-time", "soon"],
            "error: --planned-time: 'soon' is not",
        ),
        (
            ["--ideal-cycle-time", "1", "--end", "noon"],
            "error: --end: 'noon' is not a time (ISO 8601 or dd.mm.yyyy hh:mm[:ss])\n",
        ),
        (
            ["--ideal-cycle-time", "1", "--timezone", "Mars/Olympus"],
            "error: --timezone: unknown time zone",
        ),
        (["--ideal-cycle-time", "fast"], "error: --ideal-cycle-time: 'fast' is not SECONDS"),
        (["--ideal-cycle-time", "cap=1"], "error: --ideal-cycle-time: none for product '(none)'"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = kpi(str(csv_file(tmp_path, ROWS)), *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(expected)
    assert len(result.stderr.splitlines()) == 1


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = kpi(str(missing), "--ideal-cycle-time", "1")
    assert result.stderr == f"error: {missing}: No such file or directory\n"
    other = tmp_path / "events.xlsx"
    other.write_bytes(b"")
    result = kpi(str(other), "--ideal-cycle-time", "1")
    assert result.stderr == f"error: {other}: not a .csv, .tsv, .txt or .parquet file\n"


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_parquet_file(tmp_path: Path) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "time": pa.array(
                ["2026-03-02T05:00:00Z", "2026-03-02T11:13:00Z", "2026-03-02T12:00:00Z"]
            ),
            "state": ["running", "unplanned_stop", "off"],
            "total_count": pa.array([0, 19271, None], pa.int64()),
            "bad_count": pa.array([0.0, 423.0, None]),
        }
    )
    pq.write_table(table, path)
    result = kpi(str(path), "--ideal-cycle-time", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["oee"] == pytest.approx(0.747937, abs=1e-6)
    pq.write_table(table.set_column(3, "bad_count", pa.array([0.0, 0.5, None])), path)
    result = kpi(str(path), "--ideal-cycle-time", "1")
    assert result.stderr == f"error: {path}:3: bad_count: 0.5 is not a whole number\n"


def test_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if not installed
    path = tmp_path / "events.parquet"
    path.write_bytes(b"PAR1")
    result = kpi(str(path), "--ideal-cycle-time", "1")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}: reading Parquet needs pyarrow: pip install pyarrow (or export CSV)\n"
    )


PRODUCT_ROWS = [
    "2026-03-02T06:00:00+01:00,running,0,0,,a",
    "2026-03-02T07:00:00+01:00,setup,300,6,changeover,b",
    "2026-03-02T07:10:00+01:00,running,300,6,,b",
    "2026-03-02T08:10:00+01:00,running,450,9,,b",
]


def test_a_product_column_gives_each_product_its_ideal_time_and_oee(tmp_path: Path) -> None:
    path = csv_file(tmp_path, PRODUCT_ROWS, HEADER + ",product")
    result = kpi(str(path), "--ideal-cycle-time", "a=10", "--ideal-cycle-time", "b=20", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["performance"] == pytest.approx((300 * 10 + 150 * 20) / 7200)
    a, b = report["by_product"]["a"], report["by_product"]["b"]
    assert (a["planned_busy_s"], a["produced"], a["good"]) == (3600, 300, 294)
    assert (b["planned_busy_s"], b["produced"], b["good"]) == (4200, 150, 147)
    assert b["availability"] == pytest.approx(3600 / 4200)
    table = kpi(str(path), "--ideal-cycle-time", "15", "--ideal-cycle-time", "b=20")
    assert table.exit_code == 0, table.output
    assert "By product" in table.stdout and "1.17 h" in table.stdout


def test_a_product_without_ideal_time_is_named(tmp_path: Path) -> None:
    path = csv_file(tmp_path, PRODUCT_ROWS, HEADER + ",product")
    result = kpi(str(path), "--ideal-cycle-time", "a=10")
    assert result.exit_code == 2
    assert result.stderr == "error: --ideal-cycle-time: none for product 'b'\n"
