"""Scoring (specification B2-B5): questionnaire and evidence per dimension, gates, the overall
index and level, the archetype, claim flags and priorities.

Decisions where the specification is silent, each tested:

- G0 applies to every dimension with indicators (D2-D6) that has no evidence score, not only
  in questionnaire-only mode: "a dimension cannot pass Basic without measured evidence".
  With no indicators at all this is exactly questionnaire-only mode.
- A gate whose indicator is null (not measurable, too few events) holds: a gate lifts only
  when the data shows it. ART with fewer than five events is null, so G3's second cap holds.
- Fd is min(Sd, capd) rounded half up to 2 decimals (after cleaning float noise at 1e-9);
  R, the lean and digital indices and the priorities use the rounded Fd; R is not rounded.
- capbind ("a gate holds the dimension down") is Sd > capd, so the rounding of Fd alone never
  counts as a binding gate.
- Comparisons with thresholds allow 1e-9 of float slack; priorities equal to 1e-9 are ties.

Texts for people stay English here and are translated where they are shown: the fixed ones
(archetypes, flag actions) are message ids marked with N_; those built from figures (a cap's
reason, a flag's detail, a requirement) are `Text` messages with their values
(readiness.texts), so that a saved snapshot shows them in any language with its numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import fmean

from readiness.answers import Response, Special
from readiness.evidence import (
    MIN_RESPONSE_EVENTS,
    TOLERANCE,
    Indicators,
    ResponseTime,
    evidence_score,
    indicator_scores,
    reaches,
    within,
)
from readiness.questionnaire import LEVEL_NAMES, MAX_SCORE, Dimension, Questionnaire
from readiness.texts import All, Number, Text, formula
from shopfloor.i18n import N_

QUESTIONNAIRE_SHARE = 0.4
EVIDENCE_SHARE = 0.6  # measured data outweighs claims
NO_EVIDENCE_CAP = 2  # G0
SELF_REPORT_CAP = 4  # G6, for dimensions without indicators (D1, D7)
UNPROVEN_TOP_CAP = 4  # G6, for dimensions whose evidence is below TOP_EVIDENCE
TOP_EVIDENCE = 4.5
CLAIM_GAP = 1.5
ARCHETYPE_THRESHOLD = 2.5
DEFAULT_TARGET = 3.0
FOUNDATION_LEVEL = 3  # D2 and D3 are foundations while below "Visible"
FOUNDATIONS = ("D2", "D3")
LEAN_DIMENSIONS = ("D2", "D5", "D7")
DIGITAL_DIMENSIONS = ("D3", "D4", "D6")


@dataclass(frozen=True)
class Requirement:
    """An indicator condition that lifts a cap: value >= threshold, or <= for ART."""

    indicator: str
    threshold: float

    def met(self, indicators: Indicators) -> bool:
        if self.indicator == "ART":
            response = indicators.ART
            return (
                response is not None
                and response.logging
                and response.median_min is not None
                and within(response.median_min, self.threshold)
            )
        value = indicators.ratio(self.indicator)
        return value is not None and reaches(value, self.threshold)

    def at_threshold(self, indicators: Indicators) -> Indicators:
        """The indicators with this one set to its threshold (the what-if)."""
        if self.indicator == "ART":
            events = indicators.ART.events if indicators.ART else 0
            response = ResponseTime(self.threshold, max(events, MIN_RESPONSE_EVENTS))
            return indicators.with_value("ART", response)
        return indicators.with_value(self.indicator, self.threshold)

    @property
    def message(self) -> Text:
        """The condition for people: "ART <= 30 min with n >= 5", "CC >= 0.50"."""
        if self.indicator == "ART":
            return Text(
                N_("ART <= {minutes} min with n >= {events}"),
                {"minutes": Number(self.threshold), "events": Number(MIN_RESPONSE_EVENTS, 0)},
            )
        return formula(
            "{indicator} >= {threshold}",
            indicator=self.indicator,
            threshold=Number(self.threshold, 2),
        )

    @property
    def text(self) -> str:
        """The condition in English, as logs and the JSON output give it."""
        return str(self.message)


@dataclass(frozen=True)
class Gate:
    id: str
    dimension: str
    cap: int
    requirements: tuple[Requirement, ...]


INDICATOR_GATES = (
    Gate("G1", "D3", 2, (Requirement("CC", 0.50), Requirement("DC", 0.85))),
    Gate("G2", "D4", 2, (Requirement("OV", 0.50),)),
    Gate("G2", "D4", 3, (Requirement("DU", 0.75),)),
    Gate("G3", "D5", 2, (Requirement("RC", 0.60),)),
    Gate("G3", "D5", 3, (Requirement("ART", 30.0),)),
    Gate("G4", "D6", 2, (Requirement("EC", 0.50),)),
    Gate("G5", "D2", 3, (Requirement("STD", 0.80),)),
)


@dataclass(frozen=True)
class Cap:
    """A gate that holds: the dimension's score cannot exceed `cap`."""

    gate: str
    cap: int
    message: Text  # what lifts the gate, shown in the reader's language
    failing: tuple[str, ...] = ()  # indicators below their requirement

    @property
    def reason(self) -> str:
        """The message in English (the CLI, the JSON output)."""
        return str(self.message)


@dataclass(frozen=True)
class DimensionScore:
    id: str
    name: str
    weight: float
    questionnaire: float  # Qd
    evidence: float | None  # Ed, None without measured indicators
    combined: float  # Sd
    caps: tuple[Cap, ...]  # every gate that holds
    final: float  # Fd
    target: float  # Td
    dont_know: tuple[str, ...]  # items answered "don't know"

    @property
    def cap(self) -> int:
        return min((c.cap for c in self.caps), default=MAX_SCORE)

    @property
    def cap_binds(self) -> bool:
        return self.combined > self.cap + TOLERANCE

    @property
    def binding(self) -> tuple[Cap, ...]:
        """The gates that hold the score down (the lowest caps, when below Sd)."""
        return tuple(c for c in self.caps if c.cap == self.cap) if self.cap_binds else ()

    @property
    def level(self) -> int:
        return math.floor(self.final + TOLERANCE)

    @property
    def claim_gap(self) -> float | None:
        return None if self.evidence is None else self.questionnaire - self.evidence


@dataclass(frozen=True)
class Archetype:
    name: str  # a message id (N_), translated where shown
    lean_index: float  # mean of F2, F5, F7
    digital_index: float  # mean of F3, F4, F6
    warning: str = ""  # a message id too, or ""


@dataclass(frozen=True)
class Flag:
    kind: str  # over-claim, under-claim or dont-know
    dimension: str
    message: Text  # what was found, shown in the reader's language
    action: str  # a message id (N_), translated where shown

    @property
    def detail(self) -> str:
        """The message in English (the CLI, the JSON output)."""
        return str(self.message)


@dataclass(frozen=True)
class Priority:
    dimension: str
    value: float  # Pd = wd x max(0, Td - Fd) x (1 + 0.5 capbind + 0.5 found)
    final: float
    target: float
    cap_binds: bool
    foundation: bool


@dataclass(frozen=True)
class Scorecard:
    """Everything the specification derives from one set of answers and indicators."""

    questionnaire_version: int
    indicators: Indicators | None  # None in questionnaire-only mode
    indicator_scores: Mapping[str, int | None]
    dimensions: tuple[DimensionScore, ...]
    index: float  # R
    level: int  # LR
    archetype: Archetype
    flags: tuple[Flag, ...]
    priorities: tuple[Priority, ...]

    @property
    def questionnaire_only(self) -> bool:
        return self.indicators is None

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    def dimension(self, dimension_id: str) -> DimensionScore:
        return next(d for d in self.dimensions if d.id == dimension_id)


def questionnaire_score(
    questionnaire: Questionnaire, responses: Mapping[str, Response], dimension_id: str
) -> float:
    """Qd: the mean of the answered items; don't know scores 0, N/A is left out."""
    answered = [
        0 if response is Special.DONT_KNOW else response
        for item in questionnaire.items_of(dimension_id)
        if (response := responses[item.id]) is not Special.NOT_APPLICABLE
    ]
    return fmean(answered)


def round_score(value: float) -> float:
    """Half up to 2 decimals, after dropping float noise below 1e-9."""
    return float(Decimal(f"{value:.9f}").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# The texts of caps and flags, also read back from snapshots saved before texts were stored
# as messages (readiness.report).


def requirements_reason(requirements: Sequence[Requirement]) -> Text:
    """Why an indicator gate holds: "needs CC >= 0.50 and DC >= 0.85"."""
    needs = All(tuple(r.message for r in requirements))
    return Text(N_("needs {requirements}"), {"requirements": needs})


def evidence_reason(score: float) -> Text:
    """Why G6 holds a measured dimension: "needs evidence >= 4.5"."""
    return Text(N_("needs evidence >= {score}"), {"score": Number(score)})


def claim_detail(questionnaire: float, evidence: float, gap: float) -> Text:
    """Q - E = the claim gap, the figures a claim flag stands on: "Q 3.00 - E 1.50 = +1.50"."""
    return formula(
        "Q {questionnaire} - E {evidence} = {gap}",
        questionnaire=Number(questionnaire, 2),
        evidence=Number(evidence, 2),
        gap=Number(gap, 2, signed=True),
    )


def dont_know_detail(items: str) -> Text:
    """The items answered "don't know", by id: "don't know: Q1, Q3 (scored 0)"."""
    return Text(N_("don't know: {items} (scored 0)"), {"items": items})


def dimension_caps(
    dimension: Dimension, indicators: Indicators, evidence: float | None
) -> tuple[Cap, ...]:
    """The gates that hold for a dimension (specification B4.2)."""
    if not dimension.indicators:
        return (Cap("G6", SELF_REPORT_CAP, Text(N_("self-reported only"))),)
    caps = []
    if evidence is None:
        caps.append(Cap("G0", NO_EVIDENCE_CAP, Text(N_("no measured evidence"))))
    for gate in (g for g in INDICATOR_GATES if g.dimension == dimension.id):
        failing = [r for r in gate.requirements if not r.met(indicators)]
        if failing:
            reason = requirements_reason(gate.requirements)
            caps.append(Cap(gate.id, gate.cap, reason, tuple(r.indicator for r in failing)))
    if evidence is None or not reaches(evidence, TOP_EVIDENCE):
        caps.append(Cap("G6", UNPROVEN_TOP_CAP, evidence_reason(TOP_EVIDENCE)))
    return tuple(caps)


def score_dimension(
    questionnaire: Questionnaire,
    dimension: Dimension,
    responses: Mapping[str, Response],
    indicators: Indicators,
    targets: Mapping[str, float],
) -> DimensionScore:
    scores = indicator_scores(indicators)
    q = questionnaire_score(questionnaire, responses, dimension.id)
    e = evidence_score(scores, dimension.indicators)
    s = q if e is None else QUESTIONNAIRE_SHARE * q + EVIDENCE_SHARE * e
    caps = dimension_caps(dimension, indicators, e)
    cap = min((c.cap for c in caps), default=MAX_SCORE)
    items = questionnaire.items_of(dimension.id)
    return DimensionScore(
        id=dimension.id,
        name=dimension.name,
        weight=dimension.weight,
        questionnaire=q,
        evidence=e,
        combined=s,
        caps=caps,
        final=round_score(min(s, cap)),
        target=targets.get(dimension.id, targets.get("default", DEFAULT_TARGET)),
        dont_know=tuple(i.id for i in items if responses[i.id] is Special.DONT_KNOW),
    )


def overall_level(index: float, dimensions: tuple[DimensionScore, ...]) -> int:
    """LR = min(floor(R), 1 + the weakest Ld): at most one level above the weakest dimension."""
    return min(math.floor(index + TOLERANCE), 1 + min(d.level for d in dimensions))


def archetype(dimensions: tuple[DimensionScore, ...]) -> Archetype:
    final = {d.id: d.final for d in dimensions}
    lean = fmean(final[d] for d in LEAN_DIMENSIONS)
    digital = fmean(final[d] for d in DIGITAL_DIMENSIONS)
    is_lean, is_digital = reaches(lean, ARCHETYPE_THRESHOLD), reaches(digital, ARCHETYPE_THRESHOLD)
    if is_lean and is_digital:
        return Archetype(N_("Lean 4.0 integrator"), lean, digital)
    if is_lean:
        return Archetype(N_("Lean-led"), lean, digital)
    if is_digital:
        return Archetype(N_("Tech-led"), lean, digital, N_("risk of digitising waste"))
    return Archetype(N_("Starter"), lean, digital)


def flags(dimensions: tuple[DimensionScore, ...]) -> tuple[Flag, ...]:
    """Claim checks (|Qd - Ed| >= 1.5) and "don't know" answers, in dimension order."""
    found: list[Flag] = []
    for d in dimensions:
        gap = d.claim_gap
        if gap is not None and d.evidence is not None:
            detail = claim_detail(d.questionnaire, d.evidence, gap)
            if reaches(gap, CLAIM_GAP):
                action = N_("verification walk (gemba visit)")
                found.append(Flag("over-claim", d.id, detail, action))
            elif within(gap, -CLAIM_GAP):
                action = N_("gemba visit: check the answers")
                found.append(Flag("under-claim", d.id, detail, action))
        if d.dont_know:
            detail = dont_know_detail(", ".join(d.dont_know))
            found.append(Flag("dont-know", d.id, detail, N_("find out and answer again")))
    return tuple(found)


def priorities(dimensions: tuple[DimensionScore, ...]) -> tuple[Priority, ...]:
    """Dimensions below target by Pd; ties go to the lower Fd, then the dimension order."""
    ranked = []
    for order, d in enumerate(dimensions):
        gap = max(0.0, d.target - d.final)
        if gap <= TOLERANCE:
            continue
        foundation = d.id in FOUNDATIONS and d.final < FOUNDATION_LEVEL
        value = d.weight * gap * (1 + 0.5 * d.cap_binds + 0.5 * foundation)
        priority = Priority(d.id, value, d.final, d.target, d.cap_binds, foundation)
        ranked.append((-round(value, 9), d.final, order, priority))
    return tuple(entry[-1] for entry in sorted(ranked, key=lambda entry: entry[:3]))


def score(
    questionnaire: Questionnaire,
    responses: Mapping[str, Response],
    indicators: Indicators | None,
    targets: Mapping[str, float] | None = None,
) -> Scorecard:
    """Score one SME: `indicators` None is questionnaire-only mode (no platform data)."""
    measured = indicators if indicators is not None else Indicators()
    dimensions = tuple(
        score_dimension(questionnaire, d, responses, measured, targets or {})
        for d in questionnaire.dimensions
    )
    index = sum(d.weight * d.final for d in dimensions)
    return Scorecard(
        questionnaire_version=questionnaire.version,
        indicators=indicators,
        indicator_scores=indicator_scores(measured),
        dimensions=dimensions,
        index=index,
        level=overall_level(index, dimensions),
        archetype=archetype(dimensions),
        flags=flags(dimensions),
        priorities=priorities(dimensions),
    )
