"""The edge agent: machines (OPC UA) and sensor kits (raw MQTT) in, contract messages out.

`agent` is the agent (`EdgeAgent`); `config` its configuration file (`load_edge_config`);
`browse` writes a starter config from a server's address space. `opcua_source`, `sensors`,
`clamp`, `forwarder` and `health` are its parts, internal. Importing the package imports none
of them: an edge device loads only what `shopfloor edge ...` (launcher/cli/edge.py) needs.
Imports only the `shopfloor` contract. See README.md in this folder.
"""

__all__ = ["agent", "browse", "config"]
