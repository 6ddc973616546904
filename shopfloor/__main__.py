"""`python -m shopfloor` runs the `shopfloor` command."""

from shopfloor.cli import app

app()
