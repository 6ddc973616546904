"""How every page names things for a visitor: signals, units, machine states, stop reasons,
KPIs with a one-line explanation each, times in the site's zone and money in its currency.

One table of each, so that a signal is "Melt temperature (°C)" on the shop floor and on the
Anomalies page alike; a label the plant file gives a signal wins over the table.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dashboard.i18n import _, language
from shopfloor import i18n
from shopfloor.i18n import N_
from shopfloor.plant import Plant, Signal


class _Translated(dict[str, str]):
    """A table of English texts (marked N_) that reads out in the visitor's language."""

    def __getitem__(self, key: str) -> str:
        return _(super().__getitem__(key))


SIGNAL_NAMES = {
    "pm2_5": "PM2.5",
    "pm10": "PM10",
    "co2": "CO₂",
    "humidity": N_("Humidity"),
    "noise": N_("Noise"),
    "temperature": N_("Temperature"),
    "air_flow": N_("Air flow"),
    "part_count": N_("Parts"),
    "reject_count": N_("Rejects"),
    "machine": N_("All signals together"),  # the analytics service's joint score of a machine
}

UNITS = {
    "degC": "°C",
    "degF": "°F",
    "ug/m3": "µg/m³",
    "mg/m3": "mg/m³",
    "m3/min": "m³/min",
    "m3/h": "m³/h",
    "%RH": "% RH",
    "dBA": "dB(A)",
    "pcs": N_("parts"),
    "kWh/pcs": N_("kWh per part"),
}

STATE_NAMES = {
    "running": N_("Running"),
    "micro_stop": N_("Short stop"),
    "idle": N_("Idle"),
    "starved": N_("Waiting for parts"),
    "blocked": N_("Blocked by the next station"),
    "setup": N_("Setting up"),
    "unplanned_stop": N_("Stopped (breakdown)"),
    "planned_stop": N_("Planned stop"),
    "off": N_("Switched off"),
}

# What each figure on screen means, in one line of plain words: tooltips and captions.
KPI_HELP = _Translated(
    {
        "oee": N_(
            "Overall equipment effectiveness: the share of planned time spent making good parts "
            "at full speed (availability times performance times quality)."
        ),
        "availability": N_(
            "Share of the planned time the machine was actually producing, not stopped."
        ),
        "performance": N_("How fast it produced while running, against its ideal cycle time."),
        "quality": N_("Share of the parts made that were good, not rejects."),
        "parts": N_("Parts the machine made, good and rejected."),
        "good_parts": N_("Parts made without a defect."),
        "rejects": N_("Parts made that failed the quality check."),
        "mtbf": N_(
            "Mean time between failures: how long the machine runs, on average, between breakdowns."
        ),
        "mttr": N_("Mean time to repair: how long a breakdown lasts, on average."),
        "power": N_("Electrical power the machine draws now."),
        "energy": N_("Electricity used, from the machines' energy meters."),
        "energy_per_good_part": N_(
            "Electricity used for each good part: lower is better; idle "
            "machines and rejects raise it."
        ),
        "idle_energy_share": N_("Share of the electricity used while the machine made nothing."),
        "peak_demand": N_(
            "Highest average power over 15 minutes: what the grid connection is "
            "sized and often billed for."
        ),
        "co2": N_(
            "CO₂ emitted to make the electricity used, at the grid's average emission factor."
        ),
        "cost": N_("Electricity used times the site's price per kWh."),
        "anomaly": N_(
            "How unusual the machine's signals look against what the analysis learned is "
            "normal for it: 'watch' is unusual, 'anomaly' is rare enough to warn of a failure."
        ),
        "anomaly_score": N_(
            "How unusual a signal looks, from 0 (as usual) to 1 (never seen like this);"
            " an anomaly event opens above 0.99."
        ),
        "queue": N_("Readings a device keeps on its own disk while it cannot reach the broker."),
        "sources": N_("Machines (OPC UA servers) the device reads, connected out of configured."),
    }
)


def signal_name(signal_id: str, declared: Signal | None = None) -> str:
    """A signal's name for people: the plant file's label, the table's, else its id in words."""
    if declared is not None and declared.label:
        return declared.label
    known = SIGNAL_NAMES.get(signal_id)
    return _(known) if known else signal_id.replace("_", " ").capitalize()


def unit_text(unit: str) -> str:
    """A unit as people write it: °C for degC, µg/m³ for ug/m3; unknown units as given."""
    return _(UNITS[unit]) if unit in UNITS else unit


def signal_title(signal_id: str, declared: Signal | None) -> str:
    """ "Melt temperature (°C)": a chart's or column's title."""
    unit = unit_text(declared.unit) if declared else ""
    name = signal_name(signal_id, declared)
    return f"{name} ({unit})" if unit else name


def state_text(state: str) -> str:
    known = STATE_NAMES.get(state)
    return _(known) if known else state.replace("_", " ").capitalize()


def reason_text(reason: str) -> str:
    """A stop-reason code in words: bearing_failure -> bearing failure."""
    return reason.replace("_", " ").strip()


def number_text(value: float, unit: str = "", digits: int = 1) -> str:
    """A value with its unit, never "-0.0": a reading that rounds to zero is zero."""
    return f"{i18n.number_text(value, language(), digits)} {unit_text(unit)}".strip()


def age_text(seconds: float) -> str:
    """How long ago, in the largest unit that says it (42 s, 5 min, 3 h), in the language's
    words and plural forms."""
    return i18n.duration_text(max(seconds, 0.0), language())


def money_text(amount: float, currency: str) -> str:
    """An amount in the site's currency, in the visitor's language: 1 234,50 €."""
    return i18n.money_text(amount, currency, language())


def percent_text(share: float, digits: int = 1) -> str:
    """A share (0.875) as a percentage in the visitor's language: 87.5% or 87,5 %."""
    return i18n.percent_text(share, language(), digits)


def date_text(ts: datetime, plant: Plant) -> str:
    """A calendar day on the site's clock, numeric in the visitor's language: 09.03.2026."""
    return i18n.date_text(local(ts, plant), language())


def local(ts: datetime, plant: Plant) -> datetime:
    """A stored (UTC) time on the site's clock."""
    return ts.astimezone(ZoneInfo(plant.site.timezone))


def time_text(ts: datetime, plant: Plant, with_date: bool = False) -> str:
    """A time of day on the site's clock, e.g. 14:05:09; with the date when asked."""
    clock = i18n.time_text(local(ts, plant), language())
    return f"{date_text(ts, plant)} {clock}" if with_date else clock


def chart_time(ts: datetime, plant: Plant) -> datetime:
    """A time for a chart's axis: the site's wall-clock time without an offset, which plotly
    draws as it is (it has no time zones), under an axis titled with `axis_title`."""
    return local(ts, plant).replace(tzinfo=None)


def axis_title(plant: Plant) -> str:
    return _("time ({zone})").format(zone=plant.site.timezone)
