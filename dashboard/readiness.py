"""The Lean 4.0 readiness page: an SME's questionnaire, profile, indicators, recommendations,
progress and its place in the cohort, with its report as CSV and PDF.

Assessments live in the readiness database (SHOPFLOOR_READINESS_DB, default
.shopfloor/readiness.db), the one `shopfloor assess` writes and the demo seeds with its three
SMEs. Figures and the PDF are built by plain functions, so they are tested without a browser.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import plotly.graph_objects as go
import streamlit as st
from fpdf import FPDF

from analytics.readiness import DATABASE_ENV, DEFAULT_DATABASE
from analytics.readiness.answers import Response, SmeAnswers, Special
from analytics.readiness.assessment import run_assessment
from analytics.readiness.evidence import Evidence
from analytics.readiness.live import live_evidence
from analytics.readiness.persistence import (
    Progress,
    ReadinessStore,
    ReadinessStoreError,
    Snapshot,
)
from analytics.readiness.questionnaire import MAX_SCORE, Item, Questionnaire, Scale
from analytics.readiness.report import (
    Cohort,
    Result,
    alert_text,
    cohort,
    dimension_rows,
    indicator_cards,
    radar_series,
    recommendation_rows,
    report_csv,
)
from analytics.readiness.scoring import ARCHETYPE_THRESHOLD
from dashboard.store_errors import shows_store_errors
from shopfloor.plant import Plant
from shopfloor.store import Store

SERIES_COLOURS = {
    "questionnaire": "#9aa5b1",
    "evidence": "#2b8cbe",
    "final": "#d95f0e",
    "target": "#31a354",
}
DASHED_SERIES = "target"
SHARE_LABELS = ("0 %", "< 10 %", "10-30 %", "30-60 %", "60-90 %", "> 90 %")
FREQUENCY_LABELS = ("never", "yearly", "quarterly", "monthly", "weekly", "daily or per shift")
SPECIAL_LABELS = {Special.DONT_KNOW: "don't know", Special.NOT_APPLICABLE: "not applicable"}
ANSWER_OPTIONS: tuple[Response, ...] = (0, 1, 2, 3, 4, 5, Special.DONT_KNOW, Special.NOT_APPLICABLE)


def database_path() -> Path:
    return Path(os.environ.get(DATABASE_ENV, DEFAULT_DATABASE))


# --- figures --------------------------------------------------------------------------------


T = TypeVar("T")


def _closed(values: Sequence[T]) -> list[T]:
    """The values with the first repeated, to close a radar's polygon."""
    return [*values, values[0]]


def radar_figure(result: Result) -> go.Figure:
    """Questionnaire, evidence, final and target per dimension, and the cap of each."""
    rows = dimension_rows(result)
    axes = _closed([f"{r.id} {r.name}" for r in rows])
    figure = go.Figure()
    for name, values in radar_series(result).items():
        line = {"color": SERIES_COLOURS[name], "dash": "dash" if name == DASHED_SERIES else "solid"}
        figure.add_trace(
            go.Scatterpolar(r=_closed(values), theta=axes, name=name, line=line, connectgaps=False)
        )
    figure.add_trace(
        go.Scatterpolar(
            r=[r.cap for r in rows], theta=axes[:-1], name="cap", mode="markers",
            marker={"symbol": "line-ew-open", "size": 14, "color": "#636363"},
        )
    )  # fmt: skip
    figure.update_layout(polar={"radialaxis": {"range": [0, 5]}}, margin={"t": 30, "b": 30})
    return figure


def gap_figure(result: Result) -> go.Figure:
    """Final score and the gap to the target per dimension, the gap naming the binding gate."""
    rows = dimension_rows(result)
    labels = [f"{r.id} {r.name}" for r in rows]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(y=labels, x=[r.final for r in rows], name="final", orientation="h",
               marker_color=SERIES_COLOURS["final"])
    )  # fmt: skip
    figure.add_trace(
        go.Bar(
            y=labels, x=[r.gap for r in rows], name="gap to target", orientation="h",
            marker_color="#fdd0a2", text=[r.binding for r in rows], textposition="outside",
        )
    )  # fmt: skip
    figure.update_layout(
        barmode="stack", xaxis={"range": [0, 8], "title": "score"}, yaxis={"autorange": "reversed"}
    )
    return figure


def cohort_figure(view: Cohort) -> go.Figure:
    """Fd of every SME (best R on top) and the cohort's median per dimension."""
    rows = [*view.final, view.median]
    labels = [f"{label} (R {r:.2f})" for label, r in zip(view.labels, view.index, strict=True)]
    figure = go.Figure(
        go.Heatmap(
            z=rows, x=view.dimensions, y=[*labels, "cohort median"], zmin=0, zmax=5,
            colorscale="RdYlGn", text=[[f"{v:.2f}" for v in row] for row in rows],
            texttemplate="%{text}",
        )
    )  # fmt: skip
    figure.update_layout(yaxis={"autorange": "reversed"})
    return figure


def progress_figure(progress: Sequence[Progress]) -> go.Figure:
    """R and every Fd over the snapshots."""
    times = [p.taken_at for p in progress]
    figure = go.Figure(go.Scatter(x=times, y=[p.index for p in progress], name="R"))
    for dimension in progress[0].final:
        figure.add_trace(
            go.Scatter(x=times, y=[p.final[dimension] for p in progress], name=dimension,
                       line={"dash": "dot"})
        )  # fmt: skip
    figure.update_layout(yaxis={"range": [0, 5], "title": "score"})
    return figure


# --- the PDF report -------------------------------------------------------------------------


def _latin1(text: str) -> str:
    """The PDF's core fonts know Latin-1 only."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _table(
    pdf: FPDF, header: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[int]
) -> None:
    pdf.set_font("helvetica", size=8)
    with pdf.table(col_widths=tuple(widths), first_row_as_headings=True) as table:
        for values in [header, *rows]:
            row = table.row()
            for value in values:
                row.cell(_latin1(str(value)))
    pdf.ln(4)


def _heading(pdf: FPDF, text: str) -> None:
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(text=_latin1(text), new_x="LMARGIN", new_y="NEXT")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


RADAR_RADIUS = 30.0  # mm from the centre to the ring of score 5
RADAR_HEIGHT = 2 * RADAR_RADIUS + 20.0  # with the dimension labels above and below
RADAR_CENTRE_X = 80.0  # leaves room for the longest labels on the left and the legend
LEGEND_X = 150.0
XY = tuple[float, float]  # mm on the page


def _radar_point(centre: XY, axis: int, axes: int, score: float) -> XY:
    """Axis 0 at the top, counter-clockwise, as plotly draws the page's radar."""
    angle = math.pi / 2 + 2 * math.pi * axis / axes
    radius = RADAR_RADIUS * score / MAX_SCORE
    return centre[0] + radius * math.cos(angle), centre[1] - radius * math.sin(angle)


def _radar_label(pdf: FPDF, centre: XY, axis: int, axes: int, label: str) -> None:
    """A dimension's name beyond its spoke, aligned away from the chart."""
    x, y = _radar_point(centre, axis, axes, MAX_SCORE * 1.1)
    width = pdf.get_string_width(label)
    if abs(x - centre[0]) < 1:
        x -= width / 2
    elif x < centre[0]:
        x -= width
    pdf.text(x, y + 1, label)  # y is the baseline: about centred on the spoke


def _radar_grid(pdf: FPDF, centre: XY, labels: Sequence[str]) -> None:
    """The rings of scores 1 to 5, the spokes and the dimension labels."""
    axes = len(labels)
    with pdf.local_context(draw_color="#bdbdbd", line_width=0.2, font_size_pt=7):
        for ring in range(1, MAX_SCORE + 1):
            pdf.polygon([_radar_point(centre, a, axes, ring) for a in range(axes)])
            x, y = _radar_point(centre, 0, axes, ring)
            pdf.text(x + 0.8, y + 2.2, str(ring))
        for axis, label in enumerate(labels):
            pdf.line(*centre, *_radar_point(centre, axis, axes, MAX_SCORE))
            _radar_label(pdf, centre, axis, axes, _latin1(label))


@contextmanager
def _series_pen(pdf: FPDF, name: str) -> Iterator[None]:
    """Draw in the series' colour, as on the page's radar (the target dashed)."""
    colour = SERIES_COLOURS[name]
    with pdf.local_context(draw_color=colour, fill_color=colour, line_width=0.5):
        if name == DASHED_SERIES:
            pdf.set_dash_pattern(dash=1.5, gap=1.0)
        yield


def _radar_series(pdf: FPDF, centre: XY, name: str, values: Sequence[float | None]) -> None:
    """One series as a closed outline with a dot per score; a gap (no evidence) breaks it."""
    points = [
        None if v is None else _radar_point(centre, axis, len(values), v)
        for axis, v in enumerate(values)
    ]
    with _series_pen(pdf, name):
        for start, end in zip(points, _closed(points)[1:], strict=True):
            if start and end:
                pdf.line(*start, *end)
        for point in filter(None, points):
            pdf.circle(*point, 0.7, style="F")


def _radar_legend(pdf: FPDF, top: float, names: Sequence[str]) -> None:
    with pdf.local_context(font_size_pt=8):
        for row, name in enumerate(names):
            y = top + 6 * row
            with _series_pen(pdf, name):
                pdf.line(LEGEND_X, y, LEGEND_X + 8, y)
            pdf.text(LEGEND_X + 10, y + 1, name)


def _radar(pdf: FPDF, result: Result) -> None:
    """The radar of the page drawn with the PDF's own lines: no image renderer is needed."""
    if pdf.will_page_break(RADAR_HEIGHT):
        pdf.add_page()
    top = pdf.get_y()
    centre = (RADAR_CENTRE_X, top + RADAR_HEIGHT / 2)
    series = radar_series(result)
    _radar_grid(pdf, centre, [f"{r.id} {r.name}" for r in dimension_rows(result)])
    for name, values in series.items():
        _radar_series(pdf, centre, name, values)
    _radar_legend(pdf, top + RADAR_HEIGHT / 3, list(series))
    pdf.set_y(top + RADAR_HEIGHT)


def report_pdf(result: Result) -> bytes:
    """The SME's report: overall figures, the radar, the dimension table, indicators and
    recommendations."""
    who = result["name"] or result["sme"]
    archetype = result["archetype"]
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Lean 4.0 readiness: {who}"))
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(text=_latin1(f"Lean 4.0 readiness: {who}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    lines = [
        f"SME {result['sme']}, assessed {result['taken_at'][:16]} UTC ({result['mode']}, "
        f"questionnaire v{result['questionnaire_version']})",
        f"Readiness index R = {result['index']:.3f}, level {result['level']} "
        f"{result['level_name']}",
        f"Archetype: {archetype['name']} (lean {archetype['lean_index']:.2f}, digital "
        f"{archetype['digital_index']:.2f}) {archetype['warning']}",
        *(f"Flag {f['kind']} {f['dimension']}: {f['detail']}" for f in result["flags"]),
    ]
    for line in lines:
        pdf.multi_cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _heading(pdf, "Profile (scores 0 to 5)")
    _radar(pdf, result)
    _heading(pdf, "Dimensions")
    _table(
        pdf,
        ("dimension", "Q", "E", "S", "cap", "F", "level", "target", "binding gate"),
        [
            (f"{r.id} {r.name}", _number(r.questionnaire), _number(r.evidence),
             _number(r.combined), r.cap, _number(r.final), r.level, f"{r.target:g}", r.binding)
            for r in dimension_rows(result)
        ],
        (44, 8, 8, 8, 8, 8, 8, 10, 50),
    )  # fmt: skip
    _heading(pdf, "Measured indicators")
    cards = indicator_cards([result])
    _table(
        pdf,
        ("indicator", "value", "score"),
        [
            (f"{c.name} {c.description}", c.value, "-" if c.score is None else c.score)
            for c in cards
        ],
        (60, 40, 12),
    )
    _heading(pdf, "Recommendations")
    _table(
        pdf,
        ("rank", "dimension", "priority", "recommendation", "what-if", "R then"),
        [
            (r.rank, r.dimension, f"{r.priority:.4f}", r.advice, r.basis,
             f"{r.what_if_index:.3f} ({r.gain:+.3f})")
            for r in recommendation_rows(result)
        ],
        (8, 17, 14, 67, 40, 24),
    )  # fmt: skip
    return bytes(pdf.output())


# --- the page -------------------------------------------------------------------------------


def _option_label(item: Item, questionnaire: Questionnaire, option: Response) -> str:
    if isinstance(option, Special):
        return SPECIAL_LABELS[option]
    if item.scale is Scale.SHARE:
        return f"{option}: {SHARE_LABELS[option]}"
    if item.scale is Scale.FREQUENCY:
        return f"{option}: {FREQUENCY_LABELS[option]}"
    levels = next(d.levels for d in questionnaire.dimensions if d.id == item.dimension)
    return f"{option}: {levels[option]}"


def _questionnaire_form(answers: SmeAnswers, live: bool) -> tuple[SmeAnswers, bool] | None:
    """The answers as a form; the changed answers (and whether to measure) once submitted."""
    version = answers.questionnaire
    with st.form(f"answers-{answers.sme}"):
        given: dict[str, Response] = {}
        for dimension in version.dimensions:
            st.markdown(f"**{dimension.id} {dimension.name}** (weight {dimension.weight:g})")
            for item in version.items_of(dimension.id):
                current = answers.responses[item.id]
                chosen = st.selectbox(
                    f"{item.id} {item.text}",
                    ANSWER_OPTIONS,
                    index=ANSWER_OPTIONS.index(current),
                    format_func=partial(_option_label, item, version),
                    key=f"{answers.sme}-{item.id}",
                )
                given[item.id] = current if chosen is None else chosen
        measure = st.checkbox(
            "Measure the evidence from the live store now",
            value=live,
            disabled=not live,
            help="Only for the SME of this dashboard's plant; otherwise the evidence of the "
            "latest snapshot is kept.",
        )
        if not st.form_submit_button("Save answers and score"):
            return None
    return dataclasses.replace(answers, responses=given), measure


@shows_store_errors
def _save_answers(store: ReadinessStore, snapshot: Snapshot, plant: Plant, data: Store) -> None:
    live = snapshot.sme == plant.tenant.id
    submitted = _questionnaire_form(store.answers(snapshot), live)
    if submitted is None:
        return
    answers, measure = submitted
    evidence: Evidence | None = snapshot.evidence()
    if measure:
        evidence = live_evidence(plant, data, answers.risk_zones)
    store.save(run_assessment(answers, evidence))
    st.rerun()


def archetype_figure(view: Cohort) -> go.Figure:
    """Every SME on the lean index Λ against the digital index Δ; the lines at the archetype
    threshold split Starter, Lean-led, Tech-led and Lean 4.0 integrator."""
    figure = go.Figure(
        go.Scatter(
            x=view.lean, y=view.digital, mode="markers+text", text=view.labels,
            textposition="top center", customdata=view.archetypes,
            hovertemplate="%{text}: %{customdata}<br>Λ %{x:.2f}, Δ %{y:.2f}<extra></extra>",
        )
    )  # fmt: skip
    for x, y, name in ((1.25, 1.25, "Starter"), (3.75, 1.25, "Lean-led"),
                       (1.25, 3.75, "Tech-led"), (3.75, 3.75, "Lean 4.0 integrator")):  # fmt: skip
        figure.add_annotation(x=x, y=y, text=name, showarrow=False, opacity=0.5)
    figure.add_hline(y=ARCHETYPE_THRESHOLD, line_dash="dot")
    figure.add_vline(x=ARCHETYPE_THRESHOLD, line_dash="dot")
    figure.update_layout(
        xaxis={"title": "lean index Λ", "range": [0, 5]},
        yaxis={"title": "digital index Δ", "range": [0, 5]},
    )
    return figure


def _profile(result: Result) -> None:
    radar, gaps = st.columns(2)
    radar.plotly_chart(radar_figure(result))
    gaps.plotly_chart(gap_figure(result))
    for flag in result["flags"]:
        st.warning(f"{flag['kind']} {flag['dimension']}: {flag['detail']} → {flag['action']}")


def _indicators(snapshots: Sequence[Snapshot]) -> None:
    cards = indicator_cards([s.result for s in snapshots])
    columns = st.columns(5)
    for index, card in enumerate(cards):
        trend = [v for v in card.trend if v is not None]
        columns[index % 5].metric(
            f"{card.name} {card.description}",
            card.value,
            help=f"evidence score {'-' if card.score is None else card.score} of 5",
            chart_data=trend if len(trend) > 1 else None,
            border=True,
        )


def _recommendations(result: Result) -> None:
    rows = recommendation_rows(result)
    if not rows:
        st.caption("No priorities: every dimension is at its target.")
    for row in rows:
        with st.container(border=True):
            st.markdown(f"**{row.rank}. {row.dimension}** · priority {row.priority:.4f}")
            st.write(row.advice)
            st.caption(f"what-if {row.basis}: R {row.what_if_index:.3f} ({row.gain:+.3f})")


def _alerts(store: ReadinessStore, sme: str) -> None:
    """Falls below a gate that the data has not lifted since, above the tabs: the daily
    re-scoring finds them, and nobody reads the analytics service's log."""
    for alert in store.gate_alerts(sme, unresolved=True):
        st.error(alert_text(alert), icon="🚨")


def _progress(store: ReadinessStore, sme: str) -> None:
    progress = store.progress(sme)
    latest = progress[-1]
    st.metric("R since the first snapshot", f"{latest.index:.3f}", f"{latest.index_change:+.3f}")
    if len(progress) > 1:
        st.plotly_chart(progress_figure(progress))
    st.caption(
        f"{len(progress)} snapshot(s); F since the baseline: "
        + ", ".join(f"{d} {change:+.2f}" for d, change in latest.final_change.items())
    )
    falls = store.gate_alerts(sme)
    if falls:
        st.markdown("**Falls below a gate**, newest first")
        st.markdown("\n".join(f"- {alert_text(a)}" for a in reversed(falls)))


def _cohort(store: ReadinessStore) -> None:
    anonymise = st.toggle("Anonymise the SMEs", value=False)
    latest = {sme: store.snapshots(sme)[-1].result for sme in store.smes()}
    view = cohort(latest, anonymise)
    heatmap, quadrant = st.columns(2)
    heatmap.plotly_chart(cohort_figure(view))
    quadrant.plotly_chart(archetype_figure(view))


def _export(result: Result) -> None:
    name = f"readiness-{result['sme']}-{result['taken_at'][:10]}"
    csv_column, pdf_column = st.columns(2)
    csv_column.download_button("Report as CSV", report_csv(result), f"{name}.csv", "text/csv")
    pdf_column.download_button(
        "Report as PDF", report_pdf(result), f"{name}.pdf", "application/pdf"
    )


def readiness_page(plant: Plant, data: Store) -> None:
    st.title("Lean 4.0 readiness")
    try:
        store = ReadinessStore(database_path())
    except ReadinessStoreError as exc:
        st.error(str(exc))
        return
    with store:
        smes = store.smes()
        if not smes:
            st.info("No SME assessed yet: the demo assesses its three SMEs as it starts, and "
                    "`shopfloor assess` adds one.")  # fmt: skip
            return
        names = {sme: store.snapshots(sme)[-1].result["name"] or sme for sme in smes}
        default = smes.index(plant.tenant.id) if plant.tenant.id in smes else 0
        sme = st.selectbox("SME", smes, index=default, format_func=names.__getitem__)
        snapshots = store.snapshots(sme)
        result = snapshots[-1].result
        archetype = result["archetype"]
        index, level, kind = st.columns(3)
        index.metric("Readiness index R", f"{result['index']:.2f}")
        level.metric("Level", f"{result['level']} {result['level_name']}")
        kind.metric("Archetype", archetype["name"], help=archetype["warning"] or None)
        st.caption(f"Scored {result['taken_at'][:16]} UTC, {result['mode']}")
        _alerts(store, sme)
        tabs = st.tabs(["Profile", "Indicators", "Recommendations", "Questionnaire",
                        "Progress", "Cohort", "Export"])  # fmt: skip
        with tabs[0]:
            _profile(result)
        with tabs[1]:
            _indicators(snapshots)
        with tabs[2]:
            _recommendations(result)
        with tabs[3]:
            _save_answers(store, snapshots[-1], plant, data)
        with tabs[4]:
            _progress(store, sme)
        with tabs[5]:
            _cohort(store)
        with tabs[6]:
            _export(result)
