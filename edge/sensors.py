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
    """Accept `21.5`, `"21.5"` or `{"value": 21.5}`; stamp the reading on arrival."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a number") from None
    if isinstance(data, dict):
        data = data.get("value")
    try:
        value = float(data)
    except (TypeError, ValueError):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a finite number")
    return Reading(signal=signal.id, value=value, ts=datetime.now(UTC), unit=signal.unit)
