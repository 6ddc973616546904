"""MQTT sensor kits as they publish: presets on payloads in the shapes the kits document, topic
filters, timestamps, retained messages; and a real agent reading them through Mosquitto."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from edge.config import SensorMapping, load_edge_config
from edge.sensors import (
    SensorMessageIgnored,
    SensorPayloadError,
    SensorRoute,
    read_sensor_message,
    sensor_routes,
)
from shopfloor.config import ConfigError
from shopfloor.messages import Reading
from shopfloor.mqtt import make_client
from shopfloor.plant import Plant
from tests.servers import Mosquitto
from tests.test_edge_agent import Listener, processes  # noqa: F401 - the fixture
from tests.test_end_to_end import shopfloor, wait_until

KIT_PLANT = """
tenant: {id: kit, name: Kits}
site:
  id: lab
  name: Lab
  timezone: Europe/Minsk
  areas:
    - id: shop
      lines:
        - id: line-1
          machines:
            - {id: press-01, name: Press on a Tasmota meter, type: other,
               ideal_cycle_time: {part: 10},
               signals: [{id: power, unit: kW}, {id: energy, unit: kWh}, {id: voltage, unit: V},
                         {id: l2_voltage, unit: V}, {id: current, unit: A}]}
            - {id: press-02, name: Press on a Shelly plug, type: other,
               ideal_cycle_time: {part: 10},
               signals: [{id: power, unit: kW}, {id: energy, unit: kWh},
                         {id: output, kind: boolean}]}
      zones:
        - id: hall
          sensors:
            - {id: env-02, name: Zigbee sensor, mqtt_topic: zigbee2mqtt/env-02,
               signals: [{id: temperature, unit: degC}, {id: humidity, unit: "%RH"}]}
            - {id: node-1, name: ESPHome node, mqtt_topic: node-1,
               signals: [{id: temperature, unit: degC}]}
products: [{id: part}]
"""

# Tasmota `tele/<topic>/SENSOR` (https://tasmota.github.io/docs/MQTT/): local time without a
# zone, the ENERGY object of a single-phase plug ...
TASMOTA_PLUG = {
    "Time": "2026-11-02T08:00:00",
    "ENERGY": {
        "TotalStartTime": "2026-03-20T15:20:48", "Total": 514.153, "Yesterday": 1.495,
        "Today": 0.537, "Period": 0, "Power": 56, "ApparentPower": 92, "ReactivePower": 73,
        "Factor": 0.61, "Voltage": 234, "Current": 0.392,
    },
}  # fmt: skip
# ... and of a three-phase meter, one array element per phase.
TASMOTA_3PHASE = {
    "Time": "2026-11-02T08:00:10",
    "ENERGY": {
        "Total": 1200.5, "Today": 3.2, "Power": [1200, 800, 400], "Factor": [0.9, 0.8, 0.7],
        "Voltage": [231, 229, 230], "Current": [5.2, 3.5, 1.8],
    },
}  # fmt: skip
# Shelly Gen2 NotifyStatus on `<id>/events/rpc`, `params.ts` in epoch seconds (UTC); the
# switch's status keys as its Switch component documents them
# (https://shelly-api-docs.shelly.cloud/gen2/General/Notifications, .../ComponentsAndServices/Switch).
SHELLY_STATUS = {
    "src": "press-02", "dst": "press-02/events", "method": "NotifyStatus",
    "params": {
        "ts": 1793606400.25,
        "switch:0": {
            "id": 0, "output": True, "apower": 1500.0, "voltage": 229.9, "current": 6.6,
            "aenergy": {"total": 12500.0, "by_minute": [25.0, 25.1, 24.9], "minute_ts": 1793606400},
            "temperature": {"tC": 41.2, "tF": 106.2},
        },
    },
}  # fmt: skip
# The documentation's Example 1: a button changed the output; only the changed key is sent.
SHELLY_OUTPUT_ONLY = {
    "src": "press-02", "dst": "user_1", "method": "NotifyStatus",
    "params": {"ts": 1793606401.04, "switch:0": {"id": 0, "output": False, "source": "button"}},
}  # fmt: skip
SHELLY_EVENT = {
    "src": "press-02", "dst": "user_1", "method": "NotifyEvent",
    "params": {"ts": 1793606402.0, "events": [{"component": "input:0", "event": "single_push"}]},
}  # fmt: skip
# Zigbee2MQTT `zigbee2mqtt/<friendly_name>`: the documented Xiaomi WSDCGQ01LM example, no time
# (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html).
ZIGBEE_SENSOR = {"temperature": 27.34, "humidity": 44.72}

MINSK_0800_UTC = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)


def route(**mapping: object) -> SensorRoute:
    plant = Plant.model_validate(yaml.safe_load(KIT_PLANT))
    return sensor_routes(plant, [SensorMapping.model_validate(mapping)])[0]


def read(sensor_route: SensorRoute, topic: str, payload: object, retained: bool = False) -> dict[str, Reading]:  # fmt: skip
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    _, readings = read_sensor_message(sensor_route, topic, body, retained)
    return {reading.signal: reading for reading in readings}


# --- presets on documented payloads ---------------------------------------------------------


def test_tasmota_plug_reads_energy_in_the_plant_units_at_the_kits_local_time() -> None:
    got = read(route(preset="tasmota"), "tele/press-01/SENSOR", TASMOTA_PLUG)
    values = {signal: reading.value for signal, reading in got.items()}
    # W -> kW as the plant wants; no l2_voltage in a single-phase payload.
    assert values == pytest.approx({"power": 0.056, "energy": 514.153, "voltage": 234, "current": 0.392})  # fmt: skip
    assert {reading.ts for reading in got.values()} == {MINSK_0800_UTC}  # the plant's zone


def test_tasmota_three_phase_sums_power_and_indexes_each_phase() -> None:
    got = read(route(preset="tasmota", timezone="UTC"), "tele/press-01/SENSOR", TASMOTA_3PHASE)
    values = {signal: reading.value for signal, reading in got.items()}
    assert values == pytest.approx({"power": 2.4, "energy": 1200.5, "l2_voltage": 229})
    assert got["power"].ts == datetime(2026, 11, 2, 8, 0, 10, tzinfo=UTC)


def test_explicit_signals_with_array_indexes() -> None:
    mapping = {
        "topic": "tele/+/SENSOR", "asset": "{1}", "ts": "Time", "timezone": "Europe/Minsk",
        "signals": {"voltage": "ENERGY.Voltage[0]", "l2_voltage": "ENERGY.Voltage[1]",
                    "power": {"value": "ENERGY.Power[2]", "scale": 0.001}},
    }  # fmt: skip
    got = read(route(**mapping), "tele/press-01/SENSOR", TASMOTA_3PHASE)
    assert {s: r.value for s, r in got.items()} == pytest.approx({"voltage": 231, "l2_voltage": 229, "power": 0.4})  # fmt: skip
    unindexed = route(**(mapping | {"signals": {"voltage": "ENERGY.Voltage"}}))
    with pytest.raises(SensorPayloadError, match=r"ENERGY.Voltage is a list: index it, e.g. ENERGY.Voltage\[0\]"):  # fmt: skip
        read(unindexed, "tele/press-01/SENSOR", TASMOTA_3PHASE)


def test_shelly_notify_status_in_epoch_seconds() -> None:
    shelly = route(preset="shelly-gen2")
    got = read(shelly, "press-02/events/rpc", SHELLY_STATUS)
    assert {s: r.value for s, r in got.items()} == pytest.approx({"power": 1.5, "energy": 12.5, "output": True})  # fmt: skip
    assert got["power"].ts == datetime(2026, 11, 2, 8, 0, 0, 250000, tzinfo=UTC)
    # A partial status carries only what changed; an event carries no status at all.
    changed = read(shelly, "press-02/events/rpc", SHELLY_OUTPUT_ONLY)
    assert [(s, r.value) for s, r in changed.items()] == [("output", False)]
    with pytest.raises(SensorMessageIgnored, match="none of the fields of preset shelly-gen2"):
        read(shelly, "press-02/events/rpc", SHELLY_EVENT)


def test_zigbee2mqtt_device_without_a_time_is_stamped_on_arrival() -> None:
    before = datetime.now(UTC)
    got = read(route(preset="zigbee2mqtt"), "zigbee2mqtt/env-02", ZIGBEE_SENSOR)
    assert {s: r.value for s, r in got.items()} == {"temperature": 27.34, "humidity": 44.72}
    assert before <= got["temperature"].ts <= datetime.now(UTC)
    with_last_seen = ZIGBEE_SENSOR | {"last_seen": "2026-11-02T08:00:00+03:00"}
    got = read(route(preset="zigbee2mqtt"), "zigbee2mqtt/env-02", with_last_seen)
    assert got["humidity"].ts == MINSK_0800_UTC


def test_esphome_names_asset_and_signal_from_the_topic() -> None:
    got = read(route(preset="esphome"), "node-1/sensor/temperature/state", b"21.5")
    assert [(s, r.value) for s, r in got.items()] == [("temperature", 21.5)]
    # A sensor of the node the asset has no signal for is not read (the preset's fields are
    # whatever the node publishes).
    with pytest.raises(SensorMessageIgnored, match="none of the fields of preset esphome"):
        read(route(preset="esphome"), "node-1/sensor/humidity/state", b"40")


# --- timestamps, kinds, retained messages ---------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "ts_format", "expected"),
    [
        ("2026-11-02T08:00:00+03:00", "auto", MINSK_0800_UTC),
        ("2026-11-02T08:00:00", "auto", MINSK_0800_UTC),  # no zone: the entry's
        (1793606400, "auto", datetime(2026, 11, 2, 8, 0, tzinfo=UTC)),  # seconds, by size
        (1793606400123, "auto", datetime(2026, 11, 2, 8, 0, 0, 123000, tzinfo=UTC)),  # ms
        (1793606400123, "epoch_ms", datetime(2026, 11, 2, 8, 0, 0, 123000, tzinfo=UTC)),
        (1793606400, "epoch_s", datetime(2026, 11, 2, 8, 0, tzinfo=UTC)),
    ],
)
def test_timestamps_iso_or_epoch(ts: object, ts_format: str, expected: datetime) -> None:
    sensor = route(topic="k/t", asset="env-02", signal="temperature", ts_format=ts_format, timezone="Europe/Minsk")  # fmt: skip
    assert read(sensor, "k/t", {"value": 20, "ts": ts})["temperature"].ts == expected


@pytest.mark.parametrize(
    ("payload", "ts_format", "problem"),
    [
        (
            {"value": 20, "ts": 86400},
            "auto",
            "no epoch in seconds or milliseconds after 2001; set ts_format",
        ),
        ({"value": 20, "ts": 1793606400}, "iso", "ts is a number; set ts_format to an epoch"),
        ({"value": True}, "auto", "temperature is not a number"),
        ({"value": "warm"}, "auto", "temperature is not a number"),
    ],
)
def test_refused_payloads(payload: dict[str, object], ts_format: str, problem: str) -> None:
    sensor = route(topic="k/t", asset="env-02", signal="temperature", ts_format=ts_format)
    with pytest.raises(SensorPayloadError, match=problem):
        read(sensor, "k/t", payload)


def test_a_timestamp_too_far_ahead_is_refused() -> None:
    sensor = route(topic="k/t", asset="env-02", signal="temperature", max_ahead_s=60)
    soon = datetime.now(UTC) + timedelta(seconds=30)
    assert read(sensor, "k/t", {"value": 20, "ts": soon.isoformat()})["temperature"].ts == soon
    later = datetime.now(UTC) + timedelta(hours=8)
    with pytest.raises(SensorPayloadError, match=r"ahead of this device's clock \(at most 60 s"):
        read(sensor, "k/t", {"value": 20, "ts": later.isoformat()})


def test_retained_messages_are_never_restamped_as_fresh() -> None:
    sensor = route(topic="k/t", asset="env-02", signal="temperature", retained_max_age_s=600)
    recent = datetime.now(UTC) - timedelta(seconds=60)
    got = read(sensor, "k/t", {"value": 20, "ts": recent.isoformat()}, retained=True)
    assert got["temperature"].ts == recent  # with its own time
    stale = datetime.now(UTC) - timedelta(hours=2)
    with pytest.raises(SensorMessageIgnored, match=r"retained, from .* skipped"):
        read(sensor, "k/t", {"value": 20, "ts": stale.isoformat()}, retained=True)
    with pytest.raises(SensorMessageIgnored, match="retained, without a timestamp: skipped"):
        read(sensor, "k/t", b"20", retained=True)


def test_a_topic_level_naming_no_asset_is_refused() -> None:
    with pytest.raises(SensorPayloadError, match="the topic names asset 'tasmota_5a9ae8'"):
        read(route(preset="tasmota"), "tele/tasmota_5a9ae8/SENSOR", TASMOTA_PLUG)


# --- edge check ------------------------------------------------------------------------------

BAD_SENSORS = [
    (
        "  - {preset: tasmota, asset: env-02}\n",
        "sensors[0].preset",
        "reads none of the signals of asset env-02",
    ),
    (
        "  - {topic: a/+, asset: '{2}', signal: power}\n",
        "sensors[0].asset",
        "{2} names no `+` level of topic 'a/+'",
    ),
    (
        "  - {topic: a/+, asset: '{1}', signals: {watts: P}}\n",
        "sensors[0].signals.watts",
        "names no signal of any asset of the plant",
    ),
    (
        "  - {topic: a, asset: press-01, signals: {power: 'P[x]'}}\n",
        "sensors[0].signals.power.value",
        "is not a key path like ENERGY.Voltage[1]",
    ),
    (
        "  - {topic: a, asset: press-01, signal: power, signals: {energy: E}}\n",
        "sensors[0].signals",
        "give `signal` or `signals`, not both",
    ),
    (
        "  - {topic: a/+b, asset: press-01, signal: power}\n",
        "sensors[0].topic",
        "`+` and `#` stand alone in a topic level",
    ),
    (
        "  - {preset: sonoff, asset: press-01}\n",
        "sensors[0].preset",
        "Input should be 'tasmota', 'shelly-gen2', 'zigbee2mqtt' or 'esphome'",
    ),
    (
        "  - {preset: tasmota, timezone: Mars/Olympus}\n",
        "sensors[0].timezone",
        "unknown time zone 'Mars/Olympus'",
    ),
]


@pytest.mark.parametrize(("entry", "field", "problem"), BAD_SENSORS)
def test_bad_sensor_entry_is_one_located_line(
    tmp_path: Path, entry: str, field: str, problem: str
) -> None:
    (tmp_path / "plant.yaml").write_text(KIT_PLANT)
    path = tmp_path / "edge.yaml"
    path.write_text(f"plant: plant.yaml\nsensors:\n{entry}")
    with pytest.raises(ConfigError) as caught:
        load_edge_config(path)
    assert str(caught.value).startswith(f"{path}:3: {field}: "), str(caught.value)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_a_preset_unit_of_another_quantity_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(KIT_PLANT.replace("{id: energy, unit: kWh}, {id: voltage", "{id: energy, unit: J}, {id: voltage", 1))  # fmt: skip
    path = tmp_path / "edge.yaml"
    path.write_text("plant: plant.yaml\nsensors:\n  - {preset: tasmota, asset: press-01}\n")
    with pytest.raises(ConfigError, match=r"edge.yaml:3: sensors\[0\].preset: the kit gives kWh, signal energy is in J"):  # fmt: skip
        load_edge_config(path)


# --- a real agent through Mosquitto ----------------------------------------------------------


def kit_config(directory: Path) -> Path:
    (directory / "plant.yaml").write_text(KIT_PLANT)
    config = directory / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "plant": "plant.yaml",
                "device": "pi-kits",
                "buffer": {"path": "edge.db"},
                "health": {"metrics_port": 0},
                "opcua": [],
                "sensors": [
                    {"preset": "tasmota", "signals": {"l2_voltage": "ENERGY.Voltage[1]"}},
                    {"preset": "shelly-gen2"},
                    {"preset": "zigbee2mqtt"},
                ],
            }
        )
    )
    return config


def publish_all(broker: Mosquitto, messages: list[tuple[str, object, bool]]) -> None:
    client = make_client(broker.url, f"kit-{uuid.uuid4().hex[:6]}")
    client.loop_start()
    wait_until(client.is_connected, 10, "the kits")
    for topic, payload, retain in messages:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        client.publish(topic, body, qos=1, retain=retain).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_agent_reads_tasmota_shelly_and_zigbee_kits_through_the_broker(
    mosquitto: Mosquitto,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],  # noqa: F811 - the fixture
) -> None:
    config = kit_config(tmp_path)
    stale = {"temperature": 3.0}  # retained long ago by the broker, without a time
    publish_all(mosquitto, [("zigbee2mqtt/env-02", stale, True)])
    listener = Listener(mosquitto, "kit")
    log = tmp_path / "edge.log"
    try:
        agent = shopfloor("edge", "run", "--config", str(config), "--broker", mosquitto.url, log=log)  # fmt: skip
        processes.append(agent)
        wait_until(lambda: "retained, without a timestamp: skipped" in log.read_text(), 20, "the agent")  # fmt: skip
        now = datetime.now(UTC).replace(microsecond=0)
        local = now.astimezone(ZoneInfo("Europe/Minsk")).replace(tzinfo=None)
        tasmota = TASMOTA_3PHASE | {"Time": local.isoformat()}
        shelly = json.loads(json.dumps(SHELLY_STATUS))
        shelly["params"]["ts"] = now.timestamp()
        publish_all(
            mosquitto,
            [
                ("tele/press-01/SENSOR", tasmota, False),
                ("press-02/events/rpc", shelly, False),
                ("press-02/events/rpc", SHELLY_EVENT, False),
                ("zigbee2mqtt/env-02", ZIGBEE_SENSOR, False),
                ("zigbee2mqtt/env-02", {"temperature": True}, False),  # a boolean: refused
                ("zigbee2mqtt/bridge/state", b"online", False),  # not a device: not matched
            ],
        )
        wait_until(lambda: len(listener.received.since(0, "env-02")) >= 2, 20, "zigbee readings")
        wait_until(lambda: len(listener.received.since(0, "press-02")) >= 3, 20, "shelly readings")
        wait_until(lambda: len(listener.received.since(0, "press-01")) >= 3, 20, "tasmota readings")
    finally:
        listener.close()
        publish_all(mosquitto, [("zigbee2mqtt/env-02", b"", True)])  # the retained copy cleared
    press_01 = {r.signal: r for r in listener.received.since(0, "press-01")}
    assert {s: r.value for s, r in press_01.items()} == pytest.approx({"power": 2.4, "energy": 1200.5, "l2_voltage": 229})  # fmt: skip
    assert press_01["power"].ts == now  # local time in the plant's zone, back in UTC
    press_02 = {r.signal: r for r in listener.received.since(0, "press-02")}
    assert {s: r.value for s, r in press_02.items()} == pytest.approx({"power": 1.5, "energy": 12.5, "output": True})  # fmt: skip
    assert press_02["energy"].ts == now
    env = {r.signal: r.value for r in listener.received.since(0, "env-02")}
    assert env == {"temperature": 27.34, "humidity": 44.72}  # the stale retained 3.0 never came
    text = log.read_text()
    assert "sensor topic zigbee2mqtt/env-02: payload b'{\"temperature\": true}': temperature is not a number" in text  # fmt: skip
