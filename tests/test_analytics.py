"""The analytics service's counters, from a store written by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.kernels import counter_increase
from analytics.live import LiveKpis, machine_kpis
from shopfloor.plant import Plant
from shopfloor.store import Point, Scope, Store

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], 0.0),
        ([5.0], 0.0),
        ([0, 1, 2, 3], 3.0),
        ([10, 12, 3, 5], 4.0),  # reset to 3: the drop is skipped, not subtracted
        ([1, np.nan, 4], 3.0),
        ([7, 7, 7], 0.0),
        ([65_534, 65_535, 0, 2], 3.0),  # rollover: the step to 0 counts nothing
    ],
)
def test_counter_increase(values: list[float], expected: float) -> None:
    assert counter_increase(np.asarray(values, dtype=np.float64)) == expected


def test_machine_kpis_from_cumulative_counters(example_plant: Plant, store: Store) -> None:
    path, machine = next(iter(example_plant.machines()))
    counters: dict[str, list[float]] = {
        "part_count": [100, 110, 120, 0, 30],  # counter reset mid-window: 20 + 30 = 50 parts
        "reject_count": [4, 5, 5, 0, 1],  # 1 + 1 = 2 rejects
        "energy": [12.0, 12.5, 13.0, 13.5, 14.0],  # 2 kWh
    }
    store.write(
        [
            Point(path, signal, T0 + timedelta(minutes=i), float(v))
            for signal, values in counters.items()
            for i, v in enumerate(values)
        ]
    )
    kpis = machine_kpis(store, path, machine, T0, T0 + timedelta(hours=1))
    assert (kpis.parts, kpis.rejects, kpis.good_parts) == (50.0, 2.0, 48.0)
    assert kpis.energy == pytest.approx(2.0)
    assert kpis.energy_per_good_part == pytest.approx(2.0 / 48)


def test_live_kpis_are_written_next_to_the_machine_signals(
    example_plant: Plant, store: Store
) -> None:
    path, _ = next(iter(example_plant.machines()))
    store.write([Point(path, "part_count", T0 + timedelta(minutes=i), float(i)) for i in range(5)])
    LiveKpis(example_plant, store, window=timedelta(hours=1)).run_once(T0 + timedelta(minutes=30))
    kpis = {p.signal: p for p in store.latest(Scope.of(path)) if p.signal.startswith("kpi.")}
    assert kpis["kpi.parts"].value == 4.0
    assert kpis["kpi.good_parts"].unit == "pcs"
    assert kpis["kpi.parts"].ts == T0 + timedelta(minutes=30)
    # No energy samples: neither energy nor a ratio is invented.
    assert "kpi.energy" not in kpis and "kpi.energy_per_good_part" not in kpis
