"""One pymodbus TCP server per simulated energy meter, with the register map of its model.

A machine whose plant entry gives its energy meter a Modbus address (`energy_meter.modbus`)
has its meter served there, as the real meter would answer: input registers with float32
values, high word first (`shopfloor.modbus.METER_REGISTERS`), from the simulation's power and
energy; voltages and frequency at their nominal values. Beyond the real meter's map, input
registers 4096-4099 hold the simulated clock (float64 seconds since 1970, UTC): a demo's edge
reads it (`ts` of its Modbus device) so that the meter's readings carry the simulation's time,
which runs apart from the wall clock. The holding register 20 holds the meter's unit id, as
an Eastron keeps its own Modbus address there.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from shopfloor.modbus import (
    ENERGY,
    METER_REGISTERS,
    POWER,
    MeterModel,
    RegisterType,
    TcpEndpoint,
    encode_registers,
    parse_endpoint,
)
from shopfloor.plant import MeterModbus

log = logging.getLogger(__name__)

CLOCK_ADDRESS = 4096  # input registers, float64: the simulated time
NOMINAL_VOLTAGE, NOMINAL_FREQUENCY = 230.0, 50.0
_UNIT_ID_ADDRESS = 20  # holding, float32


def meter_values(model: MeterModel, power_kw: float, energy_kwh: float) -> dict[str, float]:
    """Every quantity of the meter's map for a machine drawing `power_kw` (unity power factor,
    balanced phases); a quantity the simulation has no figure for reads 0."""
    watts = power_kw * 1000
    phases = 3 if model is MeterModel.SDM630 else 1
    per_phase = {
        "voltage": NOMINAL_VOLTAGE,
        "current": watts / phases / NOMINAL_VOLTAGE,
        "power": watts / phases,
    }
    values = {
        POWER: watts,
        "apparent_power": watts,
        "power_factor": 1.0,
        "frequency": NOMINAL_FREQUENCY,
        ENERGY: energy_kwh,
        "total_energy": energy_kwh,
    }
    if phases == 1:
        values |= per_phase
    else:
        values |= {f"l{n}_{name}": v for n in (1, 2, 3) for name, v in per_phase.items()}
    return {quantity: values.get(quantity, 0.0) for quantity in METER_REGISTERS[model]}


class MeterServer:
    """Serves one machine's energy meter over Modbus TCP; `publish` sets what it reads."""

    def __init__(self, machine_id: str, meter: MeterModbus, bind_host: str):
        self.machine_id, self.meter, self.bind_host = machine_id, meter, bind_host
        self._registers: dict[int, int] = {}  # input address -> word
        self._server: ModbusTcpServer | None = None

    async def start(self, power_kw: float, energy_kwh: float, at: datetime) -> None:
        """Serve the meter on its endpoint's port (a tcp:// one), on the bind host."""
        endpoint = parse_endpoint(self.meter.endpoint)
        assert isinstance(endpoint, TcpEndpoint), "the simulator serves tcp:// meters only"
        self.publish(power_kw, energy_kwh, at)
        self._server = ModbusTcpServer(self.devices(), address=(self.bind_host, endpoint.port))
        await self._server.serve_forever(background=True)
        model = self.meter.model.value
        url = f"tcp://{self.bind_host}:{endpoint.port}"
        log.info("Modbus meter of %s (%s) listening on %s", self.machine_id, model, url)

    def devices(self) -> list[SimDevice]:
        """The meter at its unit id, and any other unit id answered as a Modbus gateway answers
        for a device it cannot reach (exception 11), not left to time out on every request."""
        return [self.device(), self._device(0, _unreachable)]

    def device(self) -> SimDevice:
        """The meter alone, at its unit id (one of several on a simulated RS-485 bus)."""
        return self._device(self.meter.unit, self._current)

    def _device(self, unit: int, action: SimAction) -> SimDevice:
        inputs = [
            SimData(address, values=0, datatype=DataType.REGISTERS)
            for address in sorted(self._registers)
        ]
        unit_id = float(self.meter.unit)
        holding = [SimData(_UNIT_ID_ADDRESS, values=unit_id, datatype=DataType.FLOAT32)]
        coils = [SimData(0, values=False, datatype=DataType.BITS)]
        discrete = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(unit, simdata=(coils, discrete, holding, inputs), action=action)

    def publish(self, power_kw: float, energy_kwh: float, at: datetime) -> None:
        """What the meter reads from now on, stamped with the simulated time `at`."""
        words: dict[int, int] = {}
        values = meter_values(self.meter.model, power_kw, energy_kwh)
        for name, quantity in METER_REGISTERS[self.meter.model].items():
            encoded = encode_registers(values[name], quantity.type)
            words |= {quantity.address + i: word for i, word in enumerate(encoded)}
        clock = encode_registers(at.timestamp(), RegisterType.FLOAT64)
        words |= {CLOCK_ADDRESS + i: word for i, word in enumerate(clock)}
        self._registers = words

    async def _current(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus' hook before each request: put the latest values into its input block."""
        if function_code == 4:
            for offset in range(count):
                word = self._registers.get(address + offset)
                if word is not None:
                    registers[address + offset - start_address] = word
        return None

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]


async def _unreachable(*request: object) -> ExcCodes:
    return ExcCodes.GATEWAY_NO_RESPONSE
