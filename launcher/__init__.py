"""The start-up layer: the `shopfloor` command, the demo supervisor and its seeding.

The only code that imports several components: it reads settings, builds each component from
the shared contract and wires them together (the analytics service's readiness hook, say).
Nothing imports it.

`cli` is the command (`python -m launcher` runs it), `demo` the supervisor of `shopfloor demo`,
`session` its sessions and where the running one listens, `seeding` the demo SMEs' readiness
assessments. See README.md in this folder.
"""

__all__ = ["cli", "demo", "seeding", "session"]
