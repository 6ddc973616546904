"""Recommendations with their what-if gain (specification B5).

Each rule is keyed by a dimension and the indicator whose requirement it answers (a gate's, or
for the ungated CO and EV the 0.50 cut-point of a "Visible" score). A rule applies while its
indicator misses the requirement or is null. Its what-if is the overall index R recomputed with
that indicator at its threshold and everything else unchanged.

Decisions where the specification is silent:

- Each priority gets one recommendation: the applying rule with the largest what-if gain, the
  library order breaking ties (so a gate's first indicator comes first).
- A dimension without an applying indicator rule (D1 and D7 always, others once their
  indicators meet every requirement) gets its questionnaire rule, whose what-if raises Fd to
  its target (or its cap, if lower): R + wd x (min(Td, capd) - Fd).
- Only the top five priorities carry a recommendation, as the specification shows five.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from readiness.answers import Response
from readiness.evidence import Indicators, ResponseTime
from readiness.questionnaire import Questionnaire
from readiness.scoring import (
    INDICATOR_GATES,
    DimensionScore,
    Priority,
    Requirement,
    Scorecard,
    score,
)
from shopfloor.i18n import N_

TOP_RECOMMENDATIONS = 5
VISIBLE_CUT = 0.50  # the ratio that scores 3, "Visible"


@dataclass(frozen=True)
class Rule:
    dimension: str
    advice: str  # a message id (N_), translated where shown
    requirement: Requirement | None = None  # None: the dimension's questionnaire rule

    @property
    def gate(self) -> str | None:
        if self.requirement is None:
            return None
        indicator = self.requirement.indicator
        return next(
            (
                g.id
                for g in INDICATOR_GATES
                if any(r.indicator == indicator for r in g.requirements)
            ),
            None,
        )


RULES = (
    Rule("D1", N_("Write a joint lean + digital roadmap and review its KPIs monthly.")),
    Rule("D2", N_("Set standard cycle times for the Pareto products."), Requirement("STD", 0.80)),
    Rule(
        "D2",
        N_("Log changeovers as a machine state, then run a SMED workshop."),
        Requirement("CO", VISIBLE_CUT),
    ),
    Rule(
        "D2", N_("Extend standard work and standard times to most of the volume; time changeovers.")
    ),
    Rule(
        "D3",
        N_("Retrofit the bottleneck machines first (current clamps, stack-light taps)."),
        Requirement("CC", 0.50),
    ),
    Rule("D3", N_("Buffer the gateway and fix the network gaps."), Requirement("DC", 0.85)),
    Rule("D3", N_("Give machine data its order and product context (ERP/MES link).")),
    Rule(
        "D4",
        N_(
            "Compute OEE on the connected machines: count good and rejected parts, set ideal "
            "cycle times, keep the shift calendar."
        ),
        Requirement("OV", 0.50),
    ),
    Rule("D4", N_("Hold the daily tier-1 meeting at the dashboard."), Requirement("DU", 0.75)),
    Rule("D4", N_("Run a loss Pareto from the data and trace root causes with process data.")),
    Rule(
        "D5",
        N_(
            "Put a reason picklist on the HMI or a tablet for stops of 2 min or more, top-10 codes."
        ),
        Requirement("RC", 0.60),
    ),
    Rule("D5", N_("Set up a digital andon with 2-tier escalation."), Requirement("ART", 30.0)),
    Rule("D5", N_("Move from a preventive plan to TPM and condition-based maintenance.")),
    Rule(
        "D6",
        N_("Sub-meter the largest consumers (heaters, compressors, chillers)."),
        Requirement("EC", 0.50),
    ),
    Rule(
        "D6",
        N_("Monitor temperature and humidity in every zone of the risk list."),
        Requirement("EV", VISIBLE_CUT),
    ),
    Rule("D6", N_("Track kWh per good part and tie energy losses to machine states.")),
    Rule(
        "D7",
        N_("Train most staff in lean basics and in reading production data; collect ideas weekly."),
    ),
)


@dataclass(frozen=True)
class Recommendation:
    dimension: str
    advice: str
    indicator: str | None  # None for a questionnaire rule
    value: float | ResponseTime | None  # the indicator's raw value now
    threshold: float | None
    gate: str | None
    what_if_index: float  # R with the indicator at its threshold
    what_if_final: float  # the dimension's Fd then
    gain: float  # what_if_index - R


@dataclass(frozen=True)
class RankedPriority:
    priority: Priority
    recommendation: Recommendation | None


def _indicator_what_if(
    rule: Rule,
    requirement: Requirement,
    scorecard: Scorecard,
    questionnaire: Questionnaire,
    responses: Mapping[str, Response],
) -> Recommendation:
    measured = scorecard.indicators or Indicators()
    targets = {d.id: d.target for d in scorecard.dimensions}
    after = score(questionnaire, responses, requirement.at_threshold(measured), targets)
    return Recommendation(
        dimension=rule.dimension,
        advice=rule.advice,
        indicator=requirement.indicator,
        value=getattr(measured, requirement.indicator),
        threshold=requirement.threshold,
        gate=rule.gate,
        what_if_index=after.index,
        what_if_final=after.dimension(rule.dimension).final,
        gain=after.index - scorecard.index,
    )


def _target_what_if(rule: Rule, dimension: DimensionScore, index: float) -> Recommendation:
    reachable = max(dimension.final, min(dimension.target, dimension.cap))
    gain = dimension.weight * (reachable - dimension.final)
    return Recommendation(
        dimension=rule.dimension,
        advice=rule.advice,
        indicator=None,
        value=None,
        threshold=None,
        gate=None,
        what_if_index=index + gain,
        what_if_final=reachable,
        gain=gain,
    )


def recommend(
    scorecard: Scorecard,
    dimension_id: str,
    questionnaire: Questionnaire,
    responses: Mapping[str, Response],
) -> Recommendation:
    """The rule with the largest what-if gain for one dimension."""
    measured = scorecard.indicators or Indicators()
    rules = [rule for rule in RULES if rule.dimension == dimension_id]
    candidates = [
        _indicator_what_if(rule, rule.requirement, scorecard, questionnaire, responses)
        for rule in rules
        if rule.requirement is not None and not rule.requirement.met(measured)
    ]
    if not candidates:
        fallback = next(rule for rule in rules if rule.requirement is None)
        return _target_what_if(fallback, scorecard.dimension(dimension_id), scorecard.index)
    return max(candidates, key=lambda r: round(r.gain, 9))  # first wins ties


def ranked_priorities(
    scorecard: Scorecard, questionnaire: Questionnaire, responses: Mapping[str, Response]
) -> tuple[RankedPriority, ...]:
    """The priorities in rank order, the top five with their recommendation."""
    return tuple(
        RankedPriority(
            priority,
            recommend(scorecard, priority.dimension, questionnaire, responses)
            if rank < TOP_RECOMMENDATIONS
            else None,
        )
        for rank, priority in enumerate(scorecard.priorities)
    )
