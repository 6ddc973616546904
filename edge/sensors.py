"""Maps raw MQTT sensor topics (plain numbers or JSON) onto plant signals.

Sensor kits publish whatever their firmware does: `21.5`, `"21.5"`, `{"value": 21.5}` or
`{"data": {"temp": 2150}, "time": "..."}`. A mapping names where the value (and, if any, the
timestamp) sits in the JSON and how to scale it, so no kit needs reprogramming. Whatever a
payload holds, the result is a reading or a SensorPayloadError with the reason: a sensor, buggy
or hostile, can cost its own message, never the agent's receive thread.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from edge.config import SensorMapping
from shopfloor.messages import AssetPath, Reading, Value, excerpt
from shopfloor.plant import Plant, Signal, SignalKind

log = logging.getLogger(__name__)


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
    try:
        return _reading(payload, route)
    except SensorPayloadError:
        raise
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SensorPayloadError(f"{_shown(payload)}: {where}: {excerpt(first['msg'])}") from None
    except (ArithmeticError, RecursionError, ValueError) as exc:  # limits of float and json
        raise SensorPayloadError(f"{_shown(payload)}: {excerpt(str(exc))}") from None
    except Exception as exc:  # a defect here must cost one payload, never the receive thread
        log.exception("unexpected error on a sensor payload")
        raise SensorPayloadError(f"{_shown(payload)}: {type(exc).__name__}") from None


def _shown(payload: bytes | bytearray) -> str:
    return f"payload {bytes(payload[:40])!r}" + (
        f" ({len(payload)} bytes)" if len(payload) > 40 else ""
    )


def _reading(payload: bytes | bytearray, route: SensorRoute) -> Reading:
    mapping = route.mapping
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise SensorPayloadError(f"{_shown(payload)} is not a number or JSON") from None
    ts = datetime.now(UTC)
    if isinstance(data, dict):
        if mapping.ts is not None:
            ts = _timestamp(_at(data, mapping.ts), payload) or ts
        data = _at(data, mapping.value)
        if data is None:
            raise SensorPayloadError(f"{_shown(payload)} has no {mapping.value!r}")
    value = _value(data, route.signal, mapping, payload)
    return Reading(signal=route.signal.id, value=value, ts=ts, unit=route.signal.unit)


def _value(
    data: object, signal: Signal, mapping: SensorMapping, payload: bytes | bytearray
) -> Value:
    """The value as the signal's kind wants it: numbers scaled, text and booleans as sent."""
    if signal.kind is SignalKind.TEXT:
        if not isinstance(data, str):
            raise SensorPayloadError(f"{_shown(payload)}: signal {signal.id!r} carries text")
        return data
    if signal.kind is SignalKind.BOOLEAN:
        try:
            signal.check(data)
        except ValueError as exc:
            raise SensorPayloadError(f"{_shown(payload)}: {exc}") from None
        return bool(data)
    if isinstance(data, bool) or not isinstance(data, int | float | str):
        raise SensorPayloadError(f"{_shown(payload)} is not a number")
    try:
        value = float(data)
    except ValueError:
        raise SensorPayloadError(f"{_shown(payload)} is not a number") from None
    value = value * mapping.scale + mapping.offset
    if not math.isfinite(value):
        raise SensorPayloadError(f"{_shown(payload)} is not a finite number")
    return value


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
    if not isinstance(text, str):
        raise SensorPayloadError(f"{_shown(payload)}: ts is not ISO 8601 text")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise SensorPayloadError(f"{_shown(payload)} has a bad ts") from None
    if ts.tzinfo is None:
        raise SensorPayloadError(f"{_shown(payload)} has a ts without a time zone")
    return ts
