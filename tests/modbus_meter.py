"""A simulated energy meter answering Modbus RTU on a serial port, as a process of its own
(the tests' far end of a virtual serial pair):

    python -m tests.modbus_meter /dev/pts/7 --unit 2 --model sdm120 --power-kw 1.5 --energy-kwh 42
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from pymodbus.server import ModbusSerialServer

from shopfloor.modbus import MeterModel
from shopfloor.plant import MeterModbus
from simulators.modbus import MeterServer


async def serve(args: argparse.Namespace) -> None:
    meter = MeterModbus(endpoint=f"rtu://{args.port}", unit=args.unit, model=args.model)
    server = MeterServer("meter", meter, "")
    server.publish(args.power_kw, args.energy_kwh, datetime.now(UTC))
    serial = ModbusSerialServer(server.devices(), port=args.port, baudrate=9600)
    await serial.serve_forever(background=True)
    print("listening", flush=True)  # the test starts reading once it is
    await serial.serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port")
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--model", type=MeterModel, default=MeterModel.SDM630)
    parser.add_argument("--power-kw", type=float, required=True)
    parser.add_argument("--energy-kwh", type=float, required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
