"""The plant model: the example validates; every kind of mistake gets one located line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shopfloor.config import ConfigError
from shopfloor.messages import AssetPath
from shopfloor.plant import MachineType, Plant, Shift, load_plant
from tests.conftest import EXAMPLE_PLANT


def test_example_plant_describes_a_line_of_three_machines_and_a_sensor_kit(
    example_plant: Plant,
) -> None:
    machines = dict(example_plant.machines())
    assert list(machines) == [
        AssetPath("polimer", "brest", "moulding", "line-1", asset)
        for asset in ("imm-01", "cnc-01", "pack-01")
    ]
    press = machines[AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")]
    assert press.type is MachineType.INJECTION_MOULDING
    assert press.ideal_cycle_time == {"cap-28mm": 12.0, "cap-38mm": 15.0}
    assert press.energy_meter is not None and press.energy_meter.energy_signal == "energy"
    assert [m.rated_power_kw for m in machines.values()] == [22.0, 11.0, 3.0]
    units = {s.id: s.unit for s in press.signals}
    assert units["power"] == "kW" and units["part_count"] == "pcs"
    sensors = dict(example_plant.sensors())
    kit = sensors[AssetPath("polimer", "brest", "moulding", "hall-a", "env-01")]
    assert [s.id for s in kit.signals] == ["temperature", "humidity", "noise", "pm2_5"]
    assert [s.name for s in example_plant.shifts] == ["early", "late"]
    assert example_plant.site.timezone == "Europe/Minsk"


@pytest.mark.parametrize(
    ("plant", "zone", "currency"),
    [
        ("plant.yaml", "Europe/Minsk", "BYN"),  # Brest, Belarus
        ("packaging-plant.yaml", "Europe/Minsk", "BYN"),
        ("machining-plant.yaml", "Europe/Belgrade", "RSD"),  # Kragujevac, Serbia
    ],
)
def test_each_example_site_has_its_zone_currency_and_energy_price(
    plant: str, zone: str, currency: str
) -> None:
    site = load_plant(EXAMPLE_PLANT.parent / plant).site
    assert (site.timezone, site.currency) == (zone, currency)
    assert site.energy_price is not None and site.energy_price > 0


def test_a_site_without_a_currency_counts_in_euros(tmp_path: Path) -> None:
    path = broken(tmp_path, "  currency: BYN", "  # no currency")
    site = load_plant(path).site
    assert site.currency == "EUR"


def test_catalogue_lists_every_asset_with_its_signals(example_plant: Plant) -> None:
    catalogue = example_plant.catalogue()
    assert len(catalogue) == 4
    assert "vibration" in catalogue[AssetPath("polimer", "brest", "moulding", "line-1", "cnc-01")]


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE_PLANT.read_text()
    assert old in text, old
    path = tmp_path / "plant.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, fragment: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


CASES = [
    # (what is changed, into what, field named in the error, message fragment, line holding)
    ("type: cnc", "type: lathe", "site.areas[0].lines[0].machines[1].type", "Input should be",
     "type: lathe"),
    ("{cap-28mm: 10.0,", "{cap-99mm: 10.0,",
     "site.areas[0].lines[0].machines[1].ideal_cycle_time", "unknown product 'cap-99mm'",
     "cap-99mm: 10.0"),
    ("{cap-28mm: 11.0,", "{cap-28mm: -11.0,",
     "site.areas[0].lines[0].machines[2].ideal_cycle_time.cap-28mm", "greater than 0",
     "cap-28mm: -11.0"),
    ("- id: cnc-01", "- id: CNC 01", "site.areas[0].lines[0].machines[1].id", "not a valid id",
     "id: CNC 01"),
    ("- id: pack-01", "- id: cnc-01", "site.areas[0].lines[0].machines[2].id",
     "duplicate id 'cnc-01'", "- id: cnc-01\n              name: Packaging"),
    ("mqtt_topic: sensors", "mqtt_topik: sensors",
     "site.areas[0].zones[0].sensors[0].mqtt_topik", "unknown field (check its spelling)",
     "mqtt_topik"),
    ("timezone: Europe/Minsk", "timezone: Europe/Brest", "site.timezone", "unknown time zone",
     "Europe/Brest"),
    ("em-cnc-01, power_signal: power", "em-cnc-01, power_signal: watts",
     "site.areas[0].lines[0].machines[1].energy_meter.power_signal", "names no signal",
     "power_signal: watts"),
    ('"tcp://127.0.0.1:5021"', '"tcp://127.0.0.1:99999"',
     "site.areas[0].lines[0].machines[0].energy_meter.modbus.endpoint",
     "the port is not a number", "tcp://127.0.0.1:99999"),
    ("model: sdm120", "model: sdm999", "site.areas[0].lines[0].machines[2].energy_meter.modbus.model",
     "'sdm630' or 'sdm120'", "model: sdm999"),
    ('"opc.tcp://127.0.0.1:4843"', '"http://127.0.0.1:4843"',
     "site.areas[0].lines[0].machines[2].opcua.endpoint", "not an OPC UA endpoint",
     "http://127.0.0.1:4843"),
    ("rated_power_kw: 3.0", "rated_power_kw: 0", "site.areas[0].lines[0].machines[2].rated_power_kw",
     "greater than 0", "rated_power_kw: 0"),
    ("currency: BYN", "currency: rouble", "site.currency", "ISO 4217 code", "currency: rouble"),
    ("energy_price: 0.35", "energy_price: -1", "site.energy_price", "greater than 0",
     "energy_price: -1"),
    ('start: "06:00"', 'start: "25:00"', "shifts[0].start", "time", 'start: "25:00"'),
    # YAML 1.1 reads an unquoted 22:00 as 1320: refused, not silently 00:22.
    ('end: "22:00"', "end: 22:00", "shifts[1].end", "write the time in quotes", "end: 22:00"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field", "message", "line_text"), CASES)
def test_mistake_is_one_line_naming_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str, line_text: str
) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_plant(path)
    error = caught.value
    text = str(error)
    assert "\n" not in text
    assert error.field == field
    assert message in error.message
    first_line = line_text.split("\n")[0]
    if "\n" in line_text:  # the duplicate: the second occurrence, after the first machine's
        expected = line_of(path, "name: Packaging") - 1
    else:
        expected = line_of(path, first_line)
    assert error.line == expected
    assert text.startswith(f"{path}:{expected}: {field}: ")


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = broken(tmp_path, "  name: Polimer Moulding (demo SME)\n", "")
    with pytest.raises(ConfigError) as caught:
        load_plant(path)
    assert caught.value.field == "tenant.name"
    assert caught.value.message == "Field required"
    assert caught.value.line == line_of(path, "id: polimer")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = broken(tmp_path, "      name: Moulding hall", "      name: [Moulding hall")
    with pytest.raises(ConfigError, match=r"invalid YAML") as caught:
        load_plant(path)
    assert caught.value.line is not None and caught.value.line >= line_of(path, "[Moulding")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read file"), ("", "file is empty"), (b"\xff\xfe\x00", "not UTF-8")],
)
def test_unreadable_files(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    path = tmp_path / "plant.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_plant(path)


def test_a_list_instead_of_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError) as caught:
        load_plant(path)
    assert caught.value.field == "(top level)"
    assert caught.value.line == 1


def test_several_problems_are_counted_in_the_one_line(tmp_path: Path) -> None:
    path = broken(tmp_path, "type: cnc", "type: lathe")
    path.write_text(path.read_text().replace("type: packaging", "type: boxer"))
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\)"):
        load_plant(path)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("06:00", "14:00", 8),
        ("22:00", "06:00", 8),
        ("06:00", "06:00", 24),
        ("14:30", "14:00", 23.5),
    ],
)
def test_a_shift_lasts_past_midnight_when_it_ends_before_it_starts(
    start: str, end: str, hours: float
) -> None:
    shift = Shift.model_validate({"name": "s", "start": start, "end": end})
    assert shift.length == timedelta(hours=hours)
