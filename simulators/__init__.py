"""Simulated production lines: a plant driven by a scenario file on one simulated clock, served
live over OPC UA (a server per machine) and MQTT (sensor kits, fault events), run as fast as
possible for tests and backfills, recorded and replayed.

`scenario` reads scenario files; `plant_sim` runs a plant under one; `machines` holds the
stations, buffers and the compressor; `live` serves a run against the wall clock and obeys the
demo controls; `opcua` is one machine's OPC UA server; `fast` runs a whole scenario at once;
`recording` records and replays contract messages. `engine` and `signals` are internal. Imports
only the `shopfloor` contract; the `shopfloor simulate`, `record`, `replay` and `control`
commands live in launcher/cli/simulation.py. See README.md in this folder.
"""

__all__ = ["fast", "live", "machines", "opcua", "plant_sim", "recording", "scenario"]
