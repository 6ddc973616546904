"""Normal periods: what staff declared normal on a machine, and the model learnt from it.

Both are text points (JSON) on the machine's asset in the store, the shared contract, so that
the dashboard (which has no Numba to learn with), the command line and every analytics service
agree on them, and a restart keeps them:

- `model.request` (`LearnRequest`): "learn normal from `start` to `end`", written by the
  dashboard and stamped with the data clock; the analytics service learns on its next cycle
  and writes the outcome back onto the same point (`learnt`, or the `error` that stopped it);
- `model.normal` (`NormalModelDoc`): the model in force, stamped with the data clock when it
  was learnt, so the newest is the one in force and re-learning replaces it.

A machine without a model is watched by the streaming detectors, which learn on the fly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shopfloor.messages import AssetPath
from shopfloor.plant import Plant
from shopfloor.store import Point, Store

__all__ = [
    "LEARN_REQUEST",
    "MODEL_PREFIX",
    "NORMAL_MODEL",
    "LearnCause",
    "LearnRequest",
    "NormalModelDoc",
    "latest_doc",
    "model_point",
    "read_model",
    "read_request",
    "request_point",
]

MODEL_PREFIX = "model."
LEARN_REQUEST = f"{MODEL_PREFIX}request"
NORMAL_MODEL = f"{MODEL_PREFIX}normal"

_JUST_AFTER = timedelta(seconds=1)  # a point stamped at `now` is in force at `now`


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Why a period could not be learnt from, for a page to say in the reader's language; the
# values its text names go with it (`LearnRequest.cause_values`).
LearnCause = Literal[
    "ends_before_start",  # no values
    "no_readings",  # no values
    "not_running",  # no values
    "too_few_rows",  # rows, needed
    "constant_signal",  # signal
    "too_flat",  # no values
]


class LearnRequest(_Doc):
    """A period declared normal, waiting to be learnt until `learnt` or `error` says how it
    went (the error in one line, as the command line prints it, and its `cause` with the
    values it names; no cause for an error of an older service)."""

    start: AwareDatetime
    end: AwareDatetime
    learnt: bool = False
    error: str = Field(default="", max_length=500)
    cause: LearnCause | None = None
    cause_values: dict[str, str | int] = Field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return not self.learnt and not self.error


class NormalModelDoc(_Doc):
    """A machine's model learnt on a normal period: the period (its first and last running
    sample), how many running rows it saw, its signals, and the model itself as the
    analytics' JSON (`analytics.anomaly.NormalModel.to_json`); and, when the period held
    enough rest to learn from, the model of the machine at rest, its rows and the states of
    rest they were in, the only ones it scores (none in a document written before machines
    were watched at rest)."""

    start: AwareDatetime
    end: AwareDatetime
    rows: int = Field(ge=1)
    signals: list[str] = Field(min_length=1)
    model: dict[str, Any]
    rest_rows: int = Field(default=0, ge=0)
    rest_model: dict[str, Any] | None = None
    rest_states: list[str] = Field(default_factory=list)

    def shift_not_covered(self, plant: Plant) -> timedelta | None:
        """The plant's shortest shift when the period is shorter than it, else None: a swing
        of the process slower than the period may go beyond what it held and raise alarms."""
        shortest = plant.shortest_shift
        return shortest if shortest is not None and self.end - self.start < shortest else None


D = TypeVar("D", bound=_Doc)


def latest_doc(
    store: Store, path: AssetPath, signal: str, doc: type[D], now: datetime
) -> tuple[datetime, D] | None:
    """The newest `signal` point at `now` read as `doc`, with its stamp; None when there is
    none or it cannot be read (written by something else), as if there were none."""
    point = store.before(path, signal, now + _JUST_AFTER)
    if point is None:
        return None
    try:
        return point.ts, doc.model_validate_json(str(point.value))
    except ValidationError:
        return None


def read_model(store: Store, path: AssetPath, now: datetime) -> NormalModelDoc | None:
    """The model in force on the machine at `now`, if any."""
    found = latest_doc(store, path, NORMAL_MODEL, NormalModelDoc, now)
    return found[1] if found else None


def read_request(
    store: Store, path: AssetPath, now: datetime
) -> tuple[datetime, LearnRequest] | None:
    """The newest learning request of the machine at `now`, with its stamp."""
    return latest_doc(store, path, LEARN_REQUEST, LearnRequest, now)


def request_point(path: AssetPath, at: datetime, request: LearnRequest) -> Point:
    return Point(path, LEARN_REQUEST, at, request.model_dump_json())


def model_point(path: AssetPath, at: datetime, doc: NormalModelDoc) -> Point:
    return Point(path, NORMAL_MODEL, at, doc.model_dump_json())
