"""What the gateway accepts: a message checked against the contract and the plant.

Every message ends as points to store or as a refusal with its reason, whatever its topic and
bytes: nothing a publisher sends can raise out of here and stop ingest.
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
    excerpt,
    parse_topic,
)
from shopfloor.plant import Plant, Signal
from shopfloor.store import Point

log = logging.getLogger(__name__)

Route = tuple[AssetPath, MessageKind, dict[str, Signal]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message was not stored: a class to count and a reason naming the field."""

    problem: Problem
    reason: str


class Acceptance:
    """Checks messages against one plant; `max_future_s` bounds how far ahead of this
    machine's clock a reading's timestamp may be."""

    def __init__(self, plant: Plant, max_future_s: float):
        # Every topic the plant allows, so that a message is routed with one lookup.
        self.routes: dict[str, Route] = {
            path.topic(kind): (path, kind, signals)
            for path, signals in plant.catalogue().items()
            for kind in MessageKind
        }
        self.max_future_s = max_future_s

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
        readings = decode_readings(payload)
        horizon = _horizon(self.max_future_s)
        for reading in readings:
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
                    f"{self.max_future_s:g} s ahead of the gateway's clock",
                    Problem.FUTURE_TIMESTAMP,
                )
        return [Point.from_reading(path, reading) for reading in readings]


def _horizon(max_future_s: float) -> datetime:
    """The latest timestamp accepted now; the end of the calendar for a bound that passes it."""
    try:
        return datetime.now(UTC) + timedelta(seconds=max_future_s)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)
