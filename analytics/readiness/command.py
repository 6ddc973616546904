"""The `shopfloor assess` command: plain typer functions that the CLI registers.

Evidence comes from an indicators file, or is measured from the platform's store (the store
options are those of the other commands; they cannot be imported from the CLI module, which
imports this one).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from analytics.readiness.answers import SmeAnswers, load_answers
from analytics.readiness.assessment import run_assessment
from analytics.readiness.evidence import Evidence
from analytics.readiness.indicator_file import load_indicators
from analytics.readiness.live import DEFAULT_WINDOW, live_evidence
from analytics.readiness.persistence import (
    DATABASE_ENV,
    DEFAULT_DATABASE,
    ReadinessStore,
    ReadinessStoreError,
)
from analytics.readiness.render import assessment_json, print_assessment, print_progress
from shopfloor.config import ConfigError
from shopfloor.plant import load_plant
from shopfloor.store import ENV_VARS, StoreError, StoreSettings, open_store

DatabaseOption = Annotated[
    Path,
    typer.Option(
        "--db",
        envvar=DATABASE_ENV,
        help="SQLite file of assessments and snapshots.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


StoreUrlOption = Annotated[
    str | None,
    typer.Option(
        "--store-url",
        help="Measure the evidence from the platform's store: sqlite:PATH or an InfluxDB URL "
        "http://host:8086 (with --plant).",
    ),
]
PlantOption = Annotated[
    Path | None,
    typer.Option("--plant", envvar="SHOPFLOOR_PLANT", help="The SME's plant file (YAML)."),
]
StoreDatabaseOption = Annotated[
    str,
    typer.Option(
        "--store-database", envvar=ENV_VARS["database"], help="InfluxDB 1.x database or 2.x bucket."
    ),
]
StoreTokenOption = Annotated[
    str | None,
    typer.Option("--store-token", envvar=ENV_VARS["token"], help="InfluxDB 2.x/3.x token."),
]
StoreOrgOption = Annotated[
    str | None,
    typer.Option("--store-org", envvar=ENV_VARS["org"], help="InfluxDB 2.x organisation."),
]
WindowOption = Annotated[
    float,
    typer.Option(
        "--window-days",
        min=0.01,
        help="Days of store data the indicators cover, ending at the newest reading "
        "(less when the data began later).",
    ),
]


def _live_evidence(
    answers: SmeAnswers, plant_file: Path, settings: StoreSettings, window: timedelta
) -> Evidence:
    plant = load_plant(plant_file)
    store = open_store(settings)
    try:
        return live_evidence(plant, store, answers.risk_zones, window=window)
    finally:
        store.close()


def assess(
    answers_file: Annotated[Path, typer.Argument(help="The SME's answers file (YAML).")],
    indicators_file: Annotated[
        Path | None,
        typer.Option(
            "--indicators", help="The ten measured indicators (YAML or JSON) over the window."
        ),
    ] = None,
    store_url: StoreUrlOption = None,
    plant_file: PlantOption = None,
    store_database: StoreDatabaseOption = "shopfloor",
    store_token: StoreTokenOption = None,
    store_org: StoreOrgOption = None,
    window_days: WindowOption = DEFAULT_WINDOW / timedelta(days=1),
    questionnaire_only: Annotated[
        bool,
        typer.Option(
            "--questionnaire-only",
            help="Score the answers alone: no dimension with indicators passes Basic (2).",
        ),
    ] = False,
    database: DatabaseOption = DEFAULT_DATABASE,
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Keep a dated snapshot in --db.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Lean 4.0 readiness: questionnaire and evidence per dimension, index, level, archetype,
    flags and ranked priorities with their recommendation and what-if gain."""
    sources = [indicators_file is not None, store_url is not None, questionnaire_only]
    if sum(sources) != 1:
        raise _fail("give one of --indicators FILE, --store-url URL or --questionnaire-only")
    if store_url is not None and plant_file is None:
        raise _fail("--store-url needs --plant PLANT: the plant whose data is measured")
    try:
        answers = load_answers(answers_file)
        evidence = None
        if indicators_file is not None:
            evidence = load_indicators(indicators_file)
        elif store_url is not None and plant_file is not None:
            settings = StoreSettings.model_validate(
                {
                    **StoreSettings.from_env().model_dump(exclude_none=True),
                    "url": store_url,
                    "database": store_database,
                    "token": store_token,
                    "org": store_org,
                }
            )
            evidence = _live_evidence(answers, plant_file, settings, timedelta(days=window_days))
    except (ConfigError, StoreError) as exc:
        raise _fail(str(exc)) from None
    assessment = run_assessment(answers, evidence)
    if save:
        try:
            with ReadinessStore(database) as store:
                store.save(assessment)
        except ReadinessStoreError as exc:
            raise _fail(str(exc)) from None
    if as_json:
        typer.echo(assessment_json(assessment))
    else:
        print_assessment(assessment)


def assess_history(
    sme: Annotated[str, typer.Argument(help="The SME's id, as in its answers file.")],
    database: DatabaseOption = DEFAULT_DATABASE,
    as_json: JsonOption = False,
) -> None:
    """An SME's readiness over time: R and Fd of every snapshot, and their change."""
    try:
        with ReadinessStore(database) as store:
            progress = store.progress(sme)
    except ReadinessStoreError as exc:
        raise _fail(str(exc)) from None
    if not progress:
        raise _fail(f"{database}: no assessment of {sme!r}")
    if as_json:
        typer.echo(json.dumps([asdict(p) for p in progress], indent=2, default=str))
    else:
        print_progress(sme, progress)
