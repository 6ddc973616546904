"""The message contract: topic namespace, versioned payload schema and the one codec.

Topics follow an ISA-95 style unified namespace::

    <tenant>/<site>/<area>/<cell>/<asset>/<kind>

where `cell` is a production line (for machines) or a zone (for environmental sensors) and
`kind` says what the payload is: `data`, a batch of readings; `event`, labelled events such as
injected faults with their ground truth. Payloads are JSON::

    {"v": 1, "readings": [{"signal": "spindle_load", "value": 42.5,
      "ts": "2026-11-22T08:00:00.250Z", "quality": "good", "unit": "%"}]}
    {"v": 1, "events": [{"type": "fault", "name": "bearing_wear",
      "start": "2026-11-22T08:00:00Z", "end": null, "note": ""}]}

Demo controls (inject a fault, break a machine down, set the simulation speed, reset the shift)
travel outside the
asset namespace, on `<tenant>/<site>/_control`, so no data subscriber ever sees them. Edge
devices report their health there too, retained: `<tenant>/<site>/_edge/<device>/state` holds
the birth message (`online: true`) or the broker's last-will death message (`online: false`),
and `<tenant>/<site>/_edge/<device>/status` the latest periodic figures.

Every component encodes and decodes through the functions here, so a message has exactly one
definition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, NamedTuple, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PositiveFloat,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

SCHEMA_VERSION: Literal[1] = 1
MAX_PAYLOAD_BYTES = 256 * 1024
EXCERPT_CHARS = 200  # of a topic or a payload, in a reason or a log line


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` cut to `limit` characters, saying how long it was: a hostile topic or payload of
    tens of kilobytes must never be logged or echoed whole."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class MessageKind(StrEnum):
    DATA = "data"
    EVENT = "event"


class Quality(StrEnum):
    """OPC UA's three quality classes, kept coarse on purpose."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class AssetPath(NamedTuple):
    """Where an asset sits in the namespace: the first five topic levels."""

    tenant: str
    site: str
    area: str
    cell: str
    asset: str

    def topic(self, kind: MessageKind = MessageKind.DATA) -> str:
        return "/".join((*self, kind.value))

    def __str__(self) -> str:
        return "/".join(self)


class TopicError(ValueError):
    """A topic outside the namespace."""


def parse_topic(topic: str) -> tuple[AssetPath, MessageKind]:
    """Split `<tenant>/<site>/<area>/<cell>/<asset>/<kind>` into its asset path and kind."""
    levels = topic.split("/")
    if len(levels) != 6 or not all(levels):
        raise TopicError(
            f"topic {excerpt(topic)!r} is not <tenant>/<site>/<area>/<cell>/<asset>/<kind>"
        )
    try:
        kind = MessageKind(levels[5])
    except ValueError:
        raise TopicError(
            f"topic {excerpt(topic)!r} has unknown kind {excerpt(levels[5])!r}"
        ) from None
    return AssetPath(*levels[:5]), kind


def subscription(tenant: str = "+", kind: MessageKind = MessageKind.DATA, site: str = "+") -> str:
    """The MQTT filter matching `kind` messages of one tenant (or all, '+'), one site or all."""
    return f"{tenant}/{site}/+/+/+/{kind.value}"


NOT_A_NUMBER = "a timestamp is ISO 8601 text with a zone, not a number"


def _not_a_number(ts: object) -> object:
    """Epoch numbers are ambiguous (seconds? milliseconds? which zone?): refused, not guessed."""
    if isinstance(ts, int | float):
        raise ValueError(NOT_A_NUMBER)
    return ts


def _to_utc(ts: datetime) -> datetime:
    """The same instant in UTC; one that UTC cannot hold (year 1 or 9999 with an offset that
    moves it out of the calendar) is refused with the reason."""
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{ts.isoformat()} is outside the date range once put in UTC") from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_to_utc)]


class _WireTimestamp:
    """A reading's timestamp, a Timestamp whose number check pydantic-core makes alone in JSON
    (strict: text only), since a message carries hundreds and that Python call a reading cost
    a fifth of decoding. Putting it in UTC stays in Python: pydantic-core's own UTC zone is
    another object than datetime's, which makes every later comparison and subtraction cost
    more than the call saves."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[datetime], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_after_validator_function(
                _to_utc, core_schema.datetime_schema(strict=True, tz_constraint="aware")
            ),
            python_schema=handler.generate_schema(Timestamp),
        )


ReadingTimestamp = Annotated[datetime, _WireTimestamp]


def _fits_a_float(value: object) -> object:
    """An integer of hundreds of digits is valid JSON but no store can keep it as a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            digits = int(value.bit_length() * math.log10(2)) + 1
            raise ValueError(f"a number of about {digits} digits is too large") from None
    return value


Value = Annotated[float | int | bool | str, AfterValidator(_fits_a_float)]


class Reading(BaseModel):
    """One sample of one signal."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    signal: str = Field(min_length=1, max_length=64)
    value: Value
    ts: ReadingTimestamp
    quality: Quality = Quality.GOOD
    unit: str = Field(default="", max_length=64)


class DataMessage(BaseModel):
    """Payload of a `data` topic: a batch of readings from one asset. The version is required:
    a payload without it may be of any schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    readings: list[Reading] = Field(min_length=1)


class Problem(StrEnum):
    """Why a message was refused, in classes a dashboard can count."""

    BAD_TOPIC = "bad_topic"
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    BAD_FIELD = "bad_field"  # wrong type, missing, NaN, naive timestamp, unknown version...
    UNKNOWN_ASSET = "unknown_asset"
    UNKNOWN_SIGNAL = "unknown_signal"
    WRONG_KIND = "wrong_kind"  # text on a number signal, a number on a state...
    FUTURE_TIMESTAMP = "future_timestamp"
    REJECTED_BY_STORE = "rejected_by_store"  # accepted, but the store refused the point
    UNEXPECTED = "unexpected"  # an error nothing foresaw: the reason names it


class MessageError(ValueError):
    """A payload that breaks the contract; the text says which field and why."""

    def __init__(self, message: str, problem: Problem = Problem.BAD_FIELD):
        super().__init__(message)
        self.problem = problem


def iso_utc(ts: datetime) -> str:
    """`2026-11-02T08:00:00.250000Z`: the one timestamp format of payloads and recordings."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_readings(readings: Sequence[Reading]) -> bytes:
    """Encode a batch of readings as one `data` payload."""
    body = {
        "v": SCHEMA_VERSION,
        "readings": [
            {
                "signal": r.signal,
                "value": r.value,
                "ts": iso_utc(r.ts),
                "quality": r.quality.value,
                "unit": r.unit,
            }
            for r in readings
        ],
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


_Payload = TypeVar("_Payload", bound=BaseModel)


def _decode(model: type[_Payload], payload: bytes | bytearray) -> _Payload:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(
            f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", Problem.OVERSIZED
        )
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        problem = Problem.NOT_JSON if first["type"] == "json_invalid" else Problem.BAD_FIELD
        message = first["msg"]
        if first["type"] == "datetime_type" and isinstance(first["input"], int | float):
            message = f"Value error, {NOT_A_NUMBER}"  # the wording of _not_a_number
        raise MessageError(f"{where}: {excerpt(message)}", problem) from None
    except (ArithmeticError, RecursionError, ValueError) as exc:  # a limit the parser reached
        raise MessageError(f"payload: {excerpt(str(exc))}", Problem.BAD_FIELD) from None


def decode_readings(payload: bytes | bytearray) -> list[Reading]:
    """Decode a `data` payload; raises MessageError naming the offending field."""
    return _decode(DataMessage, payload).readings


class EventType(StrEnum):
    FAULT = "fault"  # injected by the simulator: ground truth
    ANOMALY = "anomaly"  # found by the analytics service in the signals


class FaultKind(StrEnum):
    """Faults with ground truth; docs/simulator.md says what each does to the signals."""

    BEARING_WEAR = "bearing_wear"
    OVERHEATING = "overheating"
    TOOL_WEAR = "tool_wear"
    SENSOR_STUCK = "sensor_stuck"
    SPIKE = "spike"
    DROPOUT = "dropout"
    AIR_LEAK = "air_leak"
    NETWORK_LOSS = "network_loss"
    DRIFT = "drift"  # one signal's reading drifts slowly away from the truth
    CORRELATION_BREAK = "correlation_break"  # one signal stops following the others
    SLOW_LEAK = "slow_leak"  # an air leak that grows from nothing


# Faults that corrupt one signal's readings and leave the machine alone.
SIGNAL_FAULTS = frozenset(
    {
        FaultKind.SENSOR_STUCK,
        FaultKind.SPIKE,
        FaultKind.DROPOUT,
        FaultKind.DRIFT,
        FaultKind.CORRELATION_BREAK,
    }
)
# Wear, heat and leaks change what a running machine does: they show only on a running one.
RUNNING_FAULTS = frozenset(
    {
        FaultKind.BEARING_WEAR,
        FaultKind.OVERHEATING,
        FaultKind.TOOL_WEAR,
        FaultKind.AIR_LEAK,
        FaultKind.SLOW_LEAK,
    }
)
# Leaks are air demand: only a compressor can have one.
COMPRESSOR_FAULTS = frozenset({FaultKind.AIR_LEAK, FaultKind.SLOW_LEAK})


class LossLink(BaseModel):
    """The OEE loss that followed an anomaly on the same machine: the stop that began
    `lead_s` seconds after the anomaly did, its reason and how long it lasted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str
    reason: str = ""
    start: Timestamp
    lead_s: float = Field(ge=0)
    duration_s: float = Field(ge=0)


MAX_CONTRIBUTIONS = 64  # signals of one event's explanation: a machine has a handful
SignalName = Annotated[str, Field(min_length=1, max_length=64)]
Share = Annotated[float, Field(ge=0, le=1)]


class Event(BaseModel):
    """A labelled interval of an asset's life: an injected fault (ground truth) or an anomaly.

    `end` is None while the event lasts; the same event sent again with its end overwrites the
    open one, since both have the same asset, name and start.

    `contributions` explains an anomaly: each signal's share of the score that raised it (its
    mean share over the event, largest first, summing to 1), so that a technician knows which
    signals to check. Empty where nothing explains it (a fault, a silence, an event stored
    before shares were kept).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType = EventType.FAULT
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=64)
    start: Timestamp
    end: Timestamp | None = None
    note: str = Field(default="", max_length=500)
    loss: LossLink | None = None
    contributions: dict[SignalName, Share] = Field(
        default_factory=dict, max_length=MAX_CONTRIBUTIONS
    )

    @model_validator(mode="after")
    def _ends_after_start(self) -> Event:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {iso_utc(self.end)} is before start {iso_utc(self.start)}")
        return self


class EventMessage(BaseModel):
    """Payload of an `event` topic; the version is required, as for readings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    events: list[Event] = Field(min_length=1)


def encode_events(events: Sequence[Event]) -> bytes:
    return EventMessage(v=SCHEMA_VERSION, events=list(events)).model_dump_json().encode()


def decode_events(payload: bytes | bytearray) -> list[Event]:
    """Decode an `event` payload; raises MessageError naming the offending field."""
    return _decode(EventMessage, payload).events


def control_topic(tenant: str, site: str) -> str:
    """Where demo controls for one site's simulator are published."""
    return f"{tenant}/{site}/_control"


def status_topic(tenant: str, site: str) -> str:
    """Where a site's simulator keeps its status (retained), for the dashboard's controls."""
    return f"{tenant}/{site}/_control/status"


class PendingFault(BaseModel):
    """A wear, heat or leak fault waiting for its machine to run again (docs/simulator.md,
    section 4): what waits, on which machine, and the stop it waits for."""

    model_config = ConfigDict(frozen=True)

    asset: str
    fault: FaultKind
    waits_for: str


class SimulatorStatus(BaseModel):
    """What a running simulator or replay announces: its scenario, the others it can load, the
    faults waiting to start and each machine's stop reasons (for "Breakdown now"), and its
    session's clock, which reads `clock` at wall time `announced` and runs `speed` times as fast
    as the wall clock. A status without them (an older simulator) says the clock started at
    `started` and has run at `speed` since.

    `other_plants` are scenarios beside its own that run another plant: a demo supervisor
    loads one of them in a new session (LoadScenario); a lone simulator cannot."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    scenario: str
    available: list[str]
    other_plants: list[str] = []
    speed: PositiveFloat
    started: AwareDatetime
    pending: list[PendingFault] = []
    stop_reasons: dict[str, list[str]] = {}
    clock: AwareDatetime | None = None
    announced: AwareDatetime | None = None


def decode_status(payload: bytes | bytearray) -> SimulatorStatus:
    return _decode(SimulatorStatus, payload)


class InjectFault(BaseModel):
    """Start a fault on an asset now, for `duration_s` seconds of simulated time."""

    command: Literal["inject_fault"] = "inject_fault"
    asset: str
    fault: FaultKind
    duration_s: PositiveFloat = 600.0


ReasonCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=64)]


class Breakdown(BaseModel):
    """Break a machine down now: an unplanned stop with `reason` for `duration_s` seconds of
    simulated time, whatever the machine was doing."""

    command: Literal["breakdown"] = "breakdown"
    asset: str
    reason: ReasonCode
    duration_s: PositiveFloat = 900.0


class SetSpeed(BaseModel):
    """Run the simulated clock at `speed` times real time."""

    command: Literal["set_speed"] = "set_speed"
    speed: PositiveFloat


class ResetShift(BaseModel):
    """Start the shift again: counters, energy meters and faults back to their start."""

    command: Literal["reset_shift"] = "reset_shift"


class LoadScenario(BaseModel):
    """Switch to another scenario of the same plant, by name, starting its shift now."""

    command: Literal["load_scenario"] = "load_scenario"
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")


Action = InjectFault | Breakdown | SetSpeed | ResetShift | LoadScenario
Command = Annotated[Action, Field(discriminator="command")]


class ControlMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    action: Command


def encode_command(action: Action) -> bytes:
    return ControlMessage(action=action).model_dump_json().encode()


def decode_command(payload: bytes | bytearray) -> Action:
    """Decode a control payload; raises MessageError naming the offending field."""
    return _decode(ControlMessage, payload).action


def dead_letter_topic(tenant: str, site: str) -> str:
    """Where the gateway puts the messages it refused, each with its reason."""
    return f"{tenant}/{site}/_deadletter"


class DeadLetter(BaseModel):
    """A refused message: where it came from, why, and its first bytes (for the fix)."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    topic: str
    problem: Problem
    reason: str
    received: AwareDatetime
    payload: str = Field(description="the first 1,000 bytes, undecodable ones replaced")
    size: int
    gateway: str


def encode_dead_letter(letter: DeadLetter) -> bytes:
    return letter.model_dump_json().encode()


def decode_dead_letter(payload: bytes | bytearray) -> DeadLetter:
    return _decode(DeadLetter, payload)


def edge_state_topic(tenant: str, site: str, device: str) -> str:
    """Birth and last-will death messages of one edge device (retained)."""
    return f"{tenant}/{site}/_edge/{device}/state"


def edge_status_topic(tenant: str, site: str, device: str) -> str:
    """The periodic health figures of one edge device (retained)."""
    return f"{tenant}/{site}/_edge/{device}/status"


def edge_subscription(tenant: str, site: str = "+") -> str:
    """Every edge device's state and status messages of a tenant."""
    return f"{tenant}/{site}/_edge/+/+"


class EdgeState(BaseModel):
    """Birth (online) or death (offline, sent by the broker as the last will) of an edge device."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    device: str
    online: bool
    started: AwareDatetime | None = None  # when the agent started; a last will has none
    version: str = ""


class EdgeStatus(BaseModel):
    """What an edge device reports every status interval, and serves on its /metrics page."""

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    device: str
    ts: AwareDatetime
    uptime_s: float
    readings_total: int = Field(description="readings accepted into the disk queue")
    readings_per_s: float = Field(description="over the last status interval")
    forwarded_total: int = Field(description="messages the broker acknowledged")
    queue_depth: int = Field(description="messages waiting on disk for the broker")
    queue_bytes: int
    dropped_total: int = Field(description="messages the queue's size or age bound dropped")
    lost_total: int = Field(description="readings lost because the queue could not be written")
    rejected_total: int = Field(description="sensor payloads and OPC UA values not readings")
    broker_connected: bool
    broker_reconnects: int
    sources_connected: int
    sources_total: int
    source_reconnects: int
    sources_lost: dict[str, AwareDatetime] = Field(
        default={}, description="OPC UA servers and Modbus devices not connected, and since when"
    )
    source_errors: dict[str, dict[str, int]] = Field(
        default={}, description="Modbus devices' timeouts and exception responses, by kind"
    )
    oldest_queued_s: float = Field(default=0.0, description="age of the oldest queued message")
    receiving: bool = Field(default=True, description="the MQTT network thread runs")
    causes: list[str] = Field(default=[], description="why the device is degraded; [] if ok")


def encode_edge(message: EdgeState | EdgeStatus) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def decode_edge_state(payload: bytes | bytearray) -> EdgeState:
    return _decode(EdgeState, payload)


def decode_edge_status(payload: bytes | bytearray) -> EdgeStatus:
    return _decode(EdgeStatus, payload)
