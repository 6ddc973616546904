"""`python -m launcher` runs the `shopfloor` command (what the demo supervisor spawns)."""

from launcher.cli import main

main()
