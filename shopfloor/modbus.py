"""Modbus as the edge reads it and the simulator serves it: endpoints, register encodings and
the register maps of common energy meters.

Both sides take these from here (the components never import each other), so the simulator's
meter and the edge's preset for it cannot disagree. Addresses are 0-based protocol addresses:
a manual's register 30053 (the 53rd input register) is input register address 52.

Register maps, from the manufacturers' published Modbus protocol documents (Eastron
"SDM630 Modbus Protocol" and "SDM120 Modbus Protocol"): every measurement is an IEEE 754
float32 in two input registers, high word first, read with function code 04.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

DEFAULT_TCP_PORT = 502
MAX_REGISTERS_PER_READ = 125  # Modbus application protocol 1.1b3, function codes 03 and 04
MAX_BITS_PER_READ = 2000  # function codes 01 and 02
_SERIAL_DEFAULTS = {"baudrate": "9600", "parity": "N", "stopbits": "1", "bytesize": "8"}

Order = Literal["big", "little"]


@dataclass(frozen=True)
class TcpEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class SerialEndpoint:
    """An RS-485 line (RTU framing) behind a serial device."""

    device: str
    baudrate: int
    parity: Literal["N", "E", "O"]
    stopbits: Literal[1, 2]
    bytesize: Literal[7, 8]

    def __str__(self) -> str:
        return f"rtu://{self.device}"


Endpoint = TcpEndpoint | SerialEndpoint


def parse_endpoint(text: str) -> Endpoint:
    """`tcp://host[:port]` (port 502 by default) or
    `rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1&bytesize=8` (those are the defaults);
    raises ValueError saying what is wrong."""
    parts = urlsplit(text)
    if parts.scheme == "tcp" and parts.hostname and not parts.path.strip("/") and not parts.query:
        try:
            port = parts.port or DEFAULT_TCP_PORT
        except ValueError:
            raise ValueError(f"{text!r}: the port is not a number from 1 to 65535") from None
        return TcpEndpoint(parts.hostname, port)
    if parts.scheme == "rtu" and not parts.netloc and parts.path:
        return _serial_endpoint(text, parts.path, dict(parse_qsl(parts.query)))
    raise ValueError(
        f"{text!r} is not a Modbus endpoint like tcp://192.168.0.30:502 or "
        "rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1"
    )


def _serial_endpoint(text: str, device: str, given: dict[str, str]) -> SerialEndpoint:
    unknown = sorted(set(given) - set(_SERIAL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"{text!r}: unknown setting {unknown[0]!r} (use {', '.join(_SERIAL_DEFAULTS)})"
        )
    settings = {**_SERIAL_DEFAULTS, **given}
    parity, baudrate = settings["parity"].upper(), settings["baudrate"]
    stopbits, bytesize = settings["stopbits"], settings["bytesize"]
    if parity not in ("N", "E", "O"):
        raise ValueError(f"{text!r}: parity is N, E or O")
    if not baudrate.isdigit() or int(baudrate) == 0:
        raise ValueError(f"{text!r}: baudrate is a number such as 9600")
    if stopbits not in ("1", "2") or bytesize not in ("7", "8"):
        raise ValueError(f"{text!r}: stopbits is 1 or 2, bytesize 7 or 8")
    return SerialEndpoint(device, int(baudrate), parity, int(stopbits), int(bytesize))  # type: ignore[arg-type]


class RegisterTable(StrEnum):
    HOLDING = "holding"  # 4xxxx, function code 03
    INPUT = "input"  # 3xxxx, function code 04
    COIL = "coil"  # 0xxxx, function code 01
    DISCRETE = "discrete"  # 1xxxx, function code 02

    @property
    def bits(self) -> bool:
        return self in (RegisterTable.COIL, RegisterTable.DISCRETE)

    @property
    def max_per_read(self) -> int:
        return MAX_BITS_PER_READ if self.bits else MAX_REGISTERS_PER_READ


class RegisterType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def words(self) -> int:
        """How many 16-bit registers a value takes."""
        return struct.calcsize(_FORMATS[self]) // 2


_FORMATS = {
    RegisterType.INT16: "h",
    RegisterType.UINT16: "H",
    RegisterType.INT32: "i",
    RegisterType.UINT32: "I",
    RegisterType.FLOAT32: "f",
    RegisterType.FLOAT64: "d",
}


def _ordered(data: bytes, word_order: Order, byte_order: Order) -> bytes:
    """Big-endian bytes from (or to) the device's order; both swaps are their own inverse."""
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [word[::-1] for word in words]
    return b"".join(words)


def decode_registers(
    registers: Sequence[int],
    kind: RegisterType,
    word_order: Order = "big",
    byte_order: Order = "big",
) -> int | float:
    """The value held by `registers` (as many as `kind` takes)."""
    data = b"".join(register.to_bytes(2, "big") for register in registers)
    value: int | float = struct.unpack(
        ">" + _FORMATS[kind], _ordered(data, word_order, byte_order)
    )[0]
    return value


def encode_registers(
    value: int | float, kind: RegisterType, word_order: Order = "big", byte_order: Order = "big"
) -> list[int]:
    """The registers that hold `value` as `kind`."""
    data = _ordered(struct.pack(">" + _FORMATS[kind], value), word_order, byte_order)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


@dataclass(frozen=True)
class Quantity:
    """One measurement in a meter's register map."""

    address: int
    unit: str
    table: RegisterTable = RegisterTable.INPUT
    type: RegisterType = RegisterType.FLOAT32


class MeterModel(StrEnum):
    SDM630 = "sdm630"  # Eastron, three-phase, 100 A direct or via CTs
    SDM120 = "sdm120"  # Eastron, single-phase, 45 A direct


def _phases(quantity: str, first: int, unit: str) -> dict[str, Quantity]:
    return {f"l{n}_{quantity}": Quantity(first + 2 * (n - 1), unit) for n in (1, 2, 3)}


# The quantity every preset offers for a machine's energy meter: instantaneous power, the meter.
POWER, ENERGY = "power", "import_energy"
METER_REGISTERS: dict[MeterModel, dict[str, Quantity]] = {
    MeterModel.SDM630: {
        **_phases("voltage", 0x00, "V"),
        **_phases("current", 0x06, "A"),
        **_phases("power", 0x0C, "W"),
        "power": Quantity(0x34, "W"),  # total system power
        "apparent_power": Quantity(0x38, "VA"),
        "reactive_power": Quantity(0x3C, "var"),
        "power_factor": Quantity(0x3E, ""),
        "frequency": Quantity(0x46, "Hz"),
        "import_energy": Quantity(0x48, "kWh"),
        "export_energy": Quantity(0x4A, "kWh"),
        "total_energy": Quantity(0x156, "kWh"),
    },
    MeterModel.SDM120: {
        "voltage": Quantity(0x00, "V"),
        "current": Quantity(0x06, "A"),
        "power": Quantity(0x0C, "W"),
        "apparent_power": Quantity(0x12, "VA"),
        "reactive_power": Quantity(0x18, "var"),
        "power_factor": Quantity(0x1E, ""),
        "frequency": Quantity(0x46, "Hz"),
        "import_energy": Quantity(0x48, "kWh"),
        "export_energy": Quantity(0x4A, "kWh"),
        "total_energy": Quantity(0x156, "kWh"),
    },
}

_PREFIXES = {"": 1.0, "k": 1e3, "M": 1e6}


def _readings(unit: str) -> list[tuple[str, float]]:
    """Every way to read `unit` as a prefix and a base unit: kWh is k + Wh, or "" + kWh."""
    return [
        (unit[len(prefix) :], factor)
        for prefix, factor in _PREFIXES.items()
        if unit.startswith(prefix) and len(unit) > len(prefix)
    ]


def unit_scale(source: str, target: str) -> float | None:
    """The factor from a value in unit `source` to unit `target` when they differ only by a
    k or M prefix (W to kW: 0.001); None when they measure different things."""
    if source == target:
        return 1.0
    for base, factor in _readings(source):
        for other, other_factor in _readings(target):
            if base == other:
                return factor / other_factor
    return None
