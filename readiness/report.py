"""An SME's readiness as tables: what the dashboard page, its CSV and its PDF show.

Everything here reads a snapshot's result (`assessment_to_dict`), so a report shows an
assessment exactly as it was scored, even after the scoring changes.

Every function that returns text people read takes `lang`: the snapshot keeps its texts in
English, as message ids (advice, actions, archetypes, names) or as messages with their figures
(a gate's reason, a flag's detail; see readiness.texts), and they are translated here, with
numbers in the language's way. A snapshot saved before the messages were stored has only the
English: the texts scoring built from figures are read back into messages (`stored_text`), a
text that is a known message id is translated, and anything else is shown as it was stored.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any, cast

from babel.numbers import format_decimal, get_decimal_symbol

from readiness.evidence import INDICATOR_NAMES, MIN_RESPONSE_EVENTS
from readiness.persistence import GateAlert
from readiness.questionnaire import translate
from readiness.scoring import (
    Requirement,
    claim_detail,
    dont_know_detail,
    evidence_reason,
    requirements_reason,
)
from readiness.texts import Number, Text
from shopfloor import i18n
from shopfloor.i18n import N_, SOURCE_LANGUAGE, number_text, percent_text

Result = Mapping[str, Any]  # a snapshot's result, as assessment_to_dict gives it

CSV_COLUMNS = (
    "sme", "name", "taken_at", "mode", "dimension", "dimension_name", "weight", "questionnaire",
    "evidence", "combined", "cap", "binding_gates", "final", "level", "target", "gap",
    "index", "overall_level", "archetype",
)  # fmt: skip
# The CSV's header in a language other than English (in English it is CSV_COLUMNS).
CSV_HEADINGS = {
    "sme": N_("SME"),
    "name": N_("Name"),
    "taken_at": N_("Scored at (UTC)"),
    "mode": N_("Mode"),
    "dimension": N_("Dimension"),
    "dimension_name": N_("Dimension name"),
    "weight": N_("Weight"),
    "questionnaire": N_("Questionnaire score"),
    "evidence": N_("Evidence score"),
    "combined": N_("Combined score"),
    "cap": N_("Cap"),
    "binding_gates": N_("Binding gates"),
    "final": N_("Final score"),
    "level": N_("Level"),
    "target": N_("Target"),
    "gap": N_("Gap to target"),
    "index": N_("Readiness index R"),
    "overall_level": N_("Overall level"),
    "archetype": N_("Archetype"),
}
MODE_NAMES = {
    "evidence": N_("questionnaire and measured evidence"),
    "questionnaire-only": N_("questionnaire only"),
}


# --- texts of snapshots saved before messages were stored -----------------------------------

_NUMBER = r"[-+]?\d+(?:\.\d+)?"


def _legacy_requirement(text: str) -> Requirement | None:
    """ "CC >= 0.50" or "ART <= 30 min with n >= 5", as scoring wrote them."""
    if found := re.fullmatch(rf"ART <= ({_NUMBER}) min with n >= \d+", text):
        return Requirement("ART", float(found[1]))
    if found := re.fullmatch(rf"([A-Z]+) >= ({_NUMBER})", text):
        return Requirement(found[1], float(found[2]))
    return None


def _legacy_reason(text: str) -> Text | None:
    if found := re.fullmatch(rf"needs evidence >= ({_NUMBER})", text):
        return evidence_reason(float(found[1]))
    if found := re.fullmatch(r"needs (.+)", text):
        parts = found[1].split(" and ")
        requirements = [r for part in parts if (r := _legacy_requirement(part))]
        if len(requirements) == len(parts):
            return requirements_reason(requirements)
    return None


def _legacy_detail(text: str) -> Text | None:
    if found := re.fullmatch(rf"Q ({_NUMBER}) - E ({_NUMBER}) = ({_NUMBER})", text):
        return claim_detail(*(float(found[i]) for i in (1, 2, 3)))
    if found := re.fullmatch(r"don't know: (.+) \(scored 0\)", text):
        return dont_know_detail(found[1])
    return None


_LEGACY: dict[str, Callable[[str], Text | None]] = {
    "reason": _legacy_reason,
    "detail": _legacy_detail,
}


def stored_text(entry: Mapping[str, Any], key: str, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A cap's "reason" or a flag's "detail" of a snapshot, in the language: from its stored
    message (`<key>_message`), or, in a snapshot saved before messages were stored, from the
    English it holds, read back into its message where scoring built it from figures."""
    message = entry.get(f"{key}_message")
    if message is not None:
        return Text.from_dict(message).render(lang)
    english = str(entry[key])
    legacy = _LEGACY[key](english) if key in _LEGACY else None
    return legacy.render(lang) if legacy is not None else translate(english, lang=lang)


# --- dimensions -----------------------------------------------------------------------------


def _binding_caps(dimension: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    binding = set(dimension["binding_gates"])
    return [c for c in dimension["caps"] if c["gate"] in binding and c["cap"] == dimension["cap"]]


def binding_gate(dimension: Mapping[str, Any], *, lang: str = SOURCE_LANGUAGE) -> str:
    """The gates that hold the dimension's score down, with what lifts them; "" if none."""
    return "; ".join(
        f"{c['gate']}: {stored_text(c, 'reason', lang=lang)}" for c in _binding_caps(dimension)
    )


@dataclass(frozen=True)
class DimensionRow:
    id: str
    name: str
    weight: float
    questionnaire: float
    evidence: float | None
    combined: float
    cap: int
    binding: str  # the binding gate, "" when no gate holds the score down
    gates: str  # the binding gates' ids only ("G3"), short enough to label a bar
    final: float
    level: int
    target: float

    @property
    def gap(self) -> float:
        return max(0.0, self.target - self.final)

    @property
    def label(self) -> str:
        return f"{self.id} {self.name}"


def dimension_rows(result: Result, *, lang: str = SOURCE_LANGUAGE) -> list[DimensionRow]:
    """One row per dimension: its name and binding gates in the language, its figures."""
    return [
        DimensionRow(
            id=d["id"],
            name=translate(d["name"], lang=lang),
            weight=d["weight"],
            questionnaire=d["questionnaire"],
            evidence=d["evidence"],
            combined=d["combined"],
            cap=d["cap"],
            binding=binding_gate(d, lang=lang),
            gates=" ".join(c["gate"] for c in _binding_caps(d)),
            final=d["final"],
            level=d["level"],
            target=d["target"],
        )
        for d in result["dimensions"]
    ]


def gate_notes(result: Result, *, lang: str = SOURCE_LANGUAGE) -> list[str]:
    """One line per dimension a gate holds down: the gap chart labels its bar with the gate's
    id only, since the full requirement does not fit beside a bar."""
    return [f"{r.label}: {r.binding}" for r in dimension_rows(result, lang=lang) if r.binding]


# --- the overall figures --------------------------------------------------------------------


def level_text(result: Result, *, lang: str = SOURCE_LANGUAGE) -> str:
    """The overall level with its name: "2 Basic/connected"."""
    return f"{result['level']} {translate(result['level_name'], lang=lang)}"


def archetype_text(result: Result, *, lang: str = SOURCE_LANGUAGE) -> tuple[str, str]:
    """The archetype's name and its warning ("" if none)."""
    archetype = result["archetype"]
    return translate(archetype["name"], lang=lang), translate(archetype["warning"], lang=lang)


def mode_text(result: Result, *, lang: str = SOURCE_LANGUAGE) -> str:
    """How the SME was scored: with measured evidence, or from the questionnaire only."""
    mode: str = result["mode"]
    return translate(MODE_NAMES.get(mode, mode), lang=lang)


# --- claim flags ----------------------------------------------------------------------------

FLAG_KINDS = {
    "under-claim": N_("under-claim"),
    "over-claim": N_("over-claim"),
    "dont-know": N_("don't know"),
}
FLAG_MEANINGS = {
    "under-claim": N_("your machines show more than you claimed"),
    "over-claim": N_("you claimed more than your machines show"),
    "dont-know": N_("an answer is still open"),
}


def flag_lines(result: Result, *, lang: str = SOURCE_LANGUAGE) -> list[str]:
    """Each claim flag in plain words: what it means for the SME and what follows, so that a
    flag reads as a question for the gemba visit rather than as a fault."""
    _ = i18n.translations(lang).gettext
    names = {d["id"]: translate(d["name"], lang=lang) for d in result["dimensions"]}
    return [
        _("{dimension}, {kind}: {meaning} ({detail}); next: {action}").format(
            dimension=f"{f['dimension']} {names[f['dimension']]}",
            kind=translate(FLAG_KINDS.get(f["kind"], f["kind"]), lang=lang),
            meaning=translate(FLAG_MEANINGS.get(f["kind"], f["kind"]), lang=lang),
            detail=stored_text(f, "detail", lang=lang),
            action=translate(f["action"], lang=lang),
        )
        for f in result["flags"]
    ]


# --- the radar ------------------------------------------------------------------------------

SERIES_NAMES = {
    "questionnaire": N_("questionnaire"),
    "evidence": N_("evidence"),
    "final": N_("final"),
    "target": N_("target"),
}


def series_name(series: str, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A radar series' name for a legend (radar_series keys its series by id)."""
    return translate(SERIES_NAMES.get(series, series), lang=lang)


def radar_series(result: Result, *, lang: str = SOURCE_LANGUAGE) -> dict[str, list[float | None]]:
    """The radar's series per dimension, for the page's chart and the PDF's alike; evidence is
    None where a dimension has no indicators. The keys are the series' ids ("questionnaire",
    "evidence", "final", "target"), whatever the language: `series_name` names them."""
    rows = dimension_rows(result, lang=lang)
    return {
        "questionnaire": [r.questionnaire for r in rows],
        "evidence": [r.evidence for r in rows],
        "final": [r.final for r in rows],
        "target": [r.target for r in rows],
    }


# --- the CSV --------------------------------------------------------------------------------

BYTE_ORDER_MARK = "\ufeff"


def _csv_number(value: float | int | None, lang: str) -> str:
    """A figure as a spreadsheet in the language reads it: its decimal separator, no grouping,
    up to nine decimals; "" for no value."""
    if value is None:
        return ""
    return format_decimal(value, format="0.#########", locale=i18n.babel_locale(lang))


def _csv_time(taken_at: str) -> str:
    """ISO 8601 in UTC without the "T" and the offset: what spreadsheets read as a date and
    time in any locale."""
    moment = datetime.fromisoformat(taken_at).astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="seconds")


def csv_delimiter(lang: str) -> str:
    """ "," where numbers have a decimal point; ";" where they have a decimal comma, as
    spreadsheets in those locales separate fields."""
    return ";" if get_decimal_symbol(i18n.babel_locale(lang)) == "," else ","


def report_csv(result: Result, *, lang: str = SOURCE_LANGUAGE) -> str:
    """One row per dimension, with the SME, the date and the overall figures on each.

    In English the file is what it always was: the column ids as its header, Python's plain
    numbers (2.675) and ISO time, commas between the fields.

    In any other language it is for a spreadsheet set to that language: the header, the
    dimension names, the binding gates, the mode and the archetype translated; numbers with the
    language's decimal separator (CLDR) and no grouping (2,675 in Russian, Belarusian and
    Serbian); fields separated by ";" where that separator is a comma (`csv_delimiter`), since
    spreadsheets in those locales use "," inside numbers; the time in UTC as
    "2026-11-02 06:00:00", which spreadsheets in every locale read as a date; and a UTF-8
    byte-order mark first, without which Excel reads Cyrillic and Serbian Latin letters as
    the legacy code page. Codes (SME, dimension and gate ids) stay as they are.
    """
    if lang == SOURCE_LANGUAGE:
        return _english_csv(result)
    _ = i18n.translations(lang).gettext
    out = io.StringIO()
    out.write(BYTE_ORDER_MARK)
    writer = csv.writer(out, delimiter=csv_delimiter(lang), lineterminator="\n")
    writer.writerow([_(CSV_HEADINGS[column]) for column in CSV_COLUMNS])
    archetype, _warning = archetype_text(result, lang=lang)

    def number(value: float | int | None) -> str:
        return _csv_number(value, lang)

    for row in dimension_rows(result, lang=lang):
        writer.writerow(
            (
                result["sme"], result["name"], _csv_time(result["taken_at"]),
                mode_text(result, lang=lang), row.id, row.name, number(row.weight),
                number(row.questionnaire), number(row.evidence), number(row.combined),
                number(row.cap), row.binding, number(row.final), number(row.level),
                number(row.target), number(round(row.gap, 2)), number(result["index"]),
                number(result["level"]), archetype,
            )
        )  # fmt: skip
    return out.getvalue()


def _english_csv(result: Result) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in dimension_rows(result):
        writer.writerow(
            (
                result["sme"], result["name"], result["taken_at"], result["mode"], row.id,
                row.name, row.weight, row.questionnaire, _blank(row.evidence), row.combined,
                row.cap, row.binding, row.final, row.level, row.target, round(row.gap, 2),
                result["index"], result["level"], result["archetype"]["name"],
            )
        )  # fmt: skip
    return out.getvalue()


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


# --- indicators -----------------------------------------------------------------------------

NO_VALUE = "-"


def _response_time_parts(value: Mapping[str, Any], lang: str) -> tuple[str, str]:
    translations = i18n.translations(lang)
    _ = translations.gettext
    if not value["logging"]:
        return NO_VALUE, _("no alarm logging")
    events = value["events"]
    if value["median_minutes"] is None:
        note = translations.ngettext(
            "{events} event, needs {needed}", "{events} events, needs {needed}", events
        )
        return NO_VALUE, note.format(
            events=number_text(events, lang, 0), needed=number_text(MIN_RESPONSE_EVENTS, lang, 0)
        )
    minutes = _("{minutes} min").format(minutes=number_text(value["median_minutes"], lang, 0))
    fast = value.get("within_15_min")
    if fast is None:
        return minutes, _("median, n = {events}").format(events=number_text(events, lang, 0))
    note = _("median, n = {events}, {share} within 15 min").format(
        events=number_text(events, lang, 0), share=percent_text(fast, lang, 0)
    )
    return minutes, note


def indicator_parts(value: object, *, lang: str = SOURCE_LANGUAGE) -> tuple[str, str]:
    """An indicator's raw value split into a headline short enough for a metric card (a ratio,
    ART's median, or "-") and a note with the rest ("" when there is none)."""
    if isinstance(value, Mapping):
        return _response_time_parts(value, lang)
    if value is None:
        _ = i18n.translations(lang).gettext
        return NO_VALUE, _("not measured")
    return percent_text(cast(float, value), lang, 0), ""


def _phrase(headline: str, note: str) -> str:
    if not note:
        return headline
    return note if headline == NO_VALUE else f"{headline} ({note})"


def indicator_text(value: object, *, lang: str = SOURCE_LANGUAGE) -> str:
    """An indicator's raw value in one phrase: "34%", "42 min (median, n = 37)", "not
    measured"."""
    return _phrase(*indicator_parts(value, lang=lang))


def indicator_number(value: object) -> float | None:
    """A number to plot an indicator's trend with: the ratio, or ART's median minutes."""
    if isinstance(value, Mapping):
        value = value["median_minutes"]
    return float(value) if isinstance(value, int | float) else None


def indicator_label(indicator: str, *, lang: str = SOURCE_LANGUAGE) -> str:
    """An indicator's code with its name: "CC (connectivity coverage)"."""
    return f"{indicator} ({translate(INDICATOR_NAMES[indicator], lang=lang)})"


def _day(moment: datetime, lang: str) -> str:
    """A day as the alert gives it: ISO in English (as the logs, which read the same text),
    the language's numeric date otherwise (03.11.2026)."""
    if lang == SOURCE_LANGUAGE:
        return moment.date().isoformat()
    return i18n.date_text(moment, lang)


def alert_text(alert: GateAlert, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A fall below a gate as the page shows it: when, what, how far, and what it costs."""
    _ = i18n.translations(lang).gettext
    requirement = Requirement(alert.indicator, alert.threshold).message.render(lang)
    return _(
        "{day}: {indicator} fell below gate {gate}: {value}, needs {requirement}; "
        "{dimension} is capped at {cap}"
    ).format(
        day=_day(alert.fell_at, lang),
        indicator=indicator_label(alert.indicator, lang=lang),
        gate=alert.gate,
        value=indicator_text(alert.value, lang=lang),
        requirement=requirement,
        dimension=alert.dimension,
        cap=number_text(alert.cap, lang, 0),
    )


@dataclass(frozen=True)
class IndicatorCard:
    name: str
    description: str
    value: str  # the headline of indicator_parts
    note: str  # the rest of it, "" if none
    score: int | None
    trend: list[float | None]  # one per snapshot, oldest first

    @property
    def text(self) -> str:
        """The value in one phrase, as a table shows it."""
        return _phrase(self.value, self.note)


def indicator_cards(
    results: Sequence[Result], *, lang: str = SOURCE_LANGUAGE
) -> list[IndicatorCard]:
    """The latest snapshot's indicators, each with its values over every snapshot."""
    latest = results[-1]["indicators"]
    return [
        IndicatorCard(
            name,
            translate(description, lang=lang),
            *indicator_parts(latest[name]["value"], lang=lang),
            score=latest[name]["score"],
            trend=[indicator_number(r["indicators"][name]["value"]) for r in results],
        )
        for name, description in INDICATOR_NAMES.items()
    ]


# --- recommendations ------------------------------------------------------------------------


@dataclass(frozen=True)
class RecommendationRow:
    rank: int
    dimension: str
    priority: float
    advice: str
    basis: str  # the indicator now and its threshold, or the dimension at its target
    what_if_index: float
    gain: float


def _basis(dimension: str, r: Mapping[str, Any], lang: str) -> str:
    """What the what-if assumes: "RC 34% -> 0.6 (G3)", or "D1 to 3.00"."""
    if r["indicator"] is None:
        _ = i18n.translations(lang).gettext
        score = number_text(r["what_if_final"], lang, 2)
        return _("{dimension} to {score}").format(dimension=dimension, score=score)
    gate = f" ({r['gate']})" if r["gate"] else ""
    now = indicator_text(r["value"], lang=lang)
    return f"{r['indicator']} {now} -> {Number(r['threshold']).text(lang)}{gate}"


def recommendation_rows(result: Result, *, lang: str = SOURCE_LANGUAGE) -> list[RecommendationRow]:
    """The ranked priorities that carry a recommendation, with its what-if."""
    rows = []
    for p in result["priorities"]:
        r = p["recommendation"]
        if r is None:
            continue
        rows.append(
            RecommendationRow(
                p["rank"],
                p["dimension"],
                p["priority"],
                translate(r["advice"], lang=lang),
                _basis(p["dimension"], r, lang),
                r["what_if_index"],
                r["gain"],
            )
        )
    return rows


# --- the cohort -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """SMEs (best R first) by dimensions: Fd, R, and the cohort's median per dimension."""

    labels: list[str]
    dimensions: list[str]
    final: list[list[float]]
    index: list[float]
    median: list[float]
    archetypes: list[str]
    lean: list[float]  # Λ, the archetype's lean index
    digital: list[float]  # Δ, its digital index


def cohort(
    latest: Mapping[str, Result], anonymise: bool = False, *, lang: str = SOURCE_LANGUAGE
) -> Cohort:
    """The latest result of every SME; anonymised labels are "SME 1".. by rank."""
    _ = i18n.translations(lang).gettext
    ranked = sorted(latest.values(), key=lambda r: (-r["index"], r["sme"]))
    dimensions = [d["id"] for d in ranked[0]["dimensions"]] if ranked else []
    final = [[d["final"] for d in r["dimensions"]] for r in ranked]
    return Cohort(
        labels=[
            _("SME {number}").format(number=n) if anonymise else r["name"] or r["sme"]
            for n, r in enumerate(ranked, 1)
        ],
        dimensions=dimensions,
        final=final,
        index=[r["index"] for r in ranked],
        median=[median(column) for column in zip(*final, strict=True)] if final else [],
        archetypes=[archetype_text(r, lang=lang)[0] for r in ranked],
        lean=[r["archetype"]["lean_index"] for r in ranked],
        digital=[r["archetype"]["digital_index"] for r in ranked],
    )
