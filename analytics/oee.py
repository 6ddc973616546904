"""OEE per ISO 22400-2 from time elements and counts."""

from __future__ import annotations

from dataclasses import dataclass

from shopfloor.states import TIME_ELEMENT, MachineState, TimeElement


class OeeInputError(ValueError):
    """Inputs that make a KPI meaningless, e.g. no planned busy time."""


@dataclass(frozen=True)
class Oee:
    availability: float
    performance: float
    quality: float

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality


def oee(
    planned_busy_s: float,
    actual_production_s: float,
    ideal_cycle_s: float,
    produced: float,
    good: float,
) -> Oee:
    """A = APT/PBT, effectiveness = ideal cycle time x produced / APT, quality = good/produced."""
    if planned_busy_s <= 0:
        raise OeeInputError("planned busy time is zero: no KPI can be computed")
    if actual_production_s <= 0 or produced <= 0:
        return Oee(actual_production_s / planned_busy_s, 0.0, 0.0)
    return Oee(
        availability=actual_production_s / planned_busy_s,
        performance=ideal_cycle_s * produced / actual_production_s,
        quality=good / produced,
    )


def oee_from_states(
    seconds_by_state: dict[MachineState, float], ideal_cycle_s: float, produced: float, good: float
) -> Oee:
    """OEE from the time a machine spent in each state of the platform's taxonomy."""
    planned_busy = sum(
        s
        for state, s in seconds_by_state.items()
        if TIME_ELEMENT[state] is not TimeElement.PLANNED_DOWNTIME
    )
    production = sum(
        s
        for state, s in seconds_by_state.items()
        if TIME_ELEMENT[state] is TimeElement.ACTUAL_PRODUCTION
    )
    return oee(planned_busy, production, ideal_cycle_s, produced, good)
