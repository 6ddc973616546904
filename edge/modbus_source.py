"""Reads one Modbus device (TCP, or RTU on an RS-485 line) every interval.

The device's values are read in as few requests as the protocol allows: values that lie next
to each other in one table are one request, up to 125 registers or 2000 bits. The connection is
re-made after a growing back-off, as for an OPC UA server. A Modbus device says little when it
is set up wrong, so what it does say is counted per device and logged once per change with what
to check: a request nobody answers (a wrong unit id, serial settings or wiring), an exception
response (an address that is 1-based or in the wrong table), a float that is no number (the
word order). A device that answers no request at all counts as disconnected.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from edge.config import ModbusDevice, ModbusRegister, RegisterSpec, resolve_modbus
from edge.listening import until_listening
from shopfloor.messages import AssetPath, Reading
from shopfloor.modbus import (
    Endpoint,
    RegisterTable,
    RegisterType,
    TcpEndpoint,
    decode_registers,
    parse_endpoint,
)
from shopfloor.plant import Plant, Signal

log = logging.getLogger(__name__)
# pymodbus logs every unanswered request as an error; the source says it once per change,
# with what to check, and counts the rest.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

Emit = Callable[[AssetPath, Reading], None]
MAX_BACKOFF_S = 5.0
_EXCEPTIONS = {
    1: "illegal function: the device has no such table",
    2: "illegal data address: addresses are 0-based (a manual's 30053 is input address 52)",
    3: "illegal data value: the device refuses a request of this size",
    4: "device failure",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond: is the unit id right?",
}
_FLOATS = (RegisterType.FLOAT32, RegisterType.FLOAT64)


@dataclass(frozen=True)
class ReadBlock:
    """One read request: `count` registers (or bits) of a table from `address`, holding the
    values of `specs`."""

    table: RegisterTable
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]

    def __str__(self) -> str:
        return f"{self.table.value} {self.address}-{self.address + self.count - 1}"


def plan_reads(specs: Sequence[RegisterSpec]) -> list[ReadBlock]:
    """The fewest requests that read every value: values of one table that touch or overlap
    share a request as long as it stays within the protocol's limit."""
    blocks: list[ReadBlock] = []
    for table in RegisterTable:
        group: list[RegisterSpec] = []
        start = end = 0
        for spec in sorted((s for s in specs if s.table is table), key=_address):
            spec_end = _address(spec) + spec.words
            if group and _address(spec) <= end and spec_end - start <= table.max_per_read:
                group.append(spec)
                end = max(end, spec_end)
                continue
            if group:
                blocks.append(ReadBlock(table, start, end - start, tuple(group)))
            group, start, end = [spec], _address(spec), spec_end
        if group:
            blocks.append(ReadBlock(table, start, end - start, tuple(group)))
    return blocks


def _address(spec: RegisterSpec) -> int:
    assert spec.address is not None  # resolved: every preset quantity has its address
    return spec.address


@dataclass(frozen=True)
class ModbusTarget:
    """Everything needed to read one device: where, which unit, what into which signal."""

    path: AssetPath
    name: str  # the asset and endpoint, as logs and the status name the device
    endpoint: Endpoint
    unit: int
    device: ModbusDevice
    signals: dict[str, Signal]
    blocks: tuple[ReadBlock, ...]

    @classmethod
    def build(cls, device: ModbusDevice, plant: Plant) -> ModbusTarget:
        """The device as `resolve_modbus` completes it from the plant."""
        device = resolve_modbus(device, plant)
        assert device.endpoint is not None
        path, signals = next(
            (path, signals)
            for path, signals in plant.catalogue().items()
            if path.asset == device.asset_id
        )
        endpoint = parse_endpoint(device.endpoint)
        specs: list[RegisterSpec] = [*device.registers, *([device.ts] if device.ts else [])]
        name = f"{device.asset_id}@{endpoint}"
        blocks = tuple(plan_reads(specs))
        unit = device.unit if device.unit is not None else 1
        return cls(path, name, endpoint, unit, device, signals, blocks)


Client = AsyncModbusTcpClient | AsyncModbusSerialClient


def _client(endpoint: Endpoint, timeout_s: float) -> Client:
    """A client that neither retries nor reconnects by itself: the sources do both, and count
    them."""
    if isinstance(endpoint, TcpEndpoint):
        return AsyncModbusTcpClient(
            endpoint.host, port=endpoint.port, timeout=timeout_s, retries=0, reconnect_delay=0
        )
    return AsyncModbusSerialClient(
        endpoint.device,
        baudrate=endpoint.baudrate,
        parity=endpoint.parity,
        stopbits=endpoint.stopbits,
        bytesize=endpoint.bytesize,
        timeout=timeout_s,
        retries=0,
        reconnect_delay=0,
    )


class ModbusLine:
    """One connection, a serial port or a TCP socket, shared by every device behind it: the
    meters of one RS-485 bus share its port, the units of a Modbus TCP gateway its socket.
    Their requests take turns (the client sends one at a time)."""

    def __init__(self, endpoint: Endpoint, timeout_s: float):
        self.endpoint, self.timeout_s = endpoint, timeout_s
        self.client: Client | None = None  # made in the agent's event loop, as pymodbus wants
        self._opening = asyncio.Lock()

    async def open(self) -> Client:
        """The client, connected (once, for every device of the line)."""
        async with self._opening:
            if self.client is None:
                self.client = _client(self.endpoint, self.timeout_s)
            if not self.client.connected and not await self.client.connect():
                raise ConnectionException("cannot connect")
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def modbus_sources(
    devices: Sequence[ModbusDevice], plant: Plant, emit: Emit, startup_wait_s: float = 0.0
) -> list[ModbusSource]:
    """A source per device, the devices of one endpoint sharing its line (and the longest of
    their timeouts); a TCP device waited for up to `startup_wait_s` at start-up."""
    targets = [ModbusTarget.build(device, plant) for device in devices]
    lines: dict[str, ModbusLine] = {}
    for endpoint in {str(target.endpoint) for target in targets}:
        mine = [target for target in targets if str(target.endpoint) == endpoint]
        timeout_s = max(target.device.timeout_ms for target in mine) / 1000
        lines[endpoint] = ModbusLine(mine[0].endpoint, timeout_s)
    return [
        ModbusSource(target, lines[str(target.endpoint)], emit, startup_wait_s)
        for target in targets
    ]


class ModbusSource:
    """Polls one Modbus device and emits a reading for every value that changed."""

    def __init__(
        self, target: ModbusTarget, line: ModbusLine, emit: Emit, startup_wait_s: float = 0.0
    ):
        self.target, self.line, self.emit = target, line, emit
        self.startup_wait_s = startup_wait_s
        self.device = target.device
        self.reconnects = 0
        self.rejected = 0  # values that were no readings of their signal
        self.errors: Counter[str] = Counter()  # timeouts and exception responses, by kind
        self.connected = False  # the device answers
        self.down_since: datetime | None = datetime.now(UTC)
        self._problems: dict[str, str] = {}  # what was last said of each request, value, clock
        self._last: dict[str, int | float | bool] = {}

    async def run(self) -> None:
        """Keep reading until cancelled, whatever the device or the line does."""
        endpoint = self.target.endpoint
        if isinstance(endpoint, TcpEndpoint):
            await until_listening(endpoint.host, endpoint.port, self.startup_wait_s)
        backoff = 1.0
        try:
            while True:
                try:
                    await self._session(await self.line.open())
                except (ConnectionException, OSError) as exc:
                    if self.connected:
                        backoff = 1.0
                    self._set_connected(False)
                    self.line.close()  # the other devices of the line open it again
                    log.warning("%s: %s; retrying in %.0f s", self.target.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self.reconnects += 1
        finally:
            self.line.close()

    async def _session(self, client: Client) -> None:
        log.info("%s: connected, reading unit %d", self.target.name, self.target.unit)
        interval = self.device.interval_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._set_connected(await self.poll(client))
            await asyncio.sleep(max(interval - (loop.time() - started), 0))

    def _set_connected(self, answering: bool) -> None:
        if answering and not self.connected:
            self.down_since = None
        elif not answering and self.connected:
            self.down_since = datetime.now(UTC)
        self.connected = answering

    async def poll(self, client: Client) -> bool:
        """Read every block once and emit what changed; whether any block was read (a device
        that only times out or refuses, such as one asked under a wrong unit id, counts as
        disconnected: connected but no data is a fault to show, not a state to hide)."""
        values: dict[RegisterSpec, int | float | bool] = {}
        for block in self.target.blocks:
            response = await self._request(client, block)
            if response is not None and not response.isError():
                values.update(_values(block, response))
        read_any = bool(values)
        ts = datetime.now(UTC)
        if self.device.ts is not None:
            ts = self._clock(values.pop(self.device.ts, None)) or ts
        for spec, value in values.items():
            assert isinstance(spec, ModbusRegister)
            self._accept(spec, value, ts)
        return read_any

    async def _request(self, client: Client, block: ReadBlock) -> ModbusPDU | None:
        """The device's response to reading `block`, None if none came; problems counted and
        logged when they change."""
        read = {
            RegisterTable.HOLDING: client.read_holding_registers,
            RegisterTable.INPUT: client.read_input_registers,
            RegisterTable.COIL: client.read_coils,
            RegisterTable.DISCRETE: client.read_discrete_inputs,
        }[block.table]
        try:
            response = await read(block.address, count=block.count, device_id=self.target.unit)
        except ModbusIOException:
            self._problem(
                block,
                "timeout",
                f"no answer within {self.device.timeout_ms:g} ms: check the unit id "
                f"({self.target.unit}), the serial settings and the wiring",
            )
            return None
        if response.isError():
            code = response.exception_code
            reason = _EXCEPTIONS.get(code, "see the device's manual")
            self._problem(block, f"exception {code}", f"exception {code}, {reason}")
        elif self._problems.pop(str(block), None) is not None:
            log.info("%s: %s read again", self.target.name, block)
        return response

    def _problem(self, what: ReadBlock | str, kind: str, message: str) -> None:
        self.errors[kind] += 1
        self._say_once(str(what), f"reading {what}: {message}")

    def _say_once(self, key: str, message: str) -> None:
        """Log `message` unless it is what was last said about `key`."""
        if self._problems.get(key) != message:
            self._problems[key] = message
            log.warning("%s: %s", self.target.name, message)

    def _clock(self, seconds: int | float | bool | None) -> datetime | None:
        assert self.device.ts is not None
        if seconds is None or isinstance(seconds, bool):
            return None
        try:
            return datetime.fromtimestamp(seconds * self.device.ts.scale, UTC)
        except (ValueError, OverflowError, OSError):
            self.rejected += 1
            self._say_once("the clock", f"the clock reads {seconds!r}, no time: arrival time used")
            return None

    def _accept(self, spec: ModbusRegister, value: int | float | bool, ts: datetime) -> None:
        """Emit `value` when it changed; a float that is no plausible reading (what a wrong
        word order or an odd address makes of one) is refused."""
        signal = self.target.signals[spec.signal]
        if not isinstance(value, bool):
            if spec.type in _FLOATS and not _plausible(value):
                self.rejected += 1
                where = f"{spec.table.value} {spec.address}"
                advice = "check word_order, byte_order and the address"
                self._say_once(signal.id, f"{signal.id} reads {value:.5g} at {where}: {advice}")
                return
            value = value * (spec.scale if spec.scale is not None else 1.0) + spec.offset
        if self._last.get(signal.id) == value:
            return
        self._last[signal.id] = value
        reading = Reading(signal=signal.id, value=value, ts=ts, unit=signal.unit)
        self.emit(self.target.path, reading)


def _plausible(value: float) -> bool:
    """Not NaN or infinite, and neither denormal nor beyond 1e15: 230.0 read in the wrong
    word order is 2.4e-41, 22000.0 is -3.7e19."""
    return math.isfinite(value) and (value == 0 or 1e-30 < abs(value) < 1e15)


def _values(block: ReadBlock, response: ModbusPDU) -> dict[RegisterSpec, int | float | bool]:
    """Each value of the block, decoded from the response."""
    if block.table.bits:
        return {spec: bool(response.bits[_address(spec) - block.address]) for spec in block.specs}
    words = response.registers
    values: dict[RegisterSpec, int | float | bool] = {}
    for spec in block.specs:
        offset = _address(spec) - block.address
        registers = words[offset : offset + spec.words]
        values[spec] = decode_registers(registers, spec.type, spec.word_order, spec.byte_order)
    return values
