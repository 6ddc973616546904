"""Maps raw MQTT sensor topics (plain numbers or JSON) onto plant signals.

Sensor kits publish whatever their firmware does: `21.5`, `"21.5"`, `{"value": 21.5}` or
`{"data": {"temp": 2150}, "time": "..."}`. A mapping names where the value (and, if any, the
timestamp) sits in the JSON and how to scale it, so no kit needs reprogramming.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.config import SensorMapping
from shopfloor.messages import AssetPath, Reading
from shopfloor.plant import Plant, Signal


class SensorPayloadError(ValueError):
    """A raw sensor payload that holds no usable reading."""


@dataclass(frozen=True)
class SensorRoute:
    path: AssetPath
    signal: Signal
    mapping: SensorMapping


def sensor_routes(plant: Plant, mappings: list[SensorMapping] | None) -> dict[str, SensorRoute]:
    """Raw topic -> where its readings go; without mappings, every sensor kit of the plant on
    `<mqtt_topic>/<signal>` with `{"value", "ts"}` or plain payloads."""
    if mappings is None:
        mappings = [
            SensorMapping(
                topic=f"{sensor.mqtt_topic}/{signal.id}", asset=sensor.id, signal=signal.id
            )
            for _, sensor in plant.sensors()
            for signal in sensor.signals
        ]
    assets = {path.asset: (path, signals) for path, signals in plant.catalogue().items()}
    routes = {}
    for mapping in mappings:
        path, signals = assets[mapping.asset]
        routes[mapping.topic] = SensorRoute(path, signals[mapping.signal], mapping)
    return routes


def parse_sensor_payload(payload: bytes | bytearray, route: SensorRoute) -> Reading:
    """The reading in a raw payload; one without its own timestamp is stamped on arrival."""
    mapping = route.mapping
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a number or JSON") from None
    ts = datetime.now(UTC)
    if isinstance(data, dict):
        if mapping.ts is not None:
            ts = _timestamp(_at(data, mapping.ts), payload) or ts
        data = _at(data, mapping.value)
        if data is None:
            raise SensorPayloadError(f"payload {payload[:60]!r} has no {mapping.value!r}")
    try:
        value = float(data)
    except (TypeError, ValueError):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise SensorPayloadError(f"payload {payload[:40]!r} is not a finite number")
    value = value * mapping.scale + mapping.offset
    return Reading(signal=route.signal.id, value=value, ts=ts, unit=route.signal.unit)


def _at(data: dict[str, object], key_path: str) -> object:
    """The value at a dotted key path (`data.temp`), or None."""
    value: object = data
    for key in key_path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


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
