"""What the shop-floor page shows, computed from a store written by hand: names, units, local
times, the anomaly badge and lost machines as a visitor reads them."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard.anomalies import AssetEvent as AnomalyEvent
from dashboard.anomalies import peak_text
from dashboard.labels import (
    KPI_HELP,
    age_text,
    axis_title,
    chart_time,
    number_text,
    reason_text,
    signal_name,
    signal_title,
    state_text,
    time_text,
    unit_text,
)
from dashboard.shop_floor import AssetView, ShopFloor, read_shop_floor
from shopfloor.kpis import KPI_UNITS
from shopfloor.messages import AssetPath, Event, EventType
from shopfloor.plant import Plant, Signal, load_plant
from shopfloor.store import Point, Store, StoreSettings, open_store
from tests.conftest import EXAMPLE_PLANT, ROOT


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


def test_signals_and_units_read_as_people_write_them() -> None:
    assert signal_name("pm2_5") == "PM2.5"
    assert signal_title("melt_temperature", Signal(id="melt_temperature", unit="degC")) == (
        "Melt temperature (°C)"
    )
    assert [unit_text(u) for u in ("ug/m3", "m/min", "bar", "kW", "m3/min")] == [
        "µg/m³", "m/min", "bar", "kW", "m³/min",
    ]  # fmt: skip
    own = Signal(id="pm2_5", unit="ug/m3", label="Fine dust")  # the plant file's label wins
    assert signal_title("pm2_5", own) == "Fine dust (µg/m³)"
    assert number_text(-0.04, "m/min") == "0.0 m/min"  # never "-0.0"
    # CLDR's short units, each language's own
    assert [age_text(s) for s in (4.4, 59.9, 300, 3 * 3600 + 5, 35 * 86400)] == [
        "4 sec", "60 sec", "5 min", "3 hr", "1 mth",
    ]  # fmt: skip
    assert number_text(-12.94, "bar") == "-12.9 bar"  # a real negative stays one
    assert (state_text("unplanned_stop"), reason_text("bearing_failure")) == (
        "Stopped (breakdown)",
        "bearing failure",
    )


def test_times_are_on_the_sites_clock(example_plant: Plant) -> None:
    noon_utc = datetime(2026, 7, 1, 12, 0, 5, tzinfo=UTC)
    assert time_text(noon_utc, example_plant) == "15:00:05"  # Brest: UTC+3
    belgrade = load_plant(EXAMPLE_PLANT.parent / "machining-plant.yaml")
    assert time_text(noon_utc, belgrade, with_date=True) == "07/01/2026 14:00:05"  # summer: +2
    assert chart_time(noon_utc, belgrade) == datetime(2026, 7, 1, 14, 0, 5)  # naive, for plotly
    assert axis_title(belgrade) == "time (Europe/Belgrade)"


def scored(path: AssetPath, **scores: float) -> AssetView:
    now = datetime(2026, 7, 1, 12, tzinfo=UTC)
    values = {f"anomaly.{s}": Point(path, f"anomaly.{s}", now, v) for s, v in scores.items()}
    return AssetView(path, "Trimming centre", values)


def test_a_readings_age_is_against_the_clock_the_data_keeps(example_plant: Plant) -> None:
    path = next(p for p, _ in example_plant.machines())
    wall = datetime(2026, 12, 7, 9, tzinfo=UTC)

    def floor(newest: datetime) -> ShopFloor:
        view = AssetView(path, "press", {"state": Point(path, "state", newest, "running")})
        return ShopFloor([view], [], [], wall)

    live = floor(wall - timedelta(seconds=3))
    assert live.clock() == wall  # a live pipeline: the wall clock, so a silent plant ages
    ahead = floor(wall + timedelta(hours=2))
    assert ahead.clock() == wall + timedelta(hours=2)  # a fast simulation: its own clock
    behind = floor(wall - timedelta(hours=5))  # a demo that began at its shift's start
    assert behind.clock(newest_seen_at=wall) == wall - timedelta(hours=5)  # fresh: 0 s old
    seen_a_minute_ago = wall - timedelta(minutes=1)
    assert behind.clock(seen_a_minute_ago) == wall - timedelta(hours=5) + timedelta(minutes=1)


def test_the_anomaly_badge_uses_the_analytics_levels(example_plant: Plant) -> None:
    path = next(p for p, _ in example_plant.machines())
    assert scored(path).anomaly_badge() is None  # not scored yet
    assert scored(path, vibration=0.5, spindle_load=0.2).anomaly_badge() == "normal"
    assert scored(path, vibration=0.95, spindle_load=0.2).anomaly_badge() == "watch"
    assert scored(path, vibration=0.995, spindle_load=0.2).anomaly_badge() == "anomaly"
    # T² of two signals: an event opens at the level of an 8-sigma value (68.3), "watch" at 4.
    calm = {"vibration": 0.1, "spindle_load": 0.1}
    assert scored(path, machine=62.9, **calm).anomaly_badge() == "watch"
    assert scored(path, machine=70.0, **calm).anomaly_badge() == "anomaly"
    assert scored(path, machine=10.0, **calm).anomaly_badge() == "normal"


def test_a_machine_silent_for_a_few_sampling_intervals_is_lost(
    example_plant: Plant, store: Store
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    paths = {m.id: p for p, m in example_plant.machines()}
    store.write(
        [Point(paths["imm-01"], "power", now - timedelta(seconds=s), 18.0 + s / 100)
         for s in range(0, 120)]
        + [Point(paths["cnc-01"], "power", now - timedelta(seconds=s), 7.0 + s / 100)
           for s in range(60, 120)]
        + [Point(paths["pack-01"], "power", now - timedelta(seconds=s), 2.0)
           for s in range(8, 120, 2)]
    )  # fmt: skip
    floor = read_shop_floor(example_plant, store)
    press, trimmer, packer = floor.machines
    assert (press.sampling_s, trimmer.sampling_s, packer.sampling_s) == (1.0, 1.0, 2.0)
    assert floor.lost_since(press) is None
    assert floor.lost_since(trimmer) == now - timedelta(seconds=60)
    assert floor.lost_since(packer) is None  # 8 s behind: within 10 of its 2-s intervals


def render_shop_floor(store_url: str) -> None:
    from dashboard.cards import live_shop_floor
    from shopfloor.plant import load_plant as load
    from shopfloor.store import StoreSettings, open_store
    from tests.conftest import EXAMPLE_PLANT as PLANT

    live_shop_floor(load(PLANT), open_store(StoreSettings(url=store_url)))


def test_cards_show_words_units_the_stop_reason_and_a_lost_machine(
    example_plant: Plant, tmp_path: Path
) -> None:
    store_url = f"sqlite:{tmp_path / 'store.db'}"
    store = open_store(StoreSettings(url=store_url))
    now = datetime.now(UTC).replace(microsecond=0)
    paths = {path.asset: path for path in example_plant.catalogue()}
    press, trimmer, kit = paths["imm-01"], paths["cnc-01"], paths["env-01"]
    store.write(
        [
            Point(press, "state", now, "unplanned_stop"),
            Point(press, "stop_reason", now, "overheat_trip"),
            Point(press, "product", now, "cap-28mm"),
            Point(press, "injection_pressure", now, -0.04, unit="bar"),
            Point(press, "melt_temperature", now, 231.26, unit="degC"),
            Point(press, "anomaly.melt_temperature", now, 0.2),
            Point(press, "anomaly.injection_pressure", now, 0.1),
            Point(press, "anomaly.machine", now, 62.9),
            Point(press, "kpi.good_parts", now, 120.0),
            Point(trimmer, "state", now - timedelta(minutes=5), "running"),
            Point(kit, "pm2_5", now, 9.13, unit="ug/m3"),
            Point(kit, "temperature", now, 22.5, unit="degC"),
        ]
    )
    store.close()
    app = AppTest.from_function(render_shop_floor, args=(store_url,), default_timeout=30).run()
    assert not app.exception
    text = " | ".join(str(e.value) for e in [*app.markdown, *app.caption, *app.warning])
    assert "Stopped (breakdown)] overheat trip" in text and "making 28 mm bottle cap" in text
    assert "Injection pressure 0.0 bar · Melt temperature 231.3 °C" in text
    assert "No data from Trimming centre since " in text and "(Europe/Minsk)" in text
    assert "kpi." not in text and "anomaly." not in text and "-0.0" not in text
    assert ":orange-badge[watch]" in text and "normal" not in text
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["PM2.5"], metrics["Temperature"]) == ("9.1 µg/m³", "22.5 °C")


def test_every_kpi_on_screen_is_explained_in_one_line() -> None:
    shown = set(KPI_UNITS) - {"teep", "nee"}  # written by the service, on no page
    assert shown <= set(KPI_HELP), shown - set(KPI_HELP)
    assert {"anomaly", "anomaly_score", "cost", "power"} <= set(KPI_HELP)
    assert all("\n" not in text and len(text) < 200 for text in KPI_HELP.values())


def test_an_anomaly_peak_is_told_on_the_sites_clock(example_plant: Plant) -> None:
    path = next(p for p, _ in example_plant.machines())
    start = datetime(2026, 11, 2, 23, 50, tzinfo=UTC)
    event = Event(type=EventType.ANOMALY, name="anomaly_vibration", start=start,
                  note="vibration: score 0.998 at 00:05:00Z")  # fmt: skip
    item = AnomalyEvent(path, "Trimming centre", event)
    assert peak_text(example_plant, item) == "score 0.998 at 03:05:00"  # the next day, UTC+3


# Every page but the shop floor, by its module.
OTHER_PAGES = {"dashboard.story", "dashboard.controls", "dashboard.edge_devices", "dashboard.oee",
               "dashboard.anomalies", "dashboard.energy", "dashboard.lean_readiness"}  # fmt: skip


def test_the_shop_floor_renders_without_importing_the_other_pages(tmp_path: Path) -> None:
    """The page a demo opens on does not wait for the others' imports (plotly figures, PDF
    fonts): each page's module is imported when the page is first shown. In a process of its
    own, for a clean sys.modules."""
    script = (
        "import sys\n"
        "from streamlit import config\n"
        "from streamlit.testing.v1 import AppTest\n"
        "config.set_option('server.address', '127.0.0.1')  # as served: no login on loopback\n"
        f"app = AppTest.from_file({str(ROOT / 'dashboard' / 'app.py')!r}, default_timeout=60)\n"
        "app.run()\n"
        "assert not app.exception, app.exception\n"
        "print([app.title[0].value, sorted(m for m in sys.modules if m.startswith('dashboard'))])\n"
    )
    env = {
        **os.environ, "SHOPFLOOR_STORE_URL": f"sqlite:{tmp_path / 'store.db'}",
        "SHOPFLOOR_PLANT": str(EXAMPLE_PLANT),
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    title, imported = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert title == "Polimer Moulding (demo SME) · Brest demonstration centre"
    assert "dashboard.cards" in imported
    assert not OTHER_PAGES & set(imported)
