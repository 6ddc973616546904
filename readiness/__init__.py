"""Lean 4.0 readiness assessment: a questionnaire combined with evidence from the plant's data.

`run_assessment(load_answers(path), load_indicators(path) or None)` scores an SME;
`ReadinessStore(path).save(assessment)` keeps a dated snapshot; `indicators` holds the formulas
that turn store data into the ten indicators, `live` measures them from a store (and rescores
an SME after the analytics service's cycles, when the start-up layer wires it so) and `report`
shapes a snapshot for the dashboard and its exports. See docs/readiness.md.

Public modules: `answers`, `indicator_file`, `assessment`, `evidence`, `indicators`, `scoring`,
`questionnaire`, `persistence`, `live`, `report` and `command` (what `shopfloor assess` does;
its options are declared in launcher/cli/analytics.py). Imports the `shopfloor` contract and
analytics' OEE core and history (`analytics.oee`, `analytics.history`), never Numba. See
README.md in this folder.
"""

from datetime import timedelta
from pathlib import Path

__all__ = [
    "DATABASE_ENV",
    "DEFAULT_DATABASE",
    "DEFAULT_WINDOW",
    "answers",
    "assessment",
    "command",
    "evidence",
    "indicator_file",
    "indicators",
    "live",
    "persistence",
    "questionnaire",
    "report",
    "scoring",
]

# Here, not in the modules that use them, so that the CLI can declare its options without
# importing the assessment.
DATABASE_ENV = "SHOPFLOOR_READINESS_DB"
DEFAULT_DATABASE = Path(".shopfloor/readiness.db")
DEFAULT_WINDOW = timedelta(days=28)  # of plant data the indicators cover
