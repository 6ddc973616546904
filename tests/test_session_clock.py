"""The gateway judges "too far in the future" against a site's announced session clock, within
bounds that a forged announcement cannot pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.acceptance import MAX_SESSION_LEAD, Acceptance, Refusal
from shopfloor.messages import AssetPath, Problem, Reading, SimulatorStatus, encode_readings
from shopfloor.plant import Plant

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")


def ahead(accept: Acceptance, by: timedelta) -> bool:
    """Whether a reading stamped `by` ahead of the wall clock is accepted."""
    ts = datetime.now(UTC) + by
    result = accept(PRESS.topic(), encode_readings([Reading(signal="power", value=1.0, ts=ts)]))
    if isinstance(result, Refusal):
        assert result.problem is Problem.FUTURE_TIMESTAMP, result.reason
        return False
    return True


def status(
    speed: float,
    started: datetime,
    clock: datetime | None = None,
    announced: datetime | None = None,
) -> bytes:
    announcement = SimulatorStatus(
        scenario="replay", available=[], speed=speed, started=started, clock=clock,
        announced=announced,
    )  # fmt: skip
    return announcement.model_dump_json().encode()


def test_without_an_announcement_the_wall_clock_bounds_the_future(example_plant: Plant) -> None:
    accept = Acceptance(example_plant, max_future_s=300)
    assert ahead(accept, timedelta(seconds=200))
    assert not ahead(accept, timedelta(seconds=400))


def test_a_session_at_x60_runs_ahead_and_its_end_stops_its_clock(example_plant: Plant) -> None:
    accept = Acceptance(example_plant, max_future_s=300)
    now = datetime.now(UTC)
    accept.follow(status(60, now - timedelta(minutes=10)), now)  # 10 h in, 9 h 50 min ahead
    assert ahead(accept, timedelta(hours=9, minutes=45))
    assert ahead(accept, timedelta(hours=14))  # 300 s of skew are 5 h at x60
    assert not ahead(accept, timedelta(hours=16))
    accept.follow(b"", now + timedelta(minutes=1))  # the replay is over, 10 h 50 min ahead
    assert ahead(accept, timedelta(hours=10, minutes=45))
    assert not ahead(accept, timedelta(hours=10, minutes=55))


def test_an_announced_clock_and_time_of_announcement_are_followed(example_plant: Plant) -> None:
    """After x60 and then x1 the clock is where the session got to, not started + x1."""
    accept = Acceptance(example_plant, max_future_s=300)
    now = datetime.now(UTC)
    accept.follow(status(1, now - timedelta(hours=1), clock=now + timedelta(hours=6),
                         announced=now - timedelta(minutes=1)), now)  # fmt: skip
    assert ahead(accept, timedelta(hours=6, minutes=2))
    assert not ahead(accept, timedelta(hours=6, minutes=10))


def test_a_forged_announcement_cannot_open_the_store_to_years_ahead(example_plant: Plant) -> None:
    accept = Acceptance(example_plant, max_future_s=300)
    now = datetime.now(UTC)
    accept.follow(status(1e9, now - timedelta(days=365)), now)
    assert ahead(accept, MAX_SESSION_LEAD - timedelta(days=1))
    assert not ahead(accept, MAX_SESSION_LEAD + timedelta(days=1))
    assert not ahead(accept, timedelta(days=2 * 365))
    accept.follow(status(10, datetime(9999, 12, 31, tzinfo=UTC)), now)  # the calendar's end
    assert not ahead(accept, MAX_SESSION_LEAD + timedelta(days=1))
    accept.follow(b'{"v": 1, "speed": "fast"}', now)  # breaks the contract: changes nothing
    assert not ahead(accept, MAX_SESSION_LEAD + timedelta(days=1))
