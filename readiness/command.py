"""What `shopfloor assess` and `shopfloor assess-history` do; the CLI declares their options
and imports this module only when one of them runs.

Evidence comes from an indicators file, or is measured from the platform's store. The SME's PDF
report is written in the language asked for, else the plant's, else English; the table and
JSON printed stay English.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import typer

from readiness.answers import SmeAnswers, load_answers
from readiness.assessment import Assessment, assessment_to_dict, run_assessment
from readiness.evidence import Evidence
from readiness.indicator_file import load_indicators
from readiness.live import live_evidence
from readiness.persistence import ReadinessStore, ReadinessStoreError
from readiness.render import assessment_json, print_assessment, print_progress
from shopfloor.config import ConfigError
from shopfloor.i18n import SOURCE_LANGUAGE, check_language
from shopfloor.plant import Plant, load_plant
from shopfloor.store import StoreError, StoreSettings, open_store


class CommandError(Exception):
    """What `shopfloor assess` reports in one line before exiting with status 2."""


def _live_evidence(
    answers: SmeAnswers, plant: Plant, settings: StoreSettings, window: timedelta
) -> Evidence:
    store = open_store(settings)
    try:
        return live_evidence(plant, store, answers.risk_zones, window=window)
    finally:
        store.close()


def assess(
    answers_file: Path,
    indicators_file: Path | None,
    store: StoreSettings | None,
    plant_file: Path | None,
    window: timedelta,
    questionnaire_only: bool,
    database: Path,
    save: bool,
    as_json: bool,
    pdf: Path | None = None,
    lang: str | None = None,
) -> None:
    """Score an SME from its answers and one source of evidence; print a table or JSON, and
    write its PDF report to `pdf` when given."""
    if lang is not None:
        try:
            check_language(lang)
        except ValueError as exc:
            raise CommandError(f"--lang: {exc}") from None
    sources = [indicators_file is not None, store is not None, questionnaire_only]
    if sum(sources) != 1:
        raise CommandError("give one of --indicators FILE, --store-url URL or --questionnaire-only")
    if store is not None and plant_file is None:
        raise CommandError("--store-url needs --plant PLANT: the plant whose data is measured")
    try:
        answers = load_answers(answers_file)
        # the plant when its data is measured, or when it names the report's language
        plant = None
        if plant_file is not None and (store is not None or (pdf is not None and lang is None)):
            plant = load_plant(plant_file)
        evidence = None
        if indicators_file is not None:
            evidence = load_indicators(indicators_file)
        elif store is not None and plant is not None:
            evidence = _live_evidence(answers, plant, store, window)
    except (ConfigError, StoreError) as exc:
        raise CommandError(str(exc)) from None
    assessment = run_assessment(answers, evidence)
    if save:
        try:
            with ReadinessStore(database) as saved:
                saved.save(assessment)
        except ReadinessStoreError as exc:
            raise CommandError(str(exc)) from None
    if as_json:
        typer.echo(assessment_json(assessment))
    else:
        print_assessment(assessment)
    if pdf is not None:
        plant_language = plant.site.language if plant is not None else None
        _write_pdf(assessment, pdf, lang or plant_language or SOURCE_LANGUAGE)


def _write_pdf(assessment: Assessment, path: Path, lang: str) -> None:
    """The SME's report as the dashboard offers it, in the language `lang`."""
    try:
        from readiness.pdf import report_pdf
    except ImportError as exc:  # fpdf2 comes with the dashboard's extra
        raise CommandError(
            f"--pdf needs the PDF library ({exc.name}): pip install 'shopfloor[dashboard]'"
        ) from None
    try:
        path.write_bytes(report_pdf(assessment_to_dict(assessment), lang=lang))
    except OSError as exc:
        raise CommandError(f"--pdf: cannot write {path}: {exc.strerror}") from None


def assess_history(sme: str, database: Path, as_json: bool) -> None:
    """An SME's readiness over time: R and Fd of every snapshot, and their change."""
    try:
        with ReadinessStore(database) as store:
            progress = store.progress(sme)
    except ReadinessStoreError as exc:
        raise CommandError(str(exc)) from None
    if not progress:
        raise CommandError(f"{database}: no assessment of {sme!r}")
    if as_json:
        typer.echo(json.dumps([asdict(p) for p in progress], indent=2, default=str))
    else:
        print_progress(sme, progress)
