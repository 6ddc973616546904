"""Walks an OPC UA server's address space and writes a starter edge config for it.

Retrofitting starts with "what does this PLC expose?". `shopfloor edge browse` answers with a
file the agent can run: one mapping per readable scalar variable, each commented with its
browse path, type and current value, ready to be pruned and renamed. Node ids are written with
their namespace URI (`nsu=`), which survives a server that renumbers its namespaces. The user
and certificate the browse logged in with are written too; the password only as a `${VARIABLE}`
reference, never the secret.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from asyncua import Client, Node, ua

from edge.config import OpcUaSecurity
from edge.opcua_source import disconnect_quietly, secure_client

_SKIPPED = {ua.NodeId(ua.ObjectIds.Server), ua.NodeId(ua.ObjectIds.Aliases)}
_SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class Variable:
    browse_path: str
    node: str  # nsu=<uri>;<identifier>
    value: object
    signal: str  # a signal id suggested from the browse name


async def browse(
    url: str,
    username: str | None = None,
    password: str | None = None,
    security: OpcUaSecurity | None = None,
    max_depth: int = 8,
) -> list[Variable]:
    """Every scalar variable under Objects (properties and the Server object left out)."""
    client = Client(url, timeout=10)
    if username is not None:
        client.set_user(username)
        client.set_password(password or "")
    if security is not None:
        await secure_client(client, security)
    await client.connect()
    try:
        namespaces = await client.get_namespace_array()
        found: list[tuple[str, Node]] = []
        await _walk(client.nodes.objects, "", max_depth, found)
        values = await client.read_attributes([node for _, node in found])
    finally:
        await disconnect_quietly(client)
    variables, used = [], set[str]()
    for (path, node), data in zip(found, values, strict=True):
        value = data.Value.Value if data.Value is not None else None
        if isinstance(value, _SCALARS):
            signal = _unique(_signal_id(path.rsplit("/", 1)[-1]), used)
            variables.append(Variable(path, _with_uri(node.nodeid, namespaces), value, signal))
    return variables


async def _walk(node: Node, path: str, depth: int, found: list[tuple[str, Node]]) -> None:
    if depth == 0:
        return
    references = await node.get_references(
        refs=ua.ObjectIds.HierarchicalReferences, direction=ua.BrowseDirection.Forward
    )
    for reference in references:
        if reference.ReferenceTypeId == ua.NodeId(ua.ObjectIds.HasProperty):
            continue  # static metadata (identification, engineering units), not signals
        child_id = reference.NodeId
        if child_id in _SKIPPED:
            continue
        child = Node(node.session, child_id)
        child_path = f"{path}/{reference.BrowseName.Name}" if path else reference.BrowseName.Name
        if reference.NodeClass == ua.NodeClass.Variable:
            found.append((child_path, child))
        if reference.NodeClass in (ua.NodeClass.Object, ua.NodeClass.Variable):
            await _walk(child, child_path, depth - 1, found)


def _with_uri(node_id: ua.NodeId, namespaces: list[str]) -> str:
    text = str(node_id.to_string())
    index = node_id.NamespaceIndex
    if index == 0 or not text.startswith(f"ns={index};"):
        return text
    return f"nsu={namespaces[index]};{text.split(';', 1)[1]}"


def _signal_id(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # CamelCase -> camel_case
    text = re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_-")
    return (text or "signal")[:56]


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 2
    while candidate in used:
        candidate, number = f"{name}_{number}", number + 1
    used.add(candidate)
    return candidate


def password_variable(machine: str) -> str:
    """The environment variable the starter config reads the machine's OPC UA password from."""
    return "OPCUA_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", machine.upper())


@dataclass(frozen=True)
class Login:
    """How the browse logged in, for the agent to log in alike; paths relative to the config."""

    username: str | None = None
    with_password: bool = False
    security_files: tuple[str, str] | None = None  # certificate, private key

    def lines(self, machine: str) -> list[str]:
        lines = []
        if self.username is not None:
            lines.append(f"    username: {json.dumps(self.username)}")
        if self.with_password:
            variable = password_variable(machine)
            lines.append(f'    password: "${{{variable}}}"  # set {variable} in the environment')
        if self.security_files is not None:
            certificate, key = (json.dumps(file) for file in self.security_files)
            lines.append(f"    security: {{certificate: {certificate}, private_key: {key}}}")
        return lines


def starter_config(
    url: str,
    variables: list[Variable],
    machine: str,
    plant: str,
    plant_signals: set[str] | None = None,
    login: Login | None = None,
) -> str:
    """The edge config text: nodes whose signal the plant does not know are left commented."""
    lines = [
        f"# Starter edge config for {url}, written by `shopfloor edge browse`.",
        "# Rename each `signal` to the plant file's signal id, delete what you do not need,",
        "# then check it with: shopfloor edge check <this file>",
        "version: 1",
        f"plant: {json.dumps(plant)}",
        "opcua:",
        f"  - machine: {json.dumps(machine)}",
        f"    endpoint: {json.dumps(url)}",
        *(login.lines(machine) if login else []),
    ]
    nodes = []
    for variable in variables:
        entry = f"{{signal: {variable.signal}, node: {json.dumps(variable.node)}}}"
        note = f"{variable.browse_path} = {_short(variable.value)}"
        known = plant_signals is None or variable.signal in plant_signals
        nodes.append(f"      - {entry}  # {note}" if known else f"      # - {entry}  # {note}")
    mapped = any(not line.lstrip().startswith("#") for line in nodes)
    lines.append("    nodes:" if mapped else "    nodes: []  # no variable matched a plant signal")
    return "\n".join([*lines, *nodes]) + "\n"


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
