"""What the gateway accepts: a message checked against the contract and the plant.

Every message ends as points to store or as a refusal with its reason, whatever its topic and
bytes: nothing a publisher sends can raise out of here and stop ingest.

"Too far in the future" is judged against the site's session clock when a simulator or a replay
announces one on the site's status topic (a session at x60 runs an hour ahead every minute),
otherwise against this machine's clock. An announcement is trusted only within bounds, so a
forged one cannot open the store to readings years ahead: its speed counts up to
MAX_SESSION_SPEED, and the session clock never leads the wall clock by more than
MAX_SESSION_LEAD.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shopfloor.messages import (
    AssetPath,
    MessageError,
    MessageKind,
    Problem,
    TopicError,
    decode_events,
    decode_readings,
    decode_status,
    excerpt,
    iso_utc,
    parse_topic,
)
from shopfloor.plant import Plant, Signal
from shopfloor.store import Point

log = logging.getLogger(__name__)

Route = tuple[AssetPath, MessageKind, dict[str, Signal]]

MAX_SESSION_SPEED = 1000.0  # the fastest speed the demo controls offer
MAX_SESSION_LEAD = timedelta(days=90)  # two hours at x1000, a month of sessions at x60


@dataclass(frozen=True, slots=True)
class SessionClock:
    """A session's simulated clock: it read `sim` at wall time `wall` and runs `speed` times as
    fast as the wall clock (0 once the session has ended: it stays where it stopped)."""

    sim: datetime
    wall: datetime
    speed: float

    def at(self, wall: datetime) -> datetime:
        """The session's time at wall time `wall`, never more than MAX_SESSION_LEAD ahead of it
        (nor behind it: a session behind the wall clock never narrows what is accepted)."""
        try:
            return max(
                wall, min(self.sim + (wall - self.wall) * self.speed, wall + MAX_SESSION_LEAD)
            )
        except OverflowError:  # announced times at the ends of the calendar: trusted for nothing
            return wall


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message was not stored: a class to count and a reason naming the field."""

    problem: Problem
    reason: str


class Acceptance:
    """Checks messages against one plant; `max_future_s` bounds how far ahead of the session's
    clock (this machine's while no session announces one) a reading's timestamp may be."""

    def __init__(self, plant: Plant, max_future_s: float):
        # Every topic the plant allows, so that a message is routed with one lookup.
        self.routes: dict[str, Route] = {
            path.topic(kind): (path, kind, signals)
            for path, signals in plant.catalogue().items()
            for kind in MessageKind
        }
        self.max_future_s = max_future_s
        self.session: SessionClock | None = None

    def follow(self, payload: bytes | bytearray, received: datetime) -> None:
        """Take the session clock from a status message received at `received`; an empty one
        (the session ended) stops the clock where it stands. A status that breaks the contract
        changes nothing."""
        if not payload:
            if self.session is not None:
                self.session = SessionClock(self.session.at(received), received, 0.0)
            return
        try:
            status = decode_status(payload)
        except MessageError as exc:
            log.warning("ignoring a status message that breaks the contract: %s", exc)
            return
        # An announcement cannot be dated after its arrival, nor run faster than the bound.
        wall = min(status.announced or status.started, received)
        speed = min(status.speed, MAX_SESSION_SPEED)
        self.session = SessionClock(status.clock or status.started, wall, speed)

    def __call__(self, topic: str, payload: bytes | bytearray) -> list[Point] | Refusal:
        """The points a message carries, or why it is refused."""
        try:
            return self._points(topic, payload)
        except MessageError as exc:
            return Refusal(exc.problem, str(exc))
        except TopicError as exc:
            return Refusal(Problem.BAD_TOPIC, str(exc))
        except Exception as exc:  # a defect here must cost one message, never the ingest
            log.exception("unexpected error on a message on %s", excerpt(topic))
            return Refusal(Problem.UNEXPECTED, f"{type(exc).__name__}: {excerpt(str(exc))}")

    def _points(self, topic: str, payload: bytes | bytearray) -> list[Point]:
        route = self.routes.get(topic)
        if route is None:
            path, _ = parse_topic(topic)
            raise MessageError(
                f"no asset {excerpt(str(path))} in the plant model", Problem.UNKNOWN_ASSET
            )
        path, kind, signals = route
        if kind is MessageKind.EVENT:
            return [Point.from_event(path, event) for event in decode_events(payload)]
        horizon, points = self._horizon(), []
        for reading in decode_readings(payload):
            signal = signals.get(reading.signal)
            if signal is None:
                raise MessageError(
                    f"asset {path} has no signal {reading.signal!r}", Problem.UNKNOWN_SIGNAL
                )
            try:
                signal.check(reading.value)
            except ValueError as exc:
                raise MessageError(f"asset {path}: {exc}", Problem.WRONG_KIND) from None
            if reading.ts > horizon:
                raise MessageError(
                    f"{reading.signal}: ts {reading.ts.isoformat()} is more than "
                    f"{self.max_future_s:g} s ahead of {self._clock_name()}",
                    Problem.FUTURE_TIMESTAMP,
                )
            points.append(Point.from_reading(path, reading))
        return points

    def _horizon(self) -> datetime:
        """The latest timestamp accepted now: `max_future_s` ahead of this machine's clock, or
        of the session's, on which those seconds of skew are `speed` times as long; the end of
        the calendar for a bound that passes it."""
        try:
            later = datetime.now(UTC) + timedelta(seconds=self.max_future_s)
        except OverflowError:
            return datetime.max.replace(tzinfo=UTC)
        return later if self.session is None else self.session.at(later)

    def _clock_name(self) -> str:
        if self.session is None:
            return "the gateway's clock"
        now = self.session.at(datetime.now(UTC))
        return f"the session's clock (x{self.session.speed:g}, {iso_utc(now)})"
