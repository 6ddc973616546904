"""Lean 4.0 readiness assessment: a questionnaire combined with evidence from the plant's data.

`run_assessment(load_answers(path), load_indicators(path) or None)` scores an SME;
`ReadinessStore(path).save(assessment)` keeps a dated snapshot; `indicators` holds the formulas
that turn store data into the ten indicators, `live` measures them from a store (and rescores
an SME after the analytics service's cycles, when the start-up layer wires it so) and `report`
shapes a snapshot for the dashboard and its exports. See docs/readiness.md.
"""

from datetime import timedelta
from pathlib import Path

# Here, not in the modules that use them, so that the CLI can declare its options without
# importing the assessment.
DATABASE_ENV = "SHOPFLOOR_READINESS_DB"
DEFAULT_DATABASE = Path(".shopfloor/readiness.db")
DEFAULT_WINDOW = timedelta(days=28)  # of plant data the indicators cover
