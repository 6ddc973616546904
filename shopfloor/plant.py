"""The plant model: one YAML file describes one site of one SME (tenant).

It is the single description every component reads: the simulator builds machines from it, the
edge agent knows which OPC UA nodes and sensor topics to read, the gateway validates messages
against it and the dashboard lays out the shop floor from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    model_validator,
)

from shopfloor.config import LocatedValueError, load_yaml_model
from shopfloor.i18n import check_language
from shopfloor.messages import COMPRESSOR_FAULTS, AssetPath, FaultKind
from shopfloor.modbus import MeterModel, parse_endpoint
from shopfloor.states import PRODUCT, STATE, STOP_REASON

_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_OPCUA_NAMESPACE = "urn:shopfloor:machines"


def _check_identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a valid id: use lower-case letters, digits, '-' or '_' "
            "(ids become MQTT topic levels and database tags)"
        )
    return value


def _check_timezone(value: str) -> str:
    if value not in available_timezones():
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Minsk)")
    return value


def _check_currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError(
            f"{value!r} is not a currency code: use its three-letter ISO 4217 code such as "
            "EUR, BYN or RSD"
        )
    return value


def _check_endpoint(value: str) -> str:
    if not re.match(r"^opc\.tcp://[^/:]+:\d+(/.*)?$", value):
        raise ValueError(f"{value!r} is not an OPC UA endpoint like opc.tcp://host:4840")
    return value


Identifier = Annotated[str, AfterValidator(_check_identifier)]


class _Part(BaseModel):
    """Base of every plant element: unknown keys are typos and are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique_ids(items: Sequence[_Part], field: str) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        item_id = getattr(item, "id")  # noqa: B009 - every element with an id list has one
        if item_id in seen:
            raise LocatedValueError((field, index, "id"), f"duplicate id {item_id!r}")
        seen.add(item_id)


class Tenant(_Part):
    """The SME the site belongs to; its id is the first level of every topic."""

    id: Identifier
    name: str


class Product(_Part):
    id: Identifier
    name: str = ""


class SignalKind(StrEnum):
    """What values a signal carries; a reading of another kind is refused, never stored."""

    NUMBER = "number"
    BOOLEAN = "boolean"  # true/false (or 0/1, as many devices send them)
    TEXT = "text"  # machine states, stop reasons, product ids


TEXT_SIGNALS = frozenset({STATE, STOP_REASON, PRODUCT})


def _default_kind(signal: dict[str, object]) -> SignalKind:
    return SignalKind.TEXT if signal.get("id") in TEXT_SIGNALS else SignalKind.NUMBER


def _kind_of(value: object) -> SignalKind:
    if isinstance(value, bool):
        return SignalKind.BOOLEAN
    return SignalKind.TEXT if isinstance(value, str) else SignalKind.NUMBER


class Signal(_Part):
    """One measured value of an asset, e.g. spindle load in %."""

    id: Identifier
    unit: str = ""
    label: str = Field(default="", description="name on screens; default from the signal's id")
    description: str = ""
    node: str | None = Field(default=None, description="OPC UA node id; default derives from ids")
    kind: SignalKind = Field(
        default_factory=_default_kind,
        description="number, boolean or text; state, stop_reason and product default to text",
    )

    def check(self, value: object) -> None:
        """Raise ValueError naming the signal when `value` is not of its kind."""
        given = _kind_of(value)
        if given is self.kind or (self.kind is SignalKind.BOOLEAN and value in (0, 1)):
            return
        shown = "text" if given is SignalKind.TEXT else f"{given} {value!r}"
        raise ValueError(f"signal {self.id!r} carries {self.kind} values, not {shown}")


def _check_modbus_endpoint(value: str) -> str:
    parse_endpoint(value)
    return value


ModbusEndpointText = Annotated[str, AfterValidator(_check_modbus_endpoint)]


class MeterModbus(_Part):
    """Where the meter answers Modbus, and which register map it has. The simulator serves it
    there (TCP); an edge config's `modbus` entry for the machine reads it."""

    endpoint: ModbusEndpointText = Field(description="tcp://host:502 or rtu:///dev/ttyUSB0?...")
    unit: Annotated[int, Field(ge=1, le=247, description="the meter's Modbus address")] = 1
    model: MeterModel = MeterModel.SDM630


class EnergyMeter(_Part):
    """Which of the machine's signals carry instantaneous power and the cumulative meter."""

    id: Identifier
    power_signal: Identifier
    energy_signal: Identifier
    modbus: MeterModbus | None = None


class OpcUaEndpoint(_Part):
    endpoint: Annotated[str, AfterValidator(_check_endpoint)]
    namespace: str = DEFAULT_OPCUA_NAMESPACE


class MachineType(StrEnum):
    CNC = "cnc"
    INJECTION_MOULDING = "injection_moulding"
    PACKAGING = "packaging"
    COMPRESSOR = "compressor"
    ASSEMBLY = "assembly"
    OTHER = "other"


class Machine(_Part):
    id: Identifier
    name: str
    type: MachineType
    ideal_cycle_time: dict[Identifier, PositiveFloat] = Field(
        default={}, description="seconds per part, by product id (not for compressors)"
    )
    energy_meter: EnergyMeter | None = None
    rated_power_kw: PositiveFloat | None = Field(
        default=None,
        description="nameplate (rated) electrical power in kW; weighs the machine's share of the "
        "plant's load when the readiness assessment measures energy metering coverage (EC)",
    )
    opcua: OpcUaEndpoint | None = None
    signals: list[Signal] = Field(min_length=1)

    @model_validator(mode="after")
    def _signals_consistent(self) -> Machine:
        _unique_ids(self.signals, "signals")
        if not self.ideal_cycle_time and self.type is not MachineType.COMPRESSOR:
            raise LocatedValueError(
                ("ideal_cycle_time",), "a machine that makes parts needs an ideal cycle time"
            )
        if self.energy_meter:
            ids = {s.id for s in self.signals}
            for field in ("power_signal", "energy_signal"):
                if getattr(self.energy_meter, field) not in ids:
                    raise LocatedValueError(
                        ("energy_meter", field), "names no signal of this machine"
                    )
        return self

    def node_id(self, signal: Signal, namespace_index: int) -> str:
        """The OPC UA node of a signal: its explicit `node`, else `ns=<i>;s=<machine>.<signal>`."""
        return signal.node or f"ns={namespace_index};s={self.id}.{signal.id}"


class SensorDevice(_Part):
    """An environmental sensor box publishing plain values on `<mqtt_topic>/<signal>`."""

    id: Identifier
    name: str = ""
    mqtt_topic: str = Field(pattern=r"^[^#+]+$", description="raw topic prefix of the device")
    signals: list[Signal] = Field(min_length=1)

    @model_validator(mode="after")
    def _signals_unique(self) -> SensorDevice:
        _unique_ids(self.signals, "signals")
        return self


class Line(_Part):
    id: Identifier
    name: str = ""
    machines: list[Machine] = Field(min_length=1)

    @model_validator(mode="after")
    def _machines_unique(self) -> Line:
        _unique_ids(self.machines, "machines")
        return self


class Zone(_Part):
    """A part of an area watched by environmental sensors (temperature, humidity, noise...)."""

    id: Identifier
    name: str = ""
    sensors: list[SensorDevice] = Field(min_length=1)

    @model_validator(mode="after")
    def _sensors_unique(self) -> Zone:
        _unique_ids(self.sensors, "sensors")
        return self


class Area(_Part):
    id: Identifier
    name: str = ""
    lines: list[Line] = []
    zones: list[Zone] = []

    @model_validator(mode="after")
    def _cells_unique(self) -> Area:
        _unique_ids(self.lines, "lines")
        _unique_ids(self.zones, "zones")
        line_ids = {line.id for line in self.lines}
        for index, zone in enumerate(self.zones):
            if zone.id in line_ids:
                raise LocatedValueError(
                    ("zones", index, "id"), f"{zone.id!r} is already a line id in this area"
                )
        return self


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _clock_text(value: object) -> object:
    """YAML 1.1 reads an unquoted 22:00 as the number 1320 (sexagesimal), which would
    silently become 00:22; a time of day must be written as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("write the time in quotes, e.g. '22:00' (YAML reads 22:00 as a number)")
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_text)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
CurrencyCode = Annotated[str, AfterValidator(_check_currency)]
LanguageCode = Annotated[str, AfterValidator(check_language)]


class Shift(_Part):
    """A recurring shift; `end` before `start` means it runs past midnight."""

    name: str
    start: ClockTime
    end: ClockTime
    days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]

    @property
    def length(self) -> timedelta:
        """How long the shift lasts: past midnight when it ends before it starts, a whole day
        when it ends as it starts."""
        day = date(2000, 1, 1)
        length = datetime.combine(day, self.end) - datetime.combine(day, self.start)
        return length if length > timedelta(0) else length + timedelta(days=1)


class Site(_Part):
    """Where the SME works: its local clock (shifts, and times on screens) and its money."""

    id: Identifier
    name: str
    timezone: TimeZoneName = "UTC"
    currency: CurrencyCode = Field(default="EUR", description="ISO 4217 code costs are shown in")
    energy_price: PositiveFloat | None = Field(
        default=None,
        description="price of a kWh in the site's currency; the dashboard's default without it",
    )
    language: LanguageCode | None = Field(
        default=None,
        description="language screens and reports open in (en, ru, be, sr-Cyrl, sr-Latn); "
        "without it the visitor's browser chooses",
    )
    areas: list[Area] = Field(min_length=1)

    @model_validator(mode="after")
    def _areas_unique(self) -> Site:
        _unique_ids(self.areas, "areas")
        return self


class Plant(_Part):
    """One site of one SME, as described by a plant file."""

    version: Literal[1] = 1
    tenant: Tenant
    site: Site
    products: list[Product] = Field(min_length=1)
    shifts: list[Shift] = []

    @property
    def shortest_shift(self) -> timedelta | None:
        """The length of the plant's shortest shift, the least a normal period should cover
        (a swing of the process slower than the period may go beyond what it held); None
        without shifts."""
        return min((shift.length for shift in self.shifts), default=None)

    @model_validator(mode="after")
    def _references_resolve(self) -> Plant:
        _unique_ids(self.products, "products")
        products = {p.id for p in self.products}
        for (area, line, machine_index), machine in self._indexed_machines():
            for product in machine.ideal_cycle_time:
                if product not in products:
                    loc = (
                        *("site", "areas", area, "lines", line),
                        *("machines", machine_index, "ideal_cycle_time"),
                    )
                    raise LocatedValueError(loc, f"unknown product {product!r}")
        return self

    def _indexed_machines(self) -> Iterator[tuple[tuple[int, int, int], Machine]]:
        for area_index, area in enumerate(self.site.areas):
            for line_index, line in enumerate(area.lines):
                for machine_index, machine in enumerate(line.machines):
                    yield (area_index, line_index, machine_index), machine

    def _path(self, area: Area, cell: Line | Zone, asset: Machine | SensorDevice) -> AssetPath:
        return AssetPath(self.tenant.id, self.site.id, area.id, cell.id, asset.id)

    def machines(self) -> Iterator[tuple[AssetPath, Machine]]:
        """Every machine with its topic path, in file order."""
        for area in self.site.areas:
            for line in area.lines:
                for machine in line.machines:
                    yield self._path(area, line, machine), machine

    def sensors(self) -> Iterator[tuple[AssetPath, SensorDevice]]:
        """Every environmental sensor device with its topic path, in file order."""
        for area in self.site.areas:
            for zone in area.zones:
                for sensor in zone.sensors:
                    yield self._path(area, zone, sensor), sensor

    def default_product(self, machine: Machine) -> str | None:
        """What a machine that does not report its product is taken to make: the first plant
        product it has an ideal cycle time for; None for a machine that makes no parts."""
        return next((p.id for p in self.products if p.id in machine.ideal_cycle_time), None)

    def injection_problem(self, machine_id: str, fault: FaultKind | None = None) -> str | None:
        """Why `fault` (or a breakdown) cannot be injected into `machine_id` of this plant, or
        None if it can."""
        machine = next((m for _, m in self.machines() if m.id == machine_id), None)
        if machine is None:
            return f"no machine {machine_id!r} in {self.tenant.id}/{self.site.id}"
        if fault in COMPRESSOR_FAULTS and machine.type is not MachineType.COMPRESSOR:
            return f"{machine_id} is not a compressor: an air leak needs one"
        return None

    def catalogue(self) -> dict[AssetPath, dict[str, Signal]]:
        """Every asset's signals by id, keyed by topic path: what a message may carry."""
        assets: list[tuple[AssetPath, Machine | SensorDevice]] = [
            *self.machines(),
            *self.sensors(),
        ]
        return {path: {s.id: s for s in asset.signals} for path, asset in assets}


def load_plant(path: str | Path) -> Plant:
    """Load a plant file; raises ConfigError naming file, line and field."""
    return load_yaml_model(path, Plant)
