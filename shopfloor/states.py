"""The platform's machine-state taxonomy and how each state counts in ISO 22400-2.

Every machine's `state` signal carries one of these names, whatever its source (simulator, PLC,
or a current clamp on a retrofitted machine), so every KPI is computed one way.

ISO 22400-2 time elements: planned busy time (PBT) is the planned operation time less planned
downtime; actual production time (APT) is the part of PBT in which the machine produces.
Availability = APT / PBT, effectiveness (performance) = ideal cycle time x produced / APT,
quality = good / produced. Micro-stops are too short to be recorded as downtime on most
shop floors, so they stay in APT and show up as a performance (speed) loss, as in the six big
losses; every other stop is an availability loss, except planned stops, which leave PBT.
"""

from __future__ import annotations

from enum import StrEnum


class MachineState(StrEnum):
    RUNNING = "running"
    MICRO_STOP = "micro_stop"
    IDLE = "idle"
    STARVED = "starved"
    BLOCKED = "blocked"
    SETUP = "setup"
    UNPLANNED_STOP = "unplanned_stop"
    PLANNED_STOP = "planned_stop"
    # Switched off, as a current clamp on a machine without a PLC sees it. Within planned time
    # that is lost availability; the shift calendar removes the nights and weekends.
    OFF = "off"


class TimeElement(StrEnum):
    """Where a state's time goes in ISO 22400-2."""

    ACTUAL_PRODUCTION = "APT"  # in PBT and in APT
    AVAILABILITY_LOSS = "PBT-APT"  # in PBT, not in APT
    PLANNED_DOWNTIME = "PDT"  # outside PBT


TIME_ELEMENT = {
    MachineState.RUNNING: TimeElement.ACTUAL_PRODUCTION,
    MachineState.MICRO_STOP: TimeElement.ACTUAL_PRODUCTION,
    MachineState.IDLE: TimeElement.AVAILABILITY_LOSS,
    MachineState.STARVED: TimeElement.AVAILABILITY_LOSS,
    MachineState.BLOCKED: TimeElement.AVAILABILITY_LOSS,
    MachineState.SETUP: TimeElement.AVAILABILITY_LOSS,
    MachineState.UNPLANNED_STOP: TimeElement.AVAILABILITY_LOSS,
    MachineState.PLANNED_STOP: TimeElement.PLANNED_DOWNTIME,
    MachineState.OFF: TimeElement.AVAILABILITY_LOSS,
}


# The machine signals the platform gives a meaning to; a machine's other signals are process
# signals (and its energy meter's). `product` is optional: the id of the product loaded.
STATE, STOP_REASON, PART_COUNT, REJECT_COUNT, PRODUCT = (
    "state",
    "stop_reason",
    "part_count",
    "reject_count",
    "product",
)
STANDARD_SIGNALS = frozenset({STATE, STOP_REASON, PART_COUNT, REJECT_COUNT, PRODUCT})

# Reason codes of unplanned stops that any machine may give, beside a scenario's own: random
# breakdowns default to the first, wear and heat faults end in the next two. The dashboard's
# "Breakdown now" offers them.
MECHANICAL, BEARING_FAILURE, OVERHEAT_TRIP = "mechanical", "bearing_failure", "overheat_trip"
BREAKDOWN_REASONS = (MECHANICAL, BEARING_FAILURE, OVERHEAT_TRIP, "electrical", "material_jam")
