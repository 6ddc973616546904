"""An SME's readiness as tables: what the dashboard page, its CSV and its PDF show.

Everything here reads a snapshot's result (`assessment_to_dict`), so a report shows an
assessment exactly as it was scored, even after the scoring changes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from readiness.evidence import INDICATOR_NAMES
from readiness.persistence import GateAlert
from shopfloor.i18n import SOURCE_LANGUAGE

Result = Mapping[str, Any]  # a snapshot's result, as assessment_to_dict gives it

CSV_COLUMNS = (
    "sme", "name", "taken_at", "mode", "dimension", "dimension_name", "weight", "questionnaire",
    "evidence", "combined", "cap", "binding_gates", "final", "level", "target", "gap",
    "index", "overall_level", "archetype",
)  # fmt: skip


def _binding_caps(dimension: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    binding = set(dimension["binding_gates"])
    return [c for c in dimension["caps"] if c["gate"] in binding and c["cap"] == dimension["cap"]]


def binding_gate(dimension: Mapping[str, Any]) -> str:
    """The gates that hold the dimension's score down, with what lifts them; "" if none."""
    return "; ".join(f"{c['gate']}: {c['reason']}" for c in _binding_caps(dimension))


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
    return [
        DimensionRow(
            id=d["id"],
            name=d["name"],
            weight=d["weight"],
            questionnaire=d["questionnaire"],
            evidence=d["evidence"],
            combined=d["combined"],
            cap=d["cap"],
            binding=binding_gate(d),
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
    return [f"{r.label}: {r.binding}" for r in dimension_rows(result) if r.binding]


FLAG_MEANINGS = {
    "under-claim": "your machines show more than you claimed",
    "over-claim": "you claimed more than your machines show",
    "dont-know": "an answer is still open",
}


def flag_lines(result: Result, *, lang: str = SOURCE_LANGUAGE) -> list[str]:
    """Each claim flag in plain words: what it means for the SME and what follows, so that a
    flag reads as a question for the gemba visit rather than as a fault."""
    names = {d["id"]: d["name"] for d in result["dimensions"]}
    return [
        f"{f['dimension']} {names[f['dimension']]}, {f['kind']}: "
        f"{FLAG_MEANINGS.get(f['kind'], f['kind'])} ({f['detail']}); next: {f['action']}"
        for f in result["flags"]
    ]


def radar_series(result: Result, *, lang: str = SOURCE_LANGUAGE) -> dict[str, list[float | None]]:
    """The radar's series per dimension, for the page's chart and the PDF's alike; evidence is
    None where a dimension has no indicators."""
    rows = dimension_rows(result)
    return {
        "questionnaire": [r.questionnaire for r in rows],
        "evidence": [r.evidence for r in rows],
        "final": [r.final for r in rows],
        "target": [r.target for r in rows],
    }


def report_csv(result: Result, *, lang: str = SOURCE_LANGUAGE) -> str:
    """One row per dimension, with the SME, the date and the overall figures on each."""
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


NO_VALUE = "-"


def _response_time_parts(value: Mapping[str, Any]) -> tuple[str, str]:
    if not value["logging"]:
        return NO_VALUE, "no alarm logging"
    if value["median_minutes"] is None:
        return NO_VALUE, f"{value['events']} events, needs 5"
    fast = value.get("within_15_min")
    share = "" if fast is None else f", {fast:.0%} within 15 min"
    return f"{value['median_minutes']:.0f} min", f"median, n = {value['events']}{share}"


def indicator_parts(value: object, *, lang: str = SOURCE_LANGUAGE) -> tuple[str, str]:
    """An indicator's raw value split into a headline short enough for a metric card (a ratio,
    ART's median, or "-") and a note with the rest ("" when there is none)."""
    if isinstance(value, Mapping):
        return _response_time_parts(value)
    return (NO_VALUE, "not measured") if value is None else (f"{value:.0%}", "")


def _phrase(headline: str, note: str) -> str:
    if not note:
        return headline
    return note if headline == NO_VALUE else f"{headline} ({note})"


def indicator_text(value: object, *, lang: str = SOURCE_LANGUAGE) -> str:
    """An indicator's raw value in one phrase: "34%", "42 min (median, n = 37)", "not
    measured"."""
    return _phrase(*indicator_parts(value))


def indicator_number(value: object) -> float | None:
    """A number to plot an indicator's trend with: the ratio, or ART's median minutes."""
    if isinstance(value, Mapping):
        value = value["median_minutes"]
    return float(value) if isinstance(value, int | float) else None


def alert_text(alert: GateAlert, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A fall below a gate as the page shows it: when, what, how far, and what it costs."""
    name = f"{alert.indicator} ({INDICATOR_NAMES[alert.indicator]})"
    return (
        f"{alert.fell_at:%Y-%m-%d}: {name} fell below gate {alert.gate}: "
        f"{indicator_text(alert.value)}, needs {alert.requirement}; "
        f"{alert.dimension} is capped at {alert.cap}"
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
            description,
            *indicator_parts(latest[name]["value"]),
            score=latest[name]["score"],
            trend=[indicator_number(r["indicators"][name]["value"]) for r in results],
        )
        for name, description in INDICATOR_NAMES.items()
    ]


@dataclass(frozen=True)
class RecommendationRow:
    rank: int
    dimension: str
    priority: float
    advice: str
    basis: str  # the indicator now and its threshold, or the dimension at its target
    what_if_index: float
    gain: float


def recommendation_rows(result: Result, *, lang: str = SOURCE_LANGUAGE) -> list[RecommendationRow]:
    """The ranked priorities that carry a recommendation, with its what-if."""
    rows = []
    for p in result["priorities"]:
        r = p["recommendation"]
        if r is None:
            continue
        if r["indicator"] is None:
            basis = f"{p['dimension']} to {r['what_if_final']:.2f}"
        else:
            gate = f" ({r['gate']})" if r["gate"] else ""
            now = indicator_text(r["value"])
            basis = f"{r['indicator']} {now} -> {r['threshold']:g}{gate}"
        rows.append(
            RecommendationRow(
                p["rank"],
                p["dimension"],
                p["priority"],
                r["advice"],
                basis,
                r["what_if_index"],
                r["gain"],
            )
        )
    return rows


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
    ranked = sorted(latest.values(), key=lambda r: (-r["index"], r["sme"]))
    dimensions = [d["id"] for d in ranked[0]["dimensions"]] if ranked else []
    final = [[d["final"] for d in r["dimensions"]] for r in ranked]
    return Cohort(
        labels=[
            f"SME {n}" if anonymise else r["name"] or r["sme"] for n, r in enumerate(ranked, 1)
        ],
        dimensions=dimensions,
        final=final,
        index=[r["index"] for r in ranked],
        median=[median(column) for column in zip(*final, strict=True)] if final else [],
        archetypes=[r["archetype"]["name"] for r in ranked],
        lean=[r["archetype"]["lean_index"] for r in ranked],
        digital=[r["archetype"]["digital_index"] for r in ranked],
    )
