"""The questionnaire in every language: each of its texts (dimensions, levels, items, anchors,
scales, indicators, archetypes, gate reasons, claim flags) is marked and translated in every
catalogue, level and dimension names are the glossary's, numbers follow the language, and the
English texts a saved assessment holds read back in any language."""

from __future__ import annotations

import re

import pytest

from readiness.answers import SPECIAL_NAMES, Special
from readiness.catalogue import CURRENT, QUESTIONNAIRES
from readiness.evidence import INDICATOR_NAMES, Indicators, ResponseTime
from readiness.questionnaire import (
    FREQUENCY_OPTIONS,
    LEVEL_NAMES,
    SHARE_OPTIONS,
    level_name,
    share_options,
    translate,
)
from readiness.report import stored_text
from readiness.scoring import INDICATOR_GATES, Requirement, claim_detail, score
from shopfloor import i18n
from tests.test_i18n import _catalogue, glossary

TRANSLATED = [code for code in i18n.LANGUAGES if code != i18n.SOURCE_LANGUAGE]


def _questionnaire_texts() -> list[str]:
    """Every text of every questionnaire version people read, with the scales and names."""
    texts: list[str] = [*LEVEL_NAMES, *FREQUENCY_OPTIONS, *SPECIAL_NAMES.values()]
    for version in QUESTIONNAIRES.values():
        for dimension in version.dimensions:
            texts += [dimension.name, *dimension.levels]
        for item in version.items:
            texts += [item.text, *(item.anchors or ())]
    return [*texts, *INDICATOR_NAMES.values()]


def test_the_questionnaire_has_its_texts() -> None:
    texts = set(_questionnaire_texts())
    assert {"Strategy & leadership", "Visible", "Automatic", "OEE visibility"} <= texts
    assert len(texts) > 180


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_questionnaire_text_is_translated(code: str) -> None:
    catalogue = _catalogue(code)
    untranslated = []
    for message in _questionnaire_texts():
        entry = catalogue.get(message)
        if entry is None or entry.fuzzy or not entry.string:
            untranslated.append(message)
    assert not untranslated, f"{code}: not translated: {untranslated}"


@pytest.mark.parametrize("code", TRANSLATED)
def test_level_and_dimension_names_are_the_glossarys(code: str) -> None:
    terms = {row["en"]: row for row in glossary()}
    assert [level_name(level, lang=code) for level in range(6)] == [
        terms[name][code] for name in LEVEL_NAMES
    ]
    for dimension in CURRENT.dimensions:
        assert translate(dimension.name, lang=code) == terms[dimension.name][code]


def test_an_item_reads_in_the_language() -> None:
    q10, q6, q14 = (CURRENT.item(item_id) for item_id in ("Q10", "Q6", "Q14"))
    assert q10 is not None and q6 is not None and q14 is not None
    assert q10.option_text(4) == "Automatic" and q10.option_text(4, lang="ru") == "Автоматически"
    assert q10.option_text(4, lang="sr-Latn") == "Automatski"
    assert translate(q10.text, lang="be") == "Улік колькасці дэталей"
    assert q14.option_text(4, lang="ru") == "еженедельно"
    assert [q6.option_text(level, lang="ru") for level in range(6)] == list(share_options("ru"))
    assert share_options("en") == SHARE_OPTIONS == (
        "0%", "< 10%", "10-30%", "30-60%", "60-90%", "> 90%",
    )  # fmt: skip
    assert translate(SPECIAL_NAMES[Special.DONT_KNOW], lang="sr-Cyrl") == "не знам"


def test_a_gates_requirement_has_the_languages_digits() -> None:
    def requirement(indicator: str, threshold: float, lang: str = "en") -> str:
        return Requirement(indicator, threshold).message.render(lang)

    assert requirement("RC", 0.6) == "RC >= 0.60"
    assert requirement("RC", 0.6, "ru") == "RC >= 0,60"
    assert requirement("ART", 30.0) == "ART <= 30 min with n >= 5"
    assert requirement("ART", 30.0, "be") == "ART <= 30 хв пры n >= 5"
    assert requirement("ART", 7.5, "sr-Latn") == "ART <= 7,5 min uz n >= 5"


def _scorecard(lang: str) -> tuple[list[str], list[str]]:
    """Every gate reason and flag detail of a scorecard with every gate (G0-G6) holding and
    both kinds of flag: over-claims and a "don't know"."""
    indicators = Indicators(CC=0.4, DC=0.9, OV=0.2, DU=0.5, RC=0.1, ART=ResponseTime(50.0, 9))
    responses: dict[str, int | Special] = {item.id: 5 for item in CURRENT.items}
    responses |= {"Q1": Special.DONT_KNOW, "Q21": 0, "Q22": 0, "Q23": 0, "Q24": 0}
    card = score(CURRENT, responses, indicators)
    reasons = [cap.message.render(lang) for d in card.dimensions for cap in d.caps]
    return reasons, [flag.message.render(lang) for flag in card.flags]


def test_english_reasons_and_flags_are_as_before() -> None:
    reasons, details = _scorecard("en")
    assert reasons + details == [
        "self-reported only",
        "no measured evidence",
        "needs STD >= 0.80",
        "needs evidence >= 4.5",
        "needs CC >= 0.50 and DC >= 0.85",
        "needs evidence >= 4.5",
        "needs OV >= 0.50",
        "needs DU >= 0.75",
        "needs evidence >= 4.5",
        "needs RC >= 0.60",
        "needs ART <= 30 min with n >= 5",
        "needs evidence >= 4.5",
        "no measured evidence",
        "needs EC >= 0.50",
        "needs evidence >= 4.5",
        "self-reported only",
        "don't know: Q1 (scored 0)",
        "Q 5.00 - E 2.50 = +2.50",
        "Q 5.00 - E 2.00 = +3.00",
        "Q 5.00 - E 2.00 = +3.00",
    ]


@pytest.mark.parametrize("code", TRANSLATED)
def test_an_old_snapshots_english_texts_read_in_the_language(code: str) -> None:
    """What a snapshot saved before messages were stored keeps (English) reads as the
    scorecard says it in the language."""
    (reasons, details), (in_language, details_in_language) = _scorecard("en"), _scorecard(code)
    assert [stored_text({"reason": t}, "reason", lang=code) for t in reasons] == in_language
    assert [stored_text({"detail": t}, "detail", lang=code) for t in details] == (
        details_in_language
    )
    words = re.compile(r"\b(?:needs|and|with|scored|know|self|evidence)\b")
    assert not [t for t in in_language + details_in_language if words.search(t)]
    assert any("0,50" in t for t in in_language) and not any("0.50" in t for t in in_language)


def test_stored_texts_parse_back_and_unknown_ones_stay() -> None:
    for gate in INDICATOR_GATES:
        for requirement in gate.requirements:
            reason = f"needs {requirement.text}"
            assert stored_text({"reason": reason}, "reason") == reason
    assert translate("Tech-led", lang="ru") == "Технологии впереди"
    assert stored_text({"reason": "not a text of ours"}, "reason", lang="ru") == (
        "not a text of ours"
    )


def test_a_negative_claim_gap_keeps_its_sign() -> None:
    assert claim_detail(0.5, 3.0, -2.5).render("ru") == "Q 0,50 - E 3,00 = -2,50"
