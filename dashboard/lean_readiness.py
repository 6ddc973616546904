"""The Lean 4.0 readiness page: an SME's questionnaire, profile, indicators, recommendations,
progress and its place in the cohort, with its report as CSV and PDF.

Assessments live in the readiness database (SHOPFLOOR_READINESS_DB, default
.shopfloor/readiness.db), the one `shopfloor assess` writes and the demo seeds with its three
SMEs. Figures and the PDF are built by plain functions, so they are tested without a browser.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import plotly.colors
import plotly.graph_objects as go
import streamlit as st

from dashboard.i18n import language
from dashboard.labels import time_text
from dashboard.store_errors import shows_store_errors
from readiness import DATABASE_ENV, DEFAULT_DATABASE
from readiness.answers import Response, SmeAnswers, Special
from readiness.assessment import run_assessment
from readiness.evidence import Evidence
from readiness.live import live_evidence
from readiness.pdf import report_pdf
from readiness.persistence import (
    Progress,
    ReadinessStore,
    ReadinessStoreError,
    Snapshot,
)
from readiness.questionnaire import MAX_SCORE, Item
from readiness.report import (
    Cohort,
    DimensionRow,
    IndicatorCard,
    Result,
    alert_text,
    cohort,
    dimension_rows,
    flag_lines,
    gate_notes,
    indicator_cards,
    radar_series,
    recommendation_rows,
    report_csv,
)
from readiness.scoring import ARCHETYPE_THRESHOLD
from shopfloor.plant import Plant
from shopfloor.store import Store

SERIES_COLOURS = {
    "questionnaire": "#9aa5b1",
    "evidence": "#2b8cbe",
    "final": "#d95f0e",
    "target": "#31a354",
}
DASHED_SERIES = "target"
SPECIAL_LABELS = {Special.DONT_KNOW: "don't know", Special.NOT_APPLICABLE: "not applicable"}
ANSWER_OPTIONS: tuple[Response, ...] = (0, 1, 2, 3, 4, 5, Special.DONT_KNOW, Special.NOT_APPLICABLE)


def database_path() -> Path:
    return Path(os.environ.get(DATABASE_ENV, DEFAULT_DATABASE))


# --- figures --------------------------------------------------------------------------------


T = TypeVar("T")


def _closed(values: Sequence[T]) -> list[T]:
    """The values with the first repeated, to close a radar's polygon."""
    return [*values, values[0]]


RADAR_LABEL_CHARS = 16  # per line of a radar's dimension label: seven fit around a half page
LEGEND_BELOW = {"orientation": "h", "y": -0.12, "x": 0.5, "xanchor": "center"}
LEGEND_ABOVE = {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}  # clear of axis titles
SCORE_AXIS = {"range": [0, MAX_SCORE], "dtick": 1}
# the scores along D1's spoke, upright (the tick angle is relative to the spoke)
RADAR_SCORE_AXIS = {**SCORE_AXIS, "angle": 90, "tickangle": 90}


def radar_label(dimension_id: str, name: str) -> str:
    """A dimension's label wrapped onto short lines, so that it fits beside the radar."""
    return "<br>".join(textwrap.wrap(f"{dimension_id} {name}", RADAR_LABEL_CHARS))


def _radar_trace(
    name: str, values: Sequence[float | None], rows: Sequence[DimensionRow]
) -> go.Scatterpolar:
    line = {"color": SERIES_COLOURS[name], "dash": "dash" if name == DASHED_SERIES else "solid"}
    return go.Scatterpolar(
        r=_closed(values), theta=_closed([r.id for r in rows]), name=name, line=line,
        connectgaps=False, customdata=_closed([r.label for r in rows]),
        hovertemplate=f"%{{customdata}}<br>{name} %{{r:.2f}}<extra></extra>",
    )  # fmt: skip


def radar_figure(result: Result) -> go.Figure:
    """Questionnaire, evidence, final and target per dimension, and the cap of each. The axes
    are the dimension ids, labelled with the wrapped names; hover gives the full name."""
    rows = dimension_rows(result)
    figure = go.Figure([_radar_trace(n, v, rows) for n, v in radar_series(result).items()])
    figure.add_trace(
        go.Scatterpolar(
            r=[r.cap for r in rows], theta=[r.id for r in rows], name="cap", mode="markers",
            marker={"symbol": "line-ew-open", "size": 14, "color": "#636363"},
            customdata=[r.label for r in rows],
            hovertemplate="%{customdata}<br>cap %{r}<extra></extra>",
        )
    )  # fmt: skip
    angular = {
        "rotation": 90,  # D1 at the top, then counter-clockwise, as the PDF's radar
        "tickmode": "array",
        "tickvals": [r.id for r in rows],
        "ticktext": [radar_label(r.id, r.name) for r in rows],
    }
    figure.update_layout(
        polar={"radialaxis": RADAR_SCORE_AXIS, "angularaxis": angular},
        margin={"t": 50, "b": 50, "l": 90, "r": 90},
        legend=LEGEND_BELOW,
    )
    return figure


def gap_figure(result: Result) -> go.Figure:
    """Final score and the gap to the target per dimension. The binding gate's id stands past
    the bar's end (the page lists what each needs), so that no note runs off the chart."""
    rows = dimension_rows(result)
    labels = [r.label for r in rows]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(y=labels, x=[r.final for r in rows], name="final", orientation="h",
               marker_color=SERIES_COLOURS["final"])
    )  # fmt: skip
    figure.add_trace(
        go.Bar(y=labels, x=[r.gap for r in rows], name="gap to target", orientation="h",
               marker_color="#fdd0a2")
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(
            y=labels, x=[r.final + r.gap for r in rows], text=[r.gates for r in rows],
            mode="text", textposition="middle right", name="binding gate", showlegend=False,
            hovertext=[r.binding for r in rows], hoverinfo="text", cliponaxis=False,
        )
    )  # fmt: skip
    figure.update_layout(
        barmode="stack",
        xaxis={**SCORE_AXIS, "title": "score (0-5)"},
        yaxis={"autorange": "reversed"},
        legend=LEGEND_ABOVE,
        margin={"r": 40},
    )
    return figure


HEATMAP_FONT_SIZE = 16  # plotly's default 12 reads as tiny in a cell
CHART_FONT = {"size": 14}


def cohort_figure(view: Cohort) -> go.Figure:
    """Fd of every SME (best R on top) and the cohort's median per dimension."""
    rows = [*view.final, view.median]
    labels = [f"{label} (R {r:.2f})" for label, r in zip(view.labels, view.index, strict=True)]
    figure = go.Figure(
        go.Heatmap(
            z=rows, x=view.dimensions, y=[*labels, "cohort median"], zmin=0, zmax=5,
            colorscale="RdYlGn", text=[[f"{v:.2f}" for v in row] for row in rows],
            texttemplate="%{text}", textfont={"size": HEATMAP_FONT_SIZE},
        )
    )  # fmt: skip
    figure.update_layout(yaxis={"autorange": "reversed"}, font=CHART_FONT)
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


SME_COLOURS = plotly.colors.qualitative.Dark2
SME_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "star", "hexagon", "cross", "x")


def _sme_marker(rank: int) -> dict[str, object]:
    """A colour and a symbol per SME, so that neighbours differ even in print."""
    return {
        "size": 16,
        "color": SME_COLOURS[rank % len(SME_COLOURS)],
        "symbol": SME_SYMBOLS[rank % len(SME_SYMBOLS)],
    }


def archetype_figure(view: Cohort) -> go.Figure:
    """Every SME on the lean index Λ against the digital index Δ; the lines at the archetype
    threshold split Starter, Lean-led, Tech-led and Lean 4.0 integrator. Each SME is its own
    trace, named in the legend: labels beside close markers overlap or sit on a line."""
    points = zip(view.labels, view.archetypes, view.lean, view.digital, strict=True)
    figure = go.Figure(
        [
            go.Scatter(
                x=[lean], y=[digital], mode="markers", name=label, marker=_sme_marker(rank),
                hovertemplate=f"{label}: {kind}<br>Λ %{{x:.2f}}, Δ %{{y:.2f}}<extra></extra>",
            )
            for rank, (label, kind, lean, digital) in enumerate(points)
        ]
    )  # fmt: skip
    for x, y, name in ((1.25, 1.25, "Starter"), (3.75, 1.25, "Lean-led"),
                       (1.25, 3.75, "Tech-led"), (3.75, 3.75, "Lean 4.0 integrator")):  # fmt: skip
        figure.add_annotation(x=x, y=y, text=name, showarrow=False, opacity=0.5)
    figure.add_hline(y=ARCHETYPE_THRESHOLD, line_dash="dot")
    figure.add_vline(x=ARCHETYPE_THRESHOLD, line_dash="dot")
    figure.update_layout(
        xaxis={"title": "lean index Λ", **SCORE_AXIS},
        yaxis={"title": "digital index Δ", **SCORE_AXIS},
        legend={**LEGEND_ABOVE, "orientation": "v"},
        font=CHART_FONT,
        height=520,
    )
    return figure


def ranking_rows(view: Cohort) -> list[dict[str, object]]:
    """The cohort's R ranking beside the quadrant: the figures the markers stand for."""
    return [
        {"rank": rank, "SME": label, "R": round(index, 2), "archetype": kind,
         "Λ lean": round(lean, 2), "Δ digital": round(digital, 2)}
        for rank, (label, index, kind, lean, digital) in enumerate(
            zip(view.labels, view.index, view.archetypes, view.lean, view.digital, strict=True),
            1,
        )
    ]  # fmt: skip


# --- the page -------------------------------------------------------------------------------


def option_label(item: Item, option: Response) -> str:
    """An answer as the form offers it: the item's own statement for the level."""
    if isinstance(option, Special):
        return SPECIAL_LABELS[option]
    return f"{option}: {item.options[option]}"


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
                    format_func=partial(option_label, item),
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


CLAIM_CHECK = (
    "**Claim check.** Where the answers and the measured evidence of a dimension differ by "
    "1.5 or more, the centre's expert looks on a gemba visit. A flag does not change the score:"
    " measured data already outweighs the answers."
)
NO_PROGRESS_YET = (
    "One assessment so far: progress appears after the next re-scoring (daily from live data) "
    "or a new assessment."
)
CARD_COLUMNS = 5


def _profile(result: Result) -> None:
    radar, gaps = st.columns(2)
    radar.plotly_chart(radar_figure(result))
    gaps.plotly_chart(gap_figure(result))
    notes = gate_notes(result)
    if notes:
        gaps.caption("Gates holding a score down:\n" + "\n".join(f"- {n}" for n in notes))
    flags = flag_lines(result)
    if flags:
        st.info(
            "\n".join([CLAIM_CHECK, "", *(f"- {line}" for line in flags)]),
            icon=":material/fact_check:",
        )


def _indicator_card(card: IndicatorCard) -> None:
    """A short code and a short value fit a fifth of the page; the name and the rest of the
    value go below, where they can wrap."""
    trend = [v for v in card.trend if v is not None]
    score = "no score" if card.score is None else f"score {card.score} of {MAX_SCORE}"
    with st.container(border=True):
        st.metric(
            card.name,
            card.value,
            help=f"{card.name}: {card.description}",
            chart_data=trend if len(trend) > 1 else None,
        )
        st.caption(" · ".join(filter(None, (card.description, card.note, score))))


def _indicators(snapshots: Sequence[Snapshot]) -> None:
    cards = indicator_cards([s.result for s in snapshots])
    columns = st.columns(CARD_COLUMNS)
    for index, card in enumerate(cards):
        with columns[index % CARD_COLUMNS]:
            _indicator_card(card)


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
    if len(progress) < 2:
        st.info(NO_PROGRESS_YET)
        return
    latest = progress[-1]
    st.metric("R since the first snapshot", f"{latest.index:.3f}", f"{latest.index_change:+.3f}")
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
    st.plotly_chart(cohort_figure(view))  # full width: the SME names label its rows
    quadrant, ranking = st.columns(2)
    quadrant.plotly_chart(archetype_figure(view))
    ranking.dataframe(ranking_rows(view), hide_index=True)


def _export(result: Result) -> None:
    name = f"readiness-{result['sme']}-{result['taken_at'][:10]}"
    csv_column, pdf_column = st.columns(2)
    csv_column.download_button("Report as CSV", report_csv(result), f"{name}.csv", "text/csv")
    pdf_column.download_button(
        "Report as PDF", report_pdf(result, lang=language()), f"{name}.pdf", "application/pdf"
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
        scored = time_text(datetime.fromisoformat(result["taken_at"]), plant, with_date=True)
        st.caption(f"Scored {scored[:16]} ({plant.site.timezone}), {result['mode']}")
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
