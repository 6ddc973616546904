"""The ten measured indicators of an SME and their evidence scores 0-5 (specification B3).

A ratio indicator scores the number of cut-points it reaches; data completeness has stricter
cut-points, since a plant with 15 % of its time missing cannot be trusted for OEE; the anomaly
response time scores by thresholds in minutes. A null indicator (too few events, nothing to
measure) gives no score, and its dimension's evidence is the mean of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from statistics import fmean
from typing import Any

from shopfloor.i18n import N_

RATIO_CUTS = (0.05, 0.25, 0.50, 0.75, 0.95)
COMPLETENESS_CUTS = (0.50, 0.70, 0.85, 0.95, 0.99)
# Response time limits in minutes for scores 5, 4, 3, 2, 1; anything slower scores 0.
RESPONSE_LIMITS_MIN = (10.0, 30.0, 60.0, 120.0, 240.0)
MIN_RESPONSE_EVENTS = 5
# Floating-point slack: 0.3 / 0.5 must reach the 0.6 of a gate even if it lands 1 ulp below.
TOLERANCE = 1e-9

# What each indicator measures, for people: English, marked for the catalogues and translated
# where it is shown. The codes stay as they are in every language.
INDICATOR_NAMES = {
    "DC": N_("data completeness"),
    "CC": N_("connectivity coverage"),
    "OV": N_("OEE visibility"),
    "DU": N_("dashboard use"),
    "RC": N_("downtime reason coverage"),
    "ART": N_("anomaly response time"),
    "EC": N_("energy metering coverage"),
    "EV": N_("environmental coverage"),
    "STD": N_("standard-time coverage"),
    "CO": N_("changeover capture"),
}


@dataclass(frozen=True)
class ResponseTime:
    """The anomaly response time over a window: median minutes from raise to response.

    `median_min` is None when fewer than five events were raised (too few to judge); `logging`
    is False when machines were connected but no alarm or acknowledgement was logged at all,
    which scores 0.
    """

    median_min: float | None
    events: int
    within_15_min: float | None = None  # share of events answered within 15 minutes
    logging: bool = True


@dataclass(frozen=True)
class Indicators:
    """The raw indicator values of one SME over one window; None where not measurable."""

    DC: float | None = None  # named by the specification's symbols
    CC: float | None = None
    OV: float | None = None
    DU: float | None = None
    RC: float | None = None
    ART: ResponseTime | None = None
    EC: float | None = None
    EV: float | None = None
    STD: float | None = None
    CO: float | None = None

    def ratio(self, name: str) -> float | None:
        value = getattr(self, name)
        return None if isinstance(value, ResponseTime) else value

    def with_value(self, name: str, value: float | ResponseTime) -> Indicators:
        if name not in INDICATOR_NAMES:
            raise KeyError(f"unknown indicator {name}")
        change: dict[str, Any] = {name: value}
        return replace(self, **change)

    def to_dict(self) -> dict[str, object]:
        return {f.name: plain_value(getattr(self, f.name)) for f in fields(self)}


def plain_value(value: float | ResponseTime | None) -> object:
    """An indicator value as JSON-ready data."""
    if isinstance(value, ResponseTime):
        return {
            "median_minutes": value.median_min,
            "events": value.events,
            "within_15_min": value.within_15_min,
            "logging": value.logging,
        }
    return value


def reaches(value: float, threshold: float) -> bool:
    return value >= threshold - TOLERANCE


def within(value: float, limit: float) -> bool:
    return value <= limit + TOLERANCE


def ratio_score(value: float, cuts: tuple[float, ...] = RATIO_CUTS) -> int:
    """The number of cut-points the value reaches."""
    return sum(reaches(value, cut) for cut in cuts)


def response_score(response: ResponseTime) -> int | None:
    if not response.logging:
        return 0
    if response.median_min is None:
        return None
    passed = [limit for limit in RESPONSE_LIMITS_MIN if within(response.median_min, limit)]
    return len(passed)


def indicator_score(indicators: Indicators, name: str) -> int | None:
    """The 0-5 evidence score of one indicator, None when it is null."""
    value = getattr(indicators, name)
    if value is None:
        return None
    if isinstance(value, ResponseTime):
        return response_score(value)
    return ratio_score(value, COMPLETENESS_CUTS if name == "DC" else RATIO_CUTS)


def indicator_scores(indicators: Indicators) -> dict[str, int | None]:
    return {name: indicator_score(indicators, name) for name in INDICATOR_NAMES}


def evidence_score(scores: Mapping[str, int | None], names: tuple[str, ...]) -> float | None:
    """Ed: the mean of the dimension's non-null indicator scores, None if all are null."""
    present = [score for name in names if (score := scores[name]) is not None]
    return fmean(present) if present else None


@dataclass(frozen=True)
class Evidence:
    """The indicators of an SME over the window they were computed on (rolling, 28 days)."""

    indicators: Indicators
    window_start: datetime | None = None
    window_end: datetime | None = None
    source: str = ""  # the indicators file, or the store
