"""Async fixtures for the tests that talk OPC UA: the simulator's machine server and asyncua
clients, opened in the test's own event loop and closed after it even when it fails; and
`eventually`, the wait that leaves that loop running."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Protocol

import pytest_asyncio
from asyncua import Client

from shopfloor.plant import Machine
from simulators.opcua import MachineServer, ServerSecurity, Value


class NoControls:
    """The machine's Start/Stop/InjectFault methods, for servers whose tests do not call them."""

    def start_machine(self, machine_id: str) -> None: ...

    def stop_machine(self, machine_id: str) -> None: ...

    def inject_fault(self, machine_id: str, fault: str, duration_s: float) -> str:
        return ""


class ServeMachine(Protocol):
    async def __call__(
        self,
        machine: Machine,
        initial: dict[str, Value],
        at: datetime | None = None,
        security: ServerSecurity | None = None,
    ) -> MachineServer: ...


class ConnectClient(Protocol):
    async def __call__(self, endpoint: str) -> Client: ...


@pytest_asyncio.fixture
async def opcua_server() -> AsyncIterator[ServeMachine]:
    """Serves a machine of the plant on 127.0.0.1 as the simulator does (`MachineServer.start`
    with `initial` and `at`); every server started is stopped after the test."""
    servers: list[MachineServer] = []

    async def serve(
        machine: Machine,
        initial: dict[str, Value],
        at: datetime | None = None,
        security: ServerSecurity | None = None,
    ) -> MachineServer:
        assert machine.opcua is not None
        server = MachineServer(machine, machine.opcua, "127.0.0.1", NoControls(), security)
        await server.start(initial, at)
        servers.append(server)
        return server

    yield serve
    for server in reversed(servers):
        await server.stop()


@pytest_asyncio.fixture
async def opcua_client() -> AsyncIterator[ConnectClient]:
    """Connects an asyncua client with a session to an endpoint; every one is disconnected
    after the test. Asked for after `opcua_server`, clients leave before their server stops."""
    clients: list[Client] = []

    async def connect(endpoint: str) -> Client:
        client = Client(endpoint, timeout=10)
        await client.connect()
        clients.append(client)
        return client

    yield connect
    for client in reversed(clients):
        await client.disconnect()


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout_s: float, what: str
) -> None:
    """Poll `condition`, plain or a coroutine, until it holds; sleeping in between lets the
    servers, clients and sources of the same loop go on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        held = condition()
        if await held if inspect.isawaitable(held) else held:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)
