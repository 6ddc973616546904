"""Lean 4.0 readiness scoring: the specification's worked examples to 1e-9, each gate on its
own, questionnaire-only mode, archetypes, claim flags, priorities and what-if gains."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from readiness.answers import Response, SmeAnswers, Special, load_answers
from readiness.assessment import Assessment, run_assessment
from readiness.catalogue import CURRENT
from readiness.evidence import (
    Evidence,
    Indicators,
    ResponseTime,
    indicator_scores,
    ratio_score,
    response_score,
)
from readiness.indicator_file import load_indicators
from readiness.scoring import Scorecard, round_score, score

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "readiness"
NA = Special.NOT_APPLICABLE
DK = Special.DONT_KNOW
DIMENSIONS = ("D1", "D2", "D3", "D4", "D5", "D6", "D7")


def responses(*groups: Sequence[Response]) -> dict[str, Response]:
    values = [value for group in groups for value in group]
    return {f"Q{number}": value for number, value in enumerate(values, 1)}


SME_A = responses(
    (2, 4, 2, 1), (3, 3, 1, 2), (4, 4, 3, 3), (3, 4, 3, 2), (3, 2, 2, 2), (3, 2, 2, 2), (3, 2, 3, 2)
)
SME_A_INDICATORS = Indicators(
    CC=9 / 12,
    DC=(6048 - 423) / 6048,
    OV=6 / 12,
    DU=14 / 20,
    RC=62 / 182,
    ART=ResponseTime(42.0, 37),
    EC=38400 / 61000,
    EV=1 / 2,
    STD=410 / 520,
    CO=21 / 46,
)
SME_B = responses(
    (2, 3, 1, 1),
    (4, 3, 2, 3),
    (2, 2, 2, 1),
    (3, 3, 3, 3),
    (2, 2, 3, 1),
    (1, 1, NA, 1),
    (3, 2, 3, 3),
)
SME_B_INDICATORS = Indicators(
    CC=4 / 14,
    DC=(2688 - 511) / 2688,
    OV=2 / 14,
    DU=6 / 20,
    RC=55 / 96,
    ART=ResponseTime(None, 3),
    EC=0 / 48000,
    EV=0 / 1,
    STD=3900 / 4600,
    CO=38 / 120,
)
# Every indicator at its best: no gate holds except the self-report cap.
FULL = Indicators(
    CC=1.0,
    DC=1.0,
    OV=1.0,
    DU=1.0,
    RC=1.0,
    ART=ResponseTime(5.0, 20),
    EC=1.0,
    EV=1.0,
    STD=1.0,
    CO=1.0,
)
ALL_FIVES = responses(*[(5, 5, 5, 5)] * 7)


def column(card: Scorecard, field: str) -> list[float | None]:
    return [getattr(d, field) for d in card.dimensions]


def assess(answers: dict[str, Response], indicators: Indicators | None) -> Assessment:
    sme = SmeAnswers("sme", CURRENT, answers)
    return run_assessment(sme, None if indicators is None else Evidence(indicators))


def test_sme_a_every_figure() -> None:
    card = score(CURRENT, SME_A, SME_A_INDICATORS)
    assert column(card, "questionnaire") == pytest.approx(
        [2.25, 2.25, 3.50, 3.00, 2.25, 2.25, 2.50], abs=1e-9
    )
    scores = indicator_scores(SME_A_INDICATORS)
    assert scores == {
        "DC": 3, "CC": 4, "OV": 3, "DU": 3, "RC": 2, "ART": 3, "EC": 3, "EV": 3, "STD": 4, "CO": 2
    }  # fmt: skip
    assert column(card, "evidence") == pytest.approx(
        [None, 3.0, 3.5, 3.0, 2.5, 3.0, None], abs=1e-9
    )
    assert column(card, "combined") == pytest.approx(
        [2.25, 2.70, 3.50, 3.00, 2.40, 2.70, 2.50], abs=1e-9
    )
    assert [d.cap for d in card.dimensions] == [4, 3, 4, 3, 2, 4, 4]
    assert [c.gate for c in card.dimension("D2").caps if c.cap == 3] == ["G5"]
    assert card.dimension("D4").caps[0].failing == ("DU",)
    assert [(c.gate, c.failing) for c in card.dimension("D5").binding] == [("G3", ("RC",))]
    assert column(card, "final") == pytest.approx(
        [2.25, 2.70, 3.50, 3.00, 2.00, 2.70, 2.50], abs=1e-9
    )
    assert card.index == pytest.approx(2.675, abs=1e-9)
    assert (card.level, card.level_name) == (2, "Basic/connected")
    assert card.archetype.lean_index == pytest.approx(2.40, abs=1e-9)
    assert card.archetype.digital_index == pytest.approx(9.2 / 3, abs=1e-9)  # 3.07
    assert card.archetype.name == "Tech-led"
    assert card.archetype.warning == "risk of digitising waste"
    assert [f for f in card.flags if f.kind != "dont-know"] == []
    ranked = [(p.dimension, p.value) for p in card.priorities]
    assert [d for d, _ in ranked] == ["D5", "D7", "D1", "D2", "D6"]
    assert [v for _, v in ranked] == pytest.approx([0.225, 0.100, 0.075, 0.0675, 0.030], abs=1e-9)


def test_sme_a_what_if_reason_coverage_at_its_gate() -> None:
    ranked = assess(SME_A, SME_A_INDICATORS).ranked
    top = ranked[0].recommendation
    assert top is not None
    assert (top.dimension, top.indicator, top.threshold, top.gate) == ("D5", "RC", 0.60, "G3")
    assert top.value == pytest.approx(62 / 182, abs=1e-9)
    assert top.what_if_final == pytest.approx(2.70, abs=1e-9)  # now capped at 3 by ART
    assert top.what_if_index == pytest.approx(2.78, abs=1e-9)
    assert top.gain == pytest.approx(0.105, abs=1e-9)
    after = score(CURRENT, SME_A, SME_A_INDICATORS.with_value("RC", 0.60))
    assert after.dimension("D5").cap == 3
    assert [c.failing for c in after.dimension("D5").caps if c.gate == "G3"] == [("ART",)]


def test_sme_b_every_figure() -> None:
    card = score(CURRENT, SME_B, SME_B_INDICATORS)
    assert column(card, "questionnaire") == pytest.approx(
        [1.75, 3.00, 1.75, 3.00, 2.00, 1.00, 2.75], abs=1e-9
    )
    scores = indicator_scores(SME_B_INDICATORS)
    assert scores == {
        "DC": 2, "CC": 2, "OV": 1, "DU": 2, "RC": 3, "ART": None, "EC": 0, "EV": 0, "STD": 4, "CO": 2
    }  # fmt: skip
    assert column(card, "evidence") == pytest.approx(
        [None, 3.0, 2.0, 1.5, 3.0, 0.0, None], abs=1e-9
    )
    assert column(card, "combined") == pytest.approx(
        [1.75, 3.00, 1.90, 2.10, 2.60, 0.40, 2.75], abs=1e-9
    )
    assert [d.cap for d in card.dimensions] == [4, 4, 2, 2, 2, 2, 4]
    assert column(card, "final") == pytest.approx(
        [1.75, 3.00, 1.90, 2.00, 2.00, 0.40, 2.75], abs=1e-9
    )
    assert card.index == pytest.approx(2.100, abs=1e-9)
    assert [d.level for d in card.dimensions] == [1, 3, 1, 2, 2, 0, 2]
    assert (card.level, card.level_name) == (1, "Beginner")  # held down by D6
    assert card.archetype.lean_index == pytest.approx(7.75 / 3, abs=1e-9)  # 2.58
    assert card.archetype.digital_index == pytest.approx(4.3 / 3, abs=1e-9)  # 1.43
    assert card.archetype.name == "Lean-led"
    claims = [(f.kind, f.dimension) for f in card.flags]
    assert claims == [("over-claim", "D4")]  # Q - E = 1.5 exactly
    ranked = [(p.dimension, p.value) for p in card.priorities]
    assert [d for d, _ in ranked] == ["D6", "D3", "D4", "D5", "D1", "D7"]
    assert [v for _, v in ranked] == pytest.approx(
        [0.260, 0.2475, 0.225, 0.225, 0.125, 0.050], abs=1e-9
    )


def test_sme_b_questionnaire_only() -> None:
    card = score(CURRENT, SME_B, None)
    assert card.questionnaire_only
    assert column(card, "evidence") == [None] * 7
    assert column(card, "final") == pytest.approx(
        [1.75, 2.00, 1.75, 2.00, 2.00, 1.00, 2.75], abs=1e-9
    )
    assert card.index == pytest.approx(1.9875, abs=1e-9)  # 1.988 in the specification
    assert card.level == 1
    assert card.archetype.name == "Starter"
    assert {c.gate for d in card.dimensions[1:6] for c in d.binding} <= {"G0", "G2"}


def test_questionnaire_only_caps_d2_to_d6_at_basic_and_d1_d7_at_four() -> None:
    card = score(CURRENT, ALL_FIVES, None)
    assert column(card, "final") == [4.0, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0]
    assert all(d.caps[0].gate == "G0" for d in card.dimensions[1:6])
    assert card.level == 2  # R = 0.3 x 4 + 0.7 x 2 = 2.6
    assert card.index == pytest.approx(2.6, abs=1e-9)
    assert card.archetype.name == "Lean-led"  # (2 + 2 + 4) / 3 = 2.67: D7 is self-reported


def test_worked_example_files_reproduce_the_specification() -> None:
    a = run_assessment(
        load_answers(EXAMPLES / "sme-a.yaml"), load_indicators(EXAMPLES / "sme-a-indicators.yaml")
    )
    b = run_assessment(
        load_answers(EXAMPLES / "sme-b.yaml"), load_indicators(EXAMPLES / "sme-b-indicators.yaml")
    )
    assert a.scorecard.index == pytest.approx(2.675, abs=1e-9)
    assert b.scorecard.index == pytest.approx(2.100, abs=1e-9)
    assert b.scorecard.dimension("D6").questionnaire == 1.0  # Q23 is N/A


# --- each gate on its own: every indicator at its best, then one below its requirement --------
@pytest.mark.parametrize(
    ("indicator", "value", "dimension", "gate", "cap"),
    [
        ("CC", 0.49, "D3", "G1", 2),
        ("DC", 0.84, "D3", "G1", 2),
        ("OV", 0.49, "D4", "G2", 2),
        ("DU", 0.74, "D4", "G2", 3),
        ("RC", 0.59, "D5", "G3", 2),
        ("ART", ResponseTime(31.0, 20), "D5", "G3", 3),
        ("ART", ResponseTime(None, 4), "D5", "G3", 3),  # n < 5: not shown, so the cap holds
        ("EC", 0.49, "D6", "G4", 2),
        ("STD", 0.79, "D2", "G5", 3),
    ],
)
def test_each_gate_alone(
    indicator: str, value: float | ResponseTime, dimension: str, gate: str, cap: int
) -> None:
    card = score(CURRENT, ALL_FIVES, FULL.with_value(indicator, value))
    caps = {c.gate: c for c in card.dimension(dimension).caps}
    assert caps[gate].cap == cap
    assert indicator in caps[gate].failing
    assert card.dimension(dimension).cap == cap
    assert card.dimension(dimension).final == cap
    others = [d for d in card.dimensions if d.id != dimension]
    assert [d.final for d in others if d.id not in ("D1", "D7")] == [5.0] * 4


@pytest.mark.parametrize(
    ("indicator", "value"),
    [
        ("CC", 0.50),
        ("DC", 0.85),
        ("OV", 0.50),
        ("DU", 0.75),
        ("RC", 0.60),
        ("EC", 0.50),
        ("STD", 0.80),
    ],
)
def test_a_gate_lifts_exactly_at_its_threshold(indicator: str, value: float) -> None:
    card = score(CURRENT, ALL_FIVES, FULL.with_value(indicator, value))
    assert all(c.gate in ("G6",) for d in card.dimensions for c in d.caps)


def test_gate_at_threshold_allows_float_noise() -> None:
    card = score(CURRENT, ALL_FIVES, FULL.with_value("RC", math.nextafter(0.6, 0)))
    assert "G3" not in {c.gate for c in card.dimension("D5").caps}
    slow = FULL.with_value("ART", ResponseTime(30.0, 5))
    assert score(CURRENT, ALL_FIVES, slow).dimension("D5").cap == 5


def test_g6_caps_at_four_without_top_evidence_and_self_report_always() -> None:
    card = score(CURRENT, ALL_FIVES, FULL.with_value("CO", 0.90))  # D2 evidence (5 + 4) / 2
    assert card.dimension("D2").evidence == 4.5
    assert [c.gate for c in card.dimension("D2").caps] == []
    assert card.dimension("D2").final == 4.7
    card = score(CURRENT, ALL_FIVES, FULL.with_value("CO", 0.70))  # (5 + 3) / 2 = 4
    assert [(c.gate, c.cap) for c in card.dimension("D2").caps] == [("G6", 4)]
    assert card.dimension("D2").final == 4.0
    assert card.dimension("D1").final == card.dimension("D7").final == 4.0


def test_g0_holds_for_a_dimension_whose_indicators_are_all_null() -> None:
    card = score(CURRENT, ALL_FIVES, replace(FULL, EC=None, EV=None))
    d6 = card.dimension("D6")
    assert d6.evidence is None
    assert [c.gate for c in d6.caps] == ["G0", "G4", "G6"]
    assert d6.final == 2.0


def test_gates_hold_on_null_indicators() -> None:
    card = score(CURRENT, ALL_FIVES, Indicators(CC=1.0))
    assert card.dimension("D3").evidence == 5.0
    assert card.dimension("D3").caps[0].failing == ("DC",)
    assert card.dimension("D3").final == 2.0


# --- evidence mapping ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, 0),
        (0.0499, 0),
        (0.05, 1),
        (0.25, 2),
        (0.4999, 2),
        (0.5, 3),
        (0.75, 4),
        (0.95, 5),
        (1.0, 5),
    ],
)
def test_ratio_cut_points(value: float, expected: int) -> None:
    assert ratio_score(value) == expected


def test_data_completeness_has_its_own_cut_points() -> None:
    assert indicator_scores(Indicators(DC=0.849))["DC"] == 2
    assert indicator_scores(Indicators(DC=0.99))["DC"] == 5
    assert indicator_scores(Indicators(CC=0.849))["CC"] == 4


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0.0, 5), (10.0, 5), (10.5, 4), (30.0, 4), (60.0, 3), (120.0, 2), (240.0, 1), (241.0, 0)],
)
def test_response_time_scores(minutes: float, expected: int) -> None:
    assert response_score(ResponseTime(minutes, 10)) == expected


def test_response_time_without_logging_scores_zero_and_too_few_events_none() -> None:
    assert response_score(ResponseTime(None, 0, logging=False)) == 0
    assert response_score(ResponseTime(None, 4)) is None


# --- answers: don't know and N/A --------------------------------------------------------------
def test_dont_know_scores_zero_and_is_flagged_na_is_left_out() -> None:
    answers = dict(SME_A, Q1=DK, Q2=NA)
    card = score(CURRENT, answers, SME_A_INDICATORS)
    assert card.dimension("D1").questionnaire == pytest.approx((0 + 2 + 1) / 3, abs=1e-9)
    assert [(f.kind, f.dimension) for f in card.flags] == [("dont-know", "D1")]
    assert "Q1" in card.flags[0].detail


def test_under_claim_flag() -> None:
    answers = dict(SME_A, Q17=0, Q18=0, Q19=0, Q20=0)
    card = score(CURRENT, answers, SME_A_INDICATORS)
    assert [(f.kind, f.dimension) for f in card.flags] == [("under-claim", "D5")]


# --- overall level, archetypes, rounding, priorities --------------------------------------------
def test_overall_level_is_at_most_one_above_the_weakest_dimension() -> None:
    answers = dict(ALL_FIVES, Q21=0, Q22=0, Q23=0, Q24=0)
    card = score(CURRENT, answers, FULL.with_value("EC", 0.0).with_value("EV", 0.0))
    assert card.dimension("D6").final == 0.0
    assert card.index >= 4
    assert card.level == 1


@pytest.mark.parametrize(
    ("lean", "digital", "name"),
    [(0, 0, "Starter"), (5, 0, "Lean-led"), (0, 5, "Tech-led"), (5, 5, "Lean 4.0 integrator")],
)
def test_archetypes(lean: int, digital: int, name: str) -> None:
    groups = {d: (lean if d in ("D2", "D5", "D7") else digital,) * 4 for d in DIMENSIONS}
    practice, technology = lean / 5, digital / 5
    evidence = Indicators(
        STD=practice,
        CO=practice,
        RC=practice,
        ART=ResponseTime(5.0 if lean else 500.0, 20),
        CC=technology,
        DC=technology,
        OV=technology,
        DU=technology,
        EC=technology,
        EV=technology,
    )
    card = score(CURRENT, responses(*groups.values()), evidence)
    assert card.archetype.name == name


def test_archetype_threshold_is_inclusive() -> None:
    answers = responses((0,) * 4, (5,) * 4, (0,) * 4, (0,) * 4, (5,) * 4, (0,) * 4, (3, 4, 3, 4))
    card = score(CURRENT, answers, None)
    assert [card.dimension(d).final for d in ("D2", "D5", "D7")] == [2.0, 2.0, 3.5]
    assert card.archetype.lean_index == 2.5
    assert card.archetype.name == "Lean-led"


def test_final_scores_round_half_up_after_dropping_float_noise() -> None:
    assert round_score(2.675) == 2.68  # the double 2.675 lies just below 2.675
    assert round_score(2.67499) == 2.67
    assert round_score(0.4 * 2.25 + 0.6 * 3.0) == 2.7


def test_priority_ties_go_to_lower_final_then_dimension_order() -> None:
    card = score(CURRENT, SME_B, SME_B_INDICATORS)
    d4, d5 = card.priorities[2], card.priorities[3]
    assert (d4.dimension, d5.dimension) == ("D4", "D5")
    assert d4.value == d5.value and d4.final == d5.final


def test_targets_per_dimension_and_default() -> None:
    card = score(CURRENT, SME_A, SME_A_INDICATORS, {"default": 4, "D5": 5})
    assert [d.target for d in card.dimensions] == [4, 4, 4, 4, 5, 4, 4]
    assert card.priorities[0].dimension == "D5"
    assert card.priorities[0].value == pytest.approx(0.15 * 3 * 1.5, abs=1e-9)


def test_cap_binds_compares_combined_with_the_cap_not_the_rounding() -> None:
    card = score(CURRENT, SME_A, SME_A_INDICATORS)
    assert not card.dimension("D2").cap_binds  # S = 2.6999999999999997, F = 2.70
    assert card.dimension("D5").cap_binds


# --- recommendations -------------------------------------------------------------------------
def test_sme_b_recommendations_and_their_what_ifs() -> None:
    ranked = assess(SME_B, SME_B_INDICATORS).ranked
    picks = [(r.priority.dimension, r.recommendation) for r in ranked]
    got = [(d, r.indicator if r else None, round(r.gain, 9) if r else None) for d, r in picks]
    assert got == [
        ("D6", "EC", 0.09),  # EC 0.5 scores 3: E6 1.5, S6 1.3, G4 lifted
        ("D3", "CC", 0.015),  # CC and DC tie at +0.015; the gate's first indicator wins
        ("D4", "OV", 0.105),  # OV 0.5 lifts the cap to 3 (DU): F4 = S4 = 2.7
        ("D5", "RC", 0.09),  # RC 0.6 lifts the cap to 3 (ART n < 5): F5 = 2.6
        ("D1", None, 0.125),  # no indicator: F1 at its target 3
        ("D7", None, None),  # sixth: no recommendation shown
    ]


def test_questionnaire_only_recommendations_measure_the_indicator() -> None:
    ranked = assess(SME_B, None).ranked
    d2 = next(r.recommendation for r in ranked if r.priority.dimension == "D2")
    assert d2 is not None
    assert d2.indicator == "STD"
    assert d2.value is None
    # STD at 0.8 alone: E2 = 4, S2 = 0.4 x 3 + 0.6 x 4 = 3.6; G0 and G5 lift, G6 caps at 4.
    assert d2.what_if_final == 3.6
    assert d2.gain == pytest.approx(0.15 * 1.6, abs=1e-9)


def test_a_dimension_meeting_every_requirement_gets_its_questionnaire_rule() -> None:
    ranked = assess(SME_A, SME_A_INDICATORS).ranked
    d6 = next(r.recommendation for r in ranked if r.priority.dimension == "D6")
    assert d6 is not None
    assert d6.indicator is None
    assert d6.what_if_final == 3.0
    assert d6.gain == pytest.approx(0.1 * 0.3, abs=1e-9)
