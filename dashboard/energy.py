"""The energy page: what each machine used, in which states, per good part, at what peak, cost
and CO2, from the analytics service's shift reports.

The service does not price energy: the page multiplies kWh by a price per kWh the user can
change, by default the site's (`energy_price` in the plant file, else SHOPFLOOR_PRICE_PER_KWH),
in the site's currency.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from analytics.oee import sum_by_key
from dashboard.i18n import _, chart_separators
from dashboard.kpis import (
    ANALYSIS_REFRESH_S,
    Column,
    ShiftReport,
    by_machine,
    choose_period,
    day_text,
    decimals,
    read_shift_reports,
    show_table,
)
from dashboard.labels import KPI_HELP, money_text, number_text, percent_text, state_text
from dashboard.shop_floor import STATE_COLOURS
from dashboard.store_errors import shows_store_errors
from shopfloor.plant import Plant, Site
from shopfloor.states import MachineState
from shopfloor.store import Store

DEFAULT_PRICE_PER_KWH = 0.15


@dataclass(frozen=True)
class Tariff:
    price_per_kwh: float
    currency: str

    @classmethod
    def of(cls, site: Site) -> Tariff:
        """The site's price per kWh and currency; a site without a price takes
        SHOPFLOOR_PRICE_PER_KWH's, else the default's."""
        price = site.energy_price or os.environ.get("SHOPFLOOR_PRICE_PER_KWH")
        return cls(float(price) if price else DEFAULT_PRICE_PER_KWH, site.currency)


@dataclass(frozen=True)
class EnergyTotals:
    """The energy of one or more machine shifts, added up."""

    kwh: float
    by_state_kwh: dict[str, float]  # from the power signal; may not add up to the meter's kWh
    good_parts: float
    peak_kw: float | None  # the highest 15-minute demand of any of the shifts
    co2_kg: float
    cost: float

    @property
    def kwh_per_good_part(self) -> float | None:
        return self.kwh / self.good_parts if self.good_parts else None


def energy_totals(reports: Sequence[ShiftReport], price_per_kwh: float) -> EnergyTotals:
    kwh = sum(r.energy_kwh or 0.0 for r in reports)
    peaks = [r.kpis["peak_demand"] for r in reports if "peak_demand" in r.kpis]
    return EnergyTotals(
        kwh=kwh,
        by_state_kwh=sum_by_key(r.energy_by_state_kwh for r in reports),
        good_parts=sum(r.kpis.get("good_parts", 0.0) for r in reports),
        peak_kw=max(peaks, default=None),
        co2_kg=sum(r.kpis.get("co2", 0.0) for r in reports),
        cost=kwh * price_per_kwh,
    )


def energy_by_machine(
    reports: Sequence[ShiftReport], price_per_kwh: float
) -> dict[str, EnergyTotals]:
    """Each machine's energy over the shifts of the reports, by machine name."""
    return {
        machine: energy_totals(shifts, price_per_kwh)
        for machine, shifts in by_machine(reports).items()
    }


# --- rendering ------------------------------------------------------------------------------


def energy_page(plant: Plant, store: Store) -> None:
    st.title(_("Energy"))
    _energy(plant, store)


@st.fragment(run_every=ANALYSIS_REFRESH_S)  # figures come in as the analytics write them
@shows_store_errors
def _energy(plant: Plant, store: Store) -> None:
    period = choose_period(plant, store)
    if period is None:
        return
    default = Tariff.of(plant.site)
    price = st.number_input(
        _("Price per kWh ({currency})").format(currency=default.currency), min_value=0.0,
        value=default.price_per_kwh, step=0.01, format="%.3f",
        help=_("The site's price from its plant file; change it to see what another tariff "
               "would cost."),
    )  # fmt: skip
    tariff = Tariff(price, default.currency)
    reports = read_shift_reports(plant, store, *period)
    if not reports:
        st.info(_("No shift has been analysed in this period."))
        return
    machines = energy_by_machine(reports, tariff.price_per_kwh)
    _headline(machines, tariff)
    st.subheader(_("Per machine and state"))
    st.plotly_chart(_states_figure(machines))
    _machine_table(machines, tariff)
    st.subheader(_("Per shift"))
    st.plotly_chart(_per_part_figure(reports))
    _shift_table(reports, tariff)


def _headline(machines: Mapping[str, EnergyTotals], tariff: Tariff) -> None:
    kwh, cost, co2 = st.columns(3)
    total_kwh = sum(m.kwh for m in machines.values())
    kwh.metric(_("Energy"), _kwh_text(total_kwh), help=KPI_HELP["energy"])
    total_cost = money_text(sum(m.cost for m in machines.values()), tariff.currency)
    cost.metric(_("Cost"), total_cost, help=KPI_HELP["cost"])
    total_co2 = number_text(sum(m.co2_kg for m in machines.values()))
    co2.metric("CO₂", _("{mass} kg").format(mass=total_co2), help=KPI_HELP["co2"])


def _kwh_text(kwh: float, digits: int = 1) -> str:
    return _("{energy} kWh").format(energy=number_text(kwh, digits=digits))


def _states_figure(machines: Mapping[str, EnergyTotals]) -> go.Figure:
    found = {s for m in machines.values() for s in m.by_state_kwh}
    figure = go.Figure(
        [
            go.Bar(
                name=state_text(state),
                x=list(machines),
                y=[m.by_state_kwh.get(state, 0.0) for m in machines.values()],
                customdata=[_kwh_text(m.by_state_kwh.get(state, 0.0)) for m in machines.values()],
                hovertemplate="%{x}<br>%{fullData.name}: %{customdata}<extra></extra>",
                marker_color=STATE_COLOURS.get(state),
            )
            for state in [s.value for s in MachineState if s.value in found]
        ]
    )
    figure.update_layout(
        barmode="stack",
        title=_("kWh by machine state"),
        yaxis_title=_("kWh"),
        separators=chart_separators(),
        height=360,
    )
    return figure


def _machine_table(machines: Mapping[str, EnergyTotals], tariff: Tariff) -> None:
    show_table(
        [Column(_("Machine")), *_energy_columns(tariff, idle_share=False)],
        [
            [name, m.kwh, m.kwh_per_good_part, m.peak_kw, m.cost, m.co2_kg]
            for name, m in machines.items()
        ],
    )


def _per_part_figure(reports: Sequence[ShiftReport]) -> go.Figure:
    figure = go.Figure(
        [
            go.Bar(
                name=machine,
                x=[r.label for r in shifts],
                y=[r.kpis.get("energy_per_good_part") for r in shifts],
                customdata=[_per_part_text(r.kpis.get("energy_per_good_part")) for r in shifts],
                hovertemplate="%{x}<br>%{fullData.name}: %{customdata}<extra></extra>",
            )
            for machine, shifts in by_machine(reports).items()
        ]
    )
    figure.update_layout(
        barmode="group",
        title=_("kWh per good part"),
        yaxis_title=_("kWh/part"),
        separators=chart_separators(),
        height=360,
    )
    return figure


def _per_part_text(kwh: float | None) -> str:
    if kwh is None:
        return _("no data")
    return _("{energy} kWh per good part").format(energy=number_text(kwh, digits=4))


def _shift_table(reports: Sequence[ShiftReport], tariff: Tariff) -> None:
    rows = []
    for report in reports:
        totals = energy_totals([report], tariff.price_per_kwh)
        rows.append(
            [
                report.day,
                report.shift,
                report.machine,
                totals.kwh,
                totals.kwh_per_good_part,
                report.kpis.get("idle_energy_share"),
                totals.peak_kw,
                totals.cost,
                totals.co2_kg,
            ]
        )
    show_table(
        [
            Column(_("Day"), day_text),
            Column(_("Shift")),
            Column(_("Machine")),
            *_energy_columns(tariff, idle_share=True),
        ],
        rows,
    )


def _energy_columns(tariff: Tariff, idle_share: bool) -> list[Column]:
    """The energy figures of a table's row: kWh, per good part, [idle share,] peak, cost, CO2."""
    share = Column(_("Idle share"), percent_text, KPI_HELP["idle_energy_share"])
    return [
        Column(_("kWh"), decimals(2), KPI_HELP["energy"]),
        Column(_("kWh per good part"), decimals(4), KPI_HELP["energy_per_good_part"]),
        *([share] if idle_share else []),
        Column(_("Peak demand (kW)"), decimals(1), KPI_HELP["peak_demand"]),
        Column(
            _("Cost ({currency})").format(currency=tariff.currency),
            decimals(2),
            KPI_HELP["cost"],
        ),
        Column(_("CO₂ (kg)"), decimals(2), KPI_HELP["co2"]),
    ]
