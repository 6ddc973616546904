"""Maps raw MQTT sensor topics (plain numbers or JSON) onto plant signals.

Sensor kits publish whatever their firmware does: `21.5`, `{"value": 21.5}`, Tasmota's
`{"Time": "2026-11-02T08:00:00", "ENERGY": {"Power": 120, "Voltage": [231, 229, 230]}}` on
`tele/<device>/SENSOR`, Shelly's JSON-RPC with an epoch `ts`. A mapping names the topic filter
(`+`, `#`), which topic level names the asset, where each signal's value and the timestamp sit
and how to scale them, so no kit needs reprogramming. Whatever a payload holds, the result is
readings, a SensorPayloadError with the reason, or a SensorMessageIgnored (a retained message
too old to pass for fresh, a kit's message carrying none of the preset's fields): a sensor,
buggy or hostile, can cost its own message, never the agent's receive thread.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from edge.config import (
    SensorMapping,
    SignalSource,
    TsFormat,
    fill_template,
    parse_key_path,
)
from shopfloor.messages import AssetPath, Reading, Value, excerpt
from shopfloor.plant import Plant, Signal, SignalKind

log = logging.getLogger(__name__)


class SensorPayloadError(ValueError):
    """A raw sensor payload that holds no usable reading."""


class SensorMessageIgnored(Exception):  # noqa: N818 - not an error: nothing wrong was sent
    """A message rightly not read: a stale retained one, or a kit's message of another kind."""

    def __init__(self, reason: str, level: int = logging.DEBUG):
        super().__init__(reason)
        self.level = level


# Epochs told apart by size: seconds from 2001 to 5138, milliseconds over the same years.
EPOCH_S_RANGE = (1e9, 1e11)
EPOCH_MS_RANGE = (1e12, 1e14)

_steps = functools.cache(parse_key_path)


@dataclass(frozen=True)
class SensorRoute:
    """One sensors entry ready to read messages: the assets it may name, and the zone of
    timestamps without one."""

    mapping: SensorMapping
    assets: Mapping[str, tuple[AssetPath, Mapping[str, Signal]]]
    timezone: ZoneInfo

    @functools.cached_property
    def sources(self) -> dict[str, SignalSource]:
        return self.mapping.sources()


def plant_sensor_mappings(plant: Plant, max_ahead_s: float | None = None) -> list[SensorMapping]:
    """Every sensor kit of the plant on `<mqtt_topic>/<signal>` with `{"value", "ts"}` or plain
    payloads; timestamps accepted up to `max_ahead_s` ahead of this device's clock (default:
    a mapping's)."""
    ahead = {} if max_ahead_s is None else {"max_ahead_s": max_ahead_s}
    return [
        SensorMapping.model_validate(
            {"topic": f"{sensor.mqtt_topic}/{signal.id}", "asset": sensor.id, "signal": signal.id}
            | ahead
        )
        for _, sensor in plant.sensors()
        for signal in sensor.signals
    ]


def sensor_routes(plant: Plant, mappings: list[SensorMapping] | None) -> list[SensorRoute]:
    """A route per sensors entry; without entries, the plant's own (`plant_sensor_mappings`)."""
    if mappings is None:
        mappings = plant_sensor_mappings(plant)
    assets = {path.asset: (path, signals) for path, signals in plant.catalogue().items()}
    return [
        SensorRoute(mapping, assets, ZoneInfo(mapping.timezone or plant.site.timezone))
        for mapping in mappings
    ]


def read_sensor_message(
    route: SensorRoute, topic: str, payload: bytes | bytearray, retained: bool = False
) -> tuple[AssetPath, list[Reading]]:
    """The asset and readings of one message on a topic the route's filter matches; a payload
    without its own timestamp is stamped on arrival."""
    try:
        return _readings(route, topic, payload, retained)
    except (SensorPayloadError, SensorMessageIgnored):
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


def _readings(
    route: SensorRoute, topic: str, payload: bytes | bytearray, retained: bool
) -> tuple[AssetPath, list[Reading]]:
    mapping = route.mapping
    levels = _wildcard_levels(mapping.topic, topic)
    asset = fill_template(mapping.asset, levels)
    if asset not in route.assets:
        raise SensorPayloadError(f"the topic names asset {excerpt(asset)!r}, not one of the plant")
    path, signals = route.assets[asset]
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise SensorPayloadError(f"{_shown(payload)} is not a number or JSON") from None
    sources = route.sources
    structured = isinstance(document, dict | list)
    if not structured and len(sources) > 1:
        raise SensorPayloadError(f"{_shown(payload)} is one value; the mapping reads several")
    ts = _own_timestamp(document, route, payload) if structured else None
    _check_retained(ts, retained, mapping)
    ts = ts or datetime.now(UTC)
    readings = []
    for name, source in sources.items():
        signal = signals.get(fill_template(name, levels))
        if signal is None:
            if source.optional:
                continue
            raise SensorPayloadError(f"asset {asset} has no signal {fill_template(name, levels)!r}")
        data = _at(document, source.value) if structured else document
        if _absent(data, source):
            continue
        value = _value(data, signal, source, payload)
        readings.append(Reading(signal=signal.id, value=value, ts=ts, unit=signal.unit))
    if not readings:
        _nothing_read(sources, mapping, payload)
    return path, readings


def _wildcard_levels(topic_filter: str, topic: str) -> list[str]:
    """The topic levels the filter's `+` stand for, in order."""
    levels = topic.split("/")
    return [levels[i] for i, level in enumerate(topic_filter.split("/")) if level == "+"]


def _check_retained(ts: datetime | None, retained: bool, mapping: SensorMapping) -> None:
    """A retained message is the broker's copy of an old one: it is read only with its own,
    recent enough, timestamp; stamped on arrival it would pass for a fresh value."""
    if not retained:
        return
    if ts is None:
        raise SensorMessageIgnored("retained, without a timestamp: skipped", logging.INFO)
    age_s = (datetime.now(UTC) - ts).total_seconds()
    if age_s > mapping.retained_max_age_s:
        reason = f"retained, from {ts.isoformat()} ({age_s:.0f} s ago): skipped"
        raise SensorMessageIgnored(reason, logging.INFO)


def _nothing_read(
    sources: Mapping[str, SignalSource], mapping: SensorMapping, payload: bytes | bytearray
) -> None:
    if all(source.optional for source in sources.values()):
        raise SensorMessageIgnored(f"none of the fields of preset {mapping.preset}")
    paths = [repr(source.value) for source in sources.values()]
    if len(paths) == 1:
        raise SensorPayloadError(f"{_shown(payload)} has no {paths[0]}")
    raise SensorPayloadError(f"{_shown(payload)} has none of {', '.join(paths)}")


def _at(document: object, key_path: str) -> object:
    """The value at a key path (`ENERGY.Voltage[1]`), or None."""
    value = document
    for step in _steps(key_path):
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
            value = value[step]
        elif isinstance(value, dict):
            value = value.get(step)
        else:
            return None
    return value


def _absent(data: object, source: SignalSource) -> bool:
    """Not there (or null, as Shelly says a key went away); for a preset's field also a shape
    it does not read, such as the per-phase list where one value is expected."""
    if data is None:
        return True
    return source.optional and isinstance(data, dict | list) and not source.phases


def _value(data: object, signal: Signal, source: SignalSource, payload: bytes | bytearray) -> Value:
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
    if isinstance(data, list) and source.phases:
        data = _phase_sum(data, payload)
    if isinstance(data, list):
        hint = f"index it, e.g. {source.value}[0]"
        raise SensorPayloadError(f"{_shown(payload)}: {source.value} is a list: {hint}")
    if isinstance(data, bool) or not isinstance(data, int | float | str):
        raise SensorPayloadError(f"{_shown(payload)}: {signal.id} is not a number")
    try:
        value = float(data)
    except ValueError:
        raise SensorPayloadError(f"{_shown(payload)}: {signal.id} is not a number") from None
    value = value * source.factor(signal) * source.scale + source.offset
    if not math.isfinite(value):
        raise SensorPayloadError(f"{_shown(payload)}: {signal.id} is not a finite number")
    return value


def _phase_sum(values: list[object], payload: bytes | bytearray) -> float:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers or len(numbers) != len(values):
        raise SensorPayloadError(f"{_shown(payload)}: the phases are not all numbers")
    return float(sum(numbers))


def _own_timestamp(
    document: object, route: SensorRoute, payload: bytes | bytearray
) -> datetime | None:
    """The payload's timestamp in UTC, or None; refused when too far ahead of this clock."""
    mapping = route.mapping
    if mapping.ts is None:
        return None
    raw = _at(document, mapping.ts)
    if raw is None:
        return None
    ts = _timestamp(raw, mapping.ts_format, route.timezone, payload).astimezone(UTC)
    ahead_s = (ts - datetime.now(UTC)).total_seconds()
    if ahead_s > mapping.max_ahead_s:
        raise SensorPayloadError(
            f"{_shown(payload)}: ts {ts.isoformat()} is {ahead_s:.0f} s ahead of this device's "
            f"clock (at most {mapping.max_ahead_s:g} s allowed)"
        )
    return ts


def _timestamp(
    raw: object, ts_format: TsFormat, zone: ZoneInfo, payload: bytes | bytearray
) -> datetime:
    """ISO 8601 text (without a zone: in the kit's), or an epoch in seconds or milliseconds."""
    if isinstance(raw, str) and ts_format in (TsFormat.AUTO, TsFormat.ISO):
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise SensorPayloadError(f"{_shown(payload)} has a bad ts {excerpt(raw)!r}") from None
        return ts if ts.tzinfo is not None else ts.replace(tzinfo=zone)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SensorPayloadError(
            f"{_shown(payload)}: ts is neither ISO 8601 text nor an epoch number"
        )
    if ts_format is TsFormat.ISO:
        raise SensorPayloadError(f"{_shown(payload)}: ts is a number; set ts_format to an epoch")
    seconds = raw / 1000 if ts_format is TsFormat.EPOCH_MS else raw
    if ts_format is TsFormat.AUTO:
        if EPOCH_MS_RANGE[0] <= raw < EPOCH_MS_RANGE[1]:
            seconds = raw / 1000
        elif not EPOCH_S_RANGE[0] <= raw < EPOCH_S_RANGE[1]:
            raise SensorPayloadError(
                f"{_shown(payload)}: ts {raw} is no epoch in seconds or milliseconds after 2001;"
                " set ts_format"
            )
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
