"""Presets for the sensor kits SMEs buy: where each kit publishes and which fields mean what.

A preset saves writing key paths for the usual fields of a kit. Each field names the signal id
it feeds (the platform's names: `power`, `energy`, `temperature`...), where it sits in the
payload and the kit's unit, so a plant signal in another unit of the same quantity (kW for a
kit's W) is converted. A field the asset has no signal for, or a payload lacks, is not read:
kits publish many kinds of message on one topic.

The payload shapes are the kits' documented ones:
- Tasmota: `tele/<topic>/SENSOR`, `{"Time": "<local time, no zone>", "ENERGY": {...}}`, with
  arrays for the phases of a three-phase meter (https://tasmota.github.io/docs/MQTT/).
- Shelly Gen2: JSON-RPC `NotifyStatus` on `<id>/events/rpc`, `params.ts` in epoch seconds, the
  switch's status under `params["switch:0"]`
  (https://shelly-api-docs.shelly.cloud/gen2/General/Notifications,
  https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch).
- Zigbee2MQTT: one JSON object per device on `zigbee2mqtt/<friendly_name>`, no timestamp unless
  `last_seen` is turned on (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html).
- ESPHome: one plain value per sensor on `<node>/sensor/<object_id>/state`
  (https://esphome.io/components/mqtt.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class KitName(StrEnum):
    TASMOTA = "tasmota"
    SHELLY_GEN2 = "shelly-gen2"
    ZIGBEE2MQTT = "zigbee2mqtt"
    ESPHOME = "esphome"


@dataclass(frozen=True)
class KitField:
    path: str  # key path in the payload; "" is the whole payload
    unit: str = ""  # the kit's unit; "" takes the value as the plant's unit
    phases: bool = False  # an array (one value per phase) is summed: a total is additive


@dataclass(frozen=True)
class Kit:
    topic: str
    asset: str
    ts: str | None
    ts_format: str
    fields: dict[str, KitField] = field(default_factory=dict)


def _tasmota_fields() -> dict[str, KitField]:
    fields = {
        "power": KitField("ENERGY.Power", "W", phases=True),
        "apparent_power": KitField("ENERGY.ApparentPower", "VA", phases=True),
        "reactive_power": KitField("ENERGY.ReactivePower", "var", phases=True),
        "energy": KitField("ENERGY.Total", "kWh", phases=True),
        "energy_today": KitField("ENERGY.Today", "kWh", phases=True),
        "power_factor": KitField("ENERGY.Factor"),
        "voltage": KitField("ENERGY.Voltage", "V"),
        "current": KitField("ENERGY.Current", "A"),
        "frequency": KitField("ENERGY.Frequency", "Hz"),
    }
    for phase in (1, 2, 3):
        for name, unit in (("voltage", "V"), ("current", "A"), ("power", "W")):
            key = name.capitalize()
            fields[f"l{phase}_{name}"] = KitField(f"ENERGY.{key}[{phase - 1}]", unit)
    return fields


def _shelly_switch_fields() -> dict[str, KitField]:
    switch = "params.switch:0"
    return {
        "power": KitField(f"{switch}.apower", "W"),
        "voltage": KitField(f"{switch}.voltage", "V"),
        "current": KitField(f"{switch}.current", "A"),
        "frequency": KitField(f"{switch}.freq", "Hz"),
        "power_factor": KitField(f"{switch}.pf"),
        "energy": KitField(f"{switch}.aenergy.total", "Wh"),
        "temperature": KitField(f"{switch}.temperature.tC", "degC"),
        "output": KitField(f"{switch}.output"),
    }


def _zigbee2mqtt_fields() -> dict[str, KitField]:
    units = {
        "temperature": "degC", "humidity": "%RH", "pressure": "hPa", "co2": "ppm",
        "illuminance": "", "pm25": "ug/m3", "voc": "", "battery": "%", "power": "W",
        "voltage": "V", "current": "A", "energy": "kWh", "occupancy": "", "contact": "",
        "water_leak": "", "vibration": "",
    }  # fmt: skip
    return {name: KitField(name, unit) for name, unit in units.items()}


KITS: dict[KitName, Kit] = {
    KitName.TASMOTA: Kit("tele/+/SENSOR", "{1}", "Time", "iso", _tasmota_fields()),
    KitName.SHELLY_GEN2: Kit(
        "+/events/rpc", "{1}", "params.ts", "epoch_s", _shelly_switch_fields()
    ),
    KitName.ZIGBEE2MQTT: Kit("zigbee2mqtt/+", "{1}", "last_seen", "auto", _zigbee2mqtt_fields()),
    KitName.ESPHOME: Kit("+/sensor/+/state", "{1}", None, "auto", {"{2}": KitField("")}),
}

# Units of one quantity a kit and a plant may each use: factor from the first to the second.
UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("W", "kW"): 1e-3,
    ("kW", "W"): 1e3,
    ("VA", "kVA"): 1e-3,
    ("var", "kvar"): 1e-3,
    ("Wh", "kWh"): 1e-3,
    ("kWh", "Wh"): 1e3,
    ("kWh", "MWh"): 1e-3,
    ("Wh", "MWh"): 1e-6,
}


def unit_factor(kit_unit: str, plant_unit: str) -> float | None:
    """How to turn a kit's value into the plant signal's unit; None when they are different
    quantities (or units this table does not know)."""
    if not kit_unit or not plant_unit or kit_unit == plant_unit:
        return 1.0
    return UNIT_FACTORS.get((kit_unit, plant_unit))
