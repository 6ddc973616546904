"""What the analytics service wrote back to the store: rolling KPIs and shift reports, read
on the plant's data clock."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # Streamlit's own dependency
import streamlit as st
from babel.dates import format_skeleton
from babel.lists import format_list

from analytics.oee import LossTree, OeeReport, pooled, sum_by_key
from dashboard.i18n import N_, _, language, ngettext
from dashboard.labels import number_text, time_text
from shopfloor import i18n
from shopfloor.kpis import KPI_PREFIX, SHIFT_KPI_PREFIX, SHIFT_REPORT, OeeDoc, ShiftReportDoc
from shopfloor.messages import AssetPath
from shopfloor.plant import Plant
from shopfloor.store import (
    Point,
    Scope,
    Store,
    data_clock,
)

log = logging.getLogger(__name__)

# A stored point's timestamp is inside [start, end) only if end is past it.
JUST_AFTER = timedelta(microseconds=1)
PERIOD_DAYS = [1, 7, 30]
MISSING = "\N{EN DASH}"  # a table cell without a value (MTBF of a shift without breakdowns)
ANALYSIS_REFRESH_S = 10.0  # pages of the analytics service's figures redraw at its pace
CLOCKS_APART = timedelta(minutes=2)  # less is a live pipeline's lag, not another clock
POOLED_COUNTS = {"parts", "good_parts"}  # rolling KPIs that add up over a line's machines


@dataclass(frozen=True)
class ShiftReport:
    """One machine's shift (or calendar day, for a plant without shifts) as analysed."""

    path: AssetPath
    machine: str
    shift: str
    day: date
    start: datetime
    oee: OeeReport | None  # None for a machine that makes no parts
    energy_kwh: float | None
    energy_by_state_kwh: dict[str, float]
    kpis: dict[str, float]
    by_product: dict[str, OeeReport] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The shift for people: its weekday and date in the visitor's language, and its name
        as the plant file gives it (Mon, Nov 16 early; пн, 16 нояб. early)."""
        return f"{weekday_text(self.day)} {self.shift}"


def weekday_text(day: date) -> str:
    """A day with its weekday, short, in the visitor's language: Mon, Nov 16; пн, 16 нояб."""
    return format_skeleton("MMMEd", day, locale=i18n.babel_locale(language()))


CLOCKS_APART_WHY = N_("a fast simulation, a demo keeping to its shifts, or a replay")


def clock_note(plant: Plant, data_now: datetime, wall_now: datetime) -> str:
    """Which clock a page's times are on, in the site's zone. Readings and events carry data
    time, the clock the machines stamp them with, which a simulator above x1 runs ahead of the
    wall clock (and a replay leaves behind): next to a wall-clock refresh time, unnamed, they
    look like the future or the past."""
    text = _("Times are data time (the machines' clock) in {zone}: data up to {time}").format(
        zone=plant.site.timezone, time=time_text(data_now, plant, with_date=True)
    )
    apart = data_now - wall_now
    if abs(apart) >= CLOCKS_APART:
        side = (
            _("{span} ahead of the wall clock ({why})")
            if apart > timedelta(0)
            else _("{span} behind the wall clock ({why})")
        )
        text += ", " + side.format(span=_span(abs(apart)), why=_(CLOCKS_APART_WHY))
    return (
        text
        + ". "
        + _("Refreshed {time} by the wall clock").format(time=time_text(wall_now, plant))
    )


def _span(span: timedelta) -> str:
    """A span to the minute in the language's units: 3 hr 51 min, 3 ч 51 мин."""
    hours, minutes = divmod(round(span.total_seconds() / 60), 60)
    days, hours = divmod(hours, 24)
    parts = [(days, 86_400), (hours, 3600), (minutes, 60)]
    lang = language()
    shown = [i18n.duration_text(n * unit_s, lang) for n, unit_s in parts if n]
    return format_list(
        shown or [i18n.duration_text(0, lang)], style="unit-narrow", locale=i18n.babel_locale(lang)
    )


def rolling_kpis(store: Store, path: AssetPath) -> dict[str, float]:
    """The machine's latest KPIs over the service's rolling window, by KPI name."""
    return {
        p.signal.removeprefix(KPI_PREFIX): p.value
        for p in store.latest(Scope.of(path))
        if _is_rolling_kpi(p.signal) and not isinstance(p.value, str)
    }


def line_rolling_kpis(store: Store, paths: Sequence[AssetPath]) -> dict[str, float]:
    """A line's rolling figures, as far as its machines' points allow pooling them honestly:
    parts and good parts add up, and quality is good parts over parts. Availability,
    performance and OEE are left out: pooling them weighs each machine by its planned busy or
    production time, which no rolling point carries. Empty unless every machine has both
    counts."""
    machines = [rolling_kpis(store, path) for path in paths]
    if not machines or not all(kpis.keys() >= POOLED_COUNTS for kpis in machines):
        return {}
    parts = sum(kpis["parts"] for kpis in machines)
    good = sum(kpis["good_parts"] for kpis in machines)
    quality = {"quality": good / parts} if parts > 0 else {}
    return {"parts": parts, "good_parts": good, **quality}


def _is_rolling_kpi(signal: str) -> bool:
    return signal.startswith(KPI_PREFIX) and not signal.startswith(SHIFT_KPI_PREFIX)


def read_shift_reports(
    plant: Plant, store: Store, start: datetime, end: datetime
) -> list[ShiftReport]:
    """The reports of the shifts that began in [start, end], oldest first, in plant order."""
    reports = []
    for path, machine in plant.machines():
        for point in store.history(path, SHIFT_REPORT, start, end + JUST_AFTER):
            try:
                reports.append(_shift_report(point, machine.name))
            except ValueError as exc:  # pydantic's ValidationError is one
                log.warning("skipped unreadable shift report of %s at %s: %s", path, point.ts, exc)
    return sorted(reports, key=lambda r: r.start)  # stable: plant order within a shift


def _shift_report(point: Point, machine: str) -> ShiftReport:
    detail = ShiftReportDoc.model_validate_json(str(point.value))
    return ShiftReport(
        path=point.asset,
        machine=machine,
        shift=detail.shift,
        day=detail.day,
        start=point.ts,
        oee=_oee_report(detail.oee) if detail.oee else None,
        energy_kwh=detail.energy_kwh,
        energy_by_state_kwh=detail.energy_by_state_kwh,
        kpis=detail.kpis,
        by_product={p: _oee_report(r) for p, r in detail.by_product.items()},
    )


def _oee_report(doc: OeeDoc) -> OeeReport:
    """The OEE core's report of a window, from what a `report.shift` point holds."""
    return OeeReport(
        **{
            **doc.model_dump(),
            "start": doc.start.timestamp(),
            "end": doc.end.timestamp(),
            "losses": LossTree(**doc.losses.model_dump()),
            "problems": tuple(doc.problems),
        }
    )


def line_reports(reports: Sequence[ShiftReport], line: str) -> list[ShiftReport]:
    """A line's shifts: the reports of its machines in each shift pooled (`pooled`), named
    `line`; machines that make no parts are left out."""
    shifts: dict[datetime, list[ShiftReport]] = {}
    for report in reports:
        if report.oee is not None:
            shifts.setdefault(report.start, []).append(report)
    return [_pooled_shift(group, line) for _, group in sorted(shifts.items())]


def _pooled_shift(group: Sequence[ShiftReport], line: str) -> ShiftReport:
    first = group[0]
    products = {p for r in group for p in r.by_product}
    return ShiftReport(
        path=first.path,
        machine=line,
        shift=first.shift,
        day=first.day,
        start=first.start,
        oee=pooled([r.oee for r in group if r.oee is not None]),
        energy_kwh=sum(r.energy_kwh or 0.0 for r in group),
        energy_by_state_kwh=sum_by_key(r.energy_by_state_kwh for r in group),
        kpis={},
        by_product={p: pooled(product_reports(group, p)) for p in sorted(products)},
    )


def product_reports(reports: Iterable[ShiftReport], product: str) -> list[OeeReport]:
    return [r.by_product[product] for r in reports if product in r.by_product]


def by_product(reports: Sequence[ShiftReport]) -> dict[str, OeeReport]:
    """Each product's OEE over the reports together, products in order of appearance."""
    products = dict.fromkeys(p for r in reports for p in r.by_product)
    return {p: pooled(product_reports(reports, p)) for p in products}


def by_machine(reports: Sequence[ShiftReport]) -> dict[str, list[ShiftReport]]:
    """The reports grouped by machine name, in the order the machines first appear."""
    grouped: dict[str, list[ShiftReport]] = {}
    for report in reports:
        grouped.setdefault(report.machine, []).append(report)
    return grouped


def choose_period(plant: Plant, store: Store) -> tuple[datetime, datetime] | None:
    """The period the user picks, ending at the data clock; None, with a note, before the
    analytics service has written anything."""
    now = data_clock(plant, store)
    if now is None:
        st.info(_("No KPIs yet: they appear once `shopfloor analytics` has analysed some data."))
        return None
    periods = {d: _period_text(d) for d in PERIOD_DAYS}  # in this run's language
    days = st.selectbox(_("Period"), PERIOD_DAYS, format_func=periods.__getitem__)
    st.caption(
        _("Data up to {time} ({zone})").format(
            time=time_text(now, plant, with_date=True), zone=plant.site.timezone
        )
    )
    return now - timedelta(days=days or 1), now


def _period_text(days: int) -> str:
    return ngettext("last {count} day", "last {count} days", days).format(count=days)


# --- tables in the visitor's language ---------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a table people read: its title in the visitor's language, how its values
    read (None: as they are) and a help text for its header."""

    title: str
    text: Callable[[Any], str] | None = None
    help: str | None = None


def decimals(digits: int) -> Callable[[float], str]:
    """Numbers with `digits` decimals in the visitor's language: 1,234.57 or 1 234,57."""
    return lambda value: number_text(value, digits=digits)


def day_text(day: date) -> str:
    """A calendar day (already the site's), numeric, in the visitor's language: 16.11.2026."""
    return i18n.date_text(day, language())


def show_table(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> None:
    """A table whose cells read in the visitor's language (Babel's numbers, dates and
    percentages, through a pandas Styler) while the columns keep their numbers, so that a
    click on a header sorts them as numbers; a missing value is a dash."""
    frame = pd.DataFrame([list(row) for row in rows], columns=[c.title for c in columns])
    styled = frame.style.format(
        {c.title: c.text for c in columns if c.text is not None}, na_rep=MISSING
    )
    st.dataframe(
        styled,
        hide_index=True,
        column_config={c.title: st.column_config.Column(help=c.help) for c in columns if c.help},
        placeholder=MISSING,
    )
