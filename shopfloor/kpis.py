"""What the analytics service writes back to the store, next to each machine's own signals.

The one definition of the KPI series (`kpi.<name>` over the rolling window, stamped with its
end; `kpi.shift.<name>` per shift, stamped with its start), their units, and the JSON of a
shift's `report.shift` point: the analytics service writes them, the dashboard and the
gateway's API read them, and none of the readers needs the analytics' numpy and Numba.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = [
    "KPI_PREFIX",
    "KPI_UNITS",
    "SHIFT_KPI_PREFIX",
    "SHIFT_REPORT",
    "LossTreeDoc",
    "OeeDoc",
    "ShiftReportDoc",
]

KPI_PREFIX = "kpi."  # rolling-window KPIs
SHIFT_KPI_PREFIX = "kpi.shift."  # a shift's KPIs, stamped with its start
SHIFT_REPORT = "report.shift"  # a shift's whole loss tree and energy, as ShiftReportDoc JSON

# Every KPI the service writes, with its unit ("" for a ratio).
KPI_UNITS = {
    "availability": "", "performance": "", "quality": "", "oee": "", "teep": "", "nee": "",
    "mtbf": "s", "mttr": "s", "parts": "pcs", "rejects": "pcs", "good_parts": "pcs",
    "energy": "kWh", "energy_per_good_part": "kWh/pcs", "idle_energy_share": "",
    "peak_demand": "kW", "co2": "kg",
}  # fmt: skip


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LossTreeDoc(_Doc):
    """Where planned busy time went, in seconds; the six big losses regroup the same time."""

    availability_by_state: dict[str, float]
    availability_by_reason: dict[str, float]
    micro_stops: float
    reduced_speed: float
    rejects: float
    six_big_losses: dict[str, float]


class OeeDoc(_Doc):
    """ISO 22400-2 time elements (seconds), counts and KPIs of one window; None where
    undefined (no planned time, no parts)."""

    start: AwareDatetime
    end: AwareDatetime
    planned_operation_s: float
    planned_downtime_s: float
    planned_busy_s: float
    actual_production_s: float
    unknown_s: float
    time_by_state: dict[str, float]
    ideal_cycle_s: float | None
    fully_productive_s: float
    produced: int
    good: int
    bad: int
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    nee: float | None
    teep: float | None
    failures: int
    mtbf_s: float | None
    mttr_s: float | None
    losses: LossTreeDoc
    problems: list[str]


class ShiftReportDoc(_Doc):
    """A machine's shift (or calendar day, for a plant without shifts) as analysed: the value
    of its `report.shift` point. `oee` is None for a machine that makes no parts."""

    shift: str
    day: date
    oee: OeeDoc | None
    by_product: dict[str, OeeDoc] = {}
    energy_kwh: float | None
    energy_by_state_kwh: dict[str, float]
    energy_by_group_kwh: dict[str, float] = {}
    kpis: dict[str, float]
