"""One assessment of one SME: its answers scored with or without evidence, with ranked
priorities and recommendations, as the CLI, the dashboard and the snapshot store see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from readiness.answers import Response, SmeAnswers, Special
from readiness.evidence import INDICATOR_NAMES, Evidence, plain_value
from readiness.questionnaire import LEVEL_NAMES
from readiness.recommendations import RankedPriority, Recommendation, ranked_priorities
from readiness.scoring import DimensionScore, Scorecard, score


@dataclass(frozen=True)
class Assessment:
    answers: SmeAnswers
    evidence: Evidence | None  # None: questionnaire-only mode
    scorecard: Scorecard
    ranked: tuple[RankedPriority, ...]
    taken_at: datetime

    @property
    def sme(self) -> str:
        return self.answers.sme


def run_assessment(
    answers: SmeAnswers, evidence: Evidence | None, taken_at: datetime | None = None
) -> Assessment:
    """Score an SME from its answers and, unless questionnaire-only, its measured evidence."""
    indicators = evidence.indicators if evidence is not None else None
    scorecard = score(answers.questionnaire, answers.responses, indicators, answers.targets)
    return Assessment(
        answers=answers,
        evidence=evidence,
        scorecard=scorecard,
        ranked=ranked_priorities(scorecard, answers.questionnaire, answers.responses),
        taken_at=taken_at or datetime.now(UTC),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def responses_to_dict(responses: Mapping[str, Response]) -> dict[str, int | str]:
    return {
        item: value if isinstance(value, int) else str(value) for item, value in responses.items()
    }


def responses_from_dict(values: Mapping[str, int | str]) -> dict[str, Response]:
    """The inverse of `responses_to_dict`."""
    return {
        item: value if isinstance(value, int) else Special(value) for item, value in values.items()
    }


def _dimension_dict(d: DimensionScore) -> dict[str, object]:
    return {
        "id": d.id,
        "name": d.name,
        "weight": d.weight,
        "questionnaire": d.questionnaire,
        "evidence": d.evidence,
        "combined": d.combined,
        "cap": d.cap,
        "caps": [
            {
                "gate": c.gate,
                "cap": c.cap,
                "reason": c.reason,
                "reason_message": c.message.to_dict(),
                "failing": list(c.failing),
            }
            for c in d.caps
        ],
        "binding_gates": [c.gate for c in d.binding],
        "final": d.final,
        "level": d.level,
        "level_name": LEVEL_NAMES[d.level],
        "target": d.target,
    }


def _recommendation_dict(r: Recommendation) -> dict[str, object]:
    return {
        "advice": r.advice,
        "indicator": r.indicator,
        "value": plain_value(r.value),
        "threshold": r.threshold,
        "gate": r.gate,
        "what_if_index": r.what_if_index,
        "what_if_final": r.what_if_final,
        "gain": r.gain,
    }


def assessment_to_dict(assessment: Assessment) -> dict[str, object]:
    """The assessment as plain JSON-ready data (the `--json` output and the snapshot).

    Texts for people are in English, and those built from figures (a cap's `reason`, a flag's
    `detail`) also as their message (`reason_message`, `detail_message`: see readiness.texts),
    so that a report shows them in its reader's language; the other texts (advice, action,
    archetype, level and dimension names) are message ids themselves."""
    card = assessment.scorecard
    evidence = assessment.evidence
    indicators = card.indicators.to_dict() if card.indicators else {}
    return {
        "sme": assessment.sme,
        "name": assessment.answers.name,
        "taken_at": _iso(assessment.taken_at),
        "questionnaire_version": card.questionnaire_version,
        "mode": "questionnaire-only" if card.questionnaire_only else "evidence",
        "window": {
            "start": _iso(evidence.window_start if evidence else None),
            "end": _iso(evidence.window_end if evidence else None),
        },
        "indicators": {
            name: {"value": indicators.get(name), "score": card.indicator_scores[name]}
            for name in INDICATOR_NAMES
        },
        "dimensions": [_dimension_dict(d) for d in card.dimensions],
        "index": card.index,
        "level": card.level,
        "level_name": card.level_name,
        "archetype": {
            "name": card.archetype.name,
            "lean_index": card.archetype.lean_index,
            "digital_index": card.archetype.digital_index,
            "warning": card.archetype.warning,
        },
        "flags": [
            {
                "kind": f.kind,
                "dimension": f.dimension,
                "detail": f.detail,
                "detail_message": f.message.to_dict(),
                "action": f.action,
            }
            for f in card.flags
        ],
        "priorities": [
            {
                "rank": rank,
                "dimension": r.priority.dimension,
                "priority": r.priority.value,
                "final": r.priority.final,
                "target": r.priority.target,
                "cap_binds": r.priority.cap_binds,
                "foundation": r.priority.foundation,
                "recommendation": _recommendation_dict(r.recommendation)
                if r.recommendation
                else None,
            }
            for rank, r in enumerate(assessment.ranked, 1)
        ],
        "answers": responses_to_dict(assessment.answers.responses),
        "targets": dict(assessment.answers.targets),
    }
