"""The assessment as rich tables for the terminal, or as JSON."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from readiness.assessment import Assessment, assessment_to_dict
from readiness.evidence import INDICATOR_NAMES, ResponseTime
from readiness.persistence import Progress
from readiness.recommendations import RankedPriority


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _indicator(value: float | ResponseTime | None) -> str:
    if isinstance(value, ResponseTime):
        if not value.logging:
            return "no alarm logging"
        median = "-" if value.median_min is None else f"{value.median_min:g} min"
        fast = "" if value.within_15_min is None else f", {value.within_15_min:.0%} <= 15 min"
        return f"median {median}, n = {value.events}{fast}"
    return _number(value, 3)


def assessment_json(assessment: Assessment) -> str:
    return json.dumps(assessment_to_dict(assessment), indent=2)


def _title(assessment: Assessment) -> str:
    evidence = assessment.evidence
    who = assessment.answers.name or assessment.sme
    version = assessment.scorecard.questionnaire_version
    if evidence is None:
        source = "questionnaire only"
    elif evidence.window_start and evidence.window_end:
        start, end = evidence.window_start.date(), evidence.window_end.date()
        source = f"evidence {start} to {end}"
    else:
        source = f"evidence from {evidence.source or 'the platform'}"
    return f"Lean 4.0 readiness of {who} (questionnaire v{version}, {source})"


def _dimensions_table(assessment: Assessment) -> Table:
    table = Table(title=_title(assessment))
    table.add_column("dimension", no_wrap=True, overflow="ellipsis", max_width=26)
    for column, width in (("Q", 4), ("E", 4), ("S", 4), ("cap", 8), ("F", 4), ("L", 1), ("T", 3)):
        table.add_column(column, justify="right", no_wrap=True, min_width=width)
    for d in assessment.scorecard.dimensions:
        gates = "+".join(sorted({c.gate for c in d.caps if c.cap == d.cap}))
        cap = f"{d.cap} {gates}{'*' if d.cap_binds else ''}" if d.caps else str(d.cap)
        table.add_row(
            f"{d.id} {d.name}",
            _number(d.questionnaire),
            _number(d.evidence),
            _number(d.combined),
            cap,
            _number(d.final),
            str(d.level),
            _number(d.target, 1),
        )
    return table


def _indicators_table(assessment: Assessment) -> Table:
    card = assessment.scorecard
    table = Table(title="Measured indicators")
    for column in ("indicator", "value", "score"):
        table.add_column(column, justify="left" if column == "indicator" else "right")
    measured = card.indicators
    for name, description in INDICATOR_NAMES.items():
        value = getattr(measured, name) if measured else None
        score = card.indicator_scores[name]
        table.add_row(
            f"{name} {description}", _indicator(value), "-" if score is None else str(score)
        )
    return table


def _recommendation_line(rank: int, entry: RankedPriority) -> str:
    p, r = entry.priority, entry.recommendation
    marks = "".join(
        m for m, on in ((", gate binds", p.cap_binds), (", foundation", p.foundation)) if on
    )
    figures = f"priority {p.value:.4f}{marks}; F {p.final:.2f} -> target {p.target:g}"
    line = f"{rank}. {p.dimension} {figures}"
    if r is None:
        return line
    if r.indicator is None:
        basis = f"{p.dimension} at target"
    else:
        gate = f", {r.gate}" if r.gate else ""
        now = "not measured" if r.value is None else _indicator(r.value)
        basis = f"{r.indicator} {now} -> {r.threshold:g}{gate}"
    return f"{line}\n   {r.advice}\n   what-if ({basis}): R {r.what_if_index:.3f} ({r.gain:+.3f})"


def print_assessment(assessment: Assessment, console: Console | None = None) -> None:
    """The dimension table, the index, level and archetype, indicators, flags and priorities."""
    console = console or Console()
    card = assessment.scorecard
    console.print(_dimensions_table(assessment))
    console.print(
        "Q questionnaire, E evidence, S combined, cap: the lowest cap and its gates (* holds S"
        " down), F final, L level, T target",
        highlight=False,
    )
    console.print(f"Readiness index R = {card.index:.3f}, level {card.level} {card.level_name}")
    archetype = card.archetype
    warning = f": {archetype.warning}" if archetype.warning else ""
    console.print(
        f"Archetype: {archetype.name} (lean {archetype.lean_index:.2f}, "
        f"digital {archetype.digital_index:.2f}){warning}"
    )
    if not card.questionnaire_only:
        console.print(_indicators_table(assessment))
    for flag in card.flags:
        console.print(f"flag {flag.kind} {flag.dimension}: {flag.detail} -> {flag.action}")
    console.print("Priorities and recommendations:" if assessment.ranked else "No priorities.")
    for rank, entry in enumerate(assessment.ranked, 1):
        console.print(_recommendation_line(rank, entry), highlight=False)


def print_progress(sme: str, progress: list[Progress], console: Console | None = None) -> None:
    """R and Fd of every snapshot, and the change of the latest since the baseline."""
    console = console or Console()
    table = Table(title=f"Readiness of {sme} over time")
    dimensions = list(progress[0].final) if progress else []
    for column in ("taken at", "R", "change", *dimensions):
        table.add_column(column, justify="right", no_wrap=True)
    for point in progress:
        table.add_row(
            point.taken_at.strftime("%Y-%m-%d %H:%M"),
            f"{point.index:.3f}",
            f"{point.index_change:+.3f}",
            *(f"{point.final[d]:.2f}" for d in dimensions),
        )
    console.print(table)
    if progress:
        latest = progress[-1].final_change
        changes = ", ".join(f"{d} {latest[d]:+.2f}" for d in dimensions)
        console.print(f"F since the baseline: {changes}", highlight=False)
