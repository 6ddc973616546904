"""Scenario files: a mistake gets one line naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.config import ConfigError
from simulators.scenario import load_scenario, parse_duration
from tests.conftest import ROOT

MOULDING = ROOT / "examples" / "scenarios" / "moulding.yaml"


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = MOULDING.read_text()
    assert old in text, old
    path = tmp_path / "scenario.yaml"
    path.write_text(
        text.replace(old, new, 1).replace(
            "plant: ../plant.yaml", f"plant: {ROOT / 'examples' / 'plant.yaml'}"
        )
    )
    return path


def line_of(path: Path, fragment: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


@pytest.mark.parametrize(
    ("old", "new", "field", "message", "line_text"),
    [
        ("at: 3h, duration: 20m", "at: 3 hours, duration: 20m", "planned_stops[0].at", "not a duration", "3 hours"),
        ("kind: bearing_wear", "kind: bearing_ware", "faults[0].kind", "Input should be", "bearing_ware"),
        ("product: cap-28mm", "product: cap-99mm", "product", "the plant makes no product 'cap-99mm'", "cap-99mm"),
        ("  pack-01:\n    speed_loss", "  pack-02:\n    speed_loss", "machines.pack-02", "no machine 'pack-02' in plant", "pack-02:"),
        ("{machine: cnc-01, kind: bearing_wear", "{machine: cnc-09, kind: bearing_wear", "faults[0].machine", "no such machine", "cnc-09"),
        ("signal: melt_temperature", "signal: melt_temp", "faults[1].signal", "no such signal", "melt_temp"),
        ("reject_rate: 0.025", "reject_rate: 2.5", "machines.imm-01.reject_rate", "less than or equal to 1", "2.5"),
        ("seed: 11", "seeds: 11", "seeds", "unknown field", "seeds: 11"),
        ("reason: colour_changeover,", "reason: colour_changeover, product: cap-99mm,", "planned_stops[1].product", "the plant makes no product 'cap-99mm'", "cap-99mm"),
    ],
)  # fmt: skip
def test_mistakes_are_one_located_line(
    tmp_path: Path, old: str, new: str, field: str, message: str, line_text: str
) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert caught.value.field == field
    assert message in caught.value.message
    assert caught.value.line == line_of(path, line_text)
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: {field}: ")
    assert "\n" not in str(caught.value)


def test_a_missing_plant_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(MOULDING.read_text())  # ../plant.yaml does not exist next to it
    with pytest.raises(ConfigError, match=r"plant.yaml: cannot read file"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h30m", 5400.0),
        ("8h", 28800.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds
