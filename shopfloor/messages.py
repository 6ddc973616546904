"""The message contract: topic namespace, versioned payload schema and the one codec.

Topics follow an ISA-95 style unified namespace::

    <tenant>/<site>/<area>/<cell>/<asset>/<kind>

where `cell` is a production line (for machines) or a zone (for environmental sensors) and
`kind` says what the payload is (`data`: a batch of readings). Payloads are JSON::

    {"v": 1, "readings": [{"signal": "spindle_load", "value": 42.5,
      "ts": "2026-11-22T08:00:00.250Z", "quality": "good", "unit": "%"}]}

Every component encodes and decodes through `encode_readings` / `decode_readings`, so a message
has exactly one definition.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION: Literal[1] = 1
MAX_PAYLOAD_BYTES = 256 * 1024


class MessageKind(StrEnum):
    DATA = "data"


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
        raise TopicError(f"topic {topic!r} is not <tenant>/<site>/<area>/<cell>/<asset>/<kind>")
    try:
        kind = MessageKind(levels[5])
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown kind {levels[5]!r}") from None
    return AssetPath(*levels[:5]), kind


def subscription(tenant: str = "+", kind: MessageKind = MessageKind.DATA) -> str:
    """The MQTT filter matching `kind` messages of one tenant (or of all with '+')."""
    return f"{tenant}/+/+/+/+/{kind.value}"


Value = float | int | bool | str


class Reading(BaseModel):
    """One sample of one signal."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    signal: str = Field(min_length=1, max_length=64)
    value: Value
    ts: AwareDatetime
    quality: Quality = Quality.GOOD
    unit: str = ""

    @field_validator("ts")
    @classmethod
    def _to_utc(cls, ts: datetime) -> datetime:
        return ts.astimezone(UTC)


class DataMessage(BaseModel):
    """Payload of a `data` topic: a batch of readings from one asset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    readings: list[Reading] = Field(min_length=1)


class MessageError(ValueError):
    """A payload that breaks the contract; the text says which field and why."""


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_readings(readings: Sequence[Reading]) -> bytes:
    """Encode a batch of readings as one `data` payload."""
    body = {
        "v": SCHEMA_VERSION,
        "readings": [
            {
                "signal": r.signal,
                "value": r.value,
                "ts": _iso(r.ts),
                "quality": r.quality.value,
                "unit": r.unit,
            }
            for r in readings
        ],
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_readings(payload: bytes | bytearray) -> list[Reading]:
    """Decode a `data` payload; raises MessageError naming the offending field."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        return DataMessage.model_validate_json(payload).readings
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise MessageError(f"{where}: {first['msg']}") from None


def reading(signal: str, value: Value, unit: str = "", ts: datetime | None = None) -> Reading:
    """A good-quality reading stamped now (UTC) unless `ts` is given."""
    return Reading(signal=signal, value=value, unit=unit, ts=ts or datetime.now(UTC))
