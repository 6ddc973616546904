"""Assessments and dated snapshots per SME in SQLite, so that progress can be shown over time.

An assessment is one set of answers (questionnaire version, answers, targets); it is stored
once and shared by every snapshot scored from it. A snapshot is one dated scoring: the window,
the raw indicators and the whole result (Q, E, S, F per dimension, R, level, archetype, flags,
priorities), as `assessment_to_dict` gives it, so a snapshot reads back exactly as it was shown
even after the scoring code changes. Progress is measured against the SME's first snapshot,
its baseline (the DMA's T0). A fall of a measured indicator below one of its gates between
two snapshots is an alert (`gate_alerts`): the daily re-scoring makes it visible on the page.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from readiness.answers import SmeAnswers
from readiness.assessment import (
    Assessment,
    assessment_to_dict,
    responses_from_dict,
    responses_to_dict,
)
from readiness.catalogue import questionnaire
from readiness.evidence import Evidence
from readiness.indicator_file import indicators_from_dict
from readiness.scoring import INDICATOR_GATES, Requirement
from shopfloor.sqlite import open_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS assessments (
    id INTEGER PRIMARY KEY,
    sme TEXT NOT NULL,
    questionnaire_version INTEGER NOT NULL,
    answers TEXT NOT NULL,
    digest TEXT NOT NULL,
    answered_on TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (sme, digest)
);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessments (id),
    sme TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT,
    questionnaire_only INTEGER NOT NULL,
    overall_index REAL NOT NULL,
    level INTEGER NOT NULL,
    archetype TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_by_sme ON snapshots (sme, taken_at);
"""


class ReadinessStoreError(Exception):
    """The database cannot be opened or is not a readiness database of a known version."""


@dataclass(frozen=True)
class Snapshot:
    id: int
    assessment_id: int
    sme: str
    taken_at: datetime
    questionnaire_version: int
    questionnaire_only: bool
    index: float
    level: int
    archetype: str
    final: dict[str, float]  # Fd by dimension
    result: dict[str, Any]  # the assessment as assessment_to_dict gave it

    def evidence(self) -> Evidence | None:
        """The evidence it was scored with (to score changed answers against the same data);
        None in questionnaire-only mode."""
        if self.questionnaire_only:
            return None
        window = self.result["window"]
        values = {name: entry["value"] for name, entry in self.result["indicators"].items()}
        return Evidence(
            indicators_from_dict(values),
            _moment(window["start"]),
            _moment(window["end"]),
            source=f"the snapshot of {self.taken_at:%Y-%m-%d %H:%M} UTC",
        )


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Progress:
    """One snapshot against the SME's baseline (first snapshot)."""

    taken_at: datetime
    index: float
    index_change: float
    final: dict[str, float]
    final_change: dict[str, float]


@dataclass(frozen=True)
class GateAlert:
    """An indicator that met a gate's requirement in one snapshot and misses it in the next."""

    fell_at: datetime  # when the later snapshot was taken
    dimension: str
    gate: str
    cap: int  # what the gate holds the dimension to
    indicator: str
    value: object  # the indicator then, as the snapshot holds it (None: not measured)
    requirement: str  # what lifts the gate again, e.g. "CC >= 0.50"
    threshold: float


GateKey = tuple[str, str, str]  # dimension, gate, indicator


def _failing(result: Mapping[str, Any]) -> dict[GateKey, int]:
    """The indicators missing a gate's requirement, with the gate's cap, as they were scored."""
    return {
        (d["id"], c["gate"], indicator): c["cap"]
        for d in result["dimensions"]
        for c in d["caps"]
        for indicator in c["failing"]
    }


def _requirement(gate: str, indicator: str) -> Requirement:
    requirements = (r for g in INDICATOR_GATES if g.id == gate for r in g.requirements)
    return next(r for r in requirements if r.indicator == indicator)


def fallen_gates(before: Snapshot, after: Snapshot) -> list[GateAlert]:
    """The indicators that met a gate in `before` and miss it in `after`. None when `after`
    measured nothing (questionnaire-only): no data is not a fall; and a questionnaire-only
    `before` met no gate."""
    if after.questionnaire_only:
        return []
    was, now = _failing(before.result), _failing(after.result)
    values = after.result["indicators"]
    alerts = []
    for (dimension, gate, indicator), cap in now.items():
        if (dimension, gate, indicator) in was:
            continue
        requirement = _requirement(gate, indicator)
        value = values[indicator]["value"]
        alerts.append(
            GateAlert(after.taken_at, dimension, gate, cap, indicator, value,
                      requirement.text, requirement.threshold)
        )  # fmt: skip
    return alerts


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class ReadinessStore:
    """A SQLite file of assessments and snapshots (writers wait up to 10 s for each other)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._db = open_sqlite(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise ReadinessStoreError(f"{self.path}: cannot open the database: {exc}") from None
        try:
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise ReadinessStoreError(f"{self.path}: cannot open the database: {exc}") from None
        except ReadinessStoreError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise ReadinessStoreError(f"{self.path}: unknown database version {version}")
        with self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReadinessStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def save(self, assessment: Assessment) -> Snapshot:
        """Store the assessment's answers (once) and a dated snapshot of its result."""
        result = assessment_to_dict(assessment)
        evidence = assessment.evidence
        with self._db:
            assessment_id = self._assessment_id(assessment)
            cursor = self._db.execute(
                "INSERT INTO snapshots (assessment_id, sme, taken_at, window_start, window_end,"
                " questionnaire_only, overall_index, level, archetype, result)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    assessment_id,
                    assessment.sme,
                    _utc_text(assessment.taken_at),
                    _utc_text(evidence.window_start)
                    if evidence and evidence.window_start
                    else None,
                    _utc_text(evidence.window_end) if evidence and evidence.window_end else None,
                    assessment.scorecard.questionnaire_only,
                    assessment.scorecard.index,
                    assessment.scorecard.level,
                    assessment.scorecard.archetype.name,
                    json.dumps(result),
                ),
            )
        return self._snapshot(cast(int, cursor.lastrowid))

    def _assessment_id(self, assessment: Assessment) -> int:
        answers = assessment.answers
        content = json.dumps(
            {
                "questionnaire": answers.questionnaire.version,
                "responses": responses_to_dict(answers.responses),
                "targets": dict(answers.targets),
                "risk_zones": list(answers.risk_zones),
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(content.encode()).hexdigest()
        row = self._db.execute(
            "SELECT id FROM assessments WHERE sme = ? AND digest = ?", (answers.sme, digest)
        ).fetchone()
        if row:
            return int(row[0])
        cursor = self._db.execute(
            "INSERT INTO assessments (sme, questionnaire_version, answers, digest, answered_on,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                answers.sme,
                answers.questionnaire.version,
                content,
                digest,
                answers.answered_on.isoformat() if answers.answered_on else None,
                _utc_text(assessment.taken_at),
            ),
        )
        return cast(int, cursor.lastrowid)

    _SELECT = (
        "SELECT s.id, s.assessment_id, s.sme, s.taken_at, a.questionnaire_version,"
        " s.questionnaire_only, s.overall_index, s.level, s.archetype, s.result"
        " FROM snapshots s JOIN assessments a ON a.id = s.assessment_id"
    )

    def _snapshot(self, snapshot_id: int) -> Snapshot:
        row = self._db.execute(f"{self._SELECT} WHERE s.id = ?", (snapshot_id,)).fetchone()
        return _snapshot_from_row(row)

    def snapshots(self, sme: str) -> list[Snapshot]:
        """The SME's snapshots, oldest first."""
        rows = self._db.execute(
            f"{self._SELECT} WHERE s.sme = ? ORDER BY s.taken_at, s.id", (sme,)
        ).fetchall()
        return [_snapshot_from_row(row) for row in rows]

    def smes(self) -> list[str]:
        return [
            row[0] for row in self._db.execute("SELECT DISTINCT sme FROM snapshots ORDER BY sme")
        ]

    def answers(self, snapshot: Snapshot) -> SmeAnswers:
        """The answers the snapshot was scored from (to score them again or change them)."""
        content, answered_on = self._db.execute(
            "SELECT answers, answered_on FROM assessments WHERE id = ?", (snapshot.assessment_id,)
        ).fetchone()
        stored = json.loads(content)
        return SmeAnswers(
            sme=snapshot.sme,
            questionnaire=questionnaire(stored["questionnaire"]),
            responses=responses_from_dict(stored["responses"]),
            targets=stored["targets"],
            risk_zones=tuple(stored["risk_zones"]),
            name=snapshot.result.get("name", ""),
            answered_on=date.fromisoformat(answered_on) if answered_on else None,
        )

    def gate_alerts(self, sme: str, unresolved: bool = False) -> list[GateAlert]:
        """Every fall below a gate between consecutive snapshots, oldest first. `unresolved`
        keeps the last fall of each indicator that still misses that gate in the latest
        measured snapshot: an alert stays until the data lifts the gate, not only for the day
        it fell."""
        snapshots = self.snapshots(sme)
        alerts = [a for pair in pairwise(snapshots) for a in fallen_gates(*pair)]
        if not unresolved:
            return alerts
        measured = [s for s in snapshots if not s.questionnaire_only]
        still = _failing(measured[-1].result) if measured else {}
        last = {(a.dimension, a.gate, a.indicator): a for a in alerts}
        return [a for key, a in last.items() if key in still]

    def progress(self, sme: str) -> list[Progress]:
        """Every snapshot's R and Fd with their change since the baseline."""
        snapshots = self.snapshots(sme)
        if not snapshots:
            return []
        baseline = snapshots[0]
        return [
            Progress(
                taken_at=s.taken_at,
                index=s.index,
                index_change=s.index - baseline.index,
                final=s.final,
                final_change={d: f - baseline.final.get(d, 0.0) for d, f in s.final.items()},
            )
            for s in snapshots
        ]


def _snapshot_from_row(row: tuple[Any, ...]) -> Snapshot:
    result = json.loads(row[9])
    return Snapshot(
        id=row[0],
        assessment_id=row[1],
        sme=row[2],
        taken_at=datetime.fromisoformat(row[3]),
        questionnaire_version=row[4],
        questionnaire_only=bool(row[5]),
        index=row[6],
        level=row[7],
        archetype=row[8],
        final={d["id"]: d["final"] for d in result["dimensions"]},
        result=result,
    )
