"""Machine exports read for `shopfloor kpi`: CSV (always) or Parquet (with pyarrow).

An SME's export is checked row by row, and the first bad value is reported in one line,
`FILE:ROW: column: problem`, so it can be fixed in a spreadsheet. ROW counts the header as row
1, as a spreadsheet shows it. Times without a UTC offset are read in a given time zone: exports
from machine controls are usually in local time.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path

from analytics.oee import StateEvent
from shopfloor.states import MachineState

OEE_COLUMNS = ("time", "state", "total_count", "bad_count")
REASON_COLUMN = "stop_reason"  # optional, as the platform's signal is named
_WHOLE = re.compile(r"^[+-]?\d+$")
_STATES = ", ".join(MachineState)

Row = Mapping[str, object]
Fail = Callable[[str, str], "KpiFileError"]  # column, problem


class KpiFileError(ValueError):
    """A file that cannot be read, in one line naming file, row and column."""


def read_state_events(path: Path, zone: tzinfo) -> list[StateEvent]:
    """The events of an OEE export, in time order; naive times are taken in `zone`."""
    events: list[StateEvent] = []
    for number, row in _rows(path, OEE_COLUMNS):
        event = _event(row, zone, partial(_error, path, number))
        if events and event.time < events[-1].time:
            raise _error(path, number, "time", "earlier than the row before: sort by time")
        events.append(event)
    return events


def _error(path: Path, number: int, column: str, problem: str) -> KpiFileError:
    return KpiFileError(f"{path}:{number}: {column}: {problem}")


def _event(row: Row, zone: tzinfo, fail: Fail) -> StateEvent:
    raw_state = str(row["state"] or "").strip()
    try:
        state = MachineState(raw_state)
    except ValueError:
        raise fail("state", f"unknown state {raw_state!r} (one of {_STATES})") from None
    reason = row.get(REASON_COLUMN)
    return StateEvent(
        time=_time(row["time"], zone, fail),
        state=state,
        total_count=_count(row["total_count"], "total_count", fail),
        bad_count=_count(row["bad_count"], "bad_count", fail),
        reason=str(reason).strip() if reason is not None else "",
    )


def _time(value: object, zone: tzinfo, fail: Fail) -> float:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise fail("time", f"{value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise fail("time", f"{value!r} is not an ISO 8601 time")
    return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()


def _count(value: object, column: str, fail: Fail) -> int | None:
    """A cumulative count; empty means not read at this event."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and _WHOLE.match(value.strip()):
        count = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    else:
        raise fail(column, f"{value!r} is not a whole number")
    if count < 0:
        raise fail(column, f"{count} is negative: counts are cumulative part counts")
    return count


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, Row]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, columns)
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path, columns)
    raise KpiFileError(f"{path}: not a .csv or .parquet file")


def _check_header(path: Path, header: list[str], columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in header:
            have = ", ".join(header) or "none"
            raise _error(path, 1, column, f"missing column (the file has: {have})")


def _csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, Row]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            header = [cell.strip() for cell in next(reader, [])]
            _check_header(path, header, columns)
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    problem = f"{len(cells)} cells where the header has {len(header)}"
                    raise _error(path, reader.line_num, "row", problem)
                yield reader.line_num, dict(zip(header, cells, strict=True))
    except OSError as exc:
        raise KpiFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KpiFileError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise KpiFileError(f"{path}: {exc}") from None


def _parquet_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, Row]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise KpiFileError(
            f"{path}: reading Parquet needs pyarrow: pip install pyarrow (or export CSV)"
        ) from None
    import pyarrow

    try:
        table = pq.read_table(path)
    except (OSError, pyarrow.ArrowException) as exc:
        raise KpiFileError(f"{path}: not a readable Parquet file: {exc}") from None
    header = [str(name) for name in table.column_names]
    _check_header(path, header, columns)
    for index, row in enumerate(table.to_pylist()):
        yield index + 2, row
