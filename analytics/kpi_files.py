"""Machine exports read for `shopfloor kpi`: CSV (always) or Parquet (with pyarrow).

An SME's export is checked row by row, and the first bad value is reported in one line,
`FILE:ROW: column: problem`, so it can be fixed in a spreadsheet. ROW counts the header as row
1, as a spreadsheet shows it. Times without a UTC offset are read in a given time zone: exports
from machine controls are usually in local time. Every export is a timeline: its rows must be
in time order.
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analytics.oee import StateEvent
from shopfloor.states import MachineState

STATE_COLUMN = "state"
OEE_COLUMNS = ("time", STATE_COLUMN, "total_count", "bad_count")
REASON_COLUMN = "stop_reason"  # optional, as the platform's signal is named
PRODUCT_COLUMN = "product"  # optional: the product loaded from that row on
_WHOLE = re.compile(r"^[+-]?\d+$")
_STATES = ", ".join(MachineState)

Row = Mapping[str, object]
Fail = Callable[[str, str], "KpiFileError"]  # column, problem
FloatArray = npt.NDArray[np.float64]


class KpiFileError(ValueError):
    """A file that cannot be read, in one line naming file, row and column."""


def read_state_events(path: Path, zone: tzinfo) -> list[StateEvent]:
    """The events of an OEE export, in time order; naive times are taken in `zone`."""
    return [_event(time, row, fail) for time, row, fail in _timed_rows(path, OEE_COLUMNS, zone)]


@dataclass(frozen=True)
class Series:
    """An export read by column, in time order."""

    time: FloatArray  # seconds since the epoch
    numbers: dict[str, FloatArray]  # by column, in the file's order; NaN where a cell is empty
    states: list[MachineState | None] | None  # None without a state column; None: unchanged

    def state_intervals(self) -> list[tuple[float, float, MachineState]]:
        """(start, end, state): each state holds until the next one, the last until the end."""
        intervals: list[tuple[float, float, MachineState]] = []
        if self.states is None:
            return intervals
        current: tuple[float, MachineState] | None = None
        for time, state in zip(self.time.tolist(), self.states, strict=True):
            if state is None or (current is not None and state is current[1]):
                continue
            if current is not None:
                intervals.append((current[0], time, current[1]))
            current = (time, state)
        if current is not None:
            intervals.append((current[0], float(self.time[-1]), current[1]))
        return intervals


def read_series(
    path: Path,
    zone: tzinfo,
    numbers: Sequence[str] | None,
    optional: Sequence[str] = (),
    counts: Sequence[str] = (),
    states: bool = False,
) -> Series:
    """A time column and numeric columns, in time order; naive times are taken in `zone`.

    `numbers` are required, None takes every column but time. The `optional` numeric columns,
    cumulative `counts` (whole numbers) and, with `states`, the state column are read when the
    file has them. An empty cell is a missing sample (NaN), or in the state column no change:
    a log that merges power samples with state changes leaves the other column empty.
    """
    times: list[float] = []
    parsers: dict[str, Callable[[object, str, Fail], float]] | None = None
    columns: dict[str, list[float]] = {}
    read_states: list[MachineState | None] | None = None
    for time, row, fail in _timed_rows(path, ("time", *(numbers or ())), zone):
        if parsers is None:
            wanted = [*(numbers or ()), *optional, *counts]
            names = [name for name in row if name != "time" and (numbers is None or name in wanted)]
            if not names:
                raise _error(path, 1, "time", "no other column: add one numeric column per signal")
            parsers = {name: _whole if name in counts else _number for name in names}
            columns = {name: [] for name in names}
            read_states = [] if states and STATE_COLUMN in row else None
        times.append(time)
        for name, parse in parsers.items():
            columns[name].append(parse(row[name], name, fail))
        if read_states is not None:
            value = row[STATE_COLUMN]
            read_states.append(None if _empty(value) else _state(value, fail))
    arrays = {name: np.array(values, dtype=np.float64) for name, values in columns.items()}
    return Series(np.array(times, dtype=np.float64), arrays, read_states)


def _timed_rows(
    path: Path, columns: tuple[str, ...], zone: tzinfo
) -> Iterator[tuple[float, Row, Fail]]:
    """Rows with their times, which must not go back: an export is read as a timeline."""
    previous = -math.inf
    for number, row in _rows(path, columns):
        fail = partial(_error, path, number)
        time = _time(row["time"], zone, fail)
        if time < previous:
            raise fail("time", "earlier than the row before: sort by time")
        previous = time
        yield time, row, fail


def _error(path: Path, number: int, column: str, problem: str) -> KpiFileError:
    return KpiFileError(f"{path}:{number}: {column}: {problem}")


def _state(value: object, fail: Fail) -> MachineState:
    raw = str(value or "").strip()
    try:
        return MachineState(raw)
    except ValueError:
        raise fail(STATE_COLUMN, f"unknown state {raw!r} (one of {_STATES})") from None


def _text(row: Row, column: str) -> str:
    value = row.get(column)
    return str(value).strip() if value is not None else ""


def _event(time: float, row: Row, fail: Fail) -> StateEvent:
    return StateEvent(
        time=time,
        state=_state(row[STATE_COLUMN], fail),
        total_count=_count(row["total_count"], "total_count", fail),
        bad_count=_count(row["bad_count"], "bad_count", fail),
        reason=_text(row, REASON_COLUMN),
        product=_text(row, PRODUCT_COLUMN),
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


def _empty(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: object, column: str, fail: Fail) -> float:
    """A measurement; empty means not sampled at this row (NaN)."""
    if _empty(value):
        return math.nan
    number = math.nan
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if not math.isfinite(number):
        raise fail(column, f"{value!r} is not a number")
    return number


def _whole(value: object, column: str, fail: Fail) -> float:
    """A cumulative count as a sample: NaN where not read."""
    count = _count(value, column, fail)
    return math.nan if count is None else float(count)


def _count(value: object, column: str, fail: Fail) -> int | None:
    """A cumulative count; empty means not read at this event."""
    if _empty(value):
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
