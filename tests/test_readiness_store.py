"""Readiness assessments and dated snapshots in SQLite: round trip and progress over time."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from readiness.answers import SmeAnswers, load_answers
from readiness.assessment import Assessment, assessment_to_dict, run_assessment
from readiness.evidence import Evidence
from readiness.indicator_file import load_indicators
from readiness.persistence import GateAlert, ReadinessStore, ReadinessStoreError
from readiness.report import alert_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "readiness"
T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)


@pytest.fixture
def sme_b() -> SmeAnswers:
    return load_answers(EXAMPLES / "sme-b.yaml")


@pytest.fixture
def evidence_b() -> Evidence:
    return load_indicators(EXAMPLES / "sme-b-indicators.yaml")


def at(days: int, answers: SmeAnswers, evidence: Evidence | None) -> Assessment:
    return run_assessment(answers, evidence, T0 + timedelta(days=days))


def test_a_snapshot_reads_back_as_it_was_saved(
    tmp_path: Path, sme_b: SmeAnswers, evidence_b: Evidence
) -> None:
    assessment = at(0, sme_b, evidence_b)
    with ReadinessStore(tmp_path / "r.db") as store:
        saved = store.save(assessment)
    with ReadinessStore(tmp_path / "r.db") as store:
        (loaded,) = store.snapshots("sme-b")
    assert loaded == saved
    assert loaded.taken_at == T0
    assert (loaded.sme, loaded.questionnaire_version, loaded.questionnaire_only) == (
        "sme-b",
        1,
        False,
    )
    assert loaded.index == pytest.approx(2.1, abs=1e-9)
    assert (loaded.level, loaded.archetype) == (1, "Lean-led")
    assert loaded.final == pytest.approx(
        {"D1": 1.75, "D2": 3.0, "D3": 1.9, "D4": 2.0, "D5": 2.0, "D6": 0.4, "D7": 2.75}, abs=1e-9
    )
    assert loaded.result == assessment_to_dict(assessment)
    assert loaded.result["answers"]["Q23"] == "na"
    assert loaded.result["window"] == {
        "start": "2026-10-05T00:00:00+00:00",
        "end": "2026-11-02T00:00:00+00:00",
    }
    assert loaded.result["indicators"]["ART"]["value"]["events"] == 3


def test_snapshots_over_time_show_progress_since_the_baseline(
    tmp_path: Path, sme_b: SmeAnswers, evidence_b: Evidence
) -> None:
    better = replace(evidence_b, indicators=evidence_b.indicators.with_value("EC", 0.6))
    with ReadinessStore(tmp_path / "r.db") as store:
        store.save(at(28, sme_b, better))  # saved out of order: read back by date
        store.save(at(0, sme_b, None))
        store.save(at(14, sme_b, evidence_b))
        store.save(at(3, load_answers(EXAMPLES / "sme-a.yaml"), None))
        snapshots = store.snapshots("sme-b")
        progress = store.progress("sme-b")
        assert store.smes() == ["sme-a", "sme-b"]
    assert [s.taken_at for s in snapshots] == [T0, T0 + timedelta(days=14), T0 + timedelta(days=28)]
    assert [s.questionnaire_only for s in snapshots] == [True, False, False]
    assert len({s.assessment_id for s in snapshots}) == 1  # same answers: one assessment
    assert [p.index_change for p in progress] == pytest.approx(
        [0.0, 2.1 - 1.9875, 2.19 - 1.9875], abs=1e-9
    )
    assert progress[2].final["D6"] == pytest.approx(1.3, abs=1e-9)  # EC 0.6 lifts G4
    assert progress[2].final_change["D6"] == pytest.approx(0.3, abs=1e-9)


def test_an_indicator_falling_below_its_gate_is_an_alert_until_the_data_lifts_it(
    tmp_path: Path, sme_b: SmeAnswers, evidence_b: Evidence
) -> None:
    """SME-B's EC and RC meet G4 and G3 on day 7 and fall on day 14; EC recovers on day 21.
    CC, DC, OV and DU miss their gates throughout: no alert. Questionnaire-only snapshots
    measure nothing: no gate passed before the first, and the last is no fall."""
    good = evidence_b.indicators.with_value("EC", 0.6).with_value("RC", 0.7)
    ec_back = evidence_b.indicators.with_value("EC", 0.6)
    with ReadinessStore(tmp_path / "r.db") as store:
        for day, indicators in ((0, None), (7, good), (14, evidence_b.indicators), (21, ec_back)):
            evidence = None if indicators is None else replace(evidence_b, indicators=indicators)
            store.save(at(day, sme_b, evidence))
        falls = store.gate_alerts("sme-b")
        open_before_the_questionnaire = store.gate_alerts("sme-b", unresolved=True)
        store.save(at(28, sme_b, None))
        assert store.gate_alerts("sme-b") == falls
        unresolved = store.gate_alerts("sme-b", unresolved=True)
    day_14 = T0 + timedelta(days=14)
    assert falls == [
        GateAlert(day_14, "D5", "G3", 2, "RC", 55 / 96, "RC >= 0.60", 0.6),
        GateAlert(day_14, "D6", "G4", 2, "EC", 0.0, "EC >= 0.50", 0.5),
    ]
    assert unresolved == open_before_the_questionnaire == falls[:1]  # EC recovered on day 21
    assert alert_text(falls[1]) == (
        "2026-11-16: EC (energy metering coverage) fell below gate G4: 0%, needs EC >= 0.50;"
        " D6 is capped at 2"
    )


def test_changed_answers_make_a_new_assessment(tmp_path: Path, sme_b: SmeAnswers) -> None:
    changed = replace(sme_b, responses={**sme_b.responses, "Q1": 4})
    with ReadinessStore(tmp_path / "r.db") as store:
        first = store.save(at(0, sme_b, None))
        again = store.save(at(1, sme_b, None))
        second = store.save(at(2, changed, None))
    assert first.assessment_id == again.assessment_id != second.assessment_id
    rows = sqlite3.connect(tmp_path / "r.db").execute("SELECT count(*) FROM assessments").fetchone()
    assert rows == (2,)


def test_an_unknown_sme_has_no_progress(tmp_path: Path) -> None:
    with ReadinessStore(tmp_path / "r.db") as store:
        assert store.snapshots("nobody") == []
        assert store.progress("nobody") == []


def test_a_database_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ReadinessStoreError, match="unknown database version 99"):
        ReadinessStore(path)


def test_a_path_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    path.write_text("not a database\n" * 100)
    with pytest.raises(ReadinessStoreError, match="cannot open the database"):
        ReadinessStore(path)
