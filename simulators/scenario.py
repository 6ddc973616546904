"""Scenario files: how a plant behaves over a run, which faults strike, and what it should yield.

A scenario names its plant file, the product made, per-machine behaviour (speed loss, scrap,
breakdowns, micro-stops, power per state), buffers between the stations of a line, planned
stops, scripted faults, and the KPIs the run is designed to produce. Those declared KPIs are
checked by the test suite, so a scenario is both a demo and a regression test.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
)

from shopfloor.config import ConfigError, LocatedValueError, field_path, load_yaml_model, locate
from shopfloor.messages import FaultKind
from shopfloor.plant import Plant, load_plant

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|min|m|h|d))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|min|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from `90` (seconds), `"90s"`, `"15m"`, `"1h30m"`, `"8h"` or `"1d"`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not _DURATION.match(text):
        raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 1h30m or 8h")
    return sum(float(number) * _SECONDS[unit] for number, unit in _PART.findall(text))


Duration = Annotated[NonNegativeFloat, BeforeValidator(parse_duration)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MachineBehaviour(_Part):
    """How one machine runs. Times are durations (30s, 15m, 2h)."""

    speed_loss: Annotated[float, Field(ge=0, le=1)] = 0.05
    reject_rate: Annotated[float, Field(ge=0, le=1)] = 0.02
    mtbf: Duration = Field(default=4 * 3600.0, gt=0, description="mean running time to a stop")
    mttr: Duration = Field(default=600.0, description="mean repair time")
    stop_reasons: dict[str, PositiveFloat] = {"mechanical": 1.0}
    micro_stops_per_hour: NonNegativeFloat = 4.0
    micro_stop: Duration = 20.0
    power_kw: dict[str, NonNegativeFloat] = Field(
        default={}, description="power per state, overriding the machine type's defaults"
    )


class PlannedStop(_Part):
    """A stop at an offset: a break for everyone, or a setup, planned stop or idle spell
    (no order, no operator: an availability loss, unlike a planned stop) of one machine.

    With `product`, the machines it stops make that product from the stop's start on (a
    changeover prepares the next product). An SME that logs changeovers has them as `setup`;
    one that does not shows them as `idle` with no reason.
    """

    at: Duration
    duration: Duration
    kind: Literal["planned_stop", "setup", "idle"] = "planned_stop"
    reason: str = "break"
    machine: str | None = None
    product: str | None = None


class ScriptedFault(_Part):
    machine: str
    kind: FaultKind
    at: Duration
    duration: Duration = Field(gt=0)
    signal: str | None = Field(default=None, description="for sensor faults: which signal")


class ExpectedKpis(_Part):
    """What the scenario is designed to yield per machine over the run.

    The scenario's `tolerance` is absolute for availability, performance, quality and OEE, and
    relative for energy per good part.
    """

    availability: Annotated[float, Field(ge=0, le=1)]
    performance: Annotated[float, Field(ge=0, le=1.5)]
    quality: Annotated[float, Field(ge=0, le=1)]
    oee: Annotated[float, Field(ge=0, le=1)]
    energy_per_good_part_kwh: NonNegativeFloat | None = None


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give the start with its UTC offset, e.g. 2026-11-02T06:00:00+03:00")
    return value


class Scenario(_Part):
    """One demo or training run of one plant."""

    version: Literal[1] = 1
    name: str
    description: str = ""
    plant: Path
    seed: int = 0
    start: Annotated[datetime | None, AfterValidator(_aware)] = None
    duration: Duration = Field(default=8 * 3600.0, gt=0)
    product: str
    sample_interval: Duration = Field(default=1.0, gt=0)
    machines: dict[str, MachineBehaviour] = {}
    buffers: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default={}, description="capacity of the buffer in front of a station of a line"
    )
    planned_stops: list[PlannedStop] = []
    faults: list[ScriptedFault] = []
    expected: dict[str, ExpectedKpis] = {}
    tolerance: PositiveFloat = 0.03

    def behaviour(self, machine_id: str) -> MachineBehaviour:
        return self.machines.get(machine_id, MachineBehaviour())


class LoadedScenario(BaseModel):
    """A scenario with its plant, cross-checked against each other."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    scenario: Scenario
    plant: Plant
    path: Path


def _check_against_plant(scenario: Scenario, plant: Plant) -> None:
    machines = {m.id: m for _, m in plant.machines()}
    products = {p.id for p in plant.products}
    if scenario.product not in products:
        raise LocatedValueError(("product",), f"the plant makes no product {scenario.product!r}")
    for field in ("machines", "buffers", "expected"):
        for machine_id in getattr(scenario, field):
            if machine_id not in machines:
                raise LocatedValueError((field, machine_id), f"no machine {machine_id!r} in plant")
    for index, stop in enumerate(scenario.planned_stops):
        if stop.machine is not None and stop.machine not in machines:
            raise LocatedValueError(("planned_stops", index, "machine"), "no such machine")
        if stop.product is not None and stop.product not in products:
            raise LocatedValueError(
                ("planned_stops", index, "product"), f"the plant makes no product {stop.product!r}"
            )
    for index, fault in enumerate(scenario.faults):
        machine = machines.get(fault.machine)
        if machine is None:
            raise LocatedValueError(("faults", index, "machine"), "no such machine in plant")
        if fault.signal is not None and fault.signal not in {s.id for s in machine.signals}:
            raise LocatedValueError(("faults", index, "signal"), "no such signal on machine")


def default_scenario(plant_path: Path) -> LoadedScenario:
    """A plain plant as a scenario: every machine with default behaviour, no scripted faults."""
    plant = load_plant(plant_path)
    scenario = Scenario(
        name=f"{plant.site.name}, default behaviour",
        plant=plant_path,
        product=plant.products[0].id,
        duration=7 * 86400.0,
    )
    return LoadedScenario(scenario=scenario, plant=plant, path=plant_path)


def load_scenario(path: str | Path) -> LoadedScenario:
    """Load a scenario and its plant; raises ConfigError naming file, line and field."""
    path = Path(path)
    scenario = load_yaml_model(path, Scenario)
    plant_path = (path.parent / scenario.plant).resolve()
    plant = load_plant(plant_path)
    try:
        _check_against_plant(scenario, plant)
    except LocatedValueError as exc:
        raise ConfigError(path, str(exc), locate(path, exc.loc), field_path(exc.loc)) from None
    return LoadedScenario(scenario=scenario, plant=plant, path=path)
