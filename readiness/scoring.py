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

Texts people read (archetypes, gate reasons, flags) stay English in a scorecard and in a saved
assessment (its JSON, the CLI) and are translated where they are shown. A fixed text is a
marked msgid, translated with gettext. A text with numbers is a marked template and its
parameters (`Cap.template` and `Cap.params`, likewise on `Flag`), put together in a language by
`message_text`; `stored_text` does the same for such a text as a saved assessment holds it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from statistics import fmean

from babel.lists import format_list

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
from shopfloor import i18n
from shopfloor.i18n import N_, SOURCE_LANGUAGE

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

INTEGRATOR = N_("Lean 4.0 integrator")
LEAN_LED = N_("Lean-led")
TECH_LED = N_("Tech-led")
STARTER = N_("Starter")
ARCHETYPE_NAMES = (INTEGRATOR, LEAN_LED, TECH_LED, STARTER)
DIGITISING_WASTE = N_("risk of digitising waste")

# Why a gate holds (Cap.template).
SELF_REPORTED = N_("self-reported only")
NO_EVIDENCE = N_("no measured evidence")
NEEDS = N_("needs {requirements}")  # the gate's requirements, a list in the language's way
NEEDS_EVIDENCE = N_("needs evidence >= {score}")
# A requirement: codes and a number, the same in every language but for the number's digits.
RATIO_REQUIREMENT = "{indicator} >= {threshold}"
ART_REQUIREMENT = N_("ART <= {minutes} min with n >= {events}")

# Claim flags: their kinds by code, their details (Flag.template) and what follows.
FLAG_KINDS = {
    "over-claim": N_("over-claim"),
    "under-claim": N_("under-claim"),
    "dont-know": N_("don't know"),
}
CLAIM_DETAIL = "Q {questionnaire} - E {evidence} = {gap}"  # scores only: no words to translate
DONT_KNOW_DETAIL = N_("don't know: {items} (scored 0)")
OVER_CLAIM_ACTION = N_("verification walk (gemba visit)")
UNDER_CLAIM_ACTION = N_("gemba visit: check the answers")
DONT_KNOW_ACTION = N_("find out and answer again")

# A text's parameters: numbers, codes, and lists of them (JSON-ready, as a snapshot keeps them).
Params = Mapping[str, object]
_DIGITS = {"threshold": 2, "score": 1, "questionnaire": 2, "evidence": 2}


def _number(value: float, lang: str, digits: int) -> str:
    return i18n.number_text(value, lang, digits)


def _minutes(value: float, lang: str) -> str:
    """Whole minutes without decimals (30), others with one (7.5)."""
    return _number(value, lang, 0 if float(value).is_integer() else 1)


def requirement_message(indicator: str, threshold: float) -> tuple[str, Params]:
    """A gate's requirement as a template and its parameters."""
    if indicator == "ART":
        return ART_REQUIREMENT, {"minutes": threshold, "events": MIN_RESPONSE_EVENTS}
    return RATIO_REQUIREMENT, {"indicator": indicator, "threshold": threshold}


def requirement_text(indicator: str, threshold: float, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A gate's requirement in a language: "RC >= 0.60", "ART <= 30 min with n >= 5"."""
    return message_text(*requirement_message(indicator, threshold), lang=lang)


def _parameter(name: str, value: object, lang: str) -> str:
    if name == "minutes" and isinstance(value, int | float):
        return _minutes(value, lang)
    if name == "requirements" and isinstance(value, Sequence):
        texts = [requirement_text(str(i), float(t), lang=lang) for i, t in value]
        return format_list(texts, locale=i18n.babel_locale(lang))
    if name == "items" and isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(str(v) for v in value)  # item ids, codes in every language
    if name == "gap" and isinstance(value, int | float):
        sign = "+" if value >= 0 else ""
        return sign + _number(value, lang, 2)
    if isinstance(value, int | float) and name in _DIGITS:
        return _number(value, lang, _DIGITS[name])
    return str(value)


def message_text(template: str, params: Params, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A marked template with its parameters, in a language: the template translated, its
    numbers in the language's digits, its lists joined in the language's way."""
    values = {name: _parameter(name, value, lang) for name, value in params.items()}
    return i18n.translations(lang).gettext(template).format(**values)


_NUMBER = r"-?\d+(?:\.\d+)?"
_RATIO_RE = re.compile(rf"^(?P<indicator>[A-Z]+) >= (?P<threshold>{_NUMBER})$")
_ART_RE = re.compile(rf"^ART <= (?P<minutes>{_NUMBER}) min with n >= (?P<events>\d+)$")
_NEEDS_EVIDENCE_RE = re.compile(rf"^needs evidence >= (?P<score>{_NUMBER})$")
_NEEDS_RE = re.compile(r"^needs (?P<requirements>.+)$")
_CLAIM_RE = re.compile(
    rf"^Q (?P<questionnaire>{_NUMBER}) - E (?P<evidence>{_NUMBER}) = (?P<gap>[+-]?{_NUMBER})$"
)
_DONT_KNOW_RE = re.compile(r"^don't know: (?P<items>Q\d+(?:, Q\d+)*) \(scored 0\)$")


def _requirement_pair(text: str) -> tuple[str, float] | None:
    if match := _ART_RE.match(text):
        return "ART", float(match["minutes"])
    if match := _RATIO_RE.match(text):
        return match["indicator"], float(match["threshold"])
    return None


def parse_message(text: str) -> tuple[str, Params] | None:
    """The template and parameters of an English text built from one here (a gate's reason or
    requirement, a claim flag's detail), as a saved assessment holds it; None for a fixed text."""
    if match := _NEEDS_EVIDENCE_RE.match(text):
        return NEEDS_EVIDENCE, {"score": float(match["score"])}
    if match := _NEEDS_RE.match(text):
        parts = re.split(r", and |, | and ", match["requirements"])
        pairs = [_requirement_pair(part) for part in parts]
        if all(pairs):
            return NEEDS, {"requirements": pairs}
    if match := _ART_RE.match(text):
        return ART_REQUIREMENT, {"minutes": float(match["minutes"]), "events": int(match["events"])}
    if match := _RATIO_RE.match(text):
        return RATIO_REQUIREMENT, {
            "indicator": match["indicator"],
            "threshold": float(match["threshold"]),
        }
    if match := _CLAIM_RE.match(text):
        return CLAIM_DETAIL, {
            name: float(match[name]) for name in ("questionnaire", "evidence", "gap")
        }
    if match := _DONT_KNOW_RE.match(text):
        return DONT_KNOW_DETAIL, {"items": match["items"].split(", ")}
    return None


def stored_text(text: str, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A text of a saved assessment in a language: an archetype, a gate's reason, a flag's kind,
    detail or action, a level's name. Texts it does not know stay as they are."""
    parsed = parse_message(text)
    if parsed is None:
        return i18n.translations(lang).gettext(FLAG_KINDS.get(text, text))
    return message_text(*parsed, lang=lang)


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
    def text(self) -> str:
        """In English, as a saved assessment keeps it; `requirement_text` in a language."""
        return requirement_text(self.indicator, self.threshold)


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
    template: str  # why: SELF_REPORTED, NO_EVIDENCE, NEEDS or NEEDS_EVIDENCE
    failing: tuple[str, ...] = ()  # indicators below their requirement
    params: Params = field(default_factory=dict)  # the template's

    def reason_text(self, *, lang: str = SOURCE_LANGUAGE) -> str:
        return message_text(self.template, self.params, lang=lang)

    @property
    def reason(self) -> str:
        """Why the gate holds, in English: "needs RC >= 0.60"."""
        return self.reason_text()


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
    name: str  # one of ARCHETYPE_NAMES
    lean_index: float  # mean of F2, F5, F7
    digital_index: float  # mean of F3, F4, F6
    warning: str = ""  # DIGITISING_WASTE or none


@dataclass(frozen=True)
class Flag:
    kind: str  # over-claim, under-claim or dont-know (FLAG_KINDS names them)
    dimension: str
    template: str  # the detail: CLAIM_DETAIL or DONT_KNOW_DETAIL
    params: Params
    action: str  # a marked text

    def detail_text(self, *, lang: str = SOURCE_LANGUAGE) -> str:
        return message_text(self.template, self.params, lang=lang)

    @property
    def detail(self) -> str:
        """In English: "Q 3.50 - E 1.25 = +2.25", "don't know: Q5, Q7 (scored 0)"."""
        return self.detail_text()


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


def dimension_caps(
    dimension: Dimension, indicators: Indicators, evidence: float | None
) -> tuple[Cap, ...]:
    """The gates that hold for a dimension (specification B4.2)."""
    if not dimension.indicators:
        return (Cap("G6", SELF_REPORT_CAP, SELF_REPORTED),)
    caps = []
    if evidence is None:
        caps.append(Cap("G0", NO_EVIDENCE_CAP, NO_EVIDENCE))
    for gate in (g for g in INDICATOR_GATES if g.dimension == dimension.id):
        failing = [r for r in gate.requirements if not r.met(indicators)]
        if failing:
            needs = [(r.indicator, r.threshold) for r in gate.requirements]
            caps.append(
                Cap(gate.id, gate.cap, NEEDS, tuple(r.indicator for r in failing),
                    {"requirements": needs})
            )  # fmt: skip
    if evidence is None or not reaches(evidence, TOP_EVIDENCE):
        caps.append(Cap("G6", UNPROVEN_TOP_CAP, NEEDS_EVIDENCE, params={"score": TOP_EVIDENCE}))
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
        return Archetype(INTEGRATOR, lean, digital)
    if is_lean:
        return Archetype(LEAN_LED, lean, digital)
    if is_digital:
        return Archetype(TECH_LED, lean, digital, DIGITISING_WASTE)
    return Archetype(STARTER, lean, digital)


def flags(dimensions: tuple[DimensionScore, ...]) -> tuple[Flag, ...]:
    """Claim checks (|Qd - Ed| >= 1.5) and "don't know" answers, in dimension order."""
    found: list[Flag] = []
    for d in dimensions:
        gap = d.claim_gap
        scores = {"questionnaire": d.questionnaire, "evidence": d.evidence, "gap": gap}
        if gap is not None and reaches(gap, CLAIM_GAP):
            found.append(Flag("over-claim", d.id, CLAIM_DETAIL, scores, OVER_CLAIM_ACTION))
        elif gap is not None and within(gap, -CLAIM_GAP):
            found.append(Flag("under-claim", d.id, CLAIM_DETAIL, scores, UNDER_CLAIM_ACTION))
        if d.dont_know:
            items = {"items": list(d.dont_know)}
            found.append(Flag("dont-know", d.id, DONT_KNOW_DETAIL, items, DONT_KNOW_ACTION))
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
