"""The `shopfloor assess` command: plain typer functions that the CLI registers."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from analytics.readiness.answers import load_answers
from analytics.readiness.assessment import run_assessment
from analytics.readiness.indicator_file import load_indicators
from analytics.readiness.persistence import ReadinessStore, ReadinessStoreError
from analytics.readiness.render import assessment_json, print_assessment, print_progress
from shopfloor.config import ConfigError

DEFAULT_DATABASE = Path(".shopfloor/readiness.db")
DatabaseOption = Annotated[
    Path,
    typer.Option(
        "--db",
        envvar="SHOPFLOOR_READINESS_DB",
        help="SQLite file of assessments and snapshots.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def assess(
    answers_file: Annotated[Path, typer.Argument(help="The SME's answers file (YAML).")],
    indicators_file: Annotated[
        Path | None,
        typer.Option(
            "--indicators", help="The ten measured indicators (YAML or JSON) over the window."
        ),
    ] = None,
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
    if (indicators_file is None) == (not questionnaire_only):
        raise _fail("give either --indicators FILE or --questionnaire-only")
    try:
        answers = load_answers(answers_file)
        evidence = load_indicators(indicators_file) if indicators_file else None
    except ConfigError as exc:
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
