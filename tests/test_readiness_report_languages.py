"""The readiness report in the reader's language: texts scoring built from figures are stored as
messages and shown translated with the language's numbers, snapshots saved before that still
read in every language, and the CSV suits a spreadsheet in the language."""

from __future__ import annotations

import copy
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from readiness.answers import Special, load_answers
from readiness.assessment import run_assessment
from readiness.evidence import Evidence
from readiness.indicator_file import indicators_from_dict, load_indicators
from readiness.persistence import GateAlert, ReadinessStore
from readiness.report import (
    CSV_COLUMNS,
    alert_text,
    archetype_text,
    binding_gate,
    cohort,
    dimension_rows,
    flag_lines,
    gate_notes,
    indicator_parts,
    level_text,
    mode_text,
    recommendation_rows,
    report_csv,
    series_name,
    stored_text,
)
from readiness.texts import All, Number, Text, formula

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "readiness"
T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
CYRILLIC = re.compile("[\u0400-\u04ff]")
Result = dict[str, Any]


@pytest.fixture
def results(tmp_path: Path) -> Iterator[dict[str, Result]]:
    """SME-A and SME-B as saved snapshots (SME-B over-claims D4), and SME-A with two answers
    it does not know."""
    with ReadinessStore(tmp_path / "readiness.db") as store:
        for sme in ("sme-a", "sme-b"):
            answers = load_answers(EXAMPLES / f"{sme}.yaml")
            evidence = load_indicators(EXAMPLES / f"{sme}-indicators.yaml")
            store.save(run_assessment(answers, evidence, T0))
        a = load_answers(EXAMPLES / "sme-a.yaml")
        unsure = {**a.responses, "Q1": Special.DONT_KNOW, "Q3": Special.DONT_KNOW}
        store.save(run_assessment(replace(a, sme="unsure", responses=unsure), None, T0))
        yield {sme: store.snapshots(sme)[-1].result for sme in store.smes()}


def saved_before_messages(result: Result) -> Result:
    """The result as a snapshot saved before texts were stored as messages holds it: the same
    English texts, without their messages."""
    old = copy.deepcopy(result)
    for dimension in old["dimensions"]:
        for cap in dimension["caps"]:
            del cap["reason_message"]
    for flag in old["flags"]:
        del flag["detail_message"]
    return old


# --- texts in Russian and Serbian Latin -----------------------------------------------------


def test_a_snapshot_stores_its_texts_as_messages(results: dict[str, Result]) -> None:
    d5 = results["sme-a"]["dimensions"][4]
    g3 = next(c for c in d5["caps"] if c["gate"] == "G3")
    assert g3["reason"] == "needs RC >= 0.60"  # English, as the JSON output always gave it
    assert g3["reason_message"] == {
        "msgid": "needs {requirements}",
        "values": {
            "requirements": {
                "all": [
                    {
                        "formula": "{indicator} >= {threshold}",
                        "values": {"indicator": "RC", "threshold": {"number": 0.6, "digits": 2}},
                    }
                ]
            }
        },
    }
    [flag] = results["sme-b"]["flags"]
    assert flag["detail"] == "Q 3.00 - E 1.50 = +1.50"
    assert flag["detail_message"]["formula"] == "Q {questionnaire} - E {evidence} = {gap}"


def test_gate_reasons_in_russian_with_decimal_commas(results: dict[str, Result]) -> None:
    assert gate_notes(results["sme-a"], lang="ru")[0].endswith(": G3: нужно RC >= 0,60")
    d5 = results["sme-b"]["dimensions"][4]
    assert binding_gate(d5, lang="sr-Latn") == "G3: potrebno RC >= 0,60"
    g0 = next(c for d in results["unsure"]["dimensions"] for c in d["caps"] if c["gate"] == "G0")
    assert stored_text(g0, "reason", lang="ru") == "нет данных измерений"
    g6 = next(c for c in results["sme-a"]["dimensions"][1]["caps"] if c["gate"] == "G6")
    assert stored_text(g6, "reason", lang="be") == "трэба бал па даных вымярэнняў >= 4,5"


def test_flags_in_russian(results: dict[str, Result]) -> None:
    [line] = flag_lines(results["sme-b"], lang="ru")
    assert line.startswith("D4 ")
    assert line.endswith(
        ", завышенная самооценка: вы указали больше, чем показывает ваше оборудование "
        "(Q 3,00 - E 1,50 = +1,50); следующий шаг: проверочный обход (выход на гемба)"
    )
    unsure = flag_lines(results["unsure"], lang="sr-Latn")
    assert unsure[0].endswith(
        ", ne znam: odgovor još nije dat (ne znam: Q1, Q3 (ocenjeno sa 0)); "
        "sledeći korak: saznati i odgovoriti ponovo"
    )


def test_recommendations_in_serbian_latin(results: dict[str, Result]) -> None:
    rows = recommendation_rows(results["sme-a"], lang="sr-Latn")
    assert rows[0].basis == "RC 34% -> 0,6 (G3)"
    assert rows[0].advice.startswith("Postavite listu razloga na HMI ili tablet")
    assert rows[1].basis == "D7 na 3,00"
    assert not any(CYRILLIC.search(r.advice) for r in rows)
    assert "Обучите" in recommendation_rows(results["sme-a"], lang="ru")[1].advice


def test_overall_texts_in_russian(results: dict[str, Result]) -> None:
    a = results["sme-a"]
    assert archetype_text(a, lang="ru") == ("Технологии впереди", "риск оцифровать потери")
    assert archetype_text(a) == ("Tech-led", "risk of digitising waste")
    assert archetype_text(results["sme-b"], lang="ru") == ("Бережливость впереди", "")
    assert mode_text(a, lang="ru") == "анкета и данные измерений"
    assert mode_text(results["unsure"], lang="sr-Latn") == "samo upitnik"
    assert level_text(a).startswith("2 ")
    assert series_name("evidence", lang="ru") == "данные измерений"
    assert cohort(results, anonymise=True, lang="ru").labels[0] == "Предприятие 1"


@pytest.mark.parametrize(
    ("events", "note"),
    [(1, "1 событие, нужно 5"), (2, "2 события, нужно 5"), (5, "5 событий, нужно 5")],
)
def test_too_few_events_in_russian_plurals(events: int, note: str) -> None:
    value = {"logging": True, "median_minutes": None, "events": events}
    assert indicator_parts(value, lang="ru") == ("-", note)


def test_indicator_values_in_russian() -> None:
    art = {"logging": True, "median_minutes": 42.0, "events": 37, "within_15_min": 0.2}
    assert indicator_parts(art, lang="ru") == ("42 мин", "медиана, n = 37, 20% в пределах 15 мин")
    assert indicator_parts(None, lang="ru") == ("-", "не измеряется")
    assert indicator_parts(0.341, lang="sr-Latn") == ("34%", "")


def test_an_alert_in_russian() -> None:
    alert = GateAlert(datetime(2026, 11, 3, 6, tzinfo=UTC), "D3", "G1", 2, "CC", 1 / 3,
                      "CC >= 0.50", 0.5)  # fmt: skip
    text = alert_text(alert, lang="ru")
    assert text.startswith("03.11.2026: показатель CC (")
    assert text.endswith(
        "опустился ниже порога G1: 33%, нужно CC >= 0,50; балл направления D3 ограничен значением 2"
    )
    assert alert_text(alert).startswith("2026-11-03: CC (connectivity coverage) fell below")


# --- the CSV --------------------------------------------------------------------------------


def read_csv(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_the_english_csv_is_as_it_always_was(results: dict[str, Result]) -> None:
    text = report_csv(results["sme-a"])
    assert not text.startswith("\ufeff")
    header, *rows = read_csv(text, ",")
    assert tuple(header) == CSV_COLUMNS
    d5 = dict(zip(CSV_COLUMNS, rows[4], strict=True))
    assert (d5["taken_at"], d5["mode"], d5["weight"], d5["final"], d5["index"]) == (
        "2026-11-02T06:00:00+00:00", "evidence", "0.15", "2.0", "2.675",
    )  # fmt: skip
    assert (d5["binding_gates"], d5["archetype"]) == ("G3: needs RC >= 0.60", "Tech-led")
    assert report_csv(results["sme-a"], lang="en") == text


def test_the_russian_csv_suits_a_russian_spreadsheet(results: dict[str, Result]) -> None:
    text = report_csv(results["sme-a"], lang="ru")
    assert text.startswith("\ufeff")  # Excel reads UTF-8 (Cyrillic) only with it
    header, *rows = read_csv(text.removeprefix("\ufeff"), ";")
    assert header[:4] == ["Предприятие", "Название", "Время оценки (UTC)", "Режим"]
    assert header[-3:] == ["Индекс готовности R", "Общий уровень", "Архетип"]
    assert len(rows) == 7 and all(len(row) == len(CSV_COLUMNS) for row in rows)
    d5 = dict(zip(CSV_COLUMNS, rows[4], strict=True))
    assert (d5["sme"], d5["taken_at"], d5["dimension"]) == ("sme-a", "2026-11-02 06:00:00", "D5")
    assert (d5["weight"], d5["questionnaire"], d5["evidence"], d5["combined"]) == (
        "0,15", "2,25", "2,5", "2,4",
    )  # fmt: skip
    assert (d5["final"], d5["cap"], d5["gap"], d5["index"]) == ("2", "2", "1", "2,675")
    assert d5["binding_gates"] == "G3: нужно RC >= 0,60"
    assert (d5["mode"], d5["archetype"]) == ("анкета и данные измерений", "Технологии впереди")
    assert dict(zip(CSV_COLUMNS, rows[0], strict=True))["evidence"] == ""  # D1: no indicators


def test_the_serbian_latin_csv(results: dict[str, Result]) -> None:
    text = report_csv(results["sme-b"], lang="sr-Latn").removeprefix("\ufeff")
    assert not CYRILLIC.search(text)
    header, *rows = read_csv(text, ";")
    assert header[0] == "Preduzeće" and header[11] == "Ograničavajući pragovi"
    d4 = dict(zip(CSV_COLUMNS, rows[3], strict=True))
    assert (d4["questionnaire"], d4["evidence"], d4["combined"]) == ("3", "1,5", "2,1")
    assert d4["binding_gates"] == "G2: potrebno OV >= 0,50"
    assert d4["archetype"] == "Prednjači vitka proizvodnja"


# --- snapshots saved before texts were stored as messages -----------------------------------


@pytest.mark.parametrize("lang", ["en", "ru", "sr-Latn"])
def test_an_old_english_snapshot_reads_in_every_language(
    results: dict[str, Result], lang: str
) -> None:
    for result in results.values():
        old = saved_before_messages(result)
        assert flag_lines(old, lang=lang) == flag_lines(result, lang=lang)
        assert dimension_rows(old, lang=lang) == dimension_rows(result, lang=lang)
        assert report_csv(old, lang=lang) == report_csv(result, lang=lang)
        assert recommendation_rows(old, lang=lang) == recommendation_rows(result, lang=lang)


@pytest.mark.parametrize(
    ("key", "english", "russian"),
    [
        ("reason", "needs CC >= 0.50 and DC >= 0.85", "нужно CC >= 0,50 и DC >= 0,85"),
        ("reason", "needs ART <= 30 min with n >= 5", "нужно ART <= 30 мин при n >= 5"),
        ("reason", "needs evidence >= 4.5", "нужен балл по данным измерений >= 4,5"),
        ("reason", "self-reported only", "только самооценка"),
        ("detail", "Q 1.25 - E 3.00 = -1.75", "Q 1,25 - E 3,00 = -1,75"),
        ("detail", "don't know: Q5 (scored 0)", "не знаю: Q5 (0 баллов)"),
        ("reason", "needs a text no version wrote", "needs a text no version wrote"),
    ],
)
def test_old_english_texts_are_read_back(key: str, english: str, russian: str) -> None:
    assert stored_text({key: english}, key, lang="ru") == russian
    assert stored_text({key: english}, key) == english


# --- the messages themselves ----------------------------------------------------------------


def test_a_message_goes_to_json_and_back() -> None:
    message = Text(
        "needs {requirements}",
        {"requirements": All((formula("{indicator} >= {threshold}", indicator="CC",
                                      threshold=Number(0.5, 2)), "DC >= 0.85"))},
    )  # fmt: skip
    assert Text.from_dict(message.to_dict()) == message
    assert str(message) == "needs CC >= 0.50 and DC >= 0.85"
    gap = formula("{gap}", gap=Number(1.5, 2, signed=True))
    assert Text.from_dict(gap.to_dict()) == gap and gap.render("ru") == "+1,50"
    assert Number(-0.001, 2).text("ru") == "0,00"


def test_a_fall_below_a_gate_in_a_language(tmp_path: Path) -> None:
    """The alert as the page finds it in the store, in Serbian Latin."""
    moulding = load_answers(EXAMPLES / "moulding.yaml")
    full = {name: 1.0 for name in ("DC", "CC", "OV", "RC", "STD")}
    with ReadinessStore(tmp_path / "r.db") as store:
        for day, cc in ((0, 1.0), (1, 1 / 3)):
            evidence = Evidence(indicators_from_dict({**full, "CC": cc}), source="test")
            store.save(run_assessment(moulding, evidence, T0.replace(day=2 + day)))
        [alert] = store.gate_alerts("polimer")
    text = alert_text(alert, lang="sr-Latn")
    assert text.startswith("03. 11. 2026.: pokazatelj CC (")
    assert "pao je ispod praga G1: 33%, potrebno CC >= 0,50" in text
