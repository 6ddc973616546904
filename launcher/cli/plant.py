"""`shopfloor plant`: tools for plant files, which every other component reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import app, read_plant

plant_app = typer.Typer(help="Work with plant files (the YAML description of a site).")
app.add_typer(plant_app, name="plant")


@plant_app.command("check")
def plant_check(file: Annotated[Path, typer.Argument(help="Plant file to validate.")]) -> None:
    """Validate a plant file; print a summary, or one line naming file, line and field."""
    plant = read_plant(file)
    machines = list(plant.machines())
    sensors = list(plant.sensors())
    signals = sum(len(s) for s in plant.catalogue().values())
    typer.echo(
        f"{file}: ok: {plant.tenant.name} / {plant.site.name}: areas {len(plant.site.areas)}, "
        f"machines {len(machines)}, sensor kits {len(sensors)}, signals {signals}"
    )
