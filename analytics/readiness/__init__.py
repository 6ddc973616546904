"""Lean 4.0 readiness assessment: a questionnaire combined with evidence from the plant's data.

`run_assessment(load_answers(path), load_indicators(path) or None)` scores an SME;
`ReadinessStore(path).save(assessment)` keeps a dated snapshot; `indicators` holds the formulas
that turn store data into the ten indicators, `live` measures them from a store, `demo` seeds
the three demo SMEs and `report` shapes a snapshot for the dashboard and its exports. See
docs/readiness.md.
"""
