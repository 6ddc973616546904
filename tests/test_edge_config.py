"""The edge config file, sensor mappings, current-clamp states and health figures, without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.clamp import StateFromCurrent
from edge.config import CurrentClamp, EdgeConfig, SensorMapping, load_edge_config
from edge.health import prometheus_text
from edge.opcua_source import _ChangeFilter
from edge.sensors import SensorPayloadError, SensorRoute, read_sensor_message, sensor_routes
from shopfloor.config import ConfigError
from shopfloor.messages import AssetPath, EdgeStatus, Reading
from shopfloor.plant import Signal
from tests.conftest import EXAMPLE_PLANT, ROOT

ENV_01 = AssetPath("polimer", "brest", "moulding", "hall-a", "env-01")
CELSIUS = Signal(id="temperature", unit="degC")


def route(**mapping: object) -> SensorRoute:
    fields: dict[str, object] = {"topic": "t", "asset": "env-01", "signal": "temperature"}
    assets = {"env-01": (ENV_01, {"temperature": CELSIUS})}
    return SensorRoute(SensorMapping.model_validate(fields | mapping), assets, ZoneInfo("UTC"))


def parse_sensor_payload(payload: bytes, sensor_route: SensorRoute) -> Reading:
    """The one reading a single-signal mapping reads from a payload on topic `t`."""
    path, readings = read_sensor_message(sensor_route, "t", payload)
    assert path == ENV_01 and len(readings) == 1
    return readings[0]


def write_config(directory: Path, body: str) -> Path:
    path = directory / "edge.yaml"
    path.write_text(f"version: 1\nplant: {EXAMPLE_PLANT}\n{body}")
    return path


# --- the config file ------------------------------------------------------------------------


def test_example_edge_config_loads() -> None:
    config, plant = load_edge_config(ROOT / "examples" / "edge.yaml")
    assert plant.tenant.id == "polimer"
    assert config.opcua is not None and {s.machine for s in config.opcua} == {
        "imm-01", "cnc-01", "pack-01",
    }  # fmt: skip


def test_minimal_config_takes_every_source_of_the_plant(tmp_path: Path) -> None:
    config, plant = load_edge_config(write_config(tmp_path, "device: pi-1\n"))
    assert (config.opcua, config.sensors, config.device) == (None, None, "pi-1")
    routes = sensor_routes(plant, config.sensors)
    assert {r.mapping.topic for r in routes} == {f"sensors/hall-a/env-01/{s}" for s in ("temperature", "humidity", "noise", "pm2_5")}  # fmt: skip


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(EXAMPLE_PLANT.read_text())
    path = tmp_path / "edge.yaml"
    path.write_text("version: 1\nplant: plant.yaml\nbuffer: {path: data/q.db}\n")
    config, _ = load_edge_config(path)
    assert config.plant == tmp_path / "plant.yaml"
    assert config.buffer.path == tmp_path / "data" / "q.db"


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_MQTT_PW", "p@ss:word/1")
    path = write_config(
        tmp_path,
        "broker: {url: 'mqtt://broker.local:1883', username: edge, password: '${EDGE_MQTT_PW}'}\n",
    )
    config, _ = load_edge_config(path)
    assert config.broker.url_with_credentials() == "mqtt://edge:p%40ss%3Aword%2F1@broker.local:1883"
    assert "p@ss" not in repr(config)


BAD_CONFIGS = [
    ("opcua:\n  - machine: imm-99\n", 5, "opcua[0].machine", "names no machine of the plant"),
    (
        "opcua:\n  - machine: imm-01\n    nodes:\n      - {signal: nope, node: 'ns=2;s=x'}\n",
        7, "opcua[0].nodes[0].signal", "names no signal of machine imm-01",
    ),
    (
        "opcua:\n  - machine: imm-01\n    nodes:\n      - {signal: power, node: 'Barrel.Temp'}\n",
        7, "opcua[0].nodes[0].node", "String should match pattern",
    ),
    ("opcua:\n  - {machine: imm-01}\n  - {machine: imm-01}\n", 6, "opcua[1].machine", "'imm-01' appears twice"),
    ("sensors:\n  - {topic: a/b, asset: env-09, signal: noise}\n", 5, "sensors[0].asset", "names no asset of the plant"),
    ("sensors:\n  - {topic: a/b, asset: env-01, signal: volume}\n", 5, "sensors[0].signal", "names no signal of asset env-01"),
    ("sensors:\n  - {topic: a/#/b, asset: env-01, signal: noise}\n", 5, "sensors[0].topic", "`#` only as the last topic level"),
    (
        "current_clamps:\n  - {machine: imm-01, current_signal: power, idle_above: 5, running_above: 2}\n",
        5, "current_clamps[0].running_above", "must be above idle_above",
    ),
    (
        "current_clamps:\n  - {machine: imm-01, current_signal: amps, idle_above: 1, running_above: 2}\n",
        5, "current_clamps[0].current_signal", "names no signal of machine imm-01",
    ),
    ("broker: {url: 'mqtt://h:1883', username: u, password: '${SHOPFLOOR_TEST_UNSET}'}\n", 4, "broker.password", "environment variable SHOPFLOOR_TEST_UNSET is not set"),
    ("broker: {url: 'mqtt://h:1883', usr: u}\n", 4, "broker.usr", "unknown field (check its spelling)"),
    ("health: {metrics_port: 70000}\n", 4, "health.metrics_port", "less than or equal to 65535"),
    (
        "opcua:\n  - machine: imm-01\n    security: {certificate: nowhere.der, private_key: nowhere.pem}\n",
        6, "opcua[0].security.certificate", "no such file",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "line", "field", "problem"), BAD_CONFIGS)
def test_bad_config_is_one_located_line(
    tmp_path: Path, body: str, line: int, field: str, problem: str
) -> None:
    assert_refused_at(tmp_path, body, line, field, problem)


def assert_refused_at(directory: Path, body: str, line: int, field: str, problem: str) -> None:
    """A config of `body` (after a device line) is refused in one line naming line and field."""
    path = write_config(directory, "device: pi-1\n" + body)
    with pytest.raises(ConfigError) as caught:
        load_edge_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert problem in message
    assert "\n" not in message


RETROFIT_PLANT = """
tenant: {id: sf, name: Retrofit}
site:
  id: lab
  name: Lab
  areas:
    - id: shop
      lines:
        - id: line-1
          machines:
            - {id: lathe-02, name: Old lathe, type: cnc, ideal_cycle_time: {part: 30},
               signals: [{id: state}, {id: current, unit: A}]}
            - {id: drill-01, name: Drill, type: other, ideal_cycle_time: {part: 10},
               signals: [{id: current, unit: A}]}
products: [{id: part}]
"""


def test_clamp_on_a_machine_without_a_state_signal_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(RETROFIT_PLANT)
    path = tmp_path / "edge.yaml"
    path.write_text(
        "plant: plant.yaml\ncurrent_clamps:\n"
        "  - {machine: drill-01, current_signal: current, idle_above: 1, running_above: 2}\n"
    )
    with pytest.raises(
        ConfigError, match=r"edge.yaml:3: current_clamps\[0\].machine: .*no `state`"
    ):
        load_edge_config(path)


# --- sensor payloads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "value"),
    [(b"21.5", 21.5), (b'"21.5"', 21.5), (b'{"value": -3}', -3.0)],
)
def test_sensor_payloads_accepted(payload: bytes, value: float) -> None:
    reading = parse_sensor_payload(payload, route())
    assert (reading.signal, reading.value, reading.unit) == ("temperature", value, "degC")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"warm", "not a number"),
        (b"", "not a number"),
        (b"NaN", "not a finite number"),
        (b'{"temp": 3}', "has no 'value'"),
        (b"[1]", "has no 'value'"),
        (b"\xff", "not a number"),
        (b'{"value": "hot"}', "not a number"),
        (b"true", "not a number"),  # a boolean on a temperature: the plant must say boolean
        (b"1" + b"0" * 400, "too large"),
        (b"1e999", "not a finite number"),
        (b"[" * 50_000 + b"]" * 50_000, "recursion depth"),
        (b'{"value": 1, "ts": "9999-12-31T23:59:59-05:00"}', "date value out of range"),
        (b'{"value": 1, "ts": true}', "ts is neither ISO 8601 text nor an epoch"),
    ],
)
def test_sensor_payloads_refused(payload: bytes, problem: str) -> None:
    with pytest.raises(SensorPayloadError, match=problem):
        parse_sensor_payload(payload, route())


def test_json_mapping_with_key_paths_and_scaling() -> None:
    mapped = route(value="data.temp", ts="meta.time", scale=0.01, offset=-1.0)
    payload = b'{"data": {"temp": 2250}, "meta": {"time": "2026-11-02T08:00:00+03:00"}}'
    reading = parse_sensor_payload(payload, mapped)
    assert reading.value == pytest.approx(21.5)
    assert reading.ts.isoformat() == "2026-11-02T05:00:00+00:00"


def test_sensor_payload_with_its_own_timestamp() -> None:
    reading = parse_sensor_payload(b'{"value": 21.5, "ts": "2026-11-02T08:00:00+03:00"}', route())
    assert reading.ts.isoformat() == "2026-11-02T05:00:00+00:00"


def test_sensor_payload_with_a_bad_timestamp() -> None:
    with pytest.raises(SensorPayloadError, match="has a bad ts 'yesterday'"):
        parse_sensor_payload(b'{"value": 1, "ts": "yesterday"}', route())


# --- current clamp --------------------------------------------------------------------------

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def states(clamp: CurrentClamp, amperes: list[float]) -> list[tuple[int, str]]:
    """Feed one reading a second; (second, state) for every state reported."""
    inference = StateFromCurrent(clamp)
    out = []
    for second, value in enumerate(amperes):
        reading = Reading(signal="current", value=value, ts=T0 + timedelta(seconds=second))
        state = inference.update(reading)
        if state is not None:
            out.append((int((state.ts - T0).total_seconds()), str(state.value)))
    return out


CLAMP = CurrentClamp(
    machine="lathe-02", current_signal="current", idle_above=1.0, running_above=5.0, hysteresis=0.5
)


def test_clamp_thresholds_give_off_idle_running() -> None:
    assert states(CLAMP, [0.1, 2.0, 6.0, 2.0, 0.2, 7.0]) == [
        (0, "off"), (1, "idle"), (2, "running"), (3, "idle"), (4, "off"), (5, "running"),
    ]  # fmt: skip


def test_clamp_hysteresis_keeps_a_noisy_current_from_flickering() -> None:
    # Around the running threshold: 5.2 starts running; 4.6 and 4.9 are within the
    # hysteresis (above 4.5), so it stays running until 4.4.
    assert states(CLAMP, [5.2, 4.6, 5.1, 4.9, 4.4, 4.8, 4.9]) == [(0, "running"), (4, "idle")]
    # Around the idle threshold: 0.6 is still idle (above 0.5), 0.4 is off.
    assert states(CLAMP, [1.2, 0.6, 0.9, 0.4, 0.9, 1.0]) == [(0, "idle"), (3, "off"), (5, "idle")]


def test_clamp_minimum_duration_ignores_a_start_up_surge() -> None:
    clamp = CLAMP.model_copy(update={"min_duration_s": 3})
    amperes = [0.1] * 4 + [9.0] + [2.0] * 5 + [6.0] * 4
    # The 1 s surge to 9 A is never reported as running; idle starts when the surge is over.
    assert states(clamp, amperes) == [(0, "off"), (5, "idle"), (10, "running")]


def test_clamp_ignores_text_values() -> None:
    inference = StateFromCurrent(CLAMP)
    assert inference.update(Reading(signal="current", value="n/a", ts=T0)) is None


# --- polling deadband and health ------------------------------------------------------------


def test_polled_values_pass_the_deadband_like_monitored_ones() -> None:
    change = _ChangeFilter()
    at = [T0 + timedelta(seconds=s) for s in range(8)]
    seen = [
        change.changed("n", value, ts, deadband=1.0)
        for value, ts in zip([20.0, 20.0, 20.5, 21.2, 21.4, 25.0, 25.0, 24.1], at, strict=True)
    ]
    assert seen == [True, False, False, True, False, True, False, False]
    assert change.changed("s", "running", at[0], 1.0)
    assert not change.changed("s", "running", at[1], 1.0)
    assert change.changed("s", "idle", at[2], 1.0)
    assert not change.changed("s", "idle", at[2], 0.0)  # the same sample read again


def test_metrics_are_prometheus_text_labelled_by_device() -> None:
    status = EdgeStatus(
        device="pi-1", ts=T0, uptime_s=12.5, readings_total=1200, readings_per_s=100.0,
        forwarded_total=40, queue_depth=3, queue_bytes=4096, dropped_total=0, lost_total=0,
        rejected_total=2, broker_connected=True, broker_reconnects=1, sources_connected=2,
        sources_total=3, source_reconnects=4, oldest_queued_s=0.5, receiving=True,
        causes=["sources_disconnected"],
    )  # fmt: skip
    text = prometheus_text(status)
    assert "# TYPE shopfloor_edge_readings_total counter" in text
    assert 'shopfloor_edge_readings_total{device="pi-1"} 1200\n' in text
    assert 'shopfloor_edge_broker_connected{device="pi-1"} 1\n' in text
    assert 'shopfloor_edge_sources_total{device="pi-1"} 3\n' in text
    assert 'shopfloor_edge_oldest_queued_s{device="pi-1"} 0.5\n' in text
    assert 'shopfloor_edge_healthy{device="pi-1"} 0\n' in text
    assert 'shopfloor_edge_degraded{device="pi-1",cause="sources_disconnected"} 1\n' in text
    assert len([line for line in text.splitlines() if not line.startswith("#")]) == 18


def test_config_defaults_need_only_a_plant() -> None:
    config = EdgeConfig(plant=EXAMPLE_PLANT)
    assert config.health.metrics_port == 9108
    assert config.buffer.max_mb == 256
