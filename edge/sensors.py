"""Maps raw MQTT sensor topics (plain numbers or small JSON) onto plant signals."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from shopfloor.messages import AssetPath, Reading
from shopfloor.plant import Plant, Signal


class SensorPayloadError(ValueError):
    """A raw sensor payload that is not a number."""


def sensor_topics(plant: Plant) -> dict[str, tuple[AssetPath, Signal]]:
    """Raw topic -> (asset path, signal) for every sensor signal of the plant."""
    return {
        f"{sensor.mqtt_topic}/{signal.id}": (path, signal)
        for path, sensor in plant.sensors()
        for signal in sensor.signals
    }


def parse_sensor_payload(payload: bytes | bytearray, signal: Signal) -> Reading:
    """Accept `21.5`, `"21.5"` or `{"value": 21.5, "ts": "<ISO 8601 with zone>"}`.

    A reading without its own timestamp is stamped on arrival.
    """
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a number") from None
    ts = datetime.now(UTC)
    if isinstance(data, dict):
        ts = _timestamp(data.get("ts"), payload) or ts
        data = data.get("value")
    try:
        value = float(data)
    except (TypeError, ValueError):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a finite number")
    return Reading(signal=signal.id, value=value, ts=ts, unit=signal.unit)


def _timestamp(text: object, payload: bytes | bytearray) -> datetime | None:
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(str(text))
    except ValueError:
        raise SensorPayloadError(f"payload {payload[:60]!r} has a bad ts") from None
    if ts.tzinfo is None:
        raise SensorPayloadError(f"payload {payload[:60]!r} has a ts without a time zone")
    return ts
