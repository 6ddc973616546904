"""`shopfloor kpi`: KPIs of exported files, computed offline without the platform running."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from launcher.cli.common import JsonOption, app, fail, read_plant
from shopfloor.config import ConfigError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from analytics.anomaly import DetectorSettings, Event, NormalEvent, NormalModel
    from analytics.energy import Tariff
    from analytics.kpi_files import ExportFormat, Reading, Series
    from analytics.oee import OeeReport

kpi_app = typer.Typer(
    help="Compute KPIs from exported CSV or Parquet files, without running the platform.",
    no_args_is_help=True,
)
app.add_typer(kpi_app, name="kpi")
T = TypeVar("T")


class SignalDetector(StrEnum):
    """`kpi anomalies`' streaming detector of each signal."""

    ZSCORE = "zscore"
    VIEWS = "views"


StateMapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--state-map",
        metavar="NAME=STATE",
        help="An export's name for a platform state, NAME=STATE, e.g. RUN=running "
        "(case-insensitive; repeat the option for each name).",
    ),
]
MappingOption = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help="YAML file of the export's own names: columns (the export's header: the "
        "platform's column) and states (the export's name: the platform's state).",
    ),
]
EncodingOption = Annotated[
    str | None,
    typer.Option(
        help="The CSV's encoding, e.g. cp1250 (default: UTF-8, or UTF-16 with a BOM; a file "
        "that is neither is read as cp1251, and the console says so)."
    ),
]


def _zone(timezone: str | None, **defaults: str | None) -> tuple[ZoneInfo, str]:
    """The zone of times without an offset, and where it came from, to say on the console.

    `defaults` are the zones of other options, by option name, in order of precedence.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    given = {"timezone": timezone, **defaults}
    source = next((option for option, name in given.items() if name), None)
    name = given[source] if source else "UTC"
    options = [f"--{option}" for option in given]
    options_text = " or ".join(
        [", ".join(options[:-1]), options[-1]] if len(options) > 1 else options
    )
    said = f"{name} (from --{source})" if source else f"UTC (no {options_text} given)"
    try:
        return ZoneInfo(name or "UTC"), said
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"--timezone: unknown time zone {name!r}") from None


def _export_format(
    zone: ZoneInfo, state_map: list[str] | None, mapping: Path | None, encoding: str | None
) -> ExportFormat:
    """How to read the export, from the options; a bad one is a one-line error."""
    import codecs

    from analytics.kpi_files import ExportFormat, ExportMapping
    from shopfloor.config import load_yaml_model
    from shopfloor.states import MachineState

    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise fail(f"--encoding: unknown encoding {encoding!r}") from None
    states: dict[str, MachineState] = {}
    for option in state_map or ():
        name, _, state = option.rpartition("=")
        try:
            states[name.strip().casefold()] = MachineState(state.strip().casefold())
        except ValueError:
            known = ", ".join(MachineState)
            raise fail(f"--state-map: {option!r} is not NAME=STATE (one of {known})") from None
        if not name.strip():
            raise fail(f"--state-map: {option!r} names no state of the export: NAME=STATE")
    fmt = ExportFormat(zone, states, encoding=encoding)
    try:
        return fmt.mapped(load_yaml_model(mapping, ExportMapping)) if mapping else fmt
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _read(path: Path, read: Callable[[], tuple[T, Reading]], zone: str) -> T:
    """What `read` read, saying how; or exit with every problem of the file, one a line."""
    from analytics.kpi_files import KpiFileError

    try:
        value, reading = read()
    except KpiFileError as exc:
        _say_encoding(path, exc.guessed_encoding)
        for line in exc.lines[:-1]:
            typer.echo(f"error: {line}", err=True)
        raise fail(exc.lines[-1]) from None
    _say_encoding(path, reading.guessed_encoding)
    if reading.naive_times:
        typer.echo(f"note: times without a UTC offset are read in {zone}", err=True)
    return value


def _say_encoding(path: Path, guessed: str | None) -> None:
    if guessed:
        typer.echo(
            f"note: {path}: not UTF-8, read as {guessed} (Excel's CSV in Cyrillic locales); "
            "give --encoding if it is another",
            err=True,
        )


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _instant(option: str, text: str | None, zone: Any) -> float | None:
    """Seconds since the epoch from a time option; a time without offset is in `zone`."""
    from analytics.kpi_files import parse_time

    if text is None:
        return None
    try:
        value = parse_time(text)
    except ValueError as exc:
        raise fail(f"{option}: {exc}") from None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()


@kpi_app.command("oee")
def kpi_oee(
    events_file: Annotated[
        Path,
        typer.Argument(
            help="Events (.csv or .parquet) with columns time, state, and the "
            "cumulative total_count and bad_count; optional stop_reason and product (the "
            "product loaded from that event on). Each state holds until the next event."
        ),
    ],
    ideal_cycle_time: Annotated[
        list[str],
        typer.Option(
            "--ideal-cycle-time",
            help="Seconds per part at ideal speed, for every product; PRODUCT=SECONDS for one "
            "product of the product column (repeat the option for each).",
        ),
    ],
    start: Annotated[
        str | None,
        typer.Option(help="Window start, as times in the file (default: the first event)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            help="Window end, as times in the file; the last state holds until it (default: "
            "the last event)."
        ),
    ] = None,
    planned_time: Annotated[
        str | None,
        typer.Option(
            help="Planned busy time, e.g. 7h or 420m (default: the --plant's shift calendar "
            "less planned stops, else the window less planned stops). Given outright, it "
            "cannot be split by product: no breakdown by product then."
        ),
    ] = None,
    plant_file: Annotated[
        Path | None,
        typer.Option("--plant", help="Plant file whose shifts and time zone to use."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Zone of times without an offset (default: the plant's, else UTC)."),
    ] = None,
    state_map: StateMapOption = None,
    mapping: MappingOption = None,
    encoding: EncodingOption = None,
    as_json: JsonOption = False,
) -> None:
    """OEE per ISO 22400-2 (availability, performance, quality; TEEP, NEE, MTBF, MTTR, losses)."""
    import json

    from analytics.kpi_files import read_state_events
    from analytics.oee import oee_timeline, shift_calendar
    from simulators.scenario import parse_duration

    plant = read_plant(plant_file) if plant_file is not None else None
    zone, zone_said = _zone(timezone, plant=plant.site.timezone if plant else None)
    try:
        planned_busy = parse_duration(planned_time) if planned_time is not None else None
    except ValueError as exc:
        raise fail(f"--planned-time: {exc}") from None
    window_start = _instant("--start", start, zone)
    window_end = _instant("--end", end, zone)
    fmt = _export_format(zone, state_map, mapping, encoding)
    events = _read(events_file, lambda: read_state_events(events_file, fmt), zone_said)
    if not events:
        raise fail(f"{events_file}: no events")
    window_start = events[0].time if window_start is None else window_start
    window_end = events[-1].time if window_end is None else window_end
    if window_end <= window_start:
        raise fail("the window is empty: --end must come after --start (or the first event)")
    planned = None
    if plant is not None and plant.shifts and planned_busy is None:
        planned = shift_calendar(plant.shifts, plant.site.timezone, window_start, window_end)
    products = list(dict.fromkeys(e.product for e in events))
    ideal = _ideal_cycle_times(ideal_cycle_time, products)
    report = oee_timeline(events, window_start, window_end, ideal, planned, planned_busy)
    by_product = {
        product: oee_timeline(events, window_start, window_end, ideal, planned, product=product)
        for product in products
        if product and planned_busy is None
    }
    if as_json:
        detail = {p: r.to_dict() for p, r in by_product.items()}
        output = {**report.to_dict(), "timezone": str(zone), "by_product": detail}
        typer.echo(json.dumps(output, indent=2))
        return
    _print_oee(report, events_file)
    if by_product:
        _print_products(by_product)


def _ideal_cycle_times(options: list[str], products: list[str]) -> dict[str, float]:
    """Each product's ideal cycle time from `SECONDS` (every product) and `PRODUCT=SECONDS`."""
    every: float | None = None
    given: dict[str, float] = {}
    for option in options:
        product, _, text = option.rpartition("=")
        try:
            seconds = float(text)
        except ValueError:
            raise fail(
                f"--ideal-cycle-time: {option!r} is not SECONDS or PRODUCT=SECONDS"
            ) from None
        if not seconds > 0:
            raise fail("--ideal-cycle-time: must be above zero")
        if product:
            given[product] = seconds
        else:
            every = seconds
    missing = [p for p in products if p not in given and every is None]
    if missing:
        raise fail(f"--ideal-cycle-time: none for product {missing[0] or '(none)'!r}")
    return {p: given.get(p, every or 0.0) for p in products}


def _print_products(reports: dict[str, OeeReport]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="By product")
    for column in ("product", "time loaded", "A", "P", "Q", "OEE", "parts (good / bad)"):
        table.add_column(column, justify="left" if column == "product" else "right")
    for product, r in reports.items():
        kpis = [r.availability, r.performance, r.quality, r.oee]
        table.add_row(
            product,
            f"{r.planned_operation_s / 3600:.2f} h",
            *("-" if v is None else f"{v:.1%}" for v in kpis),
            f"{r.produced} ({r.good} / {r.bad})",
        )
    Console().print(table)


def _print_oee(report: OeeReport, source: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def hours(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds / 3600:.2f} h"

    window = report.to_dict()
    table = Table(title=f"OEE of {source.name}, {window['start']} to {window['end']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in ("availability", "performance", "quality", "oee", "nee", "teep"):
        table.add_row(name.upper() if len(name) <= 4 else name, share(getattr(report, name)))
    table.add_section()
    for name, seconds in (
        ("planned operation time", report.planned_operation_s),
        ("planned busy time", report.planned_busy_s),
        ("actual production time", report.actual_production_s),
        ("MTBF", report.mtbf_s),
        ("MTTR", report.mttr_s),
    ):
        table.add_row(name, hours(seconds))
    table.add_row("parts (good / bad)", f"{report.produced} ({report.good} / {report.bad})")
    table.add_row("failures", str(report.failures))
    table.add_section()
    for loss, seconds in report.losses.six_big_losses.items():
        table.add_row(loss.replace("_", " "), hours(seconds))
    for reason, seconds in report.losses.availability_by_reason.items():
        table.add_row(f"stop reason: {reason}", hours(seconds))
    console = Console()
    console.print(table)
    for problem in report.problems:
        typer.echo(f"problem: {problem}", err=True)


@kpi_app.command("energy")
def kpi_energy(
    power_file: Annotated[
        Path,
        typer.Argument(
            help="Power samples (.csv or .parquet) with columns time and power (kW), each held "
            "until the next sample; optional state (platform state names or --state-map ones; "
            "empty: unchanged), energy (a cumulative kWh meter) and good_count (cumulative good "
            "parts)."
        ),
    ],
    max_gap: Annotated[
        float | None,
        typer.Option(
            help="Longest silence between power samples, in seconds, that is still integrated; "
            "longer ones are time without data (default: 300)."
        ),
    ] = None,
    tariff_file: Annotated[
        Path | None,
        typer.Option(
            "--tariff",
            help="Time-of-use tariff (YAML): timezone, base_price_per_kwh, bands (name, days, "
            'start and end in quotes, "22:00", price_per_kwh), optional demand_charge_per_kw.',
        ),
    ] = None,
    grid_factor: Annotated[
        float | None,
        typer.Option(help="Grid emissions, kg CO2e per kWh (default: 0.251, the EU-27 in 2022)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="Zone of times without an offset (default: the tariff's, else the plant's, "
            "else UTC)."
        ),
    ] = None,
    plant_file: Annotated[
        Path | None, typer.Option("--plant", help="Plant file whose time zone to use.")
    ] = None,
    state_map: StateMapOption = None,
    mapping: MappingOption = None,
    encoding: EncodingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Energy: kWh, per state, per good part, 15-minute peak demand, cost and CO2e."""
    import json

    from analytics.energy import DEFAULT_MAX_GAP_S, EU_GRID_FACTOR_KG_PER_KWH, Tariff
    from analytics.kpi_files import read_series
    from shopfloor.config import load_yaml_model

    max_gap = DEFAULT_MAX_GAP_S if max_gap is None else max_gap
    if not max_gap > 0:
        raise fail("--max-gap: must be above zero")
    grid_factor = EU_GRID_FACTOR_KG_PER_KWH if grid_factor is None else grid_factor
    if not grid_factor >= 0:
        raise fail("--grid-factor: cannot be negative")
    try:
        tariff = load_yaml_model(tariff_file, Tariff) if tariff_file is not None else None
    except ConfigError as exc:
        raise fail(str(exc)) from None
    plant = read_plant(plant_file) if plant_file is not None else None
    zone, zone_said = _zone(
        timezone,
        tariff=tariff.timezone if tariff else None,
        plant=plant.site.timezone if plant else None,
    )
    fmt = _export_format(zone, state_map, mapping, encoding)
    series = _read(
        power_file,
        lambda: read_series(
            power_file, fmt, ("power",), ("energy",), counts=("good_count",), states=True
        ),
        zone_said,
    )
    if not len(series.time):
        raise fail(f"{power_file}: no rows")
    report = {**_energy_report(series, max_gap, tariff, grid_factor), "timezone": str(zone)}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_energy(report, power_file)


def _energy_report(
    series: Series, max_gap: float, tariff: Tariff | None, grid_factor: float
) -> dict[str, Any]:
    """Every energy KPI the file allows, JSON-ready; what it lacks the data for is null."""
    from analytics.energy import (
        co2_kg,
        energy_by_state,
        energy_cost,
        energy_from_meter,
        energy_from_power,
        energy_per_good_part,
        peak_demand,
    )
    from analytics.kernels import counter_increase

    t, power = series.time, series.numbers["power"]
    total = energy_from_power(t, power, max_gap)
    report: dict[str, Any] = {
        "start": _iso(t[0]),
        "end": _iso(t[-1]),
        "kwh": total.kwh,
        "uncovered_s": total.uncovered_s,
        "meter": None,
        "states": None,
        "good_parts": None,
        "peak_demand": None,
        "cost": None,
        "co2_kg": co2_kg(total.kwh, grid_factor),
        "grid_factor_kg_per_kwh": grid_factor,
    }
    if "energy" in series.numbers:
        meter = energy_from_meter(series.numbers["energy"])
        report["meter"] = {
            "kwh": meter.kwh,
            "resets": meter.resets,
            "rollovers": meter.rollovers,
            "drops": meter.drops,
        }
    if series.states is not None:
        by_state = energy_by_state(series.state_intervals(), t, power, max_gap)
        report["states"] = {
            "kwh": {str(state): kwh for state, kwh in by_state.by_state.items()},
            "kwh_by_group": {str(group): kwh for group, kwh in by_state.by_group.items()},
            "idle_share": by_state.idle_share,
            "uncovered_s": by_state.uncovered_s,
        }
    if "good_count" in series.numbers:
        good = int(counter_increase(series.numbers["good_count"]))
        per_part = energy_per_good_part(total.kwh, good)
        report["good_parts"] = {
            "count": good,
            "kwh_per_part": per_part.kwh,
            "problem": per_part.reason,
        }
    peak = peak_demand(t, power, max_gap_s=max_gap)
    if peak is not None:
        start = _iso(peak.start.timestamp())
        report["peak_demand"] = {"kw": peak.kw, "start": start, "coverage": peak.coverage}
    if tariff is not None:
        cost = energy_cost(t, power, tariff, max_gap)
        report["cost"] = {
            "kwh_by_band": cost.kwh_by_band,
            "by_band": cost.cost_by_band,
            "energy": cost.energy_cost,
            "demand_charge": cost.demand_charge,
            "total": cost.total,
        }
    return report


def _print_energy(report: dict[str, Any], source: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    def kwh(value: float) -> str:
        return f"{value:.3f} kWh"

    table = Table(title=f"Energy of {source.name}, {report['start']} to {report['end']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("energy from power", kwh(report["kwh"]))
    table.add_row("time without data", f"{report['uncovered_s'] / 3600:.2f} h")
    if meter := report["meter"]:
        counts = f"{meter['resets']} resets, {meter['rollovers']} rollovers"
        table.add_row("energy from meter", f"{kwh(meter['kwh'])} ({counts})")
        if meter["drops"]:
            table.add_row("meter drops skipped", str(meter["drops"]))
    if states := report["states"]:
        table.add_section()
        for state, value in states["kwh"].items():
            table.add_row(f"state: {state}", kwh(value))
        for group, value in states["kwh_by_group"].items():
            table.add_row(f"all {group}", kwh(value))
        share = states["idle_share"]
        table.add_row("idle share", "-" if share is None else f"{share:.1%}")
    if parts := report["good_parts"]:
        per_part = parts["kwh_per_part"]
        text = parts["problem"] if per_part is None else f"{per_part:.4f} kWh"
        table.add_row(f"per good part ({parts['count']} parts)", text)
    table.add_section()
    if peak := report["peak_demand"]:
        table.add_row("15-min peak demand", f"{peak['kw']:.2f} kW from {peak['start']}")
    if cost := report["cost"]:
        for band, value in cost["by_band"].items():
            table.add_row(f"cost: {band}", f"{value:.2f} ({kwh(cost['kwh_by_band'][band])})")
        table.add_row("demand charge", f"{cost['demand_charge']:.2f}")
        table.add_row("total cost", f"{cost['total']:.2f}")
    factor = report["grid_factor_kg_per_kwh"]
    table.add_row("CO2e", f"{report['co2_kg']:.2f} kg ({factor:g} kg/kWh)")
    Console().print(table)


@kpi_app.command("anomalies")
def kpi_anomalies(
    signals_file: Annotated[
        Path,
        typer.Argument(
            help="Samples (.csv or .parquet): a time column and one numeric column per signal "
            "(state, stop_reason and product columns are left out); an empty cell is a "
            "missing sample."
        ),
    ],
    detector: Annotated[
        SignalDetector,
        typer.Option(
            help="Each signal's streaming detector. zscore: its distance from a slowly "
            "forgotten mean in spreads, events at --threshold. views: three views of it voting "
            "(the relative entropy of its values and of its changes, a shift of its mean), an "
            "event where one reaches its own level; 66.8 on NAB's standard profile with "
            "settings fixed before scoring, against the z-score's single view of the level."
        ),
    ] = SignalDetector.ZSCORE,
    threshold: Annotated[
        float,
        typer.Option(
            help="|z| at which a signal's event opens (zscore); with several signals, their "
            "joint Hotelling T² gets the level with the same false-alarm rate."
        ),
    ] = 5.0,
    warmup: Annotated[
        int | None,
        typer.Option(help="Samples that only train the detector (default: the detector's)."),
    ] = None,
    max_gap: Annotated[
        float | None,
        typer.Option(
            help="Seconds without samples after which the detector starts afresh, as after a "
            "restart or re-tooling (default: the detector's)."
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Zone of times without an offset (default: the plant's, else UTC)."),
    ] = None,
    plant_file: Annotated[
        Path | None, typer.Option("--plant", help="Plant file whose time zone to use.")
    ] = None,
    normal_until: Annotated[
        str | None,
        typer.Option(
            help="Learn what is normal from the rows before this time (as times in the file), "
            "then score the rest against it: one multivariate detector whose level is set "
            "for --false-alarms-per-week and whose events name the signals that drove them."
        ),
    ] = None,
    false_alarms_per_week: Annotated[
        float,
        typer.Option(help="With --normal-until: the false-alarm rate the level is set for."),
    ] = 1.0,
    mapping: MappingOption = None,
    encoding: EncodingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Anomalies: when each signal, or several together, left their usual range (causal)."""
    import json

    from analytics.kpi_files import read_series

    if not 0 < threshold <= 30:
        raise fail("--threshold: must be above 0 and at most 30")
    if not false_alarms_per_week > 0:
        raise fail("--false-alarms-per-week: must be above zero")
    if normal_until is not None:
        chosen = None if detector is SignalDetector.ZSCORE else detector
        for option, value in (("--warmup", warmup), ("--max-gap", max_gap), ("--detector", chosen)):
            if value is not None:
                raise fail(f"{option}: for the streaming detectors, not with --normal-until")
    plant = read_plant(plant_file) if plant_file is not None else None
    zone, zone_said = _zone(timezone, plant=plant.site.timezone if plant else None)
    until = _instant("--normal-until", normal_until, zone)
    fmt = _export_format(zone, None, mapping, encoding)
    series = _read(signals_file, lambda: read_series(signals_file, fmt, None), zone_said)
    if not len(series.time):
        raise fail(f"{signals_file}: no rows")
    t = series.time
    if until is None:
        report = _streaming_report(t, series.numbers, detector, threshold, warmup, max_gap)
    else:
        report = _normal_report(t, series.numbers, until, false_alarms_per_week)
    report = {"start": _iso(t[0]), "end": _iso(t[-1]), "timezone": str(zone), **report}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_anomalies(report, signals_file)


def _streaming_report(
    t: Any,
    numbers: dict[str, Any],
    detector: SignalDetector,
    threshold: float,
    warmup: int | None,
    max_gap: float | None,
) -> dict[str, Any]:
    """Each signal's events (z-score or the three views), and its T² events with several."""
    from dataclasses import replace

    import numpy as np

    from analytics.anomaly import DetectorSettings, events, hotelling, t2_level

    settings = DetectorSettings()
    if warmup is not None:
        if warmup < 1:
            raise fail("--warmup: must be at least 1")
        settings = replace(settings, warmup=warmup)
    if max_gap is not None:
        if not max_gap > 0:
            raise fail("--max-gap: must be above zero")
        settings = replace(settings, max_gap=max_gap)
    names = list(numbers)
    signals = np.vstack(list(numbers.values()))
    scores, level, samples = _signal_scores(t, signals, detector, settings, warmup, threshold)
    found = {name: events(t, scores[row], name, level) for row, name in enumerate(names)}
    joint_level = t2_level(threshold, len(names)) if len(names) > 1 else None
    joint = None
    if joint_level is not None:
        joint_scores = hotelling(t, np.ascontiguousarray(signals.T), settings)
        joint = events(t, joint_scores, "T2", joint_level)
    return {
        "samples": len(t),
        "detector": detector.value,
        "warmup": samples,
        "threshold_z": threshold if detector is SignalDetector.ZSCORE else None,
        "threshold_t2": joint_level,
        "signals": {name: [_event_dict(event) for event in found[name]] for name in names},
        "multivariate": None if joint is None else [_event_dict(event) for event in joint],
    }


def _signal_scores(
    t: Any,
    signals: Any,
    detector: SignalDetector,
    settings: DetectorSettings,
    warmup: int | None,
    threshold: float,
) -> tuple[Any, float, int]:
    """Each signal's score (signals x samples), the score at which its events open, and the
    warm-up samples: |z|, or the views at or above their own level (one is an event)."""
    import numpy as np

    from analytics.anomaly import ViewSettings, votes, zscore

    if detector is SignalDetector.ZSCORE:
        return np.abs(zscore(t, signals, settings)), threshold, settings.warmup
    views = ViewSettings.learning(warmup) if warmup is not None else ViewSettings()
    views = views.with_max_gap(settings.max_gap)
    return np.vstack([votes(t, row, views) for row in signals]), 1.0, views.level.learning


def _normal_report(
    t: Any, numbers: dict[str, Any], until: float, false_alarms_per_week: float
) -> dict[str, Any]:
    """Events of a model learnt on the rows before `until` (signals constant there left out),
    in the rows from `until` on: under "multivariate", each with its signals' contributions."""
    import numpy as np

    from analytics.anomaly import (
        NormalSettings,
        learn_normal,
        normal_events,
        score_normal,
        varying,
    )

    learn = t < until
    if not learn.any() or learn.all():
        where = "before the first row" if not learn.any() else "after the last row"
        raise fail(f"--normal-until: {_iso(until)} is {where}: nothing to learn from or to score")
    values = np.column_stack(list(numbers.values()))
    keep = varying(values[learn])
    names = [name for name, kept in zip(numbers, keep, strict=True) if kept]
    if not names:
        raise fail(f"--normal-until: every signal is constant before {_iso(until)}")
    period = float(np.median(np.diff(t[learn]))) if learn.sum() > 1 else 1.0
    settings = NormalSettings(
        false_alarms_per_week=false_alarms_per_week, sample_period_s=max(period, 1e-6)
    )
    try:
        model = learn_normal(
            values[learn][:, keep], names, settings, period=(t[learn][0], t[learn][-1])
        )
    except ValueError as exc:
        raise fail(f"--normal-until: {exc}") from None
    scored_t = t[~learn]
    found = normal_events(model, score_normal(model, values[~learn][:, keep]), scored_t)
    return {
        "samples": len(t),
        "normal": {
            "until": _iso(until),
            "rows": int(learn.sum()),
            "signals": names,
            "left_out": [name for name in numbers if name not in names],
            "components": model.components,
            "levels": _levels(model),
            "false_alarms_per_week": false_alarms_per_week,
        },
        "signals": {},
        "multivariate": [_event_dict(event) for event in found],
    }


def _levels(model: NormalModel) -> dict[str, Any]:
    """Every alarm level the model learnt: the indices' of the rows and of their averages, and
    each signal's longest stillness."""
    indices = ("t2", "spe", "t2_smoothed", "spe_smoothed")
    period = model.settings.sample_period_s
    return {
        **dict(zip(indices, (*model.levels, *model.drift_levels), strict=True)),
        "still_s": {
            name: rows * period for name, rows in zip(model.signals, model.stuck_rows, strict=True)
        },
    }


def _event_dict(event: Event | NormalEvent) -> dict[str, Any]:
    from analytics.anomaly import NormalEvent

    found: dict[str, Any] = {
        "start": _iso(event.start),
        "end": _iso(event.end),
        "peak": _iso(event.peak),
        "peak_score": event.peak_score,
    }
    if isinstance(event, NormalEvent):
        found["contributions"] = event.contributions
    return found


def _print_anomalies(report: dict[str, Any], source: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Anomalies in {source.name}, {report['start']} to {report['end']}")
    if (normal := report.get("normal")) is not None:
        _normal_table(table, normal, report)
        Console().print(table)
        return
    views = report["threshold_z"] is None
    levels = "one view at its level" if views else f"|z| >= {report['threshold_z']:g}"
    if report["threshold_t2"] is not None:
        levels += f", T² >= {report['threshold_t2']:.1f}"
    table.caption = f"{report['samples']} samples, warm-up {report['warmup']}; events at {levels}"
    for column in ("signal", "start", "end", "peak score"):
        table.add_column(column, justify="right" if column == "peak score" else "left")
    rows = dict(report["signals"])
    if report["multivariate"] is not None:
        rows["all signals (T²)"] = report["multivariate"]
    for name, found in rows.items():
        if not found:
            table.add_row(name, "no events", "", "")
        for event in found:
            peak = (
                f"{event['peak_score']:.0f} of 3 views" if views else f"{event['peak_score']:.1f}"
            )
            table.add_row(name, event["start"], event["end"], peak)
    Console().print(table)


def _normal_table(table: Any, normal: dict[str, Any], report: dict[str, Any]) -> None:
    """The normal model's events, each with the signals that drove it most, one a line."""
    rate = normal["false_alarms_per_week"]
    table.caption = (
        f"{report['samples']} samples; normal learnt from the {normal['rows']} before "
        f"{normal['until']}; level set for {rate:g} false alarm{'' if rate == 1 else 's'} a week"
    )
    if normal["left_out"]:
        table.caption += f"; constant there, left out: {', '.join(normal['left_out'])}"
    for column in ("start", "end", "peak score", "top contributors"):
        table.add_column(column, justify="right" if column == "peak score" else "left")
    if not report["multivariate"]:
        table.add_row("no events", "", "", "")
    for event in report["multivariate"]:
        top = [(name, share) for name, share in event["contributions"].items() if share >= 0.05]
        shares = "\n".join(f"{name} {share:.0%}" for name, share in top[:3])
        table.add_row(event["start"], event["end"], f"{event['peak_score']:.1f}", shares)
