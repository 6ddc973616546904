"""The readiness indicator formulas, each on a small hand-built series."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from readiness.indicators import (
    AlarmEvent,
    Bucket,
    DashboardView,
    Interval,
    PartCount,
    StateRecord,
    anomaly_response,
    bucket,
    changeover_capture,
    connectivity,
    dashboard_use,
    energy_coverage,
    environment_coverage,
    machine_timeline,
    no_data_seconds,
    oee_visible,
    platform_state_code,
    reason_coverage,
    share,
    signal_completeness,
    standard_time_coverage,
    working_days,
)
from shopfloor.plant import Shift
from shopfloor.states import MachineState

RUN, NO_DATA, UNSPECIFIED, MICRO = 10000, 30000, 40000, 50000
MATERIAL, CHANGEOVER, SETUP, NO_SHIFT, FAILURE, PM = 60000, 100000, 130000, 160000, 180000, 210000
HOUR = 3600.0


def intervals(*spans: tuple[float, float, int]) -> list[Interval]:
    return [Interval(*span) for span in spans]


# --- state codes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (10000, Bucket.ACTIVE),
        (20000, Bucket.ACTIVE),
        (30000, Bucket.NO_DATA),
        (40010, Bucket.UNSPECIFIED_STOP),
        (50000, Bucket.MICROSTOP),
        (90000, Bucket.MATERIAL),
        (110000, Bucket.CHANGEOVER),
        (130000, Bucket.SETUP),
        (150000, Bucket.OPERATOR),
        (170000, Bucket.PLANNING),
        (200000, Bucket.TECHNICAL),
        (210000, Bucket.PREVENTIVE_MAINTENANCE),
        (220000, Bucket.TECHNICAL),
    ],
)
def test_state_code_buckets(code: int, expected: Bucket) -> None:
    assert bucket(code) is expected


@pytest.mark.parametrize("code", [0, 9999, 230000])
def test_unknown_state_codes_are_refused(code: int) -> None:
    with pytest.raises(ValueError, match=str(code)):
        bucket(code)


def test_platform_states_map_to_one_code_each() -> None:
    assert {state: platform_state_code(state) for state in MachineState} == {
        MachineState.RUNNING: RUN,
        MachineState.MICRO_STOP: MICRO,
        MachineState.IDLE: UNSPECIFIED,
        MachineState.STARVED: 60000,
        MachineState.BLOCKED: 70000,
        MachineState.SETUP: SETUP,
        MachineState.UNPLANNED_STOP: UNSPECIFIED,
        MachineState.PLANNED_STOP: NO_SHIFT,
        MachineState.OFF: UNSPECIFIED,
    }
    assert platform_state_code("unplanned_stop", "mould_jam") == FAILURE


# --- timeline and NO_DATA ------------------------------------------------------------------
def test_timeline_marks_a_silence_over_ten_minutes_as_no_data() -> None:
    records = [StateRecord(0, RUN), StateRecord(600, UNSPECIFIED), StateRecord(900, FAILURE)]
    records.append(StateRecord(1500, RUN))
    beats = [t for t in range(0, 3600, 60) if not 1980 < t < 2940]  # 16 min without data
    timeline = machine_timeline(records, 0, HOUR, [float(t) for t in beats])
    assert timeline == intervals(
        (0, 600, RUN),
        (600, 900, UNSPECIFIED),
        (900, 1500, FAILURE),
        (1500, 1980, RUN),
        (1980, 2940, NO_DATA),
        (2940, 3600, RUN),
    )
    assert no_data_seconds(timeline) == 960


def test_timeline_before_the_first_record_and_after_the_last_data_is_no_data() -> None:
    records = [StateRecord(300, RUN)]
    beats = [float(t) for t in range(300, 2001, 60)]  # silent from 1980 to the end
    timeline = machine_timeline(records, 0, HOUR, beats)
    assert timeline == intervals((0, 300, NO_DATA), (300, 1980, RUN), (1980, 3600, NO_DATA))


def test_timeline_takes_the_state_in_force_at_the_window_start() -> None:
    records = [StateRecord(-100, SETUP), StateRecord(500, RUN)]
    beats = [float(t) for t in range(-100, 3600, 300)]  # every 5 minutes: never silent
    timeline = machine_timeline(records, 0, HOUR, beats)
    assert timeline == intervals((0, 500, SETUP), (500, 3600, RUN))


def test_a_gap_of_exactly_ten_minutes_is_not_silence() -> None:
    timeline = machine_timeline([StateRecord(0, RUN)], 0, 1200, [600.0, 1200.0])
    assert no_data_seconds(timeline) == 0


# --- DC and CC -----------------------------------------------------------------------------
def test_data_completeness_and_connectivity_coverage() -> None:
    result = connectivity({"a": 0, "b": 1800, "c": 2000, "d": HOUR}, HOUR)
    assert result.connected == ("a", "b")  # b at exactly 0.5 is connected, c at 0.44 is not
    assert result.completeness["c"] == pytest.approx(1600 / 3600, abs=1e-12)
    assert result.data_completeness == pytest.approx((3600 + 1800) / (2 * 3600), abs=1e-12)
    assert result.coverage == 0.5


def test_no_connected_machine_is_zero_completeness_and_no_register_is_null() -> None:
    assert connectivity({"a": HOUR}, HOUR).data_completeness == 0.0
    assert connectivity({}, HOUR).coverage is None


# --- OV ------------------------------------------------------------------------------------
COUNTS = [PartCount(100, "m", "a", 80, 2), PartCount(200, "m", "b", 18, 0)]
CYCLE = {"a": 10.0}
PLANNED_STATE = intervals((0, 100, NO_SHIFT), (100, 200, RUN))


@pytest.mark.parametrize(
    ("connected", "counts", "cycle", "timeline", "calendar", "visible"),
    [
        (True, COUNTS, CYCLE, PLANNED_STATE, False, True),  # 82 of 100 parts with ideal CT
        (True, COUNTS, CYCLE, intervals((0, 200, RUN)), True, True),  # calendar gives planned
        (False, COUNTS, CYCLE, PLANNED_STATE, True, False),  # not connected
        (True, [], CYCLE, PLANNED_STATE, True, False),  # nothing counted
        (True, [PartCount(100, "m", "a", 80)], CYCLE, PLANNED_STATE, True, False),  # no rejects
        (True, COUNTS, {"a": 10.0, "b": 0.0}, PLANNED_STATE, True, True),
        (True, [*COUNTS, PartCount(300, "m", "b", 3)], CYCLE, PLANNED_STATE, True, False),  # 79 %
        (True, COUNTS, CYCLE, intervals((0, 200, RUN)), False, False),  # planned time unknown
    ],
)
def test_oee_visibility_of_a_machine(
    connected: bool,
    counts: list[PartCount],
    cycle: dict[str, float],
    timeline: list[Interval],
    calendar: bool,
    visible: bool,
) -> None:
    assert oee_visible(connected, counts, cycle, timeline, calendar) is visible


def test_oee_visibility_share() -> None:
    assert share([True, False, True, True]) == 0.75
    assert share([]) is None


# --- DU ------------------------------------------------------------------------------------
BELGRADE = ZoneInfo("Europe/Belgrade")
NOVEMBER = datetime(2026, 11, 2, tzinfo=BELGRADE), datetime(2026, 11, 30, tzinfo=BELGRADE)


def test_working_days_from_the_shift_calendar() -> None:
    weekdays = working_days(*NOVEMBER, BELGRADE)
    assert len(weekdays) == 20 and weekdays[0] == date(2026, 11, 2)
    six_days = Shift(
        name="early", start=time(6), end=time(14), days=["mon", "tue", "wed", "thu", "fri", "sat"]
    )
    assert len(working_days(*NOVEMBER, BELGRADE, [six_days])) == 24
    mid_day = NOVEMBER[0] + timedelta(hours=12)
    assert working_days(mid_day, NOVEMBER[1], BELGRADE)[0] == date(2026, 11, 3)


def test_dashboard_use_counts_working_days_with_an_sme_view_of_the_shop_floor() -> None:
    days = working_days(*NOVEMBER, BELGRADE)
    views = [
        DashboardView(
            datetime.combine(d, datetime.min.time(), BELGRADE) + timedelta(hours=9),
            "ana",
            "shop_floor",
        )
        for d in days[:14]
    ]
    views += [DashboardView(views[0].time, "ana", "shop_floor")]  # twice on one day: one day
    views += [
        DashboardView(datetime(2026, 11, 30, 10, tzinfo=BELGRADE), "ana", "shop_floor")
    ]  # outside
    views += [
        DashboardView(datetime(2026, 11, 7, 10, tzinfo=BELGRADE), "ana", "shop_floor")
    ]  # Saturday
    views += [DashboardView(datetime(2026, 11, 27, 10, tzinfo=BELGRADE), "centre", "shop_floor")]
    views += [DashboardView(datetime(2026, 11, 26, 10, tzinfo=BELGRADE), "ana", "controls")]
    assert dashboard_use(views, days, BELGRADE, sme_users={"ana"}) == pytest.approx(
        14 / 20, abs=1e-12
    )
    assert dashboard_use(views, days, BELGRADE) == pytest.approx(15 / 20, abs=1e-12)
    assert dashboard_use(views, [], BELGRADE) is None


def test_a_view_counts_on_its_local_day() -> None:
    late = DashboardView(datetime(2026, 11, 2, 23, 30, tzinfo=UTC), "ana", "shop_floor")
    assert dashboard_use([late], [date(2026, 11, 3)], BELGRADE) == 1.0  # 00:30 in Belgrade


# --- RC ------------------------------------------------------------------------------------
STOPS = intervals(
    (0, 60, UNSPECIFIED),  # 1 min: too short to count
    (60, 100, RUN),
    (100, 400, UNSPECIFIED),  # one stop of 10 min: 5 unspecified, then a reason entered
    (400, 700, FAILURE),
    (700, 1000, RUN),
    (1000, 1100, MATERIAL),  # 100 s: too short
    (1100, 1200, RUN),
    (1200, 1500, NO_SHIFT),  # planned: not an unplanned stop
    (1500, 1800, PM),  # preventive maintenance: excluded
    (1800, 2000, RUN),
    (2000, 2300, MICRO),  # micro-stops: excluded
    (2300, 2400, RUN),
    (2400, 2700, SETUP),  # reason-coded, 5 min
    (2700, 3600, RUN),
)


def test_reason_coverage_over_stops_of_two_minutes_or_more() -> None:
    assert reason_coverage([STOPS]) == pytest.approx(600 / 900, abs=1e-12)


def test_reason_coverage_sums_machines_and_keeps_planned_time_only() -> None:
    other = intervals((0, 3000, UNSPECIFIED))
    assert reason_coverage([STOPS, other]) == pytest.approx(600 / 3900, abs=1e-12)
    assert reason_coverage([STOPS], planned=[(0, 500)]) == pytest.approx(100 / 400, abs=1e-12)


def test_reason_coverage_without_stops_is_null() -> None:
    assert reason_coverage([intervals((0, 3600, RUN))]) is None


# --- ART -----------------------------------------------------------------------------------
EVENTS = [
    AlarmEvent(0, acknowledged=300),  # 5 min
    AlarmEvent(100, acknowledged=2000, reason_entered=1300),  # the first response: 20 min
    AlarmEvent(200, repair_started=2000),  # 30 min
    AlarmEvent(300),  # never answered: until the window's end, 55 min
    AlarmEvent(400, acknowledged=1000, reason_entered=50),  # a reason before the raise is ignored
    AlarmEvent(4000, acknowledged=4060),  # outside the window
]


def test_anomaly_response_time_is_the_median_to_the_first_response() -> None:
    result = anomaly_response(EVENTS, 0, HOUR, machines_connected=True)
    assert result is not None
    assert (result.median_min, result.events) == (20.0, 5)
    assert result.within_15_min == pytest.approx(2 / 5, abs=1e-12)
    assert result.logging


def test_anomaly_response_time_needs_five_events() -> None:
    result = anomaly_response(EVENTS[:4], 0, HOUR, machines_connected=True)
    assert result is not None
    assert (result.median_min, result.events) == (None, 4)


def test_no_alarm_logging_while_connected_scores_zero_and_otherwise_is_null() -> None:
    result = anomaly_response([], 0, HOUR, machines_connected=True)
    assert result is not None and not result.logging
    assert anomaly_response([], 0, HOUR, machines_connected=False) is None


# --- EC and EV -----------------------------------------------------------------------------
def test_energy_coverage() -> None:
    assert energy_coverage([10, 20], main_kwh=60) == 0.5
    assert energy_coverage([10, 20], main_kwh=20) == 1.0  # at most 1
    rated = {"press": 30.0, "dryer": 10.0}
    assert energy_coverage([10], main_kwh=None, rated_kw=rated, metered={"press"}) == 0.75
    assert energy_coverage([10], main_kwh=0, rated_kw=rated, metered={"dryer"}) == 0.25
    assert energy_coverage([10]) is None


def test_environment_coverage_and_sensor_completeness() -> None:
    readings = [float(t) for t in range(0, 3600, 60) if not 600 < t < 1800]  # 20 min silent
    assert signal_completeness(readings, 0, HOUR) == pytest.approx(2400 / 3600, abs=1e-12)
    zones = {"dryer": 0.95, "store": 0.89}
    assert environment_coverage(zones, ["dryer", "store", "metrology"]) == pytest.approx(1 / 3)
    assert environment_coverage(zones, ["dryer"]) == 1.0
    assert environment_coverage(zones, []) is None


# --- STD and CO ----------------------------------------------------------------------------
def test_standard_time_coverage_counts_good_and_rejected_parts() -> None:
    counts = [PartCount(1, "m", "a", 80, 20), PartCount(2, "n", "b", 50)]
    assert standard_time_coverage(counts, {"a": 12.0}) == pytest.approx(100 / 150, abs=1e-12)
    assert standard_time_coverage([], {"a": 12.0}) is None


def _runs(products: str, step: float = 1000) -> list[PartCount]:
    return [PartCount(i * step, "m", p, 10) for i, p in enumerate(products, 1)]


def test_changeover_capture() -> None:
    counts = _runs("aabbaabba")  # product changes between 2-3, 4-5, 6-7, 8-9 (at 1000 s steps)
    counts += [PartCount(9500, "m", "c", 0)]  # no parts: not a run
    counts += [PartCount(10000, "m", "c", 5)]  # fifth change, 9000 -> 10000
    timeline = intervals(
        (2100, 2200, SETUP),  # 100 s: captured
        (4100, 4130, CHANGEOVER),  # 30 s: not
        (6100, 6130, CHANGEOVER),  # 30 + 40 s: captured
        (6500, 6540, SETUP),
        (7900, 8100, SETUP),  # 100 s inside (8000, 9000): captured
        (9000, 9500, RUN),  # running only
    )
    assert changeover_capture(counts, {"m": timeline}) == pytest.approx(3 / 5, abs=1e-12)


def test_changeover_capture_needs_five_changes() -> None:
    assert changeover_capture(_runs("abab"), {}) is None
    assert changeover_capture(_runs("ababab"), {}) == 0.0
