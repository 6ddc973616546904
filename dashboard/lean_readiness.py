"""The Lean 4.0 readiness page: an SME's questionnaire, profile, indicators, recommendations,
progress and its place in the cohort, with its report as CSV and PDF.

Assessments live in the readiness database (SHOPFLOOR_READINESS_DB, default
.shopfloor/readiness.db), the one `shopfloor assess` writes and the demo seeds with its three
SMEs. Figures and the PDF are built by plain functions, so they are tested without a browser.

Every text is in the visitor's language: the page's own texts are marked here, the
questionnaire's (dimension and level names, items, answer anchors, indicator names) stay English
in the snapshot and are translated as they are shown, and readiness.report words the rest.
Charts write numbers and dates as the language does (decimal comma, 03.11.2026).
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

from dashboard.i18n import N_, _, language, localised, ngettext
from dashboard.labels import axis_title, chart_time, number_text, percent_text, time_text
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
from readiness.scoring import ARCHETYPE_THRESHOLD, CLAIM_GAP
from shopfloor.plant import Plant
from shopfloor.store import Store

SERIES_COLOURS = {
    "questionnaire": "#9aa5b1",
    "evidence": "#2b8cbe",
    "final": "#d95f0e",
    "target": "#31a354",
}
DASHED_SERIES = "target"
# The radar's series as the page names them: S_d of the answers, E_d measured, F_d, the target.
SERIES_NAMES = {
    "questionnaire": N_("questionnaire"),
    "evidence": N_("evidence"),
    "final": N_("final"),
    "target": N_("target"),
}
SPECIAL_LABELS = {Special.DONT_KNOW: N_("don't know"), Special.NOT_APPLICABLE: N_("not applicable")}
ANSWER_OPTIONS: tuple[Response, ...] = (0, 1, 2, 3, 4, 5, Special.DONT_KNOW, Special.NOT_APPLICABLE)
# How a snapshot was scored (its result's "mode").
MODE_NAMES = {
    "questionnaire-only": N_("questionnaire only"),
    "evidence": N_("questionnaire and measured evidence"),
}
# The archetype quadrants of the lean index Λ against the digital index Δ (readiness.scoring).
ARCHETYPE_QUADRANTS = (
    (1.25, 1.25, N_("Starter")),
    (3.75, 1.25, N_("Lean-led")),
    (1.25, 3.75, N_("Tech-led")),
    (3.75, 3.75, N_("Lean 4.0 integrator")),
)


def database_path() -> Path:
    return Path(os.environ.get(DATABASE_ENV, DEFAULT_DATABASE))


# --- the visitor's language -----------------------------------------------------------------


def signed_text(value: float, digits: int) -> str:
    """A change with its sign in the visitor's language: +0,105 or -0,25 (zero as +0,000)."""
    text = number_text(value, digits=digits)
    return text if text.startswith(("-", "\u2212")) else f"+{text}"


def dimension_label(row: DimensionRow) -> str:
    """ "D4 Visibility & performance mgmt" with the name in the visitor's language."""
    return f"{row.id} {_(row.name)}"


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
    series: str, values: Sequence[float | None], rows: Sequence[DimensionRow]
) -> go.Scatterpolar:
    line = {"color": SERIES_COLOURS[series], "dash": "dash" if series == DASHED_SERIES else "solid"}
    name = _(SERIES_NAMES[series])
    return go.Scatterpolar(
        r=_closed(values), theta=_closed([r.id for r in rows]), name=name, line=line,
        connectgaps=False, customdata=_closed([dimension_label(r) for r in rows]),
        hovertemplate=f"%{{customdata}}<br>{name} %{{r:.2f}}<extra></extra>",
    )  # fmt: skip


def radar_figure(result: Result) -> go.Figure:
    """Questionnaire, evidence, final and target per dimension, and the cap of each. The axes
    are the dimension ids, labelled with the wrapped names; hover gives the full name."""
    lang = language()
    rows = dimension_rows(result, lang=lang)
    series = radar_series(result, lang=lang)
    figure = go.Figure([_radar_trace(s, v, rows) for s, v in series.items()])
    cap = _("cap")
    figure.add_trace(
        go.Scatterpolar(
            r=[r.cap for r in rows], theta=[r.id for r in rows], name=cap, mode="markers",
            marker={"symbol": "line-ew-open", "size": 14, "color": "#636363"},
            customdata=[dimension_label(r) for r in rows],
            hovertemplate=f"%{{customdata}}<br>{cap} %{{r}}<extra></extra>",
        )
    )  # fmt: skip
    angular = {
        "rotation": 90,  # D1 at the top, then counter-clockwise, as the PDF's radar
        "tickmode": "array",
        "tickvals": [r.id for r in rows],
        "ticktext": [radar_label(r.id, _(r.name)) for r in rows],
    }
    figure.update_layout(
        polar={"radialaxis": RADAR_SCORE_AXIS, "angularaxis": angular},
        margin={"t": 50, "b": 50, "l": 90, "r": 90},
        legend=LEGEND_BELOW,
    )
    return localised(figure)


def gap_figure(result: Result) -> go.Figure:
    """Final score and the gap to the target per dimension. The binding gate's id stands past
    the bar's end (the page lists what each needs), so that no note runs off the chart."""
    rows = dimension_rows(result, lang=language())
    labels = [dimension_label(r) for r in rows]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(y=labels, x=[r.final for r in rows], name=_(SERIES_NAMES["final"]),
               orientation="h", marker_color=SERIES_COLOURS["final"])
    )  # fmt: skip
    figure.add_trace(
        go.Bar(y=labels, x=[r.gap for r in rows], name=_("gap to target"), orientation="h",
               marker_color="#fdd0a2")
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(
            y=labels, x=[r.final + r.gap for r in rows], text=[r.gates for r in rows],
            mode="text", textposition="middle right", name=_("binding gate"), showlegend=False,
            hovertext=[r.binding for r in rows], hoverinfo="text", cliponaxis=False,
        )
    )  # fmt: skip
    figure.update_layout(
        barmode="stack",
        xaxis={**SCORE_AXIS, "title": _("score (0-5)")},
        yaxis={"autorange": "reversed"},
        legend=LEGEND_ABOVE,
        margin={"r": 40},
    )
    return localised(figure)


HEATMAP_FONT_SIZE = 16  # plotly's default 12 reads as tiny in a cell
CHART_FONT = {"size": 14}


def cohort_figure(view: Cohort) -> go.Figure:
    """Fd of every SME (best R on top) and the cohort's median per dimension."""
    rows = [*view.final, view.median]
    labels = [
        _("{sme} (R {index})").format(sme=label, index=number_text(r, digits=2))
        for label, r in zip(view.labels, view.index, strict=True)
    ]
    figure = go.Figure(
        go.Heatmap(
            z=rows, x=view.dimensions, y=[*labels, _("cohort median")], zmin=0, zmax=5,
            colorscale="RdYlGn", text=[[number_text(v, digits=2) for v in row] for row in rows],
            texttemplate="%{text}", textfont={"size": HEATMAP_FONT_SIZE},
            hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>",
        )
    )  # fmt: skip
    figure.update_layout(yaxis={"autorange": "reversed"}, font=CHART_FONT)
    return localised(figure)


def progress_figure(progress: Sequence[Progress], plant: Plant) -> go.Figure:
    """R and every Fd over the snapshots, on the site's clock."""
    times = [chart_time(p.taken_at, plant) for p in progress]
    figure = go.Figure(go.Scatter(x=times, y=[p.index for p in progress], name="R"))
    for dimension in progress[0].final:
        figure.add_trace(
            go.Scatter(x=times, y=[p.final[dimension] for p in progress], name=dimension,
                       line={"dash": "dot"})
        )  # fmt: skip
    figure.update_layout(
        xaxis={"title": axis_title(plant)}, yaxis={"range": [0, 5], "title": _("score")}
    )
    return localised(figure)


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
                hovertemplate=f"{label}: {_(kind)}<br>Λ %{{x:.2f}}, Δ %{{y:.2f}}<extra></extra>",
            )
            for rank, (label, kind, lean, digital) in enumerate(points)
        ]
    )  # fmt: skip
    for x, y, name in ARCHETYPE_QUADRANTS:
        figure.add_annotation(x=x, y=y, text=_(name), showarrow=False, opacity=0.5)
    figure.add_hline(y=ARCHETYPE_THRESHOLD, line_dash="dot")
    figure.add_vline(x=ARCHETYPE_THRESHOLD, line_dash="dot")
    figure.update_layout(
        xaxis={"title": _("lean index Λ"), **SCORE_AXIS},
        yaxis={"title": _("digital index Δ"), **SCORE_AXIS},
        legend={**LEGEND_ABOVE, "orientation": "v"},
        font=CHART_FONT,
        height=520,
    )
    return localised(figure)


def ranking_rows(view: Cohort) -> list[dict[str, object]]:
    """The cohort's R ranking beside the quadrant: the figures the markers stand for, headed
    and written in the visitor's language."""
    return [
        {_("rank"): rank, _("SME"): label, "R": number_text(index, digits=2),
         _("archetype"): _(kind), _("Λ lean"): number_text(lean, digits=2),
         _("Δ digital"): number_text(digital, digits=2)}
        for rank, (label, index, kind, lean, digital) in enumerate(
            zip(view.labels, view.index, view.archetypes, view.lean, view.digital, strict=True),
            1,
        )
    ]  # fmt: skip


# --- the page -------------------------------------------------------------------------------


def option_label(item: Item, option: Response) -> str:
    """An answer as the form offers it: the item's own statement for the level."""
    if isinstance(option, Special):
        return _(SPECIAL_LABELS[option])
    return f"{option}: {_(item.options[option])}"


def _questionnaire_form(answers: SmeAnswers, live: bool) -> tuple[SmeAnswers, bool] | None:
    """The answers as a form; the changed answers (and whether to measure) once submitted."""
    version = answers.questionnaire
    with st.form(f"answers-{answers.sme}"):
        given: dict[str, Response] = {}
        for dimension in version.dimensions:
            st.markdown(
                _("**{dimension}** (weight {weight})").format(
                    dimension=f"{dimension.id} {_(dimension.name)}",
                    weight=percent_text(dimension.weight, digits=0),
                )
            )
            for item in version.items_of(dimension.id):
                current = answers.responses[item.id]
                chosen = st.selectbox(
                    f"{item.id} {_(item.text)}",
                    ANSWER_OPTIONS,
                    index=ANSWER_OPTIONS.index(current),
                    format_func=partial(option_label, item),
                    key=f"{answers.sme}-{item.id}",
                )
                given[item.id] = current if chosen is None else chosen
        measure = st.checkbox(
            _("Measure the evidence from the live store now"),
            value=live,
            disabled=not live,
            help=_(
                "Only for the SME of this dashboard's plant; otherwise the evidence of the "
                "latest snapshot is kept."
            ),
        )
        if not st.form_submit_button(_("Save answers and score")):
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


CLAIM_CHECK = N_(
    "**Claim check.** Where the answers and the measured evidence of a dimension differ by "
    "{threshold} or more, the centre's expert looks on a gemba visit. A flag does not change "
    "the score: measured data already outweighs the answers."
)
NO_PROGRESS_YET = N_(
    "One assessment so far: progress appears after the next re-scoring (daily from live data) "
    "or a new assessment."
)
CARD_COLUMNS = 5


def _profile(result: Result) -> None:
    lang = language()
    radar, gaps = st.columns(2)
    radar.plotly_chart(radar_figure(result))
    gaps.plotly_chart(gap_figure(result))
    notes = gate_notes(result, lang=lang)
    if notes:
        gaps.caption("\n".join([_("Gates holding a score down:"), *(f"- {n}" for n in notes)]))
    flags = flag_lines(result, lang=lang)
    if flags:
        claim_check = _(CLAIM_CHECK).format(threshold=number_text(CLAIM_GAP, digits=1))
        st.info(
            "\n".join([claim_check, "", *(f"- {line}" for line in flags)]),
            icon=":material/fact_check:",
        )


def _indicator_card(card: IndicatorCard) -> None:
    """A short code and a short value fit a fifth of the page; the name and the rest of the
    value go below, where they can wrap."""
    trend = [v for v in card.trend if v is not None]
    description = _(card.description)
    if card.score is None:
        score = _("no score")
    else:
        score = _("score {score} of {best}").format(score=card.score, best=MAX_SCORE)
    with st.container(border=True):
        st.metric(
            card.name,
            card.value,
            help=f"{card.name}: {description}",
            chart_data=trend if len(trend) > 1 else None,
        )
        st.caption(" · ".join(filter(None, (description, card.note, score))))


def _indicators(snapshots: Sequence[Snapshot]) -> None:
    cards = indicator_cards([s.result for s in snapshots], lang=language())
    columns = st.columns(CARD_COLUMNS)
    for index, card in enumerate(cards):
        with columns[index % CARD_COLUMNS]:
            _indicator_card(card)


def _recommendations(result: Result) -> None:
    rows = recommendation_rows(result, lang=language())
    if not rows:
        st.caption(_("No priorities: every dimension is at its target."))
    for row in rows:
        with st.container(border=True):
            st.markdown(
                _("**{rank}. {dimension}** · priority {priority}").format(
                    rank=row.rank, dimension=row.dimension,
                    priority=number_text(row.priority, digits=4),
                )
            )  # fmt: skip
            st.write(row.advice)
            st.caption(
                _("what-if {basis}: R {index} ({change})").format(
                    basis=row.basis,
                    index=number_text(row.what_if_index, digits=3),
                    change=signed_text(row.gain, 3),
                )
            )


def _alerts(store: ReadinessStore, sme: str) -> None:
    """Falls below a gate that the data has not lifted since, above the tabs: the daily
    re-scoring finds them, and nobody reads the analytics service's log."""
    for alert in store.gate_alerts(sme, unresolved=True):
        st.error(alert_text(alert, lang=language()), icon="🚨")


def _progress(store: ReadinessStore, sme: str, plant: Plant) -> None:
    progress = store.progress(sme)
    if len(progress) < 2:
        st.info(_(NO_PROGRESS_YET))
        return
    latest = progress[-1]
    st.metric(
        _("R since the first snapshot"),
        number_text(latest.index, digits=3),
        signed_text(latest.index_change, 3),
    )
    st.plotly_chart(progress_figure(progress, plant))
    changes = ", ".join(f"{d} {signed_text(c, 2)}" for d, c in latest.final_change.items())
    st.caption(
        ngettext(
            "{count} snapshot; F since the baseline: {changes}",
            "{count} snapshots; F since the baseline: {changes}",
            len(progress),
        ).format(count=len(progress), changes=changes)
    )
    falls = store.gate_alerts(sme)
    if falls:
        st.markdown(_("**Falls below a gate**, newest first"))
        st.markdown("\n".join(f"- {alert_text(a, lang=language())}" for a in reversed(falls)))


def _cohort(store: ReadinessStore) -> None:
    anonymise = st.toggle(_("Anonymise the SMEs"), value=False)
    latest = {sme: store.snapshots(sme)[-1].result for sme in store.smes()}
    view = cohort(latest, anonymise, lang=language())
    st.plotly_chart(cohort_figure(view))  # full width: the SME names label its rows
    quadrant, ranking = st.columns(2)
    quadrant.plotly_chart(archetype_figure(view))
    ranking.dataframe(ranking_rows(view), hide_index=True)


def _export(result: Result) -> None:
    name = f"readiness-{result['sme']}-{result['taken_at'][:10]}"
    csv_column, pdf_column = st.columns(2)
    csv_column.download_button(
        _("Report as CSV"), report_csv(result, lang=language()), f"{name}.csv", "text/csv"
    )
    pdf_column.download_button(
        _("Report as PDF"), report_pdf(result, lang=language()), f"{name}.pdf", "application/pdf"
    )


TABS = (
    N_("Profile"),
    N_("Indicators"),
    N_("Recommendations"),
    N_("Questionnaire"),
    N_("Progress"),
    N_("Cohort"),
    N_("Export"),
)


def readiness_page(
    plant: Plant, data: Store, *, own_only: bool = False, read_only: bool = False
) -> None:
    """The readiness of the assessed SMEs; with `own_only` the plant's SME's alone and no
    cohort (a tenant's user sees no other SME), with `read_only` no answers saved."""
    st.title(_("Lean 4.0 readiness"))
    try:
        store = ReadinessStore(database_path())
    except ReadinessStoreError as exc:
        st.error(_("The readiness database cannot be read: {error}").format(error=exc))
        return
    with store:
        smes = [sme for sme in store.smes() if sme == plant.tenant.id or not own_only]
        if not smes:
            st.info(_("No SME assessed yet: the demo assesses its three SMEs as it starts, and "
                      "`shopfloor assess` adds one."))  # fmt: skip
            return
        names = {sme: store.snapshots(sme)[-1].result["name"] or sme for sme in smes}
        default = smes.index(plant.tenant.id) if plant.tenant.id in smes else 0
        sme = st.selectbox(_("SME"), smes, index=default, format_func=names.__getitem__)
        snapshots = store.snapshots(sme)
        result = snapshots[-1].result
        archetype = result["archetype"]
        index, level, kind = st.columns(3)
        index.metric(_("Readiness index R"), number_text(result["index"], digits=2))
        level.metric(_("Level"), f"{result['level']} {_(result['level_name'])}")
        warning = archetype["warning"]
        kind.metric(_("Archetype"), _(archetype["name"]), help=_(warning) if warning else None)
        scored = time_text(datetime.fromisoformat(result["taken_at"]), plant, with_date=True)
        mode = MODE_NAMES.get(result["mode"])
        st.caption(
            _("Scored {time} ({zone}), {mode}").format(
                time=scored, zone=plant.site.timezone, mode=_(mode) if mode else result["mode"]
            )
        )
        _alerts(store, sme)
        tabs = st.tabs([_(tab) for tab in TABS])
        with tabs[0]:
            _profile(result)
        with tabs[1]:
            _indicators(snapshots)
        with tabs[2]:
            _recommendations(result)
        with tabs[3]:
            if read_only:
                st.info(_("Answers are changed by staff or the SME, not from this view."))
            else:
                _save_answers(store, snapshots[-1], plant, data)
        with tabs[4]:
            _progress(store, sme, plant)
        with tabs[5]:
            if own_only:
                st.info(_("The cohort compares every SME assessed: staff see it."))
            else:
                _cohort(store)
        with tabs[6]:
            _export(result)
