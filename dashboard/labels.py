"""How every page names things for a visitor: signals, units, machine states, stop reasons,
KPIs with a one-line explanation each, times in the site's zone and money in its currency.

One table of each, so that a signal is "Melt temperature (°C)" on the shop floor and on the
Anomalies page alike; a label the plant file gives a signal wins over the table.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
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

# Units as each language writes them: Russian and Belarusian in Cyrillic (кВт·ч), Serbian
# with the SI symbols in Latin letters; a unit the table does not know as the plant gives it.
UNITS = {
    "degC": "°C",
    "degF": "°F",
    "ug/m3": N_("µg/m³"),
    "mg/m3": N_("mg/m³"),
    "m3/min": N_("m³/min"),
    "m3/h": N_("m³/h"),
    "%RH": "% RH",
    "dBA": N_("dB(A)"),
    "pcs": N_("parts"),
    "kWh/pcs": N_("kWh per part"),
    "s": N_("s"),
    "min": N_("min"),
    "h": N_("h"),
    "kW": N_("kW"),
    "kWh": N_("kWh"),
    "bar": N_("bar"),
    "mm/s": N_("mm/s"),
    "m/min": N_("m/min"),
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

# Reason codes of stops and faults the platform itself gives (shopfloor.states, the simulator's
# faults and stops) and those of the example scenarios; a plant's own codes show as words.
REASON_NAMES = {
    # shopfloor.states: any machine's breakdowns
    "mechanical": N_("mechanical"),
    "bearing_failure": N_("bearing failure"),
    "overheat_trip": N_("overheat trip"),
    "electrical": N_("electrical"),
    "material_jam": N_("material jam"),
    # the simulator's own stops and events
    "breakdown": N_("breakdown"),
    "micro_stop": N_("micro stop"),
    "tool_change": N_("tool change"),
    "operator_stop": N_("operator stop"),
    "break": N_("break"),
    # the simulator's faults (shopfloor.messages.FaultKind)
    "bearing_wear": N_("bearing wear"),
    "overheating": N_("overheating"),
    "tool_wear": N_("tool wear"),
    "sensor_stuck": N_("sensor stuck"),
    "spike": N_("spike"),
    "dropout": N_("dropout"),
    "air_leak": N_("air leak"),
    "network_loss": N_("network loss"),
    "drift": N_("drift"),
    "correlation_break": N_("correlation break"),
    "slow_leak": N_("slow leak"),
    # the example scenarios' stops
    "mould_jam": N_("mould jam"),
    "heater_fault": N_("heater fault"),
    "robot_gripper": N_("robot gripper"),
    "tool_break": N_("tool break"),
    "chip_jam": N_("chip jam"),
    "program_error": N_("program error"),
    "coolant_low": N_("coolant low"),
    "chuck_fault": N_("chuck fault"),
    "film_break": N_("film break"),
    "label_jam": N_("label jam"),
    "weigher_fault": N_("weigher fault"),
    "product_bridge": N_("product bridge"),
    "jaw_fault": N_("jaw fault"),
    "carton_jam": N_("carton jam"),
    "glue_fault": N_("glue fault"),
    "breakfast": N_("breakfast"),
    "lunch": N_("lunch"),
    "fixture_change": N_("fixture change"),
    "jaw_change": N_("jaw change"),
    "colour_changeover": N_("colour changeover"),
    "film_change": N_("film change"),
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
    """A stop-reason or fault code in words, in the visitor's language: bearing_failure ->
    bearing failure; a code the table does not know in words as it is (hydraulics)."""
    known = REASON_NAMES.get(reason)
    return _(known) if known else reason.replace("_", " ").strip()


ANOMALY_PREFIX, SILENT_PREFIX, PENDING_SUFFIX = "anomaly_", "silent_", "_pending"


def event_text(name: str) -> str:
    """An event's name in words: a fault (bearing wear), a fault waiting for its machine to
    run, an anomaly the analysis found in a signal, or a signal that fell silent."""
    if name.startswith(ANOMALY_PREFIX):
        return _("anomaly: {signal}").format(signal=signal_name(name[len(ANOMALY_PREFIX) :]))
    if name.startswith(SILENT_PREFIX):
        return _("no values: {signal}").format(signal=signal_name(name[len(SILENT_PREFIX) :]))
    if name.endswith(PENDING_SUFFIX):
        fault = reason_text(name.removesuffix(PENDING_SUFFIX))
        return _("{fault}, waiting for the machine to run").format(fault=fault)
    return reason_text(name)


# The notes events carry, as the simulator and the analytics service write them (English, for
# machines and logs): read back to be told in the visitor's language.
_NOTE_REASON = re.compile(r"reason=(?P<reason>\S+)")
_NOTE_SIGNAL = re.compile(r"signal=(?P<signal>\S+)")
_NOTE_WAITS = re.compile(r"waits for the stop '(?P<reason>[^']*)' to end")
_NOTE_PEAK = re.compile(
    r"(?:(?P<signal>\S+): )?score (?P<score>[\d.]+) at (?P<time>\d\d:\d\d:\d\d)Z"
)
_NOTE_SILENT = re.compile(r"(?:(?P<signal>\S+): )?no value for (?P<minutes>\d+) min while running")


def note_text(note: str | None, start: datetime, plant: Plant) -> str:
    """An event's note in the visitor's language: why it stopped, the faulty signal, what a
    waiting fault waits for, an anomaly's peak score (its time, in UTC within a day after the
    event's `start`, on the site's clock) or a silence's length; another note as it is."""
    note = note or ""
    if found := _NOTE_REASON.fullmatch(note):
        return _("reason: {reason}").format(reason=reason_text(found["reason"]))
    if found := _NOTE_SIGNAL.fullmatch(note):
        return _("signal: {signal}").format(signal=signal_name(found["signal"]))
    if found := _NOTE_WAITS.fullmatch(note):
        held = found["reason"]  # a stop's reason, else the state it holds the machine in
        stop = state_text(held) if held in STATE_NAMES else reason_text(held)
        return _("waits for the stop to end: {stop}").format(stop=stop)
    if found := _NOTE_PEAK.fullmatch(note):
        begun = start.astimezone(UTC)
        peak = datetime.combine(begun.date(), time.fromisoformat(found["time"]), UTC)
        if peak < begun - timedelta(minutes=1):
            peak += timedelta(days=1)
        return _("score {score} at {time}").format(
            score=i18n.number_text(float(found["score"]), language(), 3),
            time=time_text(peak, plant),
        )
    if found := _NOTE_SILENT.fullmatch(note):
        return _("no value for {duration} while running").format(
            duration=age_text(60 * float(found["minutes"]))
        )
    return note


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
