"""Machine exports read for `shopfloor kpi`: CSV (always) or Parquet (with pyarrow).

SMEs bring spreadsheets, so a CSV is read the way Excel and LibreOffice save it in any locale:
the separator (`,`, `;` or tab, or Excel's `sep=` line) is taken from the header line; a number
may have a decimal comma and digits grouped by spaces; a time is ISO 8601 or
`dd.mm.yyyy[.] [hh:mm[:ss]]`; the text is UTF-8 (with or without a BOM), UTF-16 with a BOM, or
else Windows-1251, Excel's "CSV" in Cyrillic locales, unless an encoding is given. Column
and state names match case-insensitively, and an `ExportFormat` maps the export's own names onto
the platform's.

Every bad cell is reported, up to `MAX_PROBLEMS`, in one line each, `FILE:ROW: column:
problem`, so the whole file can be fixed in one pass; ROW is the line of the file, the header
being row 1, as a spreadsheet shows it. Times without a UTC offset are read in a given time zone
(exports from machine controls are usually in local time), and a `Reading` tells the caller
whether any were, so it can say which zone it used. Every export is a timeline: its rows must be
in time order.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, field_validator

from analytics.oee import StateEvent
from shopfloor.states import MachineState

STATE_COLUMN = "state"
OEE_COLUMNS = ("time", STATE_COLUMN, "total_count", "bad_count")
REASON_COLUMN = "stop_reason"  # optional, as the platform's signal is named
PRODUCT_COLUMN = "product"  # optional: the product loaded from that row on
TEXT_COLUMNS = (STATE_COLUMN, REASON_COLUMN, PRODUCT_COLUMN)  # never a numeric signal
MAX_PROBLEMS = 20  # bad cells listed; the rest are counted
TIME_FORMATS = "ISO 8601 or dd.mm.yyyy hh:mm[:ss]"
CSV_SUFFIXES = (".csv", ".tsv", ".txt")  # Excel's "Unicode text" is a tab-separated .txt
FALLBACK_ENCODING = "cp1251"
_STATES = ", ".join(MachineState)
_SEPARATORS = ";\t,"  # in order of preference when a header line has as many of each
_DOTTED = re.compile(
    r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})\.?"  # d.m.yyyy, and sr's trailing dot
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?"
)
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?")  # 19 271,5

Row = Mapping[str, object]
FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")


class KpiFileError(ValueError):
    """A file that cannot be read: one line per problem, each naming file, row and column."""

    def __init__(self, lines: Sequence[str], guessed_encoding: str | None = None) -> None:
        self.lines = list(lines)
        self.guessed_encoding = guessed_encoding  # which may be why names are not recognised
        super().__init__("\n".join(self.lines))


class ExportMapping(BaseModel):
    """A mapping file: the export's own names of columns and states, each mapped onto the
    platform's, the same way round as `--state-map` (`Время: time`, `РАБОТА: running`)."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = {}  # the export's header: the platform's column
    states: dict[str, MachineState] = {}  # the export's state name: the platform's state

    @field_validator("columns", "states", mode="before")
    @classmethod
    def _names_not_yaml_booleans(cls, names: object) -> object:
        """YAML reads an unquoted on, off, yes or no as a boolean: a state named OFF is lost."""
        if isinstance(names, dict) and any(
            isinstance(name, bool) for name in (*names.keys(), *names.values())
        ):
            raise ValueError("on, off, yes and no must be quoted, as in 'OFF': 'off'")
        return names


@dataclass(frozen=True)
class ExportFormat:
    """What an export cannot say about itself: its zone, its names, perhaps its encoding."""

    zone: tzinfo  # of times without a UTC offset
    states: Mapping[str, MachineState] = field(default_factory=dict)  # by casefolded name
    columns: Mapping[str, str] = field(default_factory=dict)  # by casefolded header
    encoding: str | None = None  # None: UTF-8 or UTF-16 with a BOM, UTF-8, else cp1251

    def mapped(self, mapping: ExportMapping) -> ExportFormat:
        """This format with a mapping file's names; names given here take precedence."""
        columns = {header.casefold(): name for header, name in mapping.columns.items()}
        states = {name.casefold(): state for name, state in mapping.states.items()}
        return ExportFormat(
            self.zone, {**states, **self.states}, {**columns, **self.columns}, self.encoding
        )


@dataclass(frozen=True)
class Reading:
    """How a file was read, for the caller to say: nothing is assumed silently."""

    naive_times: bool  # some times had no UTC offset and were read in the format's zone
    guessed_encoding: str | None  # not UTF-8, so read in this one


def read_state_events(path: Path, fmt: ExportFormat) -> tuple[list[StateEvent], Reading]:
    """The events of an OEE export, in time order."""
    reader = _Reader(path, fmt)
    events: list[StateEvent] = []
    for number, time, row in reader.timed_rows(OEE_COLUMNS, (*OEE_COLUMNS, *TEXT_COLUMNS)):
        state = reader.state(number, row[STATE_COLUMN])
        total = reader.cell(number, "total_count", _count, row["total_count"], None)
        bad = reader.cell(number, "bad_count", _count, row["bad_count"], None)
        if state is not None and reader.clean:
            reason, product = _text(row, REASON_COLUMN), _text(row, PRODUCT_COLUMN)
            events.append(StateEvent(time, state, total, bad, reason, product))
    return events, reader.finish()


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
    fmt: ExportFormat,
    numbers: Sequence[str] | None,
    optional: Sequence[str] = (),
    counts: Sequence[str] = (),
    states: bool = False,
) -> tuple[Series, Reading]:
    """A time column and numeric columns, in time order.

    `numbers` are required, None takes every column but time and the text columns. The
    `optional` numeric columns, cumulative `counts` (whole numbers) and, with `states`, the
    state column are read when the file has them. An empty cell is a missing sample (NaN), or in
    the state column no change: a log that merges power samples with state changes leaves the
    other column empty.
    """
    reader = _Reader(path, fmt)
    wanted = [*(numbers or ()), *optional, *counts]
    times: list[float] = []
    parsers: dict[str, Callable[[object], float]] | None = None
    columns: dict[str, list[float]] = {}
    read_states: list[MachineState | None] | None = None
    names_to_match = ("time", *wanted, *TEXT_COLUMNS)
    for number, time, row in reader.timed_rows(("time", *(numbers or ())), names_to_match):
        if parsers is None:
            names = [
                name
                for name in row
                if name != "time"
                and (name in wanted if numbers is not None else name not in TEXT_COLUMNS)
            ]
            if not names:
                problem = "no other column: add one numeric column per signal"
                raise KpiFileError([f"{path}:{reader.header_row}: time: {problem}"])
            parsers = {name: _whole if name in counts else _number for name in names}
            columns = {name: [] for name in names}
            read_states = [] if states and STATE_COLUMN in row else None
        times.append(time)
        for name, parse in parsers.items():
            columns[name].append(reader.cell(number, name, parse, row[name], math.nan))
        if read_states is not None:
            value = row[STATE_COLUMN]
            read_states.append(None if _empty(value) else reader.state(number, value))
    reading = reader.finish()
    arrays = {name: np.array(values, dtype=np.float64) for name, values in columns.items()}
    return Series(np.array(times, dtype=np.float64), arrays, read_states), reading


def parse_time(value: object) -> datetime:
    """A time as an export or a user writes it: ISO 8601 or `dd.mm.yyyy[.] [hh:mm[:ss]]`."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(text)
        if match := _DOTTED.fullmatch(text):
            with contextlib.suppress(ValueError):
                return _dotted(match)
    raise ValueError(f"{value!r} is not a time ({TIME_FORMATS})")


def _dotted(match: re.Match[str]) -> datetime:
    day, month, year, hour, minute, second, fraction = match.groups()
    return datetime(
        int(year) + (2000 if len(year) == 2 else 0),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((fraction or "").ljust(6, "0")),
    )


class _Reader:
    """One export read row by row; bad cells are collected, not raised at the first one.

    An unknown state name is reported once, at its first row, with the number of rows it is in:
    a controller's export repeats the same few names.
    """

    def __init__(self, path: Path, fmt: ExportFormat) -> None:
        self.path, self.fmt = path, fmt
        self.problems: list[tuple[int, str]] = []  # (row, line), the first MAX_PROBLEMS
        self.count = 0  # every bad cell but unknown states
        self.unknown: dict[str, list[int]] = {}  # state name: [first row, rows]
        self.naive_times = False
        self.guessed_encoding: str | None = None
        self.header_row = 1  # 2 below Excel's `sep=` line

    @property
    def clean(self) -> bool:
        return not self.count and not self.unknown

    def problem(self, number: int, column: str, text: str) -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((number, f"{self.path}:{number}: {column}: {text}"))

    def cell(
        self, number: int, column: str, parse: Callable[[object], T], value: object, bad: T
    ) -> T:
        """The parsed cell, or `bad` once its problem is noted."""
        try:
            return parse(value)
        except ValueError as exc:
            self.problem(number, column, str(exc))
            return bad

    def state(self, number: int, value: object) -> MachineState | None:
        raw = str(value or "").strip()
        key = raw.casefold()
        if key in self.fmt.states:
            return self.fmt.states[key]
        with contextlib.suppress(ValueError):
            return MachineState(key)
        self.unknown.setdefault(raw, [number, 0])[1] += 1
        return None

    def finish(self) -> Reading:
        """How the file was read, or every problem found in it."""
        found = list(self.problems)
        for raw, (first, rows) in self.unknown.items():
            where = f"; in {rows} rows" if rows > 1 else ""
            text = f"unknown state {raw!r} (one of {_STATES}{where}); map it: --state-map {raw}="
            found.append((first, f"{self.path}:{first}: {STATE_COLUMN}: {text}<state>"))
        if not found:
            return Reading(self.naive_times, self.guessed_encoding)
        found.sort(key=lambda problem: problem[0])
        lines = [line for _, line in found[:MAX_PROBLEMS]]
        more = self.count + len(self.unknown) - len(lines)
        if more:
            lines.append(f"{self.path}: and {more} more problem{'s' if more > 1 else ''}")
        raise KpiFileError(lines, self.guessed_encoding)

    def timed_rows(
        self, required: Sequence[str], names: Sequence[str]
    ) -> Iterator[tuple[int, float, Row]]:
        """Rows with their times (NaN when bad), which must not go back: a timeline."""
        previous = -math.inf
        for number, row in self._rows(required, names):
            instant = partial(self._instant, after=previous)
            time = self.cell(number, "time", instant, row["time"], math.nan)
            if time < previous:
                self.problem(number, "time", "earlier than the row before: sort by time")
            previous = max(previous, time) if math.isfinite(time) else previous
            yield number, time, row

    def _instant(self, value: object, after: float) -> float:
        moment = parse_time(value)
        if moment.tzinfo is not None:
            return moment.timestamp()
        self.naive_times = True
        local = moment.replace(tzinfo=self.fmt.zone)
        if local.timestamp() < after:  # the hour repeated when the clocks go back: the second
            local = local.replace(fold=1)
        return local.timestamp()

    def _rows(self, required: Sequence[str], names: Sequence[str]) -> Iterator[tuple[int, Row]]:
        suffix = self.path.suffix.lower()
        if suffix in CSV_SUFFIXES:
            return self._csv_rows(required, names)
        if suffix in (".parquet", ".pq"):
            return self._parquet_rows(required, names)
        raise KpiFileError([f"{self.path}: not a .csv, .tsv, .txt or .parquet file"])

    def _header(
        self, cells: Sequence[str], required: Sequence[str], names: Sequence[str]
    ) -> list[str]:
        """The platform's names for the export's columns; every missing one is an error."""
        by_key = {name.casefold(): name for name in names} | dict(self.fmt.columns)
        header = [by_key.get(cell.strip().casefold(), cell.strip()) for cell in cells]
        have = ", ".join(cell.strip() for cell in cells) or "none"
        missing = [
            f"{self.path}:{self.header_row}: {column}: missing column (the file has: {have})"
            for column in required
            if column not in header
        ]
        if missing:
            raise KpiFileError(missing, self.guessed_encoding)
        return header

    def _csv_rows(self, required: Sequence[str], names: Sequence[str]) -> Iterator[tuple[int, Row]]:
        lines = io.StringIO(self._decoded(), newline="")
        first = lines.readline()
        if first.startswith("sep=") and len(first.rstrip("\r\n")) == 5:  # Excel's own hint
            separator, first = first[4], lines.readline()
            self.header_row = 2
        else:
            separator = max(_SEPARATORS, key=first.count) if first.strip() else ","
        try:
            reader = csv.reader(io.StringIO(first + lines.read(), newline=""), delimiter=separator)
            header = self._header(next(reader, []), required, names)
            for cells in reader:
                number = self.header_row - 1 + reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    text = f"{len(cells)} cells where the header has {len(header)}"
                    if separator == "," and len(cells) > len(header):
                        text += " (decimal commas? separate the cells by ; or quote numbers)"
                    self.problem(number, "row", text)
                    continue
                yield number, {name: cell for name, cell in zip(header, cells, strict=True) if name}
        except csv.Error as exc:
            raise KpiFileError([f"{self.path}: {exc}"]) from None

    def _decoded(self) -> str:
        """The file's text; a spreadsheet's binary file is refused, not read as garbage."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise KpiFileError([f"{self.path}: {exc.strerror or exc}"]) from None
        encoding = self.fmt.encoding
        if encoding is None:
            encoding = "utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else None
        if encoding is None and b"\0" in data:
            raise KpiFileError([f"{self.path}: not a text file: save it as CSV"])
        try:
            return data.decode(encoding or "utf-8-sig")
        except UnicodeDecodeError as exc:
            if encoding is not None:
                raise KpiFileError([f"{self.path}: not {encoding} text ({exc.reason})"]) from None
        self.guessed_encoding = FALLBACK_ENCODING
        return data.decode(FALLBACK_ENCODING, errors="replace")

    def _parquet_rows(
        self, required: Sequence[str], names: Sequence[str]
    ) -> Iterator[tuple[int, Row]]:
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped]
        except ImportError:
            raise KpiFileError(
                [f"{self.path}: reading Parquet needs pyarrow: pip install pyarrow (or export CSV)"]
            ) from None
        import pyarrow

        try:
            table = pq.read_table(self.path)
        except (OSError, pyarrow.ArrowException) as exc:
            raise KpiFileError([f"{self.path}: not a readable Parquet file: {exc}"]) from None
        header = self._header([str(name) for name in table.column_names], required, names)
        for index, row in enumerate(table.to_pylist()):
            yield index + 2, dict(zip(header, row.values(), strict=True))


def _text(row: Row, column: str) -> str:
    value = row.get(column)
    return str(value).strip() if value is not None else ""


def _empty(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and math.isnan(value))


def _decimal(text: str) -> float:
    """A number as a spreadsheet writes it: a decimal point or comma, digits grouped by spaces."""
    text = text.strip()
    if _GROUPED.fullmatch(text):
        text = "".join(text.split())
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    return float(text)


def _number(value: object) -> float:
    """A measurement; empty means not sampled at this row (NaN)."""
    if _empty(value):
        return math.nan
    number = math.nan
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = _decimal(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a number")
    return number


def _whole(value: object) -> float:
    """A cumulative count as a sample: NaN where not read."""
    count = _count(value)
    return math.nan if count is None else float(count)


def _count(value: object) -> int | None:
    """A cumulative count; empty means not read at this event."""
    if _empty(value):
        return None
    try:
        number = _number(value)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    if number < 0:
        raise ValueError(f"{int(number)} is negative: counts are cumulative part counts")
    return int(number)
