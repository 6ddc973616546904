"""Simulated energy meters as a process of their own: on one RS-485 bus answering Modbus RTU
(the tests' far end of a virtual serial pair), or behind a Modbus TCP port:

    python -m tests.modbus_meter rtu:///dev/pts/7 --unit 2 --unit 3 --model sdm120 \\
        --power-kw 1.5 --energy-kwh 42.25
    python -m tests.modbus_meter tcp://127.0.0.1:5020 --unit 1 --power-kw 1.5 --energy-kwh 42

A unit id that no meter has gets no answer, as on a real bus.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from shopfloor.modbus import MeterModel, TcpEndpoint, parse_endpoint
from shopfloor.plant import MeterModbus
from simulators.modbus import MeterServer


async def serve(args: argparse.Namespace) -> None:
    meters = []
    for unit in args.unit:
        meter = MeterModbus(endpoint=args.endpoint, unit=unit, model=args.model)
        simulated = MeterServer(f"meter-{unit}", meter, "")
        simulated.publish(args.power_kw, args.energy_kwh, datetime.now(UTC))
        meters.append(simulated)
    devices = [meter.device() for meter in meters]
    endpoint = parse_endpoint(args.endpoint)
    server = (
        ModbusTcpServer(devices, address=(endpoint.host, endpoint.port))
        if isinstance(endpoint, TcpEndpoint)
        else ModbusSerialServer(devices, port=endpoint.device, baudrate=endpoint.baudrate)
    )
    await server.serve_forever(background=True)
    print("listening", flush=True)  # the test starts reading once it is
    await server.serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--unit", type=int, action="append", required=True)
    parser.add_argument("--model", type=MeterModel, default=MeterModel.SDM630)
    parser.add_argument("--power-kw", type=float, required=True)
    parser.add_argument("--energy-kwh", type=float, required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
