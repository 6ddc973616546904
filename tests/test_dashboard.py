"""What the shop-floor page shows, computed from a store written by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.shop_floor import read_shop_floor
from shopfloor.plant import Plant
from shopfloor.store import Point, Store


def test_shop_floor_lists_every_machine_and_sensor_with_its_latest_values(
    example_plant: Plant, store: Store
) -> None:
    now = datetime.now(UTC)
    paths = dict((m.id, p) for p, m in example_plant.machines())
    store.write(
        [
            Point(paths["imm-01"], "state", now - timedelta(seconds=30), "running"),
            Point(paths["imm-01"], "state", now - timedelta(seconds=3), "unplanned_stop"),
            Point(paths["imm-01"], "part_count", now - timedelta(seconds=3), 41.0, unit="pcs"),
            Point(paths["imm-01"], "power", now - timedelta(seconds=3), 2.1, unit="kW"),
        ]
    )
    floor = read_shop_floor(example_plant, store)
    assert [m.name for m in floor.machines] == [
        "Injection press 1",
        "Trimming centre",
        "Packaging station",
    ]
    press = floor.machines[0]
    assert press.value("state") == "unplanned_stop"
    assert press.value("part_count") == 41.0
    assert press.power_signal == "power" and press.values["power"].unit == "kW"
    age = press.age_s(floor.read_at)
    assert age is not None and 3 <= age < 60
    silent_machine = floor.machines[1]
    assert silent_machine.values == {} and silent_machine.age_s(floor.read_at) is None
    assert [s.name for s in floor.sensors] == ["Environment sensor kit"]


def test_kpis_do_not_count_as_fresh_readings(example_plant: Plant, store: Store) -> None:
    now = datetime.now(UTC)
    path = next(p for p, m in example_plant.machines() if m.id == "cnc-01")
    store.write(
        [
            Point(path, "vibration", now - timedelta(minutes=5), 2.8, unit="mm/s"),
            Point(path, "kpi.parts", now, 12.0, unit="pcs"),
        ]
    )
    trimmer = read_shop_floor(example_plant, store).machines[1]
    age = trimmer.age_s(datetime.now(UTC))
    assert age is not None and age >= 300
    assert [name for name, _ in trimmer.process_values()] == ["vibration"]
