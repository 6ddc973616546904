"""The `analytics` command (the KPI service, with the readiness rescoring wired in) and the
Lean 4.0 readiness commands `assess` and `assess-history`."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import (
    DEFAULT_PLANT,
    DEFAULT_STORE,
    DatabaseOption,
    JsonOption,
    OrgOption,
    PlantOption,
    StoreUrlOption,
    TokenOption,
    VerboseOption,
    app,
    connect_store,
    exit_now,
    fail,
    read_plant,
    run_until_interrupted,
    settle_heap,
    setup_logging,
    store_settings,
)
from readiness import DATABASE_ENV, DEFAULT_DATABASE, DEFAULT_WINDOW
from shopfloor.i18n import LANGUAGES, SOURCE_LANGUAGE

analytics_app = typer.Typer(
    help="Recompute KPIs, energy and anomalies into the store; `learn` fits a machine's normal "
    "model on a period declared normal."
)
app.add_typer(analytics_app, name="analytics")


@analytics_app.callback(invoke_without_command=True)
def analytics(
    context: typer.Context,
    plant_file: PlantOption = DEFAULT_PLANT,
    store_url: StoreUrlOption = DEFAULT_STORE,
    store_database: DatabaseOption = "shopfloor",
    store_token: TokenOption = None,
    store_org: OrgOption = None,
    window: Annotated[
        int, typer.Option(min=1, help="Minutes of history the rolling KPIs cover.")
    ] = 60,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between recomputations.")] = 10,
    readiness_db: Annotated[
        Path | None,
        typer.Option(
            envvar=DATABASE_ENV,
            help="Add a Lean 4.0 readiness snapshot of the plant's SME to this database daily, "
            "with evidence from the store.",
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Recompute KPIs, energy and anomalies of every machine into the store, continuously.

    Rolling KPIs (kpi.*), shift KPIs (kpi.shift.*, report.shift), anomaly scores (anomaly.*)
    and anomaly events linked to the stop that followed them; the clock is the data's.
    """
    if context.invoked_subcommand is not None:
        return
    from analytics.service import AnalyticsService, AnalyticsSettings
    from readiness.live import rescorer

    setup_logging(verbose)
    plant = read_plant(plant_file)
    store = connect_store(store_settings(store_url, store_database, store_token, store_org))
    settings = AnalyticsSettings(window=timedelta(minutes=window), interval_s=interval)
    hooks = [rescorer(plant, store, readiness_db)] if readiness_db else []
    service = AnalyticsService(plant, store, settings, after_cycle=hooks)
    settle_heap()
    try:
        run_until_interrupted(service.run)
    finally:
        store.close()
    exit_now()


@analytics_app.command("learn")
def learn(
    machine_id: Annotated[str, typer.Argument(metavar="MACHINE", help="The machine's id.")],
    start: Annotated[
        str,
        typer.Option(
            "--from",
            help="Start of the normal period: ISO 8601 or "
            "dd.mm.yyyy hh:mm, in the site's time zone without an offset.",
        ),
    ],
    end: Annotated[str, typer.Option("--to", help="Its end, written the same way.")],
    plant_file: PlantOption = DEFAULT_PLANT,
    store_url: StoreUrlOption = DEFAULT_STORE,
    store_database: DatabaseOption = "shopfloor",
    store_token: TokenOption = None,
    store_org: OrgOption = None,
) -> None:
    """Learn a machine's normal behaviour from its process signals while it ran between --from
    and --to, freeze it and keep it in the store: the analytics service then scores the
    machine against it, with alarm levels calibrated on that period, until it is learnt again.
    """
    from zoneinfo import ZoneInfo

    from analytics.learning import LearnError, learn_machine
    from shopfloor.learning import model_point
    from shopfloor.store import data_clock

    plant = read_plant(plant_file)
    found = [(path, m) for path, m in plant.machines() if m.id == machine_id]
    if not found:
        known = ", ".join(m.id for _, m in plant.machines())
        raise fail(f"MACHINE: {machine_id!r} is not a machine of {plant_file} ({known})")
    path, machine = found[0]
    zone = ZoneInfo(plant.site.timezone)
    period = _moment("--from", start, zone), _moment("--to", end, zone)
    store = connect_store(store_settings(store_url, store_database, store_token, store_org))
    try:
        doc = learn_machine(store, path, machine, *period)
        now = data_clock(plant, store) or doc.end
        store.write([model_point(path, max(now, doc.end), doc)])
    except LearnError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    rest = f" and {doc.rest_rows} at rest" if doc.rest_model else ""
    typer.echo(
        f"learnt normal of {machine.name} from {doc.rows} running rows{rest}, "
        f"{doc.start:%Y-%m-%d %H:%M:%S} to {doc.end:%Y-%m-%d %H:%M:%S} UTC: "
        f"{', '.join(doc.signals)}"
    )
    shortest = doc.shift_not_covered(plant)
    if shortest is not None:
        typer.echo(
            f"note: learnt on less than a shift ({shortest.total_seconds() / 3600:.1f} h): a swing "
            "of the process slower than the period may go beyond what it held and raise alarms; "
            "if it does, learn again on a whole shift"
        )


def _moment(option: str, text: str, zone: tzinfo) -> datetime:
    """A time option as an aware time; a time without offset is in `zone`."""
    from analytics.kpi_files import parse_time

    try:
        value = parse_time(text)
    except ValueError as exc:
        raise fail(f"{option}: {exc}") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


ReadinessDbOption = Annotated[
    Path,
    typer.Option("--db", envvar=DATABASE_ENV, help="SQLite file of assessments and snapshots."),
]


@app.command()
def assess(
    answers_file: Annotated[Path, typer.Argument(help="The SME's answers file (YAML).")],
    indicators_file: Annotated[
        Path | None,
        typer.Option(
            "--indicators", help="The ten measured indicators (YAML or JSON) over the window."
        ),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            help="Measure the evidence from the platform's store (with --plant): sqlite:PATH "
            "or an InfluxDB URL.",
        ),
    ] = None,
    plant_file: Annotated[
        Path | None,
        typer.Option("--plant", envvar="SHOPFLOOR_PLANT", help="The SME's plant file (YAML)."),
    ] = None,
    store_database: DatabaseOption = "shopfloor",
    store_token: TokenOption = None,
    store_org: OrgOption = None,
    window_days: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Days of store data the indicators cover, ending at the newest reading "
            "(less when the data began later).",
        ),
    ] = DEFAULT_WINDOW / timedelta(days=1),
    questionnaire_only: Annotated[
        bool,
        typer.Option(help="Score the answers alone: no dimension with indicators passes Basic."),
    ] = False,
    database: ReadinessDbOption = DEFAULT_DATABASE,
    save: Annotated[bool, typer.Option(help="Keep a dated snapshot in --db.")] = True,
    as_json: JsonOption = False,
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="Also write the SME's report as a PDF to this file."),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help=f"Language of the --pdf report: {', '.join(LANGUAGES)} (default: the plant's "
            f"site.language with --plant, else {SOURCE_LANGUAGE}).",
        ),
    ] = None,
) -> None:
    """Lean 4.0 readiness: questionnaire and evidence per dimension, index, level, archetype,
    flags and ranked priorities with their recommendation and what-if gain; with --pdf, the
    SME's report in the language of --lang."""
    from readiness.command import CommandError
    from readiness.command import assess as run

    store = None
    if store_url is not None:
        store = store_settings(store_url, store_database, store_token, store_org)
    try:
        run(answers_file, indicators_file, store, plant_file, timedelta(days=window_days),
            questionnaire_only, database, save, as_json, pdf, lang)  # fmt: skip
    except CommandError as exc:
        raise fail(str(exc)) from None


@app.command("assess-history")
def assess_history(
    sme: Annotated[str, typer.Argument(help="The SME's id, as in its answers file.")],
    database: ReadinessDbOption = DEFAULT_DATABASE,
    as_json: JsonOption = False,
) -> None:
    """An SME's readiness over time: R and Fd of every snapshot, and their change."""
    from readiness.command import CommandError
    from readiness.command import assess_history as run

    try:
        run(sme, database, as_json)
    except CommandError as exc:
        raise fail(str(exc)) from None
