"""The OEE page: availability, performance and quality per shift, where the time went (the loss
waterfall) and why the machines stopped (the stop-reason Pareto), from the analytics service's
shift reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import plotly.graph_objects as go
import streamlit as st
from babel.lists import format_list

from analytics.oee import PROBLEMS, OeeReport, sum_by_key
from dashboard.i18n import N_, _, chart_separators, language, ngettext
from dashboard.kpis import (
    ANALYSIS_REFRESH_S,
    Column,
    ShiftReport,
    by_machine,
    by_product,
    choose_period,
    day_text,
    decimals,
    line_reports,
    line_rolling_kpis,
    read_shift_reports,
    rolling_kpis,
    show_table,
    weekday_text,
)
from dashboard.labels import KPI_HELP, number_text, percent_text, reason_text, state_text
from dashboard.shop_floor import read_shop_floor
from dashboard.store_errors import shows_store_errors
from shopfloor import i18n
from shopfloor.plant import Plant
from shopfloor.states import STATE
from shopfloor.store import Store

NO_REASON = N_("no reason code")
NO_DATA = N_("No data (before the first reading)")
CUMULATIVE_TICKS = [0.0, 0.25, 0.5, 0.75, 1.0]
SHOWN_PROBLEMS = 8  # problems listed on the page; the rest are counted
SHOWN_SHIFTS = 3  # shifts named for one problem; the rest are counted
RATIOS = {
    "availability": N_("Availability"),
    "performance": N_("Performance"),
    "quality": N_("Quality"),
    "oee": N_("OEE"),
}
# ISO 22400-2's time elements, the waterfall's totals.
PLANNED_OPERATION = N_("Planned operation time")
PLANNED_BUSY = N_("Planned busy time")
ACTUAL_PRODUCTION = N_("Actual production time")
FULLY_PRODUCTIVE = N_("Fully productive time")
# The losses between them: planned downtime, the availability losses by machine state, and the
# performance and quality losses (the six big losses, regrouped by where ISO 22400 counts them).
PLANNED_DOWNTIME = N_("Planned downtime")
AVAILABILITY_LOSSES = {
    "idle": N_("Idle"),
    "starved": N_("Starved"),
    "blocked": N_("Blocked"),
    "setup": N_("Setup"),
    "unplanned_stop": N_("Unplanned stop"),
    "off": N_("Off"),
}
MICRO_STOPS = N_("Micro-stops")
REDUCED_SPEED = N_("Reduced speed")
REJECTS = N_("Rejects")


@dataclass(frozen=True)
class ShiftKpis:
    """One row of the per-shift table: a machine's OEE figures over one shift."""

    day: date
    shift: str
    machine: str
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    parts: int
    good_parts: int
    rejects: int
    mtbf_s: float | None
    mttr_s: float | None


def shift_kpis(reports: Sequence[ShiftReport]) -> list[ShiftKpis]:
    """The per-shift table, in the reports' order; machines that make no parts are left out."""
    return [
        ShiftKpis(
            day=r.day,
            shift=r.shift,
            machine=r.machine,
            availability=r.oee.availability,
            performance=r.oee.performance,
            quality=r.oee.quality,
            oee=r.oee.oee,
            parts=r.oee.produced,
            good_parts=r.oee.good,
            rejects=r.oee.bad,
            mtbf_s=r.oee.mtbf_s,
            mttr_s=r.oee.mttr_s,
        )
        for r in reports
        if r.oee is not None
    ]


@dataclass(frozen=True)
class WaterfallStep:
    """A bar of the loss waterfall: a time total, or a loss taken off the total before it."""

    label: str  # English, marked N_: shown through _()
    seconds: float  # positive; a loss is drawn downwards
    is_total: bool


def loss_waterfall(reports: Sequence[OeeReport]) -> list[WaterfallStep]:
    """From planned operation time down to fully productive time (ideal cycle time x good
    parts, that is OEE x planned busy time), over one or more shifts added up."""
    availability = sum_by_key(r.losses.availability_by_state for r in reports)
    groups: list[tuple[str, list[tuple[str, float]]]] = [
        (
            PLANNED_BUSY,
            [
                (PLANNED_DOWNTIME, sum(r.planned_downtime_s for r in reports)),
                (NO_DATA, sum(r.unknown_s for r in reports)),
            ],
        ),
        (
            ACTUAL_PRODUCTION,
            sorted(
                ((_loss_name(state), s) for state, s in availability.items()),
                key=lambda loss: -loss[1],
            ),
        ),
        (
            FULLY_PRODUCTIVE,
            [
                (MICRO_STOPS, sum(r.losses.micro_stops for r in reports)),
                (REDUCED_SPEED, sum(r.losses.reduced_speed for r in reports)),
                (REJECTS, sum(r.losses.rejects for r in reports)),
            ],
        ),
    ]
    total = sum(r.planned_operation_s for r in reports)
    steps = [WaterfallStep(PLANNED_OPERATION, total, is_total=True)]
    for subtotal, losses in groups:
        for label, seconds in losses:
            if seconds > 0:
                steps.append(WaterfallStep(label, seconds, is_total=False))
                total -= seconds
        steps.append(WaterfallStep(subtotal, total, is_total=True))
    return steps


def _loss_name(state: str) -> str:
    return AVAILABILITY_LOSSES.get(state) or state.replace("_", " ").capitalize()


@dataclass(frozen=True)
class ParetoBar:
    reason: str
    seconds: float
    cumulative_share: float  # of all availability losses, this bar and those before it


def stop_pareto(reports: Sequence[OeeReport]) -> list[ParetoBar]:
    """Availability losses by stop reason, largest first; stops that carried no reason code
    (starved, blocked, idle, most often) make one bar of their own."""
    by_reason = sum_by_key(r.losses.availability_by_reason for r in reports)
    all_losses = sum(sum(r.losses.availability_by_state.values()) for r in reports)
    unexplained = all_losses - sum(by_reason.values())
    if unexplained > 0:
        by_reason[NO_REASON] = unexplained
    total = sum(by_reason.values())
    bars, cumulative = [], 0.0
    for reason, seconds in sorted(by_reason.items(), key=lambda item: -item[1]):
        if seconds <= 0:
            continue
        cumulative += seconds
        bars.append(ParetoBar(reason, seconds, cumulative / total))
    return bars


@dataclass(frozen=True)
class Problem:
    """A problem the analysis found in the data, and the machine shifts it was found in."""

    message: str
    found_in: tuple[str, ...]  # "machine, shift"


def report_problems(reports: Sequence[ShiftReport]) -> list[Problem]:
    """Each distinct problem of the reports once, in order of first appearance: they explain
    figures that cannot be right, such as a performance above 100 % when a machine was
    reported idle while it produced."""
    found: dict[str, list[str]] = {}
    for r in reports:
        for message in dict.fromkeys(r.oee.problems if r.oee else ()):
            found.setdefault(message, []).append(f"{r.machine}, {r.label}")
    return [Problem(message, tuple(where)) for message, where in found.items()]


# --- rendering ------------------------------------------------------------------------------


def oee_page(plant: Plant, store: Store) -> None:
    st.title(_("OEE"))
    _oee(plant, store)


@st.fragment(run_every=ANALYSIS_REFRESH_S)  # figures come in as the analytics write them
@shows_store_errors
def _oee(plant: Plant, store: Store) -> None:
    period = choose_period(plant, store)
    if period is None:
        return
    machines = {m.name: path for path, m in plant.machines() if m.ideal_cycle_time}
    lines = production_lines(plant)
    name = st.selectbox(_("Line or machine"), [*lines, *machines])
    if name is None:
        return
    grouped = by_machine(read_shift_reports(plant, store, *period))
    if name in lines:
        _line_rolling(line_rolling_kpis(store, [machines[m] for m in lines[name]]))
        members = [r for m in lines[name] for r in grouped.get(m, [])]
        reports = line_reports(members, name)
    else:
        _rolling(rolling_kpis(store, machines[name]))
        members = reports = grouped.get(name, [])
    _shifts(name, reports, members)
    _stopped_now(stopped_now(plant, store, lines.get(name, [name])))


def _shifts(name: str, reports: Sequence[ShiftReport], members: Sequence[ShiftReport]) -> None:
    """The shifts as shown (a line's pooled) and their machines' own reports, whose problems
    are named by machine."""
    analysed = [r for r in reports if r.oee is not None]
    if not analysed:
        st.info(_("No shift of {name} has been analysed in this period.").format(name=name))
        return
    st.subheader(_("Per shift"))
    rows = shift_kpis(analysed)
    st.caption(KPI_HELP["oee"])
    st.plotly_chart(_shift_figure(rows))
    _shift_table(rows)
    _problems(report_problems(members))
    _products(by_product(analysed))
    _losses(analysed)


def stopped_now(plant: Plant, store: Store, names: Sequence[str]) -> list[str]:
    """The machines named that stand now, each with its state and stop reason: a stop's
    minutes reach the shift reports only at the analytics service's next cycle."""
    return [
        f"{view.name}: {state_text(str(view.value(STATE)))}, {reason_text(view.stop_reason)}"
        for view in read_shop_floor(plant, store).machines
        if view.name in names and view.stop_reason
    ]


def _stopped_now(stops: Sequence[str]) -> None:
    if stops:
        st.info(_("Stopped now: {machines}").format(machines="; ".join(stops)))


def production_lines(plant: Plant) -> dict[str, list[str]]:
    """Each line with more than one machine making parts, by label, with its machines' names."""
    lines = {}
    for area in plant.site.areas:
        for line in area.lines:
            makers = [m.name for m in line.machines if m.ideal_cycle_time]
            if len(makers) > 1:
                lines[_("Line: {line}").format(line=line.name or line.id)] = makers
    return lines


def _products(reports: dict[str, OeeReport]) -> None:
    """OEE by product over the period, for machines that report the product they make."""
    if not reports:
        return
    st.subheader(_("By product"))
    show_table(
        [
            Column(_("Product")),
            Column(_("Hours loaded"), decimals(2)),
            *_ratio_columns(),
            Column(_("Parts"), decimals(0), KPI_HELP["parts"]),
            Column(_("Good"), decimals(0), KPI_HELP["good_parts"]),
        ],
        [
            [
                product,
                r.planned_operation_s / 3600,
                r.availability,
                r.performance,
                r.quality,
                r.oee,
                r.produced,
                r.good,
            ]
            for product, r in reports.items()
        ],
    )


def _ratio_columns() -> list[Column]:
    return [Column(_(title), percent_text, KPI_HELP[kpi]) for kpi, title in RATIOS.items()]


def _rolling(kpis: dict[str, float]) -> None:
    """The headline: the service's rolling window (an hour by default)."""
    st.subheader(_("Last hour"))
    for column, (name, title) in zip(st.columns(len(RATIOS)), RATIOS.items(), strict=True):
        column.metric(_(title), _share_text(kpis.get(name)), help=KPI_HELP[name])
    above = [_(title) for name, title in RATIOS.items() if kpis.get(name, 0.0) > 1 + 1e-9]
    if above:
        st.warning(
            _(
                "{factors} above 100%, which cannot be real: the machine's data is inconsistent "
                "(parts counted while it was reported idle, say). Any problems the analysis "
                "found in the shifts are listed under the shift table."
            ).format(factors=format_list(above, locale=i18n.babel_locale(language())))
        )


def _share_text(value: float | None) -> str:
    return _("no data") if value is None else percent_text(value)


def _line_rolling(kpis: dict[str, float]) -> None:
    """A line's headline: only what its machines' rolling figures can honestly be pooled into."""
    st.subheader(_("Last hour"))
    if kpis:
        parts, good, quality = st.columns(3)
        parts.metric(_("Parts"), number_text(kpis["parts"], digits=0), help=KPI_HELP["parts"])
        good.metric(
            _("Good parts"), number_text(kpis["good_parts"], digits=0), help=KPI_HELP["good_parts"]
        )
        quality.metric(_("Quality"), _share_text(kpis.get("quality")), help=KPI_HELP["quality"])
    st.caption(
        _(
            "A line's availability, performance and OEE are per shift only (below): pooling its "
            "machines' figures needs their planned busy and production times, which the rolling "
            "figures do not carry. Per shift, availability is over the machines' planned busy "
            "time together, performance over their production time, quality over their parts."
        )
    )


def _problems(problems: Sequence[Problem]) -> None:
    if not problems:
        return
    items = [
        f"- {i18n.reword(p.message, PROBLEMS, language())} ({_some(p.found_in, SHOWN_SHIFTS)})"
        for p in problems[:SHOWN_PROBLEMS]
    ]
    more = len(problems) - SHOWN_PROBLEMS
    if more > 0:
        items.append(
            "- "
            + ngettext("and {count} more problem", "and {count} more problems", more).format(
                count=more
            )
        )
    st.warning(
        _(
            "The analysis found problems in the data of these shifts; the figures they touch "
            "(a ratio above 100 %, say) cannot be trusted:"
        )
        + "\n"
        + "\n".join(items)
    )


def _some(names: Sequence[str], shown: int) -> str:
    """The first `shown` machine shifts, and how many more there are."""
    listed = "; ".join(names[:shown])
    more = len(names) - shown
    if more <= 0:
        return listed
    return ngettext(
        "{shifts}; and {count} more shift", "{shifts}; and {count} more shifts", more
    ).format(shifts=listed, count=more)


def _shift_figure(rows: Sequence[ShiftKpis]) -> go.Figure:
    labels = [f"{weekday_text(r.day)} {r.shift}" for r in rows]
    figure = go.Figure(
        [
            go.Bar(
                name=_(title),
                x=labels,
                y=[getattr(r, name) for r in rows],
                customdata=[_share_text(getattr(r, name)) for r in rows],
                hovertemplate="%{x}<br>%{fullData.name}: %{customdata}<extra></extra>",
            )
            for name, title in RATIOS.items()
        ]
    )
    figure.update_layout(
        barmode="group",
        title=_("OEE and its factors"),
        yaxis_tickformat=".0%",
        separators=chart_separators(),
        height=360,
    )
    return figure


def _shift_table(rows: Sequence[ShiftKpis]) -> None:
    minutes = decimals(1)
    show_table(
        [
            Column(_("Day"), day_text),
            Column(_("Shift")),
            *_ratio_columns(),
            Column(_("Parts"), decimals(0), KPI_HELP["parts"]),
            Column(_("Good"), decimals(0), KPI_HELP["good_parts"]),
            Column(_("Rejects"), decimals(0), KPI_HELP["rejects"]),
            Column(_("MTBF (min)"), minutes, KPI_HELP["mtbf"]),
            Column(_("MTTR (min)"), minutes, KPI_HELP["mttr"]),
        ],
        [
            [
                r.day,
                r.shift,
                r.availability,
                r.performance,
                r.quality,
                r.oee,
                r.parts,
                r.good_parts,
                r.rejects,
                None if r.mtbf_s is None else r.mtbf_s / 60,
                None if r.mttr_s is None else r.mttr_s / 60,
            ]
            for r in rows
        ],
    )


def _losses(reports: Sequence[ShiftReport]) -> None:
    st.subheader(_("Losses"))
    every = _("the whole period")
    choices = {every: reports, **{r.label: [r] for r in reversed(reports)}}
    chosen = st.selectbox(_("Shifts"), list(choices)) or every
    oee = [r.oee for r in choices[chosen] if r.oee is not None]
    waterfall, pareto = st.columns(2)
    waterfall.plotly_chart(_waterfall_figure(loss_waterfall(oee)))
    bars = stop_pareto(oee)
    if bars:
        pareto.plotly_chart(pareto_figure(bars))
    else:
        pareto.caption(_("No stops in these shifts."))


def _waterfall_figure(steps: Sequence[WaterfallStep]) -> go.Figure:
    hours = [s.seconds / 3600 for s in steps]
    figure = go.Figure(
        go.Waterfall(
            x=[_(s.label) for s in steps],
            y=[h if s.is_total else -h for s, h in zip(steps, hours, strict=True)],
            measure=["absolute" if s.is_total else "relative" for s in steps],
            text=[_hours_text(h) for h in hours],
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    figure.update_layout(
        title=_("Where the planned time went"),
        yaxis_title=_("hours"),
        separators=chart_separators(),
        height=420,
    )
    return figure


def _hours_text(hours: float) -> str:
    """Hours with two decimals and the language's symbol for them: 2.50 h, 2,50 ч."""
    return _("{hours} h").format(hours=number_text(hours, digits=2))


def pareto_figure(bars: Sequence[ParetoBar]) -> go.Figure:
    """Minutes by reason with the cumulative share on a 0-100 % axis of its own; the legend
    above the plot, where it hides neither the bars nor the reasons under them."""
    reasons = [_(b.reason) if b.reason == NO_REASON else reason_text(b.reason) for b in bars]
    minutes = [b.seconds / 60 for b in bars]
    figure = go.Figure(
        [
            go.Bar(
                x=reasons,
                y=minutes,
                name=_("minutes"),
                customdata=[_("{minutes} min").format(minutes=number_text(m)) for m in minutes],
                hovertemplate="%{x}: %{customdata}<extra></extra>",
            ),
            go.Scatter(
                x=reasons,
                y=[b.cumulative_share for b in bars],
                name=_("cumulative share"),
                customdata=[
                    _("cumulative share: {share}").format(share=percent_text(b.cumulative_share))
                    for b in bars
                ],
                hovertemplate="%{x}: %{customdata}<extra></extra>",
                yaxis="y2",
                mode="lines+markers",
                cliponaxis=False,  # the last point sits on the axis' top, at 100 %
            ),
        ]
    )
    figure.update_layout(
        title=_("Stop reasons"),
        yaxis_title=_("minutes"),
        separators=chart_separators(),
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "tickvals": CUMULATIVE_TICKS,
            "tickformat": ".0%",
            "showgrid": False,
        },
        height=420,
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    )
    return figure
