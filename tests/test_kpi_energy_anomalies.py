"""`shopfloor kpi energy` and `kpi anomalies` as an SME runs them on its own export: a real
process, hand-made CSVs with values worked out by hand, and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

FIVE_MINUTES = [f"2026-03-02T00:{minute:02d}:00Z" for minute in range(0, 60, 5)]
HOUR_AT_10_KW = [f"{time},10" for time in [*FIVE_MINUTES, "2026-03-02T01:00:00Z"]]


def shopfloor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", "kpi", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def csv_file(tmp_path: Path, header: str, rows: list[str], name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def as_json(*args: str) -> Any:
    result = shopfloor(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- energy -----------------------------------------------------------------------------------


def test_ten_kw_for_an_hour_is_ten_kwh(tmp_path: Path) -> None:
    data = as_json("energy", str(csv_file(tmp_path, "time,power", HOUR_AT_10_KW)))
    assert (data["start"], data["end"]) == ("2026-03-02T00:00:00Z", "2026-03-02T01:00:00Z")
    assert data["kwh"] == pytest.approx(10.0)
    assert data["uncovered_s"] == 0.0
    assert data["peak_demand"] == {"kw": 10.0, "start": "2026-03-02T00:00:00Z", "coverage": 1.0}
    assert data["co2_kg"] == pytest.approx(2.51)  # the EU-27 factor, 0.251 kg/kWh
    assert [data[key] for key in ("meter", "states", "good_parts", "cost")] == [None] * 4


def test_a_gap_longer_than_max_gap_is_time_without_data(tmp_path: Path) -> None:
    times = ["00:00", "00:05", "00:15", "00:20"]  # 10 minutes without a sample
    path = csv_file(tmp_path, "time,power", [f"2026-03-02T{time}:00Z,12" for time in times])
    data = as_json("energy", str(path), "--grid-factor", "0.5")
    assert (data["kwh"], data["uncovered_s"]) == (pytest.approx(2.0), 600.0)
    assert data["co2_kg"] == pytest.approx(1.0)
    data = as_json("energy", str(path), "--max-gap", "600")
    assert (data["kwh"], data["uncovered_s"]) == (pytest.approx(4.0), 0.0)


def test_states_meter_and_good_parts(tmp_path: Path) -> None:
    # Running at 10 kW for 30 min, idle at 2 kW for 15 min, then off. An empty state cell keeps
    # the state; the meter is reset to zero at 00:45 and counts 0.5 kWh up to then.
    rows = [
        "2026-03-02T00:00:00Z,10,running,0,0",
        "2026-03-02T00:15:00Z,10,,2.5,50",
        "2026-03-02T00:30:00Z,2,idle,5.0,100",
        "2026-03-02T00:45:00Z,0,off,0.5,100",
        "2026-03-02T01:00:00Z,0,,0.5,100",
    ]
    path = csv_file(tmp_path, "time,power,state,energy,good_count", rows)
    data = as_json("energy", str(path), "--max-gap", "900")
    assert data["kwh"] == pytest.approx(5.5)
    assert data["meter"] == {"kwh": pytest.approx(5.5), "resets": 1, "rollovers": 0, "drops": 0}
    states = data["states"]
    assert states["kwh"] == pytest.approx({"running": 5.0, "idle": 0.5, "off": 0.0})
    assert states["kwh_by_group"] == pytest.approx({"running": 5.0, "idle": 0.5, "off": 0.0})
    assert states["idle_share"] == pytest.approx(0.5 / 5.5)
    assert states["uncovered_s"] == 0.0
    assert data["good_parts"] == {
        "count": 100,
        "kwh_per_part": pytest.approx(0.055),
        "problem": None,
    }
    assert data["peak_demand"]["kw"] == pytest.approx(10.0)


TARIFF = """\
timezone: Europe/Berlin
base_price_per_kwh: 0.20
demand_charge_per_kw: 2.0
bands:
  - {name: night, start: "22:00", end: "06:00", price_per_kwh: 0.10}
  - {name: day, start: "06:00", end: "22:00", price_per_kwh: 0.25}
"""


def test_two_band_tariff_in_the_tariffs_time_zone(tmp_path: Path) -> None:
    # 10 kW from 05:30 to 06:30 Berlin time (no offset in the file: the tariff's zone).
    times = [f"2026-03-02T05:{minute:02d}:00" for minute in range(30, 60, 5)]
    times += [f"2026-03-02T06:{minute:02d}:00" for minute in range(0, 35, 5)]
    path = csv_file(tmp_path, "time,power", [f"{time},10" for time in times])
    tariff = tmp_path / "tariff.yaml"
    tariff.write_text(TARIFF, encoding="utf-8")
    data = as_json("energy", str(path), "--tariff", str(tariff))
    assert data["start"] == "2026-03-02T04:30:00Z"
    cost = data["cost"]
    assert cost["kwh_by_band"] == pytest.approx({"night": 5.0, "day": 5.0, "base": 0.0})
    assert cost["by_band"] == pytest.approx({"night": 0.5, "day": 1.25, "base": 0.0})
    assert cost["energy"] == pytest.approx(1.75)
    assert cost["demand_charge"] == pytest.approx(20.0)  # 10 kW peak at 2.0 per kW
    assert cost["total"] == pytest.approx(21.75)


def test_energy_table(tmp_path: Path) -> None:
    rows = [f"{time},10,running,{index}" for index, time in enumerate(FIVE_MINUTES)]
    path = csv_file(tmp_path, "time,power,state,good_count", rows)
    tariff = tmp_path / "tariff.yaml"
    tariff.write_text(TARIFF, encoding="utf-8")
    result = shopfloor("energy", str(path), "--tariff", str(tariff))
    assert result.returncode == 0, result.stderr
    for text in ("energy from power", "9.167 kWh", "state: running", "idle share", "0.0%",
                 "per good part (11 parts)", "0.8333 kWh", "15-min peak demand", "10.00 kW",
                 "cost: night", "total cost", "CO2e"):  # fmt: skip
        assert text in result.stdout, text


# --- anomalies --------------------------------------------------------------------------------

SPIKE_ROW = 200  # after the detector's warm-up


def signals_file(tmp_path: Path, count: int) -> Path:
    """300 s of smooth signals, the first with a spike at 00:03:20."""
    rows = []
    for i in range(300):
        values = [50 + 0.5 * math.sin(0.7 * i) + (20 if i == SPIKE_ROW else 0)]
        values += [3 + 0.1 * math.cos(1.3 * i + s) for s in range(1, count)]
        rows.append(
            f"2026-03-02T00:{i // 60:02d}:{i % 60:02d}Z," + ",".join(f"{v:.4f}" for v in values)
        )
    header = ",".join(["time", "temperature", "pressure", "current"][: count + 1])
    return csv_file(tmp_path, header, rows)


SPIKE = "2026-03-02T00:03:20Z"
Z5_TAIL = math.erfc(5 / math.sqrt(2))  # P(|z| >= 5) of a Gaussian


def chi2_tail_2(x: float) -> float:
    return math.exp(-x / 2)


def chi2_tail_3(x: float) -> float:
    return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)


@pytest.mark.parametrize(("count", "chi2_tail"), [(2, chi2_tail_2), (3, chi2_tail_3)])
def test_a_planted_spike_is_an_event_at_its_time(
    tmp_path: Path, count: int, chi2_tail: Any
) -> None:
    data = as_json("anomalies", str(signals_file(tmp_path, count)))
    assert (data["samples"], data["threshold_z"]) == (300, 5.0)
    (spike,) = data["signals"]["temperature"]
    assert (spike["start"], spike["end"], spike["peak"]) == (SPIKE, SPIKE, SPIKE)
    assert spike["peak_score"] > 5.0
    assert all(found == [] for name, found in data["signals"].items() if name != "temperature")
    (joint,) = data["multivariate"]
    assert (joint["start"], joint["end"], joint["peak"]) == (SPIKE, SPIKE, SPIKE)
    # The T² level is as rare for `count` signals as |z| >= 5 for one.
    assert chi2_tail(data["threshold_t2"]) == pytest.approx(Z5_TAIL, rel=1e-9)
    assert joint["peak_score"] > data["threshold_t2"]


def test_one_signal_and_the_detector_options(tmp_path: Path) -> None:
    path = signals_file(tmp_path, 1)
    data = as_json("anomalies", str(path))
    assert (data["multivariate"], data["threshold_t2"]) == (None, None)
    assert len(data["signals"]["temperature"]) == 1
    data = as_json("anomalies", str(path), "--warmup", str(SPIKE_ROW + 50))
    assert (data["warmup"], data["signals"]) == (SPIKE_ROW + 50, {"temperature": []})
    data = as_json("anomalies", str(path), "--threshold", "4")
    assert (data["threshold_z"], len(data["signals"]["temperature"])) == (4.0, 1)
    data = as_json("anomalies", str(path), "--max-gap", "0.5")  # restarts at every sample
    assert data["signals"] == {"temperature": []}


def step_file(tmp_path: Path) -> Path:
    """50 min of a noisy pressure that steps up by 8 of its spreads at 00:33:20."""
    rng = random.Random(3)
    rows = [
        f"2026-03-02T00:{i // 60:02d}:{i % 60:02d}Z,{7 + rng.gauss(0, 0.05) + 0.4 * (i >= 2000):.4f}"
        for i in range(3000)
    ]
    return csv_file(tmp_path, "time,pressure", rows)


def test_the_views_see_a_step_as_one_event(tmp_path: Path) -> None:
    path = step_file(tmp_path)
    data = as_json("anomalies", str(path), "--detector", "views")
    assert (data["detector"], data["warmup"], data["threshold_z"]) == ("views", 750, None)
    (step,) = data["signals"]["pressure"]
    assert (step["start"], step["peak"]) == ("2026-03-02T00:33:20Z",) * 2
    assert step["end"] > "2026-03-02T00:35:00Z" and step["peak_score"] == 3.0
    z = as_json("anomalies", str(path))  # the z-score flickers about its level
    assert z["detector"] == "zscore" and len(z["signals"]["pressure"]) > 1
    later = as_json("anomalies", str(path), "--detector", "views", "--warmup", "2500")
    assert (later["warmup"], later["signals"]) == (2500, {"pressure": []})
    table = shopfloor("anomalies", str(path), "--detector", "views")
    assert "one view at its level" in table.stdout and "3 of 3 views" in table.stdout


def test_anomalies_table(tmp_path: Path) -> None:
    result = shopfloor("anomalies", str(signals_file(tmp_path, 2)))
    assert result.returncode == 0, result.stderr
    for text in ("temperature", SPIKE, "pressure", "no events", "all signals (T²)", "|z| >= 5"):
        assert text in result.stdout, text


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_parquet_with_timestamps_and_a_missing_sample(tmp_path: Path) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    path = tmp_path / "power.parquet"
    start = 1772409600  # 2026-03-02T00:00:00Z
    times = pa.array([start + 300 * i for i in range(13)], pa.timestamp("s", tz="UTC"))
    power = pa.array([10.0, None, *([10.0] * 11)])  # 10 minutes between readings
    pq.write_table(pa.table({"time": times, "power": power}), path)
    data = as_json("energy", str(path))
    assert data["start"] == "2026-03-02T00:00:00Z"
    assert (data["kwh"], data["uncovered_s"]) == (pytest.approx(50 / 6), 600.0)
    assert as_json("energy", str(path), "--max-gap", "600")["kwh"] == pytest.approx(10.0)


def plant_rows(count: int = 3_000) -> tuple[list[str], list[list[float]]]:
    """Power following load, a temperature of its own and a constant setpoint, one row a
    second from 00:00; from row 2,500 to 2,599 power no longer follows load."""
    rng = random.Random(21)
    times, rows = [], []
    for i in range(count):
        load = 50 + 10 * rng.gauss(0, 1)
        power = 2 * load + rng.gauss(0, 2) - (25 if 2_500 <= i < 2_600 else 0)
        rows.append([load, power, 60 + rng.gauss(0, 1.5), 7.0])
        times.append(f"2026-03-02T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
    return times, rows


def plant_file(tmp_path: Path, suffix: str) -> Path:
    times, rows = plant_rows()
    names = ["load", "power", "temperature", "setpoint"]
    if suffix == ".csv":
        lines = [
            f"{time}," + ",".join(f"{v:.3f}" for v in row)
            for time, row in zip(times, rows, strict=True)
        ]
        return csv_file(tmp_path, ",".join(["time", *names]), lines)
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "plant.parquet"
    columns = {
        "time": pa.array(times),
        **{n: [row[j] for row in rows] for j, n in enumerate(names)},
    }
    pq.write_table(pa.table(columns), path)
    return path


BREAK, NORMAL_UNTIL = "2026-03-02T00:41:40Z", "2026-03-02T00:33:20Z"  # rows 2,500 and 2,000


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_normal_until_learns_before_and_finds_the_correlation_break(
    tmp_path: Path, suffix: str
) -> None:
    data = as_json("anomalies", str(plant_file(tmp_path, suffix)), "--normal-until", NORMAL_UNTIL)
    normal = data["normal"]
    assert (normal["until"], normal["rows"], normal["left_out"]) == (
        NORMAL_UNTIL,
        2_000,
        ["setpoint"],
    )
    assert normal["signals"] == ["load", "power", "temperature"]
    levels = normal["levels"]
    assert set(levels) == {"t2", "spe", "t2_smoothed", "spe_smoothed", "still_s"}
    assert all(levels[index] > 0 for index in ("t2", "spe", "t2_smoothed", "spe_smoothed"))
    assert set(levels["still_s"]) == set(normal["signals"])
    assert data["signals"] == {}
    (event,) = data["multivariate"]
    assert BREAK <= event["start"] <= "2026-03-02T00:41:45Z"  # k of n rows: a few seconds
    assert "2026-03-02T00:43:19Z" <= event["end"] <= "2026-03-02T00:43:25Z"
    assert set(list(event["contributions"])[:2]) == {"load", "power"}
    assert sum(event["contributions"].values()) == pytest.approx(1.0)
    assert event["peak_score"] > 1.0


def test_normal_until_table_shows_top_contributors(tmp_path: Path) -> None:
    path = plant_file(tmp_path, ".csv")
    result = shopfloor("anomalies", str(path), "--normal-until", NORMAL_UNTIL)
    assert result.returncode == 0, result.stderr
    for text in ("2026-03-02T00:41:4", "top contributors", "power 5", "load 5", "out: setpoint"):
        assert text in result.stdout, text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--normal-until", "2026-03-01T00:00:00Z"], "error: --normal-until: 2026-03-01T00:00:00Z is before the first row: nothing to learn from or to score\n"),
        (["--normal-until", "2026-03-02T00:00:30Z"], "error: --normal-until: the normal period has 30 rows with every signal, 100 are needed\n"),
        (["--normal-until", NORMAL_UNTIL, "--warmup", "5"], "error: --warmup: for the streaming detectors, not with --normal-until\n"),
        (["--normal-until", NORMAL_UNTIL, "--detector", "views"], "error: --detector: for the streaming detectors, not with --normal-until\n"),
        (["--normal-until", "yesterday"], "error: --normal-until: 'yesterday' is not a time (ISO 8601 or dd.mm.yyyy hh:mm[:ss])\n"),
        (["--false-alarms-per-week", "0"], "error: --false-alarms-per-week: must be above zero\n"),
    ],
)  # fmt: skip
def test_bad_normal_until_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = shopfloor("anomalies", str(plant_file(tmp_path, ".csv")), *args)
    assert (result.returncode, result.stderr) == (2, expected)


# --- bad input --------------------------------------------------------------------------------

T0, T1 = "2026-03-02T00:00:00Z", "2026-03-02T00:05:00Z"


BAD_FILES = [  # command, header, rows, the error after the file name
    ("energy", "time,power", ["2026-03-02T25:00:00Z,1"], ":2: time: '2026-03-02T25:00:00Z' is not a time (ISO 8601 or dd.mm.yyyy hh:mm[:ss])"),
    ("energy", "time,power", [f"{T0},1", f"{T1},ten"], ":3: power: 'ten' is not a number"),
    ("energy", "time,power", [f"{T0},nan"], ":2: power: 'nan' is not a number"),
    ("energy", "time,kw", [f"{T0},1"], ":1: power: missing column (the file has: time, kw)"),
    ("energy", "time,power", [f"{T1},1", f"{T0},1"], ":3: time: earlier than the row before: sort by time"),
    ("energy", "time,power,state", [f"{T0},1,runing"], ":2: state: unknown state 'runing' (one of running,"),
    ("energy", "time,power,good_count", [f"{T0},1,1.5"], ":2: good_count: '1.5' is not a whole number"),
    ("energy", "time,power", [f"{T0},1,2"], ":2: row: 3 cells where the header has 2"),
    ("anomalies", "time,temperature", [f"{T0},1", f"{T1},n/a"], ":3: temperature: 'n/a' is not a number"),
    ("anomalies", "timestamp,temperature", [f"{T0},1"], ":1: time: missing column (the file has: timestamp, temperature)"),
    ("anomalies", "time", [T0], ":1: time: no other column: add one numeric column per signal"),
    ("anomalies", "time,a,b", [f"{T1},1,2", f"{T0},1,2"], ":3: time: earlier than the row before: sort by time"),
    ("anomalies", "time,a", [], ": no rows"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "header", "rows", "expected"), BAD_FILES)
def test_bad_input_is_one_line_naming_file_row_and_column(
    tmp_path: Path, command: str, header: str, rows: list[str], expected: str
) -> None:
    path = csv_file(tmp_path, header, rows)
    result = shopfloor(command, str(path))
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}{expected}")


def test_a_bad_tariff_names_its_line_and_field(tmp_path: Path) -> None:
    tariff = tmp_path / "tariff.yaml"
    tariff.write_text(TARIFF.replace("price_per_kwh: 0.25", "prise_per_kwh: 0.25"), "utf-8")
    result = shopfloor(
        "energy", str(csv_file(tmp_path, "time,power", HOUR_AT_10_KW)), "--tariff", str(tariff)
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {tariff}:6: bands[1].prise_per_kwh: unknown field (check its spelling) "
        "(and 1 more problem)\n"  # price_per_kwh is missing
    )


BAD_OPTIONS = [
    (["energy", "--max-gap", "0"], "error: --max-gap: must be above zero\n"),
    (["energy", "--grid-factor", "-0.1"], "error: --grid-factor: cannot be negative\n"),
    (["energy", "--timezone", "Mars/Olympus"], "error: --timezone: unknown time zone 'Mars/Olympus'\n"),
    (["anomalies", "--threshold", "0"], "error: --threshold: must be above 0 and at most 30\n"),
    (["anomalies", "--warmup", "0"], "error: --warmup: must be at least 1\n"),
    (["anomalies", "--max-gap", "-1"], "error: --max-gap: must be above zero\n"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "expected"), BAD_OPTIONS)
def test_bad_options_are_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    path = csv_file(tmp_path, "time,power", HOUR_AT_10_KW)
    result = shopfloor(args[0], str(path), *args[1:])
    assert (result.returncode, result.stderr) == (2, expected)
