"""The edge agent's configuration file: which machines and sensors to read, and how.

One YAML file, validated by pydantic; every problem is one line naming file, line and field.
The plant file it names says where each asset sits in the namespace and which signals it has;
this file says how to reach them on this device. Secrets are written as `${VARIABLE}` and read
from the environment, so the file itself can be shared::

    version: 1
    plant: plant.yaml                  # relative to this file
    device: pi-moulding-1
    broker: {url: "mqtts://broker.local:8883", username: polimer-edge,
             password: "${EDGE_MQTT_PASSWORD}", ca_file: certs/centre-ca.pem}
    opcua:
      - machine: imm-01
        endpoint: opc.tcp://192.168.0.20:4840
        mode: auto                     # subscribe, falling back to polling where refused
        sampling_interval_ms: 500
        deadband: 0.5                  # absolute, in the signal's unit
        username: operator
        password: ${IMM01_OPCUA_PASSWORD}
        security: {policy: Basic256Sha256, mode: SignAndEncrypt,
                   certificate: certs/edge-cert.der, private_key: certs/edge-key.pem}
        nodes:
          - {signal: melt_temperature, node: "nsu=urn:acme:imm;s=Barrel.Zone1.Temp"}
    sensors:
      - {topic: kit/hall-a/t, asset: env-01, signal: temperature, value: data.temp}
    current_clamps:
      - {machine: lathe-02, current_signal: current, idle_above: 0.8, running_above: 4.0,
         hysteresis: 0.3}
    modbus:
      - machine: imm-01                # its energy meter's endpoint and model from the plant
      - asset: compressor-01
        endpoint: rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1
        unit: 3
        preset: sdm120
        registers:
          - {signal: power, quantity: power}                 # W, converted to the signal's kW
          - {signal: pressure, table: holding, address: 10, type: float32, word_order: little}
"""

from __future__ import annotations

import os
import re
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.kits import KITS, KitName, unit_factor
from shopfloor.config import ConfigError, LocatedValueError, field_path, load_yaml_model, locate
from shopfloor.modbus import (
    ENERGY,
    METER_REGISTERS,
    POWER,
    MeterModel,
    Order,
    RegisterTable,
    RegisterType,
    SerialEndpoint,
    parse_endpoint,
    unit_scale,
)
from shopfloor.mqtt import DEFAULT_BROKER_URL, broker_address
from shopfloor.plant import (
    Identifier,
    Machine,
    ModbusEndpointText,
    Plant,
    SensorDevice,
    Signal,
    SignalKind,
    TimeZoneName,
    load_plant,
)

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _from_environment(value: object) -> object:
    """Replace every `${NAME}` by the environment variable NAME; unset is an error."""
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REFERENCE.sub(lookup, value)


Secret = Annotated[SecretStr, BeforeValidator(_from_environment)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Section):
    url: str = DEFAULT_BROKER_URL
    username: str | None = None
    password: Secret | None = None
    # The centre's CA certificate (PEM) to trust for an mqtts:// broker, instead of the system's.
    ca_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _has_host_and_port(cls, url: str) -> str:
        broker_address(url)
        return url

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> BrokerConfig:
        if self.ca_file is not None and not self.url.startswith("mqtts://"):
            raise ValueError("ca_file is for an mqtts:// broker url")
        return self

    def url_with_credentials(self) -> str:
        """The broker URL carrying the username, password and CA file, as every client takes it."""
        parts = urlsplit(self.url)
        if self.ca_file is not None:
            parts = parts._replace(query=urlencode({"ca": str(self.ca_file)}))
        if self.username is None:
            return urlunsplit(parts)
        secret = self.password.get_secret_value() if self.password else ""
        credentials = f"{quote(self.username, safe='')}:{quote(secret, safe='')}"
        address = parts.netloc.rsplit("@", 1)[-1]  # host[:port] as written, IPv6 brackets kept
        return urlunsplit(parts._replace(netloc=f"{credentials}@{address}"))


class BufferConfig(_Section):
    path: Path = Path(".shopfloor/edge-buffer.db")
    max_mb: Annotated[float, Field(ge=1)] = 256
    max_age_h: PositiveFloat = 168


class HealthConfig(_Section):
    status_interval_s: PositiveFloat = 10
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535, description="0 turns /metrics off")] = 9108


class OpcUaMode(StrEnum):
    AUTO = "auto"  # subscribe; poll the nodes (or the server) that refuse subscriptions
    SUBSCRIBE = "subscribe"
    POLL = "poll"


class SecurityPolicy(StrEnum):
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128Sha256RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256Sha256RsaPss"


class OpcUaSecurity(_Section):
    policy: SecurityPolicy = SecurityPolicy.BASIC256SHA256
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: Path = Field(description="this device's certificate (DER or PEM)")
    private_key: Path = Field(description="its private key (PEM)")
    server_certificate: Path | None = Field(
        default=None, description="pin the server's certificate instead of taking the one offered"
    )
    application_uri: str = "urn:shopfloor:edge"


class NodeMapping(_Section):
    """One OPC UA node read into one signal of the machine."""

    signal: Identifier
    node: str = Field(
        pattern=r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$",
        description="ns=<index>;s=<id>, nsu=<namespace URI>;s=<id>, i=<number>, ...",
    )
    sampling_interval_ms: NonNegativeFloat | None = None
    deadband: NonNegativeFloat | None = None


class OpcUaSourceConfig(_Section):
    """How to read one machine's OPC UA server."""

    machine: Identifier
    endpoint: str | None = Field(default=None, pattern=r"^opc\.tcp://[^:/]+:\d+")
    mode: OpcUaMode = OpcUaMode.AUTO
    publishing_interval_ms: PositiveFloat = 250
    sampling_interval_ms: NonNegativeFloat = 0
    deadband: NonNegativeFloat = 0
    poll_interval_s: PositiveFloat = 1.0
    username: str | None = None
    password: Secret | None = None
    security: OpcUaSecurity | None = None
    nodes: list[NodeMapping] = Field(
        default=[], description="empty: every signal of the machine at the plant file's node ids"
    )


_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_KEY_PART = re.compile(r"([^.\[\]]*)((?:\[\d+\])*)")


def parse_key_path(text: str) -> tuple[str | int, ...]:
    """`ENERGY.Voltage[1]` -> ("ENERGY", "Voltage", 1); "" is the whole payload."""
    steps: list[str | int] = []
    for part in text.split(".") if text else []:
        match = _KEY_PART.fullmatch(part)
        if match is None or not (match.group(1) or match.group(2)):
            raise ValueError(f"{text!r} is not a key path like ENERGY.Voltage[1]")
        if match.group(1):
            steps.append(match.group(1))
        steps += [int(index) for index in re.findall(r"\d+", match.group(2))]
    return tuple(steps)


def is_template(name: str) -> bool:
    """Whether an asset or signal name is taken from the topic (`{1}`, `plug-{2}`)."""
    return _PLACEHOLDER.search(name) is not None


def fill_template(name: str, levels: list[str]) -> str:
    """A template with the topic's `+` levels put in: `{1}` of `tele/press-01/SENSOR`."""
    return _PLACEHOLDER.sub(lambda match: levels[int(match.group(1)) - 1], name)


def _check_key_path(text: str) -> str:
    parse_key_path(text)
    return text


def _check_topic_filter(topic: str) -> str:
    levels = topic.split("/")
    if not topic or any(("+" in level or "#" in level) and len(level) > 1 for level in levels):
        raise ValueError(f"{topic!r}: `+` and `#` stand alone in a topic level")
    if "#" in levels[:-1]:
        raise ValueError(f"{topic!r}: `#` only as the last topic level")
    return topic


_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def _check_name(value: str) -> str:
    """An id, or a template such as `{1}` naming a `+` level of the topic."""
    if is_template(value):
        return value
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def _sources_from_key_paths(value: object) -> object:
    """`{power: ENERGY.Power}` is short for `{power: {value: ENERGY.Power}}`."""
    if not isinstance(value, dict):
        return value
    return {name: {"value": s} if isinstance(s, str) else s for name, s in value.items()}


KeyPath = Annotated[str, AfterValidator(_check_key_path)]
Name = Annotated[str, AfterValidator(_check_name)]
TopicFilter = Annotated[str, AfterValidator(_check_topic_filter)]


class TsFormat(StrEnum):
    AUTO = "auto"  # ISO 8601 text, or an epoch in seconds or milliseconds told by its size
    ISO = "iso"
    EPOCH_S = "epoch_s"
    EPOCH_MS = "epoch_ms"


class SignalSource(_Section):
    """Where one signal's value sits in a payload, and how to scale it."""

    value: KeyPath = Field(description="key path of the value; '' is the whole payload")
    scale: float = 1.0
    offset: float = 0.0
    kit_unit: str = Field(default="", exclude=True)  # a preset's unit, converted to the plant's
    phases: bool = Field(default=False, exclude=True)  # a preset's array of phases is summed
    optional: bool = Field(default=False, exclude=True)  # a preset's field, read where present

    def factor(self, signal: Signal) -> float:
        """The unit conversion into `signal`; ValueError when the units are not of one quantity."""
        factor = unit_factor(self.kit_unit, signal.unit)
        if factor is None:
            raise ValueError(
                f"the kit gives {self.kit_unit}, signal {signal.id} is in {signal.unit}"
            )
        return factor


class SensorMapping(_Section):
    """A raw MQTT topic filter of a sensor kit mapped onto signals of plant assets."""

    topic: TopicFilter = Field(description="MQTT topic filter: `+` and `#` allowed")
    preset: KitName | None = None
    asset: Name = Field(description="an asset id, or `{1}`: the topic level of the first `+`")
    signal: Name | None = None
    value: KeyPath = Field(default="value", description="key path of `signal`'s value")
    signals: Annotated[dict[Name, SignalSource], BeforeValidator(_sources_from_key_paths)] = {}
    ts: KeyPath | None = Field(default="ts", description="key path of the timestamp")
    ts_format: TsFormat = TsFormat.AUTO
    timezone: TimeZoneName | None = Field(
        default=None, description="of timestamps without a zone; default the plant's"
    )
    scale: float = 1.0
    offset: float = 0.0
    max_ahead_s: PositiveFloat = Field(default=300, description="later timestamps are refused")
    retained_max_age_s: NonNegativeFloat = Field(
        default=600, description="older retained messages (or retained without a ts) skipped"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: object) -> object:
        """A preset gives the topic, asset and timestamp the mapping leaves out."""
        if not isinstance(data, dict) or data.get("preset") not in set(KitName):
            return data
        kit = KITS[KitName(data["preset"])]
        defaults = {
            "topic": kit.topic,
            "asset": kit.asset,
            "ts": kit.ts,
            "ts_format": kit.ts_format,
        }
        return defaults | data

    @model_validator(mode="after")
    def _one_way_to_name_signals(self) -> SensorMapping:
        if self.signal is not None and self.signals:
            raise LocatedValueError(("signals",), "give `signal` or `signals`, not both")
        if self.signal is None and not self.signals and self.preset is None:
            raise LocatedValueError(("signal",), "give `signal`, `signals` or a `preset`")
        wildcards = self.topic.split("/").count("+")
        for loc, name in [(("asset",), self.asset), *((("signals", n), n) for n in self.sources())]:
            for number in _PLACEHOLDER.findall(name):
                if not 1 <= int(number) <= wildcards:
                    problem = f"{{{number}}} names no `+` level of topic {self.topic!r}"
                    raise LocatedValueError(loc, problem)
        return self

    def sources(self) -> dict[str, SignalSource]:
        """Signal name (or template) -> where its value sits, whichever shape the file uses:
        the preset's fields, then the entry's own `signals` (or `signal`)."""
        if self.signal is not None:
            return {
                self.signal: SignalSource(value=self.value, scale=self.scale, offset=self.offset)
            }
        kit = KITS[self.preset].fields if self.preset else {}
        preset = {
            name: SignalSource(value=f.path, kit_unit=f.unit, phases=f.phases, optional=True)
            for name, f in kit.items()
        }
        return preset | self.signals


class CurrentClamp(_Section):
    """Infer a machine's state from the current its motor draws (a clamp on the supply cable).

    Rising, the state becomes idle at `idle_above` and running at `running_above` amperes;
    falling, it leaves a state only `hysteresis` amperes below that threshold, and a state must
    last `min_duration_s` before it is reported (so a start-up surge is not a cycle).
    """

    machine: Identifier
    current_signal: Identifier
    idle_above: PositiveFloat
    running_above: PositiveFloat
    hysteresis: NonNegativeFloat = 0
    min_duration_s: NonNegativeFloat = 0

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> CurrentClamp:
        if self.running_above <= self.idle_above:
            raise LocatedValueError(("running_above",), "must be above idle_above")
        if self.hysteresis >= self.idle_above:
            raise LocatedValueError(("hysteresis",), "must be below idle_above")
        return self


Address = Annotated[int, Field(ge=0, le=65535)]


class RegisterSpec(_Section):
    """Where a value sits on a Modbus device and how its registers encode it."""

    table: RegisterTable = RegisterTable.HOLDING
    address: Address | None = Field(
        default=None, description="0-based: a manual's register 40001 is holding address 0"
    )
    type: RegisterType = RegisterType.UINT16
    word_order: Order = "big"  # big: the high word first (Modbus' own order)
    byte_order: Order = "big"

    @property
    def words(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the value takes."""
        return 1 if self.table.bits else self.type.words


class ModbusRegister(RegisterSpec):
    """One value of a Modbus device read into one signal: value * scale + offset."""

    signal: Identifier
    quantity: str | None = Field(
        default=None, description="a measurement of the device's preset, for table/address/type"
    )
    scale: float | None = Field(
        default=None, description="default 1; for a preset's quantity, its unit to the signal's"
    )
    offset: float = 0.0

    @model_validator(mode="after")
    def _one_location(self) -> ModbusRegister:
        if (self.quantity is None) == (self.address is None):
            raise ValueError("give either an address or a quantity of the preset")
        return self


class ModbusClock(RegisterSpec):
    """Registers holding the device's own clock, in seconds since 1970 UTC (times `scale`):
    its readings carry that time rather than the time they arrived."""

    address: Address
    type: RegisterType = RegisterType.UINT32
    scale: PositiveFloat = 1.0


class ModbusDevice(_Section):
    """One Modbus device (a meter, a PLC, a gateway's unit) read every `interval_ms`."""

    machine: Identifier | None = None
    asset: Identifier | None = Field(
        default=None, description="an asset (a sensor kit) instead of `machine`"
    )
    endpoint: ModbusEndpointText | None = Field(
        default=None, description="default: the plant's endpoint of the machine's energy meter"
    )
    unit: Annotated[int, Field(ge=0, le=255)] | None = Field(
        default=None, description="Modbus unit (slave) id; default the meter's, else 1"
    )
    preset: MeterModel | None = Field(default=None, description="default: the meter's model")
    interval_ms: Annotated[float, Field(ge=50)] = 1000
    timeout_ms: Annotated[float, Field(ge=10)] = 1000
    ts: ModbusClock | None = None
    registers: list[ModbusRegister] = Field(
        default=[], description="empty: the energy meter's power and energy, by its preset"
    )

    @model_validator(mode="after")
    def _one_asset(self) -> ModbusDevice:
        if (self.machine is None) == (self.asset is None):
            raise ValueError("name either the machine or the asset the device belongs to")
        return self

    @property
    def asset_id(self) -> str:
        return self.machine or self.asset or ""


def default_device_id() -> str:
    """This host's name, made into an identifier."""
    name = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().lower()).strip("-_")
    return (name or "edge")[:63]


class EdgeConfig(_Section):
    version: Literal[1] = 1
    plant: Path
    device: Identifier = Field(default_factory=default_device_id)
    broker: BrokerConfig = BrokerConfig()
    buffer: BufferConfig = BufferConfig()
    health: HealthConfig = HealthConfig()
    opcua: list[OpcUaSourceConfig] | None = Field(
        default=None, description="absent: every machine of the plant with an OPC UA endpoint"
    )
    sensors: list[SensorMapping] | None = Field(
        default=None, description="absent: every sensor kit of the plant on its own topics"
    )
    current_clamps: list[CurrentClamp] = []
    modbus: list[ModbusDevice] = Field(
        default=[], description="Modbus devices; none unless listed (see `resolve_modbus`)"
    )
    opcua_host: str | None = Field(default=None, description="reach every endpoint on this host")
    batch_interval_s: PositiveFloat = 0.2
    startup_wait_s: NonNegativeFloat = Field(
        default=0.0,
        description="how long an OPC UA server or Modbus TCP device may take to listen once the "
        "agent starts, waited for quietly before the first connection (a machine powered on "
        "with its edge box)",
    )


def _check_against_plant(config: EdgeConfig, plant: Plant) -> None:
    """Every machine, asset and signal the config names exists in the plant."""
    machines = {machine.id: machine for _, machine in plant.machines()}
    assets = {path.asset: signals for path, signals in plant.catalogue().items()}
    for index, source in enumerate(config.opcua or []):
        machine = machines.get(source.machine)
        if machine is None:
            raise LocatedValueError(("opcua", index, "machine"), "names no machine of the plant")
        if source.endpoint is None and machine.opcua is None:
            raise LocatedValueError(
                ("opcua", index, "endpoint"), "needed: the plant gives this machine no endpoint"
            )
        signal_ids = {signal.id for signal in machine.signals}
        for node_index, node in enumerate(source.nodes):
            if node.signal not in signal_ids:
                loc = ("opcua", index, "nodes", node_index, "signal")
                raise LocatedValueError(loc, f"names no signal of machine {machine.id}")
    _check_unique([source.machine for source in config.opcua or []], "opcua", "machine")
    for index, sensor in enumerate(config.sensors or []):
        _check_sensor(sensor, assets, index)
    _check_modbus(config, plant)
    for index, clamp in enumerate(config.current_clamps):
        machine = machines.get(clamp.machine)
        if machine is None:
            raise LocatedValueError(
                ("current_clamps", index, "machine"), "names no machine of the plant"
            )
        signal_ids = {signal.id for signal in machine.signals}
        if clamp.current_signal not in signal_ids:
            raise LocatedValueError(
                ("current_clamps", index, "current_signal"),
                f"names no signal of machine {machine.id}",
            )
        if "state" not in signal_ids:
            raise LocatedValueError(
                ("current_clamps", index, "machine"),
                "the plant gives this machine no `state` signal to report into",
            )


def _check_sensor(sensor: SensorMapping, assets: dict[str, dict[str, Signal]], index: int) -> None:
    """The asset and signals a sensor entry names exist; a template asset (`{1}`) is checked
    per message, but its fixed signal names must be signals of some asset."""
    named = {name: source for name, source in sensor.sources().items() if not is_template(name)}
    loc: tuple[str | int, ...] = ("sensors", index)
    if is_template(sensor.asset):
        known = {signal for signals in assets.values() for signal in signals}
        for name, source in named.items():
            if not source.optional and name not in known:
                problem = "names no signal of any asset of the plant"
                raise LocatedValueError((*loc, *_signal_field(sensor, name)), problem)
        return
    signals = assets.get(sensor.asset)
    if signals is None:
        raise LocatedValueError((*loc, "asset"), "names no asset of the plant")
    for name, source in named.items():
        if name not in signals and not source.optional:
            problem = f"names no signal of asset {sensor.asset}"
            raise LocatedValueError((*loc, *_signal_field(sensor, name)), problem)
        if name in signals:
            try:
                source.factor(signals[name])
            except ValueError as exc:
                raise LocatedValueError((*loc, *_signal_field(sensor, name)), str(exc)) from None
    if sensor.preset and named and not set(named) & set(signals):
        problem = f"reads none of the signals of asset {sensor.asset} (it reads {', '.join(named)})"
        raise LocatedValueError((*loc, "preset"), problem)


def _signal_field(sensor: SensorMapping, name: str) -> tuple[str, ...]:
    """Where the file names a signal: `signal`, `signals.<name>`, or the preset."""
    if sensor.signal is not None:
        return ("signal",)
    return ("signals", name) if name in sensor.signals else ("preset",)


def resolve_modbus(device: ModbusDevice, plant: Plant) -> ModbusDevice:
    """The device with what it leaves out filled from the plant (its machine's energy meter:
    endpoint, unit, model, power and energy signals) and every preset quantity turned into
    its registers and scale; raises LocatedValueError (below the device) when it cannot be."""
    asset = _modbus_asset(device, plant)
    meter = asset.energy_meter if isinstance(asset, Machine) else None
    address = meter.modbus if meter else None
    preset = device.preset or (address.model if address else None)
    registers = device.registers
    if not registers:
        if meter is None or preset is None:
            raise LocatedValueError(("registers",), "name the registers to read")
        registers = [
            ModbusRegister(signal=meter.power_signal, quantity=POWER),
            ModbusRegister(signal=meter.energy_signal, quantity=ENERGY),
        ]
    endpoint = device.endpoint or (address.endpoint if address else None)
    if endpoint is None:
        raise LocatedValueError(
            ("endpoint",), "needed: the plant gives this asset no energy meter with an endpoint"
        )
    signals = {signal.id: signal for signal in asset.signals}
    resolved = [
        _resolve_register(register, preset, signals, index)
        for index, register in enumerate(registers)
    ]
    unit = device.unit if device.unit is not None else (address.unit if address else 1)
    update = {"endpoint": endpoint, "unit": unit, "preset": preset, "registers": resolved}
    return device.model_copy(update=update)


def _modbus_asset(device: ModbusDevice, plant: Plant) -> Machine | SensorDevice:
    assets: list[tuple[object, Machine | SensorDevice]] = [*plant.machines(), *plant.sensors()]
    found = [asset for _, asset in assets if asset.id == device.asset_id]
    if device.machine is not None and not any(isinstance(a, Machine) for a in found):
        raise LocatedValueError(("machine",), "names no machine of the plant")
    if not found:
        raise LocatedValueError(("asset",), "names no asset of the plant")
    return found[0]


def _resolve_register(
    register: ModbusRegister, preset: MeterModel | None, signals: dict[str, Signal], index: int
) -> ModbusRegister:
    """The register with its preset quantity replaced by where it sits, checked against its
    signal: a coil or discrete input is read as true/false, a register as a number."""
    loc = ("registers", index)
    signal = signals.get(register.signal)
    if signal is None:
        raise LocatedValueError((*loc, "signal"), "names no signal of the asset")
    if register.quantity is not None:
        quantities = METER_REGISTERS[preset] if preset else {}
        quantity = quantities.get(register.quantity)
        if quantity is None:
            known = f"one of {', '.join(quantities)}" if preset else "the device has no preset"
            raise LocatedValueError((*loc, "quantity"), f"unknown quantity ({known})")
        scale = register.scale
        if scale is None:
            scale = unit_scale(quantity.unit, signal.unit)
            if scale is None:
                message = f"give a scale: {preset} reads it in {quantity.unit!r}, the signal "
                raise LocatedValueError((*loc, "scale"), message + f"is in {signal.unit!r}")
        update = {"table": quantity.table, "address": quantity.address, "type": quantity.type}
        register = register.model_copy(update={**update, "scale": scale, "quantity": None})
    wanted = SignalKind.BOOLEAN if register.table.bits else SignalKind.NUMBER
    if signal.kind is not wanted:
        source = f"a {register.table.value}" if register.table.bits else "a register"
        message = f"{source} reads {wanted} values: signal {signal.id!r} is {signal.kind}"
        raise LocatedValueError((*loc, "table"), message)
    if (register.address or 0) + register.words > 65536:
        raise LocatedValueError((*loc, "address"), "runs past the last address, 65535")
    return register


def _check_modbus(config: EdgeConfig, plant: Plant) -> None:
    """Every device resolves, the devices of one serial port agree on its settings, and every
    signal has one source: one Modbus register, and no OPC UA node named for it as well."""
    read_by: dict[tuple[str, str], tuple[str | int, ...]] = {}
    for source_index, source in enumerate(config.opcua or []):
        for node_index, node in enumerate(source.nodes):
            loc = ("opcua", source_index, "nodes", node_index, "signal")
            read_by[source.machine, node.signal] = loc
    serial_ports: dict[str, SerialEndpoint] = {}
    for index, device in enumerate(config.modbus):
        try:
            resolved = resolve_modbus(device, plant)
        except LocatedValueError as exc:
            raise LocatedValueError(("modbus", index, *exc.loc), str(exc)) from None
        assert resolved.endpoint is not None
        endpoint = parse_endpoint(resolved.endpoint)
        if (
            isinstance(endpoint, SerialEndpoint)
            and serial_ports.setdefault(endpoint.device, endpoint) != endpoint
        ):
            message = f"the devices on {endpoint.device} need the same serial settings"
            raise LocatedValueError(("modbus", index, "endpoint"), message)
        for register_index, register in enumerate(resolved.registers):
            loc = ("modbus", index, "registers", register_index, "signal")
            other = read_by.setdefault((device.asset_id, register.signal), loc)
            if other != loc:
                message = f"is already read by {field_path(other[:-1])}: one source per signal"
                raise LocatedValueError(loc, message)


def _check_unique(values: list[str], section: str, field: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise LocatedValueError((section, index, field), f"{value!r} appears twice")
        seen.add(value)


def _resolve_paths(config: EdgeConfig, base: Path) -> EdgeConfig:
    """Relative paths in the file are relative to the file, wherever the agent is started."""
    opcua = [
        source.model_copy(
            update={
                "security": source.security.model_copy(
                    update={
                        "certificate": base / source.security.certificate,
                        "private_key": base / source.security.private_key,
                        "server_certificate": source.security.server_certificate
                        and base / source.security.server_certificate,
                    }
                )
            }
        )
        if source.security
        else source
        for source in config.opcua or []
    ]
    return config.model_copy(
        update={
            "plant": base / config.plant,
            "broker": config.broker.model_copy(
                update={"ca_file": config.broker.ca_file and base / config.broker.ca_file}
            ),
            "buffer": config.buffer.model_copy(update={"path": base / config.buffer.path}),
            "opcua": opcua if config.opcua is not None else None,
        }
    )


def load_edge_config(path: str | Path) -> tuple[EdgeConfig, Plant]:
    """Load an edge config and its plant; raises ConfigError naming file, line and field."""
    path = Path(path)
    config = _resolve_paths(load_yaml_model(path, EdgeConfig), path.parent)
    plant = load_plant(config.plant)
    try:
        _check_against_plant(config, plant)
    except LocatedValueError as exc:
        raise ConfigError(path, str(exc), locate(path, exc.loc), field_path(exc.loc)) from None
    for index, source in enumerate(config.opcua or []):
        for field in ("certificate", "private_key", "server_certificate"):
            file = getattr(source.security, field, None)
            if file is not None and not file.is_file():
                loc = ("opcua", index, "security", field)
                raise ConfigError(path, f"no such file: {file}", locate(path, loc), field_path(loc))
    return config, plant
