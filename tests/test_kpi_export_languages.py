"""`shopfloor kpi` on exports saved the way Excel and LibreOffice write CSV in the ru, be and sr
locales: the bytes of each file are those the spreadsheet writes (encoding, BOM, separator,
line ends, quoting, dates and numbers as shown), and the real CLI reads them."""

from __future__ import annotations

import codecs
import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_PLANT
from tests.test_kpi_energy_anomalies import shopfloor

# The first worked example of ISO 22400-2: 420 min planned, 373 running, 19,271 parts, 423 bad.
WORKED_EXAMPLE = {"availability": 0.888095, "performance": 0.861081, "oee": 0.747937}


def as_json(*args: str) -> tuple[Any, list[str]]:
    """The JSON report and the notes on stderr."""
    result = shopfloor(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr.splitlines()


def saved(path: Path, lines: list[str], encoding: str, ends: str = "\r\n") -> Path:
    path.write_bytes((ends.join(lines) + ends).encode(encoding))
    return path


def test_excel_ru_csv_in_cp1251_with_russian_names_and_a_mapping_file(tmp_path: Path) -> None:
    # Excel's "CSV (разделители - запятые)" in ru-RU: Windows-1251, the list separator `;`, CRLF,
    # date-times as its default format shows them (no seconds, hour without a leading zero).
    export = saved(
        tmp_path / "станок.csv",
        [
            "Время;Состояние;Всего, шт;Брак, шт;Причина",
            "07.12.2026 6:00;Работа;0;0;",
            "07.12.2026 12:13;Авария;19271;423;Гидравлика",
        ],
        "cp1251",
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "columns: {Время: time, Состояние: state, 'Всего, шт': total_count, "
        "'Брак, шт': bad_count, Причина: stop_reason}\n"
        "states: {Работа: running, Авария: unplanned_stop}\n",
        encoding="utf-8",
    )
    data, notes = as_json(
        "oee", str(export), "--mapping", str(mapping), "--ideal-cycle-time", "1",
        "--end", "07.12.2026 13:00", "--timezone", "Europe/Minsk",
    )  # fmt: skip
    assert {key: data[key] for key in WORKED_EXAMPLE} == pytest.approx(WORKED_EXAMPLE, abs=1e-6)
    assert (data["start"], data["end"]) == ("2026-12-07T03:00:00Z", "2026-12-07T10:00:00Z")
    assert (data["produced"], data["good"], data["timezone"]) == (19271, 18848, "Europe/Minsk")
    assert data["losses"]["availability_by_reason"] == {"Гидравлика": 47 * 60}
    assert notes == [
        f"note: {export}: not UTF-8, read as cp1251 (Excel's CSV in Cyrillic locales); "
        "give --encoding if it is another",
        "note: times without a UTC offset are read in Europe/Minsk (from --timezone)",
    ]


def test_excel_csv_utf8_with_bom_decimal_commas_and_state_names(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" in be-BY or ru-RU: a BOM, `;`, decimal commas, seconds where the cells
    # show them; the controller's states RUN, STOP and Idle, mapped on the command line.
    export = saved(
        tmp_path / "power.csv",
        [
            "\ufefftime;power;state",
            "07.12.2026 6:00:00;18,5;RUN",
            "07.12.2026 6:30:00;18,5;",
            "07.12.2026 7:00:00;2,5;Idle",
            "07.12.2026 7:30:00;0,5;STOP",
            "07.12.2026 8:00:00;0,5;",
        ],
        "utf-8",
    )
    data, notes = as_json(
        "energy", str(export), "--max-gap", "1800", "--plant", str(EXAMPLE_PLANT),
        "--state-map", "RUN=running", "--state-map", "stop=Unplanned_Stop",
    )  # fmt: skip
    assert data["start"] == "2026-12-07T03:00:00Z"  # the plant is in Europe/Minsk
    assert data["kwh"] == pytest.approx(18.5 + 1.25 + 0.25)
    by_state = {"running": 18.5, "idle": 1.25, "unplanned_stop": 0.25}
    assert data["states"]["kwh"] == pytest.approx(by_state)
    assert notes == ["note: times without a UTC offset are read in Europe/Minsk (from --plant)"]


def test_libreoffice_be_comma_separated_with_quoted_decimal_commas(tmp_path: Path) -> None:
    # LibreOffice Calc in be-BY: UTF-8 without a BOM, LF, its default `,` separator, so the
    # numbers it saves "as shown" with a decimal comma are quoted; a Belarusian header.
    lines = ["час,тэмпература,ціск"]
    for i in range(300):
        temperature = 50 + 0.5 * math.sin(0.7 * i) + (20 if i == 200 else 0)
        pressure = 3 + 0.1 * math.cos(1.3 * i)
        cells = [f'"{value:.4f}"'.replace(".", ",") for value in (temperature, pressure)]
        lines.append(f"07.12.2026 06:{i // 60:02d}:{i % 60:02d}," + ",".join(cells))
    export = saved(tmp_path / "сігналы.csv", lines, "utf-8", ends="\n")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("columns: {Час: time}\n", encoding="utf-8")
    data, notes = as_json("anomalies", str(export), "--mapping", str(mapping))
    spike = "2026-12-07T06:03:20Z"
    (event,) = data["signals"]["тэмпература"]
    assert (event["start"], event["peak"]) == (spike, spike)
    assert data["signals"]["ціск"] == []
    assert data["timezone"] == "UTC"
    assert notes == [
        "note: times without a UTC offset are read in UTC (no --timezone or --plant given)"
    ]


SR_LATIN = [
    "Vreme\tStatus\tUkupno\tŠkart\tRazlog",
    "7.12.2026. 6:00:00\tRAD\t0\t0\t",
    "7.12.2026. 12:13:00\tZASTOJ\t19271\t423\tHidraulika",
    "7.12.2026. 12:40:00\tČEKANJE\t19271\t423\t",
]
SR_MAPPING = (
    "columns: {Vreme: time, Status: state, Ukupno: total_count, Škart: bad_count, "
    "Razlog: stop_reason}\n"
    "states: {rad: running, zastoj: unplanned_stop, čekanje: idle}\n"
)


def test_excel_sr_latin_tab_separated_in_cp1250(tmp_path: Path) -> None:
    # Excel's "Text (Tab delimited)" in sr-Latn-RS: Windows-1250, tabs, the date with its
    # trailing dot. Read as cp1251 by default, Š is misread, and the console says why.
    export = saved(tmp_path / "masina.txt", SR_LATIN, "cp1250")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(SR_MAPPING, encoding="utf-8")
    args = ["oee", str(export), "--mapping", str(mapping), "--ideal-cycle-time", "1"]
    result = shopfloor(*args, "--timezone", "Europe/Belgrade")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"note: {export}: not UTF-8, read as cp1251 (Excel's CSV in Cyrillic locales); "
        "give --encoding if it is another",
        f"error: {export}:1: bad_count: missing column "
        "(the file has: Vreme, Status, Ukupno, Љkart, Razlog)",
    ]
    data, _ = as_json(
        *args, "--encoding", "cp1250", "--timezone", "Europe/Belgrade", "--end", "7.12.2026. 13:00"
    )
    assert {key: data[key] for key in WORKED_EXAMPLE} == pytest.approx(WORKED_EXAMPLE, abs=1e-6)
    assert data["start"] == "2026-12-07T05:00:00Z"
    assert data["losses"]["availability_by_reason"] == {"Hidraulika": 27 * 60}


def test_excel_unicode_text_is_utf16_with_tabs(tmp_path: Path) -> None:
    # Excel's "Unicode Text": UTF-16 LE with a BOM, tab-separated, in any locale; the count's
    # format groups thousands with a no-break space, as ru, be and sr show them.
    export = saved(
        tmp_path / "power.txt",
        [
            "time\tpower\tgood_count",
            "07.12.2026 06:00\t12,0\t1\u00a0200",
            "07.12.2026 06:05\t12,0\t1\u00a0500",
        ],
        "utf-16",
    )
    assert export.read_bytes().startswith(codecs.BOM_UTF16_LE)
    data, _ = as_json("energy", str(export), "--timezone", "UTC")
    assert data["kwh"] == pytest.approx(1.0)
    assert data["good_parts"]["count"] == 300


def test_the_hour_repeated_when_clocks_go_back_is_read_in_order(tmp_path: Path) -> None:
    # Europe/Belgrade, 25 October 2026: 03:00 CEST becomes 02:00 CET; a local log repeats 02:xx.
    times = ["01:30", "02:00", "02:30", "02:00", "02:30", "03:00"]
    rows = [f"25.10.2026 {time};10" for time in times]
    export = saved(tmp_path / "power.csv", ["time;power", *rows], "utf-8")
    data, _ = as_json("energy", str(export), "--timezone", "Europe/Belgrade", "--max-gap", "1800")
    assert (data["start"], data["end"]) == ("2026-10-24T23:30:00Z", "2026-10-25T02:00:00Z")
    assert data["kwh"] == pytest.approx(25.0)


def test_every_bad_cell_is_reported_in_one_run(tmp_path: Path) -> None:
    rows = [
        "07.12.2026 06:00;RUN;0;0",
        "07.12.2026 06:10;RUN;1,5;0",
        "31.11.2026 06:20;Idle;10;0",
        "07.12.2026 06:30;RUN;20;x",
        "07.12.2026 06:25;Stop;20;0",
        "07.12.2026 06:40;RUN;20",
        "07.12.2026 06:50;RUN;-1;0",
    ]
    export = saved(tmp_path / "events.csv", ["time;state;total_count;bad_count", *rows], "utf-8")
    result = shopfloor("oee", str(export), "--ideal-cycle-time", "1")
    assert (result.returncode, result.stdout) == (2, "")
    known = "one of running, micro_stop, idle, starved, blocked, setup, unplanned_stop, "
    known += "planned_stop, off"
    assert result.stderr.splitlines() == [
        f"error: {export}:2: state: unknown state 'RUN' ({known}; in 4 rows); "
        "map it: --state-map RUN=<state>",
        f"error: {export}:3: total_count: '1,5' is not a whole number",
        f"error: {export}:4: time: '31.11.2026 06:20' is not a time "
        "(ISO 8601 or dd.mm.yyyy hh:mm[:ss])",
        f"error: {export}:5: bad_count: 'x' is not a whole number",
        f"error: {export}:6: time: earlier than the row before: sort by time",
        f"error: {export}:6: state: unknown state 'Stop' ({known}); map it: --state-map "
        "Stop=<state>",
        f"error: {export}:7: row: 3 cells where the header has 4",
        f"error: {export}:8: total_count: -1 is negative: counts are cumulative part counts",
    ]


def test_more_problems_than_the_limit_are_counted(tmp_path: Path) -> None:
    rows = [f"07.12.2026 06:{minute:02d};n/a" for minute in range(30)]
    export = saved(tmp_path / "power.csv", ["time;power", *rows], "utf-8")
    result = shopfloor("energy", str(export))
    lines = result.stderr.splitlines()
    assert (result.returncode, len(lines)) == (2, 21)
    assert lines[0] == f"error: {export}:2: power: 'n/a' is not a number"
    assert lines[19] == f"error: {export}:21: power: 'n/a' is not a number"
    assert lines[20] == f"error: {export}: and 10 more problems"


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00", [], "{export}: not a text file: save it as CSV"),
        (b"time,power\n07.12.2026 6:00,18,5\n", [],
         "{export}:2: row: 3 cells where the header has 2 (decimal commas? separate the cells by ; "
         "or quote numbers)\n"),
        (b"time;power\r\n07.12.2026 6:00;1\r\n", ["--encoding", "cp9999"],
         "--encoding: unknown encoding 'cp9999'"),
        (b"time;power\r\n07.12.2026 6:00;1\r\n", ["--encoding", "utf-8", "--state-map", "RUN"],
         "--state-map: 'RUN' is not NAME=STATE (one of running,"),
        (b"time;power\r\n07.12.2026 6:00;1\r\n", ["--state-map", "RUN=runing"],
         "--state-map: 'RUN=runing' is not NAME=STATE (one of running,"),
        (b"time;power\r\n07.12.2026 6:00;\xe9\r\n", ["--encoding", "utf-8"],
         "{export}: not utf-8 text (invalid continuation byte)"),
        (b"time;power\r\n07.12.2026 6:00;1\r\n", ["--mapping", "{mapping}"],
         "{mapping}:1: colums: unknown field (check its spelling)"),
    ],
)  # fmt: skip
def test_a_bad_file_or_option_is_one_line(
    tmp_path: Path, content: bytes, args: list[str], expected: str
) -> None:
    export = tmp_path / "power.csv"
    export.write_bytes(content)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("colums: {time: Время}\n", encoding="utf-8")
    places = {"export": export, "mapping": mapping}
    result = shopfloor("energy", str(export), *(arg.format(**places) for arg in args))
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {expected.format(**places)}")
