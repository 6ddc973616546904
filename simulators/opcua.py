"""One asyncua server per simulated machine.

Address space: an object named after the machine under Objects, holding one variable per
signal of the plant file, with node ids `ns=<i>;s=<machine>.<signal>` in the namespace the
plant file names (or the node id the plant file gives). Variables are writable so that a demo
conductor or a test can change a value from any OPC UA client.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

from asyncua import Server, ua

from shopfloor.plant import Machine, OpcUaEndpoint

log = logging.getLogger(__name__)


def _variant_type(value: float | int | str) -> ua.VariantType:
    if isinstance(value, str):
        return ua.VariantType.String
    if isinstance(value, int):
        return ua.VariantType.Int64
    return ua.VariantType.Double


class MachineServer:
    """An OPC UA server exposing one machine's signals."""

    def __init__(self, machine: Machine, endpoint: OpcUaEndpoint, bind_host: str):
        self.machine = machine
        self.endpoint = endpoint
        port = urlsplit(endpoint.endpoint).port
        self.url = f"opc.tcp://{bind_host}:{port}/"
        self.server = Server()
        self._nodes: dict[str, tuple[ua.NodeId, ua.VariantType]] = {}

    async def start(self, initial: dict[str, float | int | str]) -> None:
        await self.server.init()
        self.server.set_endpoint(self.url)
        self.server.set_server_name(f"shopfloor simulator: {self.machine.name}")
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        namespace = await self.server.register_namespace(self.endpoint.namespace)
        machine_object = await self.server.nodes.objects.add_object(
            ua.NodeId(self.machine.id, namespace), ua.QualifiedName(self.machine.id, namespace)
        )
        for signal in self.machine.signals:
            node_id = ua.NodeId.from_string(self.machine.node_id(signal, namespace))
            variant_type = _variant_type(initial[signal.id])
            variable = await machine_object.add_variable(
                node_id,
                ua.QualifiedName(signal.id, namespace),
                ua.Variant(initial[signal.id], variant_type),
            )
            await variable.set_writable()
            self._nodes[signal.id] = (node_id, variant_type)
        await self.server.start()
        log.info("OPC UA server for %s listening on %s", self.machine.id, self.url)

    async def publish(self, values: dict[str, float | int | str]) -> None:
        """Write the machine's current values, stamped now, into its address space."""
        now = datetime.now(UTC)
        for signal_id, value in values.items():
            node_id, variant_type = self._nodes[signal_id]
            data = ua.DataValue(
                ua.Variant(value, variant_type), SourceTimestamp=now, ServerTimestamp=now
            )
            await self.server.write_attribute_value(node_id, data)

    async def stop(self) -> None:
        await self.server.stop()
