"""Modbus: the edge reads energy meters over TCP (the simulator's, a process of its own) and RTU
(a meter process at the far end of a socat virtual serial pair), names what goes wrong per
device, and `edge check` locates the mistakes of a config in one line."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncua import Client

from edge.agent import EdgeAgent
from edge.config import (
    ModbusClock,
    ModbusDevice,
    ModbusRegister,
    RegisterSpec,
    load_edge_config,
)
from edge.health import prometheus_text
from edge.modbus_source import ModbusSource, modbus_sources, plan_reads
from shopfloor.diskqueue import DiskQueue
from shopfloor.messages import AssetPath, Reading
from shopfloor.modbus import (
    METER_REGISTERS,
    MeterModel,
    RegisterTable,
    RegisterType,
    decode_registers,
    encode_registers,
)
from shopfloor.plant import DEFAULT_OPCUA_NAMESPACE, Plant, load_plant
from simulators.modbus import CLOCK_ADDRESS
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import Mosquitto, free_port, port_open, require_binary
from tests.test_edge_agent import run
from tests.test_edge_config import assert_refused_at, write_config
from tests.test_end_to_end import plant_on_free_ports, shopfloor, stop_all, wait_until

INPUT, HOLDING = RegisterTable.INPUT, RegisterTable.HOLDING
FLOAT32 = RegisterType.FLOAT32

# --- the register maps, encodings and requests ------------------------------------------------


def test_presets_are_the_published_register_maps() -> None:
    """Eastron's protocol documents: 30053 total power, 30073 import kWh, 30071 frequency..."""
    sdm630, sdm120 = METER_REGISTERS[MeterModel.SDM630], METER_REGISTERS[MeterModel.SDM120]
    assert [sdm630[q].address for q in ("l2_voltage", "power", "frequency", "import_energy")] == [
        2, 52, 70, 72,
    ]  # fmt: skip
    assert [sdm120[q].address for q in ("voltage", "power", "import_energy", "total_energy")] == [
        0, 12, 72, 342,
    ]  # fmt: skip
    quantities = [*sdm630.values(), *sdm120.values()]
    assert {(q.table, q.type) for q in quantities} == {(INPUT, FLOAT32)}
    assert (sdm630["power"].unit, sdm630["import_energy"].unit) == ("W", "kWh")


@pytest.mark.parametrize(
    ("word_order", "byte_order", "registers"),
    [
        ("big", "big", [0x4366, 0x8000]),  # 230.5 as Modbus sends it: ABCD
        ("little", "big", [0x8000, 0x4366]),  # CDAB, many PLCs
        ("big", "little", [0x6643, 0x0080]),  # BADC
        ("little", "little", [0x0080, 0x6643]),  # DCBA
    ],
)
def test_word_and_byte_orders(word_order: str, byte_order: str, registers: list[int]) -> None:
    orders = {"word_order": word_order, "byte_order": byte_order}
    assert encode_registers(230.5, FLOAT32, **orders) == registers  # type: ignore[arg-type]
    assert decode_registers(registers, FLOAT32, **orders) == 230.5  # type: ignore[arg-type]
    assert decode_registers([0xFFFE], RegisterType.INT16) == -2


def spec(address: int, table: RegisterTable = INPUT, kind: RegisterType = FLOAT32) -> RegisterSpec:
    return RegisterSpec(table=table, address=address, type=kind)


def test_reads_are_planned_in_as_few_requests_as_the_protocol_allows() -> None:
    blocks = plan_reads(
        [
            spec(4),
            spec(0),
            spec(2),
            spec(3),  # touching and overlapping: one request
            spec(72),  # a gap: another
            spec(0, HOLDING, RegisterType.UINT16),  # another table: another
            *(spec(200 + 2 * n) for n in range(70)),  # 140 registers: past 125, two requests
            *(spec(n, RegisterTable.COIL) for n in range(2001)),  # 2001 coils: two
        ]
    )
    assert [(b.table, b.address, b.count) for b in blocks] == [
        (HOLDING, 0, 1),
        (INPUT, 0, 6), (INPUT, 72, 2), (INPUT, 200, 124), (INPUT, 324, 16),
        (RegisterTable.COIL, 0, 2000), (RegisterTable.COIL, 2000, 1),
    ]  # fmt: skip


# --- edge check: a config's mistakes, located -----------------------------------------------

BAD_CONFIGS = [
    ("modbus:\n  - {machine: imm-99}\n", 5, "modbus[0].machine", "names no machine of the plant"),
    ("modbus:\n  - {machine: env-01}\n", 5, "modbus[0].machine", "names no machine of the plant"),
    ("modbus:\n  - {asset: env-01, endpoint: 'tcp://h'}\n", 5, "modbus[0].registers", "name the registers to read"),
    ("modbus:\n  - {machine: imm-01, asset: env-01}\n", 5, "modbus[0]", "name either the machine or the asset"),
    ("modbus:\n  - {machine: imm-01, endpoint: 'tcp://h:99999'}\n", 5, "modbus[0].endpoint", "the port is not a number"),
    ("modbus:\n  - {machine: imm-01, endpoint: 'rtu:///dev/ttyUSB0?parity=X'}\n", 5, "modbus[0].endpoint", "parity is N, E or O"),
    ("modbus:\n  - {machine: imm-01, endpoint: 'opc.tcp://h:4840'}\n", 5, "modbus[0].endpoint", "is not a Modbus endpoint like tcp://"),
    (
        "modbus:\n  - machine: imm-01\n    registers:\n      - {signal: power, quantity: watts}\n",
        7, "modbus[0].registers[0].quantity", "unknown quantity (one of l1_voltage,",
    ),
    (
        "modbus:\n  - machine: imm-01\n    registers:\n      - {signal: melt_temperature, quantity: power}\n",
        7, "modbus[0].registers[0].scale", "give a scale: sdm630 reads it in 'W', the signal is in 'degC'",
    ),
    (
        "modbus:\n  - machine: imm-01\n    registers:\n      - {signal: power, table: coil, address: 3}\n",
        7, "modbus[0].registers[0].table", "a coil reads boolean values: signal 'power' is number",
    ),
    (
        "modbus:\n  - machine: imm-01\n    registers:\n      - {signal: state, address: 3}\n",
        7, "modbus[0].registers[0].table", "a register reads number values: signal 'state' is text",
    ),
    (
        "modbus:\n  - machine: imm-01\n    registers:\n      - {signal: power, address: 65535, type: float32}\n",
        7, "modbus[0].registers[0].address", "runs past the last address",
    ),
    (
        "modbus:\n  - machine: imm-01\n    registers:\n      - {signal: power, address: 3, quantity: power}\n",
        7, "modbus[0].registers[0]", "give either an address or a quantity",
    ),
    (
        "modbus:\n  - {machine: imm-01}\n  - machine: imm-01\n    registers:\n      - {signal: energy, address: 9}\n",
        8, "modbus[1].registers[0].signal", "is already read by modbus[0].registers[1]: one source per signal",
    ),
    (
        "modbus:\n  - {machine: imm-01, endpoint: 'rtu:///dev/ttyUSB0'}\n"
        "  - {machine: cnc-01, endpoint: 'rtu:///dev/ttyUSB0?baudrate=2400', unit: 2}\n",
        6, "modbus[1].endpoint", "the devices on /dev/ttyUSB0 need the same serial settings",
    ),
    (
        "opcua:\n  - machine: imm-01\n    nodes:\n      - {signal: power, node: 'ns=2;s=P'}\n"
        "modbus:\n  - {machine: imm-01}\n",
        9, "modbus[0].registers[0].signal", "is already read by opcua[0].nodes[0]: one source per signal",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "line", "field", "problem"), BAD_CONFIGS)
def test_bad_modbus_config_is_one_located_line(
    tmp_path: Path, body: str, line: int, field: str, problem: str
) -> None:
    assert_refused_at(tmp_path, body, line, field, problem)


def test_edge_check_names_the_modbus_devices_or_the_mistake(tmp_path: Path) -> None:
    devices = (
        "modbus:\n  - {machine: imm-01}\n  - machine: pack-01\n"
        "    endpoint: 'rtu:///dev/ttyUSB0?baudrate=2400&parity=N&stopbits=1'\n"
    )
    checked = run("edge", "check", str(write_config(tmp_path, devices)))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.rstrip().endswith(
        "Modbus devices imm-01@tcp://127.0.0.1:5021, "
        "pack-01@rtu:///dev/ttyUSB0?baudrate=2400&parity=N&stopbits=1"
    )
    wrong = run("edge", "check", str(write_config(tmp_path, devices.replace("01}", "09}"))))
    assert wrong.returncode == 2
    assert wrong.stderr.strip().endswith(
        "edge.yaml:4: modbus[0].machine: names no machine of the plant"
    )


def test_a_meter_read_over_modbus_is_left_out_of_its_machines_opc_ua_nodes(
    tmp_path: Path,
) -> None:
    """One source per signal: the plant's meter address and model fill in the device, whose
    power and energy the machine's OPC UA server is then not asked for."""
    body = "device: pi-1\nmodbus:\n  - {machine: imm-01}\n"
    config, plant = load_edge_config(write_config(tmp_path, body))
    queue = DiskQueue(tmp_path / "queue.db", 1 << 20, 3600)
    try:
        agent = EdgeAgent(config, plant, queue)
        (meter,) = agent.modbus
        assert (meter.target.name, meter.target.unit) == ("imm-01@tcp://127.0.0.1:5021", 1)
        registers = [(r.signal, r.table, r.address, r.scale) for r in meter.device.registers]
        assert registers == [("power", INPUT, 52, 0.001), ("energy", INPUT, 72, 1.0)]
        nodes = {s.target.machine_id: {n.signal.id for n in s.target.nodes} for s in agent.sources}
        assert "power" not in nodes["imm-01"] and "melt_temperature" in nodes["imm-01"]
        assert {"power", "energy"} <= nodes["cnc-01"]
        meter.errors["timeout"] = 3
        status = agent.status()
        assert (status.sources_total, status.source_errors) == (
            4,
            {meter.target.name: {"timeout": 3}},
        )
        assert "imm-01@tcp://127.0.0.1:5021" in status.sources_lost
        assert (
            'shopfloor_edge_source_errors_total{device="pi-1",'
            'source="imm-01@tcp://127.0.0.1:5021",kind="timeout"} 3\n'
        ) in prometheus_text(status)
        agent.mqtt.loop_stop()
    finally:
        queue.close()


# --- real servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated_plant(
    mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plant]:
    """The example plant served by a simulator process: OPC UA servers and Modbus meters."""
    directory = tmp_path_factory.mktemp("modbus-floor")
    plant_file = plant_on_free_ports(directory)
    plant = load_plant(plant_file)
    ports = [
        int(m.energy_meter.modbus.endpoint.rsplit(":", 1)[1])
        for _, m in plant.machines()
        if m.energy_meter and m.energy_meter.modbus
    ]
    args = ["--plant", str(plant_file), "--broker", mosquitto.url]
    simulator = shopfloor("simulate", *args, log=directory / "simulate.log")
    try:
        wait_until(lambda: all(port_open(port) for port in ports), 60, "the simulated meters")
        yield plant
    finally:
        stop_all([simulator])


async def read_for(
    seconds: float, plant: Plant, *devices: ModbusDevice
) -> tuple[list[ModbusSource], list[Reading]]:
    """Run a source per device for `seconds`; the sources and every reading they emitted."""
    readings: list[Reading] = []

    def keep(path: AssetPath, reading: Reading) -> None:
        readings.append(reading)

    sources = modbus_sources(devices, plant, keep)
    tasks = [asyncio.create_task(source.run()) for source in sources]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sources, readings


async def opcua_value(plant: Plant, machine_id: str, signal: str) -> tuple[float, datetime]:
    machine = next(m for _, m in plant.machines() if m.id == machine_id)
    assert machine.opcua is not None
    async with Client(machine.opcua.endpoint) as client:
        index = await client.get_namespace_index(DEFAULT_OPCUA_NAMESPACE)
        data = await client.get_node(f"ns={index};s={machine_id}.{signal}").read_data_value()
    return data.Value.Value, data.SourceTimestamp.replace(tzinfo=UTC)


@pytest.mark.asyncio
async def test_the_simulators_meter_read_over_modbus_tcp_agrees_with_its_opc_ua_server(
    simulated_plant: Plant,
) -> None:
    clock = ModbusClock(table=INPUT, address=CLOCK_ADDRESS, type=RegisterType.FLOAT64)
    device = ModbusDevice(machine="imm-01", interval_ms=100, ts=clock)
    (source,), readings = await read_for(1.0, simulated_plant, device)
    energy, stamped = await opcua_value(simulated_plant, "imm-01", "energy")
    assert source.connected and source.errors == {}
    modbus_energy = [r for r in readings if r.signal == "energy"]
    assert {r.signal for r in readings} == {"power", "energy"} and modbus_energy
    last = modbus_energy[-1]
    # float32 on the wire; the simulation runs on between the two reads (22 kW: 0.006 kWh/s)
    assert last.value == pytest.approx(energy, abs=0.02)
    assert abs((last.ts - stamped).total_seconds()) < 2  # the simulator's clock, not arrival
    assert all(0 <= float(r.value) < 40 for r in readings if r.signal == "power")  # kW, not W
    assert last.unit == "kWh"


@pytest.mark.asyncio
async def test_modbus_mistakes_are_counted_per_device_and_said_once(
    simulated_plant: Plant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.modbus_source")
    wrong_unit = ModbusDevice(machine="imm-01", unit=7, interval_ms=100)
    one_based = ModbusDevice(
        machine="cnc-01",
        interval_ms=100,
        registers=[  # the manual's 30053 taken for 53: the second half of a float
            ModbusRegister(signal="power", table=INPUT, address=53, type=FLOAT32, scale=0.001),
            ModbusRegister(signal="energy", quantity="import_energy"),
        ],
    )
    swapped = ModbusDevice(  # 230 V read low word first: 2.4e-41
        machine="pack-01",
        interval_ms=100,
        registers=[
            ModbusRegister(signal="belt_speed", quantity="voltage", word_order="little", scale=1.0)
        ],
    )
    sources, readings = await read_for(1.0, simulated_plant, wrong_unit, one_based, swapped)
    unit, address, order = sources
    assert not unit.connected and set(unit.errors) == {"exception 11"}
    assert unit.errors["exception 11"] >= 5  # every request, every 100 ms
    assert address.connected and set(address.errors) == {"exception 2"}
    assert [r.signal for r in readings if r.signal == "energy"][:1] == ["energy"]
    assert order.rejected >= 5 and order.errors == {}
    said = [r.getMessage() for r in caplog.records]
    assert said.count(
        "imm-01@tcp://127.0.0.1:"
        + unit.target.name.rsplit(":", 1)[1]
        + ": reading input 52-53: exception 11, gateway target failed to respond: "
        "is the unit id right?"
    ) == 1  # fmt: skip
    assert any("exception 2, illegal data address: addresses are 0-based" in m for m in said)
    assert said.count(
        f"{order.target.name}: belt_speed reads 2.4178e-41 at input 0: "
        "check word_order, byte_order and the address"
    ) == 1  # fmt: skip


def start_meters(endpoint: str, *options: str, energy_kwh: float = 42.25) -> subprocess.Popen[str]:
    """A meter process (tests/modbus_meter.py) drawing 1.5 kW, once it listens."""
    meters = subprocess.Popen(
        [sys.executable, "-m", "tests.modbus_meter", endpoint, *options, "--power-kw", "1.5",
         "--energy-kwh", str(energy_kwh)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert meters.stdout is not None and meters.stdout.readline() == "listening\n"
    return meters


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_a_meter_that_goes_away_is_read_again_once_it_is_back() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    device = ModbusDevice(machine="imm-01", endpoint=endpoint, interval_ms=100, timeout_ms=200)
    energies: list[float] = []
    (source,) = modbus_sources(
        [device], load_plant(EXAMPLE_PLANT), lambda path, r: energies.append(float(r.value))
    )
    meter = start_meters(endpoint, "--unit", "1")
    task = asyncio.create_task(source.run())
    try:
        await until(lambda: 42.25 in energies, 5, "reading")
        meter.terminate()
        meter.wait(5)
        await until(lambda: not source.connected, 5, "lost connection")
        assert source.down_since is not None
        meter = start_meters(endpoint, "--unit", "1", energy_kwh=43.5)
        await until(lambda: 43.5 in energies, 10, "reading after the restart")  # back-off <= 5 s
        assert source.connected and source.reconnects >= 1 and source.down_since is None
    finally:
        task.cancel()
        meter.terminate()
        meter.wait(5)


# --- RTU on a virtual serial pair -------------------------------------------------------------


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two pseudo-terminals joined by socat, as an RS-485 adapter and the meter at its end."""
    socat = require_binary("socat")
    near, far = tmp_path / "ttyEDGE", tmp_path / "ttyMETER"
    process = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={near}", f"pty,raw,echo=0,link={far}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (near.exists() and far.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield near, far
    finally:
        process.terminate()
        process.wait(5)


@pytest.mark.asyncio
async def test_two_sdm120s_on_one_rs485_bus_read_over_modbus_rtu(
    serial_pair: tuple[Path, Path],
) -> None:
    """Two meters daisy-chained on one bus: one serial port, requests taking turns."""
    near, far = serial_pair
    meters = start_meters(f"rtu://{far}", "--unit", "2", "--unit", "3", "--model", "sdm120")
    try:
        plant = load_plant(EXAMPLE_PLANT)
        bus = f"rtu://{near}?baudrate=9600&parity=N&stopbits=1"
        packer = ModbusDevice(machine="pack-01", endpoint=bus, unit=2, interval_ms=200)
        trimmer = ModbusDevice(
            machine="cnc-01", endpoint=bus, unit=3, preset=MeterModel.SDM120, interval_ms=200
        )
        sources, readings = await read_for(1.0, plant, packer, trimmer)
    finally:
        meters.terminate()
        meters.wait(5)
    assert [(s.connected, s.errors) for s in sources] == [(True, {}), (True, {})]
    assert sources[0].line is sources[1].line
    assert {(r.signal, r.value, r.unit) for r in readings} == {
        ("power", 1.5, "kW"), ("energy", 42.25, "kWh"),
    }  # fmt: skip
    assert len(readings) == 4  # each value once: unchanged values are not sent again


@pytest.mark.asyncio
async def test_an_rtu_line_nobody_answers_times_out_and_counts_as_disconnected(
    serial_pair: tuple[Path, Path],
) -> None:
    near, _ = serial_pair
    plant = load_plant(EXAMPLE_PLANT)
    device = ModbusDevice(
        machine="pack-01", endpoint=f"rtu://{near}", unit=2, interval_ms=100, timeout_ms=100
    )
    (source,), readings = await read_for(1.0, plant, device)
    assert readings == [] and not source.connected
    assert set(source.errors) == {"timeout"} and source.errors["timeout"] >= 3
    assert source.down_since is not None
