"""The OEE, anomalies and energy pages, from a store holding what the analytics service writes:
shift reports made by the service's own code, KPIs, anomaly scores and events, a fault."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.energy import StateEnergy
from analytics.oee import OeeReport, StateEvent, oee_timeline, pooled
from analytics.service import MachineReport
from dashboard.anomalies import LEARN_FAILURES, acknowledge, read_events, read_scored_signals
from dashboard.energy import Tariff, energy_by_machine
from dashboard.kpis import (
    by_product,
    clock_note,
    line_reports,
    line_rolling_kpis,
    read_shift_reports,
    rolling_kpis,
)
from dashboard.oee import (
    Problem,
    loss_waterfall,
    pareto_figure,
    production_lines,
    report_problems,
    shift_kpis,
    stop_pareto,
)
from readiness import DATABASE_ENV
from readiness.answers import load_answers
from readiness.assessment import run_assessment
from readiness.persistence import ReadinessStore
from shopfloor import i18n
from shopfloor.learning import (
    LearnRequest,
    NormalModelDoc,
    model_point,
    read_request,
    request_point,
)
from shopfloor.messages import AssetPath, Event, EventType, LossLink
from shopfloor.plant import Plant
from shopfloor.states import MachineState
from shopfloor.store import Point, Store, StoreSettings, data_clock, open_store
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import InfluxDB, free_port
from tests.test_dashboard_driving import artifact, choose, open_page, start_dashboard
from tests.test_end_to_end import stop_all
from tests.test_packaging import NOT_IN_EXTRA, without

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")
TRIMMER = AssetPath("polimer", "brest", "moulding", "line-1", "cnc-01")
# Monday 16 November 2026; the plant's shifts are in Europe/Minsk (UTC+3).
EARLY = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)
LATE = datetime(2026, 11, 16, 11, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 16, 18, 0, tzinfo=UTC)
IDEAL_CYCLE_S = 12.0

S = MachineState
# An 8-hour shift (seconds from its start): breakdowns with reasons, a starved spell without
# one, a planned stop; 1,600 parts counted, 40 of them rejects.
SHIFT_LOG = [
    StateEvent(0, S.RUNNING, 0, 0),
    StateEvent(3600, S.UNPLANNED_STOP, 250, 5, reason="mechanical"),
    StateEvent(5400, S.RUNNING),
    StateEvent(10800, S.STARVED),
    StateEvent(11700, S.RUNNING),
    StateEvent(14400, S.PLANNED_STOP),
    StateEvent(16200, S.RUNNING),
    StateEvent(21600, S.UNPLANNED_STOP, reason="heater"),
    StateEvent(22200, S.RUNNING),
    StateEvent(28799, S.RUNNING, 1600, 40),
]
# Planned busy time 27,000 s; availability losses 3,300 s; 23,700 s of production, of which
# 19,200 s at ideal speed, 480 s spent on rejects: 18,720 s fully productive.
PLANNED_BUSY_S, PRODUCTION_S, FULLY_PRODUCTIVE_S = 27_000.0, 23_700.0, 18_720.0
# A shift whose first state arrives 10 minutes in, and whose machine was reported idle while it
# went on counting parts: a performance of 32,000 %, which the report names as a problem.
IDLE_BUT_COUNTING = [
    StateEvent(600, S.RUNNING, 0, 0),
    StateEvent(660, S.IDLE, 5, 0),
    StateEvent(28799, S.IDLE, 1600, 0),
]


def shift_report_point(
    path: AssetPath, shift: str, start: datetime, kwh: float, peak_kw: float,
    log: Sequence[StateEvent] = SHIFT_LOG,
) -> Point:  # fmt: skip
    """A `report.shift` point exactly as the analytics service writes it."""
    t0 = start.timestamp()
    events = [StateEvent(t0 + e.time, e.state, e.total_count, e.bad_count, e.reason) for e in log]
    oee = oee_timeline(events, t0, t0 + 8 * 3600, IDEAL_CYCLE_S)
    by_state = {S.RUNNING: kwh * 0.8, S.STARVED: kwh * 0.05, S.UNPLANNED_STOP: kwh * 0.15}
    report = MachineReport(
        t0, t0 + 8 * 3600, oee, kwh, StateEnergy(by_state, 0.0), peak_kw, kwh * 0.25
    )
    detail = report.document(shift, date(2026, 11, 16))
    return Point(path, "report.shift", start, detail.model_dump_json())


def analysed_store(store: Store) -> None:
    """Two shifts of the press, one of the trimmer, rolling KPIs, a trimmer anomaly linked to the
    breakdown after it, the injected fault behind it, and vibration with its scores."""
    anomaly = Event(
        type=EventType.ANOMALY, name="anomaly_vibration", start=NOW - timedelta(hours=2),
        end=NOW - timedelta(hours=1, minutes=40), note="vibration: score 9.3 at 16:05:00Z",
        loss=LossLink(state="unplanned_stop", reason="mechanical", start=NOW - timedelta(hours=1, minutes=20),
                      lead_s=2400, duration_s=900),
    )  # fmt: skip
    fault = Event(type=EventType.FAULT, name="bearing_wear", start=NOW - timedelta(hours=3))
    samples = [NOW - timedelta(hours=3) + timedelta(minutes=m) for m in range(180)]
    store.write(
        [
            shift_report_point(PRESS, "early", EARLY, kwh=100.0, peak_kw=20.0),
            shift_report_point(PRESS, "late", LATE, kwh=120.0, peak_kw=25.0),
            shift_report_point(TRIMMER, "early", EARLY, kwh=40.0, peak_kw=9.0),
            Point(PRESS, "kpi.oee", NOW - timedelta(minutes=1), 0.5),
            Point(PRESS, "kpi.oee", NOW, 0.61),
            Point(PRESS, "kpi.availability", NOW, 0.8),
            Point(PRESS, "kpi.shift.oee", LATE, 0.7),
            Point(TRIMMER, "kpi.oee", NOW - timedelta(seconds=10), 0.55),
            Point.from_event(TRIMMER, anomaly),
            Point.from_event(TRIMMER, fault),
            *[
                Point(TRIMMER, "vibration", t, 2.0 + i / 60, unit="mm/s")
                for i, t in enumerate(samples)
            ],
            *[Point(TRIMMER, "anomaly.vibration", t, i / 20) for i, t in enumerate(samples)],
            Point(PRESS, "state", NOW, "running"),  # the newest reading: the data clock
        ]
    )


def test_the_clock_is_the_newest_reading_and_rolling_kpis_the_newest_kpis(
    example_plant: Plant, store: Store
) -> None:
    analysed_store(store)
    assert data_clock(example_plant, store) == NOW
    assert rolling_kpis(store, PRESS) == {"oee": 0.61, "availability": 0.8}


def test_the_shift_table_has_a_row_per_machine_and_shift(
    example_plant: Plant, store: Store
) -> None:
    analysed_store(store)
    reports = read_shift_reports(example_plant, store, NOW - timedelta(days=1), NOW)
    rows = shift_kpis(reports)
    assert [(r.shift, r.machine) for r in rows] == [
        ("early", "Injection press 1"),
        ("early", "Trimming centre"),
        ("late", "Injection press 1"),
    ]
    first = rows[0]
    assert str(first.day) == "2026-11-16"
    assert first.availability == pytest.approx(PRODUCTION_S / PLANNED_BUSY_S)
    assert first.performance == pytest.approx(IDEAL_CYCLE_S * 1600 / PRODUCTION_S)
    assert first.quality == pytest.approx(1560 / 1600)
    assert first.oee == pytest.approx(FULLY_PRODUCTIVE_S / PLANNED_BUSY_S)
    assert (first.parts, first.good_parts, first.rejects) == (1600, 1560, 40)
    assert first.mtbf_s == pytest.approx(PRODUCTION_S / 2)
    assert first.mttr_s == pytest.approx((1800 + 600) / 2)
    later = read_shift_reports(example_plant, store, LATE, NOW)
    assert [r.shift for r in later] == ["late"]


def test_a_line_pools_its_machines_shift_by_shift(example_plant: Plant, store: Store) -> None:
    analysed_store(store)
    reports = read_shift_reports(example_plant, store, NOW - timedelta(days=1), NOW)
    lines = production_lines(example_plant)
    assert lines == {
        "Line: Cap moulding line": ["Injection press 1", "Trimming centre", "Packaging station"]
    }
    early, late = line_reports(reports, "Line: Cap moulding line")
    assert (early.shift, early.machine, late.shift) == ("early", "Line: Cap moulding line", "late")
    assert early.oee is not None and late.oee is not None
    assert early.oee.planned_busy_s == 2 * PLANNED_BUSY_S
    assert (early.oee.produced, early.oee.good) == (3200, 3120)
    assert early.oee.oee == pytest.approx(FULLY_PRODUCTIVE_S / PLANNED_BUSY_S)
    assert early.energy_kwh == pytest.approx(140.0)
    assert late.oee.produced == 1600


def test_oee_by_product_over_several_shifts(example_plant: Plant, store: Store) -> None:
    t0 = EARLY.timestamp()
    events = [
        StateEvent(t0 + e.time, e.state, e.total_count, e.bad_count, e.reason,
                   "cap-28mm" if e.time < 14400 else "cap-38mm")
        for e in SHIFT_LOG
    ]  # fmt: skip
    ideal = {"cap-28mm": 12.0, "cap-38mm": 15.0}
    made = {
        p: oee_timeline(events, t0, t0 + 28_800, ideal, product=p) for p in ("cap-28mm", "cap-38mm")
    }
    report = MachineReport(t0, t0 + 28_800, oee_timeline(events, t0, t0 + 28_800, ideal),
                           None, None, None, None, made)  # fmt: skip
    detail = report.document("early", date(2026, 11, 16)).model_dump_json()
    store.write([Point(PRESS, "report.shift", EARLY, detail)])
    [shift] = read_shift_reports(example_plant, store, EARLY, NOW)
    products = by_product([shift, shift])
    assert list(products) == ["cap-28mm", "cap-38mm"]
    assert products["cap-28mm"].planned_operation_s == 2 * 14_400
    assert products["cap-38mm"].produced == 2 * made["cap-38mm"].produced
    assert shift.oee is not None
    assert pooled(list(shift.by_product.values())).oee == pytest.approx(shift.oee.oee)


def test_the_waterfall_steps_from_planned_time_down_to_fully_productive_time(
    example_plant: Plant, store: Store
) -> None:
    analysed_store(store)
    reports = read_shift_reports(example_plant, store, EARLY, NOW)
    press = [r.oee for r in reports if r.path == PRESS and r.oee]
    steps = loss_waterfall(press[:1])
    assert [(s.label, s.seconds, s.is_total) for s in steps] == [
        ("Planned operation time", 28_800, True),
        ("Planned downtime", 1800, False),
        ("Planned busy time", PLANNED_BUSY_S, True),
        ("Unplanned stop", 2400, False),
        ("Starved", 900, False),
        ("Actual production time", PRODUCTION_S, True),
        ("Reduced speed", 4500, False),
        ("Rejects", 480, False),
        ("Fully productive time", pytest.approx(FULLY_PRODUCTIVE_S), True),
    ]
    both_shifts = loss_waterfall(press)
    assert both_shifts[-1].seconds == pytest.approx(2 * FULLY_PRODUCTIVE_S)
    total = 0.0
    for step in both_shifts:  # every subtotal is the one before it less the losses between
        if step.is_total and total:
            assert step.seconds == pytest.approx(total)
        total = step.seconds if step.is_total else total - step.seconds


def test_the_pareto_orders_stop_reasons_with_their_cumulative_share(
    example_plant: Plant, store: Store
) -> None:
    analysed_store(store)
    reports = read_shift_reports(example_plant, store, EARLY, NOW)
    bars = stop_pareto([r.oee for r in reports if r.path == PRESS and r.oee])
    assert [(b.reason, b.seconds) for b in bars] == [
        ("mechanical", 3600),
        ("no reason code", 1800),
        ("heater", 1200),
    ]
    assert [b.cumulative_share for b in bars] == pytest.approx([3600 / 6600, 5400 / 6600, 1.0])


def implausible_reports() -> list[OeeReport]:
    t0 = EARLY.timestamp()
    log = [StateEvent(t0 + e.time, e.state, e.total_count, e.bad_count) for e in IDLE_BUT_COUNTING]
    return [oee_timeline(log, t0, t0 + 28_800, IDEAL_CYCLE_S)]


def test_the_pareto_shares_run_on_a_round_0_to_100_percent_axis_under_the_legend() -> None:
    figure = pareto_figure(stop_pareto(implausible_reports()))
    axis, legend = figure.layout.yaxis2, figure.layout.legend
    assert (tuple(axis.range), tuple(axis.tickvals)) == ((0, 1), (0, 0.25, 0.5, 0.75, 1))
    assert legend.y >= 1 and legend.yanchor == "bottom"  # above the plot, not over the reasons


def test_the_time_before_the_first_reading_is_named_in_the_waterfall() -> None:
    steps = loss_waterfall(implausible_reports())
    assert [(s.label, s.seconds) for s in steps[:3]] == [
        ("Planned operation time", 28_800),
        ("No data (before the first reading)", 600),
        ("Planned busy time", 28_200),
    ]


def test_problems_are_listed_once_with_the_machine_shifts_they_were_found_in(
    example_plant: Plant, store: Store
) -> None:
    store.write(
        [
            shift_report_point(PRESS, "early", EARLY, 100.0, 20.0, IDLE_BUT_COUNTING),
            shift_report_point(TRIMMER, "early", EARLY, 40.0, 9.0, IDLE_BUT_COUNTING),
            shift_report_point(PRESS, "late", LATE, 120.0, 25.0),  # a sound shift
        ]
    )
    reports = read_shift_reports(example_plant, store, EARLY, NOW)
    both = ("Injection press 1, Mon, Nov 16 early", "Trimming centre, Mon, Nov 16 early")
    assert report_problems(reports) == [
        Problem("no state known for the first 600 s of planned time", both),
        Problem(
            "performance 320.000 is above 1: ideal cycle time too long, or parts counted "
            "outside planned production time",
            both,
        ),
    ]
    assert shift_kpis(reports)[0].mtbf_s is None  # no breakdown: shown as a dash


def test_a_line_pools_only_the_rolling_counts(example_plant: Plant, store: Store) -> None:
    machines = [path for path, m in example_plant.machines() if m.ideal_cycle_time]
    counts = {PRESS: (400.0, 390.0), TRIMMER: (380.0, 361.0)}
    store.write(
        [
            Point(path, f"kpi.{name}", NOW, value)
            for path, (parts, good) in counts.items()
            for name, value in (("parts", parts), ("good_parts", good), ("oee", 0.9))
        ]
    )
    assert line_rolling_kpis(store, machines) == {}  # the packaging station has no counts yet
    packer = next(p for p in machines if p not in counts)
    store.write([Point(packer, "kpi.parts", NOW, 0.0), Point(packer, "kpi.good_parts", NOW, 0.0)])
    assert line_rolling_kpis(store, machines) == {
        "parts": 780.0,
        "good_parts": 751.0,
        "quality": pytest.approx(751 / 780),
    }


def test_the_clock_note_names_data_time_and_how_far_it_is_from_the_wall_clock(
    example_plant: Plant,
) -> None:
    wall = datetime(2026, 11, 23, 3, 53, 2, tzinfo=UTC)
    ahead = clock_note(example_plant, wall + timedelta(hours=3, minutes=51), wall)
    assert ahead == (
        "Times are data time (the machines' clock) in Europe/Minsk: data up to 11/23/2026 "
        "10:44:02, "
        "3 hr 51 min ahead of the wall clock (a fast simulation, a demo keeping to its shifts, or a replay). "
        "Refreshed 06:53:02 by the wall clock"
    )
    assert "behind the wall clock" in clock_note(example_plant, wall - timedelta(days=2), wall)
    assert "wall clock (" not in clock_note(
        example_plant, wall - timedelta(seconds=30), wall
    )  # live lag


def test_energy_per_machine_by_state_with_cost_and_co2(example_plant: Plant, store: Store) -> None:
    analysed_store(store)
    reports = read_shift_reports(example_plant, store, NOW - timedelta(days=1), NOW)
    machines = energy_by_machine(reports, price_per_kwh=0.2)
    assert list(machines) == ["Injection press 1", "Trimming centre"]
    press = machines["Injection press 1"]
    assert press.kwh == pytest.approx(220.0)
    assert press.by_state_kwh == pytest.approx(
        {"running": 176.0, "starved": 11.0, "unplanned_stop": 33.0}
    )
    assert press.kwh_per_good_part == pytest.approx(220.0 / 3120)
    assert press.cost == pytest.approx(44.0)
    assert press.co2_kg == pytest.approx(55.0)
    assert press.peak_kw == 25.0
    assert machines["Trimming centre"].kwh == pytest.approx(40.0)


def test_the_price_and_currency_are_the_sites(
    example_plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOOR_PRICE_PER_KWH", "0.32")
    assert Tariff.of(example_plant.site) == Tariff(0.35, "BYN")  # the plant file wins
    unpriced = example_plant.site.model_copy(update={"energy_price": None, "currency": "RSD"})
    assert Tariff.of(unpriced) == Tariff(0.32, "RSD")
    monkeypatch.delenv("SHOPFLOOR_PRICE_PER_KWH")
    assert Tariff.of(unpriced) == Tariff(0.15, "RSD")


def test_anomaly_events_carry_their_loss_and_acknowledging_records_the_response_time(
    example_plant: Plant, store: Store
) -> None:
    analysed_store(store)
    window = (NOW - timedelta(hours=4), NOW)
    events = read_events(example_plant, store, *window)
    assert [(e.event.type, e.event.name) for e in events] == [
        (EventType.ANOMALY, "anomaly_vibration"),
        (EventType.FAULT, "bearing_wear"),
    ]
    anomaly = events[0]
    assert (anomaly.machine, anomaly.signal, anomaly.acknowledged) == (
        "Trimming centre",
        "vibration",
        None,
    )
    assert anomaly.event.loss is not None and anomaly.event.loss.reason == "mechanical"
    assert anomaly.event.loss.lead_s == 2400
    done = acknowledge(store, anomaly, anomaly.event.start + timedelta(minutes=7))
    assert done.response_s == 420
    read_back = read_events(example_plant, store, *window)[0]
    assert read_back.acknowledged == anomaly.event.start + timedelta(minutes=7)
    assert read_back.response_s == 420
    assert read_back.event == anomaly.event  # the event itself is left as it was


def test_scored_signals_come_with_their_values(example_plant: Plant, store: Store) -> None:
    analysed_store(store)
    scored = read_scored_signals(example_plant, store, TRIMMER, NOW - timedelta(hours=4), NOW)
    assert [(s.signal, s.unit, len(s.values), len(s.scores)) for s in scored] == [
        ("vibration", "mm/s", 180, 180)
    ]
    assert scored[0].scores[-1].value == pytest.approx(179 / 20)


# --- the pages, rendered by Streamlit's test runner -----------------------------------------


def render(page: str, plant_file: str, store_url: str) -> None:
    """The body of a script for AppTest: one page function of the dashboard, on a store."""
    import importlib

    from shopfloor.plant import load_plant
    from shopfloor.store import StoreSettings, open_store

    module, function = page.split(":")
    page_function = getattr(importlib.import_module(module), function)
    page_function(load_plant(plant_file), open_store(StoreSettings(url=store_url)))


PAGES = [
    "dashboard.oee:oee_page",
    "dashboard.anomalies:anomalies_page",
    "dashboard.energy:energy_page",
]


def page_test(page: str, store_url: str) -> AppTest:
    app = AppTest.from_function(
        render, args=(page, str(EXAMPLE_PLANT), store_url), default_timeout=60
    )
    return app.run()


@pytest.fixture
def embedded_url(tmp_path: Path) -> str:
    return f"sqlite:{tmp_path / 'store.db'}"


@pytest.mark.parametrize("page", PAGES)
def test_each_page_renders_with_data_and_without(page: str, embedded_url: str) -> None:
    empty = page_test(page, embedded_url)
    assert not empty.exception
    assert "No " in " ".join(i.value for i in empty.info)
    store = open_store(StoreSettings(url=embedded_url))
    try:
        analysed_store(store)
    finally:
        store.close()
    app = page_test(page, embedded_url)
    if page.endswith("anomalies_page"):
        app.selectbox(key="machine").select("Trimming centre").run()
    assert not app.exception, app.exception
    assert not app.error and not app.info
    assert app.get("plotly_chart")


def test_the_oee_page_explains_implausible_figures(embedded_url: str) -> None:
    store = open_store(StoreSettings(url=embedded_url))
    try:
        store.write(
            [
                shift_report_point(PRESS, "early", EARLY, 100.0, 20.0, IDLE_BUT_COUNTING),
                Point(PRESS, "kpi.performance", NOW, 37.9),
                Point(PRESS, "kpi.parts", NOW, 1600.0),
                Point(PRESS, "kpi.good_parts", NOW, 1600.0),
                Point(PRESS, "state", NOW, "idle"),  # the newest reading: the data clock
            ]
        )
    finally:
        store.close()
    app = page_test("dashboard.oee:oee_page", embedded_url)
    assert not app.exception, app.exception
    line = " | ".join(c.value for c in app.caption)
    assert "Last hour" in [h.value for h in app.subheader]
    assert "A line's availability, performance and OEE are per shift" in line
    app.selectbox[1].select("Injection press 1").run()
    assert not app.exception, app.exception
    headline, problems = (w.value for w in app.warning)
    assert headline.startswith("Performance above 100%, which cannot be real")
    assert "- performance 320.000 is above 1" in problems
    assert "(Injection press 1, Mon, Nov 16 early)" in problems


def render_on_kept_store(page: str, plant_file: str, store_url: str) -> None:
    """`render` with the store opened once and kept across reruns, as the dashboard keeps it."""
    import importlib

    import streamlit as st

    from shopfloor.plant import load_plant
    from shopfloor.store import Store, StoreSettings, open_store  # noqa: F401 - the script needs it

    @st.cache_resource
    def kept(url: str) -> Store:
        return open_store(StoreSettings(url=url))

    module, function = page.split(":")
    page_function = getattr(importlib.import_module(module), function)
    page_function(load_plant(plant_file), kept(store_url))


@pytest.mark.parametrize("page", PAGES)
def test_a_database_going_down_is_one_error_on_each_page(page: str, tmp_path: Path) -> None:
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    try:
        app = AppTest.from_function(
            render_on_kept_store, args=(page, str(EXAMPLE_PLANT), server.url), default_timeout=60
        ).run()
        assert not app.exception and not app.error, app.exception
    finally:
        server.stop()
    app.run()
    assert not app.exception, app.exception
    [error] = app.error
    assert error.value.startswith("The store cannot be read: InfluxDB at http://127.0.0.1:")


def test_the_acknowledge_button_records_the_acknowledgement(
    example_plant: Plant, embedded_url: str
) -> None:
    store = open_store(StoreSettings(url=embedded_url))
    try:
        analysed_store(store)
        store.write([Point(TRIMMER, "vibration", NOW + timedelta(minutes=5), 2.0)])
        app = page_test("dashboard.anomalies:anomalies_page", embedded_url)
        app.selectbox(key="window").select(4).run()
        assert [b.label for b in app.button] == ["Acknowledge"]
        app.button[0].click().run()
        assert not app.exception, app.exception
        assert not app.button
        [anomaly, _] = read_events(example_plant, store, NOW - timedelta(hours=4), NOW)
        # Timed on the machine's newest reading, the clock the event's start is on.
        assert (
            anomaly.response_s == (NOW + timedelta(minutes=5) - anomaly.event.start).total_seconds()
        )
    finally:
        store.close()


@pytest.mark.browser
def test_the_pages_in_chromium(example_plant: Plant, embedded_url: str, tmp_path: Path) -> None:
    """Every page of the analysis, served as `pip install ".[dashboard]"` leaves it: no Numba."""
    store = open_store(StoreSettings(url=embedded_url))
    analysed_store(store)
    no_broker = f"mqtt://127.0.0.1:{free_port()}"  # these pages need none
    numba_free = without(tmp_path / "uninstalled", *NOT_IN_EXTRA["dashboard"])
    assessments = tmp_path / "readiness.db"
    with ReadinessStore(assessments) as saved:
        saved.save(run_assessment(load_answers(ROOT / "examples/readiness/moulding.yaml"), None))
    dashboard, port = start_dashboard(
        EXAMPLE_PLANT, embedded_url, no_broker, tmp_path / "dash.log",
        env={**numba_free, DATABASE_ENV: str(assessments)},
    )  # fmt: skip
    try:
        for page_path, heading in [
            ("", "Machines"),
            ("oee", "Where the planned time went"),
            ("energy", "kWh by machine state"),
            ("readiness", "Readiness index R"),
        ]:
            with open_page(
                f"http://127.0.0.1:{port}/{page_path}",
                artifact(f"dashboard-{page_path or 'shop-floor'}.png"),
            ) as page:
                page.get_by_text(heading, exact=True).wait_for(timeout=60_000)
                assert page.locator("[data-testid='stException']").count() == 0
        with open_page(
            f"http://127.0.0.1:{port}/anomalies", artifact("dashboard-anomalies.png")
        ) as page:
            choose(page, "Window", "last 4 h")
            choose(page, "Machine", "Trimming centre")
            page.get_by_role("button", name="Acknowledge").click()
            # The trimmer's newest point is its KPI 10 s before NOW: 2 h after the event began.
            page.get_by_text("119.8 min").wait_for(state="attached", timeout=30_000)
            assert page.locator("[data-testid='stException']").count() == 0
        [anomaly, _] = read_events(example_plant, store, NOW - timedelta(hours=4), NOW)
        assert anomaly.response_s == 7190
    finally:
        stop_all([dashboard])
        store.close()


def render_for_staff(plant_file: str, store_url: str) -> None:
    """The anomalies page as staff see it: with the control that declares a period normal."""
    from dashboard.anomalies import anomalies_page
    from shopfloor.plant import load_plant
    from shopfloor.store import StoreSettings, open_store

    anomalies_page(load_plant(plant_file), open_store(StoreSettings(url=store_url)), can_learn=True)


def render_in_the_urls_language(plant_file: str, store_url: str) -> None:
    """The anomalies page as staff see it, in the language the URL asks for."""
    from dashboard.anomalies import anomalies_page
    from dashboard.i18n import choose_language
    from shopfloor.plant import load_plant
    from shopfloor.store import StoreSettings, open_store

    plant = load_plant(plant_file)
    choose_language(plant)
    anomalies_page(plant, open_store(StoreSettings(url=store_url)), can_learn=True)


def test_a_period_that_could_not_be_learnt_says_why_in_the_readers_language(
    embedded_url: str,
) -> None:
    store = open_store(StoreSettings(url=embedded_url))
    try:
        analysed_store(store)
        failed = LearnRequest(
            start=NOW - timedelta(hours=2), end=NOW - timedelta(hours=1),
            error="Trimming centre from …: the normal period has 60 rows with every signal, "
            "100 are needed", cause="too_few_rows", cause_values={"rows": 60, "needed": 1000},
        )  # fmt: skip
        store.write([request_point(PRESS, NOW - timedelta(minutes=5), failed)])  # the first
        app = AppTest.from_function(
            render_in_the_urls_language, args=(str(EXAMPLE_PLANT), embedded_url),
            default_timeout=60,
        )  # fmt: skip
        app.query_params["lang"] = "ru"
        app.run()  # no widget changed: the test's own thread formats their labels in English
        assert not app.exception, app.exception
        russian = i18n.translations("ru").gettext(LEARN_FAILURES["too_few_rows"])
        assert russian != LEARN_FAILURES["too_few_rows"]
        reason = russian.format(rows="60", needed=i18n.number_text(1000, "ru", digits=0))
        assert [w.value for w in app.warning if reason in w.value], [w.value for w in app.warning]
    finally:
        store.close()


def test_staff_declare_a_period_normal_and_events_name_their_top_signals(
    embedded_url: str,
) -> None:
    """A machine with a learnt model says on which period; its event names the signals that
    drove it; "Learn again" asks the analytics service to learn the last hour."""
    learnt = NormalModelDoc(
        start=NOW - timedelta(hours=6), end=NOW - timedelta(hours=5), rows=3600,
        signals=["spindle_load", "vibration"], model={}, rest_rows=1200, rest_model={},
    )  # fmt: skip
    explained = Event(
        type=EventType.ANOMALY, name="anomaly_machine", start=NOW - timedelta(minutes=30),
        end=NOW - timedelta(minutes=25), note="machine: score 3.2 at 17:31:00Z",
        contributions={"vibration": 0.7, "spindle_load": 0.3},
    )  # fmt: skip
    store = open_store(StoreSettings(url=embedded_url))
    try:
        analysed_store(store)
        store.write([model_point(TRIMMER, NOW - timedelta(hours=4), learnt),
                     Point.from_event(TRIMMER, explained)])  # fmt: skip
        app = AppTest.from_function(
            render_for_staff, args=(str(EXAMPLE_PLANT), embedded_url), default_timeout=60
        ).run()
        app.selectbox(key="window").select(4).run()
        app.selectbox(key="machine").select("Trimming centre").run()
        assert not app.exception, app.exception
        table = app.dataframe[0].value
        shown = dict(zip(table["Signal"], table["Top signals"], strict=True))
        assert shown["All signals together"] == "Vibration (mm/s) 70 %, Spindle load (%) 30 %"
        assert shown["Vibration"] == ""  # a streaming detector's event: nothing explains it
        captions = " | ".join(c.value for c in app.caption)
        assert "Learnt from 11/16/2026 15:00:00 to 11/16/2026 16:00:00 on 3,600 samples" in captions
        assert "And on 1,200 samples taken while it stood" in captions
        shorter = [
            w.value for w in app.warning if w.value.startswith("Learnt on less than a shift")
        ]
        assert shorter == [shorter[0]] and "(8.0 h)" in shorter[0]  # an hour, of 8-hour shifts
        [learn] = [b for b in app.button if b.label == "Learn again"]
        learn.click().run()
        assert not app.exception, app.exception
        found = read_request(store, TRIMMER, NOW)
        assert found is not None and found[1].pending
        assert (found[1].start, found[1].end) == (NOW - timedelta(hours=1), NOW)
        [asked] = app.info
        assert asked.value.startswith("Learning from 11/16/2026 20:00:00 to 11/16/2026 21:00:00")
    finally:
        store.close()
