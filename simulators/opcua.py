"""One asyncua server per simulated machine.

Address space, after OPC UA for Machinery (OPC 40001-1) where it fits::

    Objects/
      <machine id>/                       the machine
        Identification/                   Manufacturer, Model, ProductInstanceUri, MachineType
        <signal>  ns=<i>;s=<machine>.<signal>   one variable per signal of the plant file
                                          (state, part_count, reject_count, power, energy, ...)
        Start()                           release an operator stop
        Stop()                            operator stop (a planned stop until Start)
        InjectFault(fault: String, durationSeconds: Double) -> String   the fault's event start

The namespace is the one the plant file names (`opcua.namespace`). Values carry the simulated
clock's time as their source timestamp. Signal variables are writable, so any OPC UA client can
change a value during a demo.

Servers are open (no security, anonymous) unless given a `ServerSecurity`: then Basic256Sha256
with Sign & Encrypt is the only endpoint and, when users are named, anonymous clients are
refused, as on a machine whose integrator did the job properly.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from asyncua import Server, ua, uamethod
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeValue, NodeData
from asyncua.server.internal_server import InternalServer

from shopfloor.plant import Machine, OpcUaEndpoint

log = logging.getLogger(__name__)

Value = float | int | str


class MachineControls(Protocol):
    """What the methods of a machine's object do; the live simulator provides it."""

    def start_machine(self, machine_id: str) -> None: ...

    def stop_machine(self, machine_id: str) -> None: ...

    def inject_fault(self, machine_id: str, fault: str, duration_s: float) -> str: ...


@dataclass(frozen=True)
class ServerSecurity:
    certificate: Path
    private_key: Path
    users: dict[str, str] = field(default_factory=dict)  # name -> password


class _PasswordUsers:
    """asyncua's user manager: a named user with the right password, nobody else."""

    def __init__(self, users: dict[str, str]):
        self.users = users

    def get_user(
        self,
        iserver: object,
        username: str | None = None,
        password: str | None = None,
        certificate: object = None,
    ) -> User | None:
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class _StandardNodes:
    """The standard OPC UA address space, built once per process and copied into each further
    server: asyncua's generated code takes 1-2.5 s of CPU to build its 6,000 nodes, a copy
    about a tenth of that, so a plant's servers start in little more time than one."""

    template: dict[ua.NodeId, NodeData] | None = None

    @classmethod
    def remember(cls, space: AddressSpace) -> None:
        nodes = space.keys()  # an AddressSpace has keys() but no iteration of its own
        cls.template = {node_id: _copy_node(space[node_id]) for node_id in nodes}

    @classmethod
    def copy_into(cls, space: AddressSpace) -> bool:
        """Fill `space` from the template; False if there is none yet."""
        if cls.template is None:
            return False
        for node_id, node in cls.template.items():
            space[node_id] = _copy_node(node)
        return True


def _copy_node(node: NodeData) -> NodeData:
    """A node of its own: its attributes and references (which the server writes and renames in
    place) copied, the values they hold shared (a write replaces a value, never changes it)."""
    copied = NodeData(node.nodeid)
    copied.attributes = {name: AttributeValue(held.value) for name, held in node.attributes.items()}
    copied.references = [copy.copy(reference) for reference in node.references]
    return copied


class _InternalServer(InternalServer):  # type: ignore[misc]  # asyncua's types are Any here
    """asyncua's server core, with its standard address space copied rather than rebuilt."""

    async def load_standard_address_space(self, shelf_file: Path | None = None) -> None:
        if not _StandardNodes.copy_into(self.aspace):
            await super().load_standard_address_space(shelf_file)
            _StandardNodes.remember(self.aspace)


def _variant_type(value: Value) -> ua.VariantType:
    if isinstance(value, str):
        return ua.VariantType.String
    if isinstance(value, int):
        return ua.VariantType.Int64
    return ua.VariantType.Double


class MachineServer:
    """An OPC UA server exposing one machine's signals and controls."""

    def __init__(
        self,
        machine: Machine,
        endpoint: OpcUaEndpoint,
        bind_host: str,
        controls: MachineControls,
        security: ServerSecurity | None = None,
    ):
        self.machine, self.endpoint, self.controls = machine, endpoint, controls
        self.security = security
        port = urlsplit(endpoint.endpoint).port
        self.url = f"opc.tcp://{bind_host}:{port}/"
        users = _PasswordUsers(security.users) if security and security.users else None
        self.server = Server(iserver=_InternalServer(user_manager=users))
        self._nodes: dict[str, tuple[ua.NodeId, ua.VariantType]] = {}

    async def start(self, initial: dict[str, Value], at: datetime | None = None) -> None:
        """Serve the machine's signals from `initial`, stamped with the simulated time `at`
        (default: now). A value stamped later than the simulator's next write would outlive
        it in every store, as a machine stuck in its first state."""
        await self.server.init()
        self.server.set_endpoint(self.url)
        self.server.set_server_name(f"shopfloor simulator: {self.machine.name}")
        await self._secure()
        namespace = await self.server.register_namespace(self.endpoint.namespace)
        machine_object = await self.server.nodes.objects.add_object(
            ua.NodeId(self.machine.id, namespace), ua.QualifiedName(self.machine.id, namespace)
        )
        await self._add_identification(machine_object, namespace)
        for signal in self.machine.signals:
            value = initial.get(signal.id, 0.0)
            node_id = ua.NodeId.from_string(self.machine.node_id(signal, namespace))
            variant_type = _variant_type(value)
            variable = await machine_object.add_variable(
                node_id, ua.QualifiedName(signal.id, namespace), ua.Variant(value, variant_type)
            )
            await variable.set_writable()
            self._nodes[signal.id] = (node_id, variant_type)
        if at is not None:
            await self.publish({s: v for s, v in initial.items() if s in self._nodes}, at)
        await self._add_methods(machine_object, namespace)
        await self.server.start()
        log.info("OPC UA server for %s listening on %s", self.machine.id, self.url)

    async def _secure(self) -> None:
        if self.security is None:
            self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            return
        await self.server.load_certificate(str(self.security.certificate))
        await self.server.load_private_key(str(self.security.private_key))
        self.server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        if self.security.users:
            self.server.set_identity_tokens([ua.UserNameIdentityToken])

    async def _add_identification(self, machine_object: Any, namespace: int) -> None:
        folder = await machine_object.add_folder(namespace, "Identification")
        for name, value in (
            ("Manufacturer", "shopfloor simulator"),
            ("Model", self.machine.type.value),
            ("ProductInstanceUri", f"{self.endpoint.namespace}:{self.machine.id}"),
            ("MachineName", self.machine.name),
        ):
            await folder.add_property(namespace, name, value)

    async def _add_methods(self, machine_object: Any, namespace: int) -> None:
        machine_id, controls = self.machine.id, self.controls

        @uamethod  # type: ignore[untyped-decorator]
        def start(parent: object) -> None:
            controls.start_machine(machine_id)

        @uamethod  # type: ignore[untyped-decorator]
        def stop(parent: object) -> None:
            controls.stop_machine(machine_id)

        @uamethod  # type: ignore[untyped-decorator]
        def inject(parent: object, fault: str, duration_s: float) -> str:
            try:
                return controls.inject_fault(machine_id, fault, duration_s)
            except (KeyError, ValueError) as exc:
                raise ua.UaStatusCodeError(ua.StatusCodes.BadInvalidArgument) from exc

        await machine_object.add_method(namespace, "Start", start, [], [])
        await machine_object.add_method(namespace, "Stop", stop, [], [])
        await machine_object.add_method(
            namespace,
            "InjectFault",
            inject,
            [ua.VariantType.String, ua.VariantType.Double],
            [ua.VariantType.String],
        )

    async def publish(self, values: dict[str, Value], at: datetime) -> None:
        """Write the machine's current values, stamped with the simulated time `at`."""
        for signal_id, value in values.items():
            node_id, variant_type = self._nodes[signal_id]
            data = ua.DataValue(
                ua.Variant(value, variant_type), SourceTimestamp=at, ServerTimestamp=at
            )
            await self.server.write_attribute_value(node_id, data)

    @property
    def watched(self) -> bool:
        """Whether a client (the edge agent) subscribes to this server."""
        return bool(self.server.iserver.subscription_service.subscriptions)

    async def stop(self) -> None:
        await self.server.stop()
