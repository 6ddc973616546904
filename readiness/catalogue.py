"""The questionnaire versions the platform knows, by number."""

from __future__ import annotations

from readiness.questionnaire import Questionnaire
from readiness.questionnaire_v1 import QUESTIONNAIRE_V1

QUESTIONNAIRES = {q.version: q for q in (QUESTIONNAIRE_V1,)}
CURRENT = QUESTIONNAIRE_V1


class UnknownVersionError(KeyError):
    """An answers file or a saved assessment names a questionnaire version this code lacks."""


def questionnaire(version: int) -> Questionnaire:
    """The questionnaire of a version."""
    if version not in QUESTIONNAIRES:
        known = ", ".join(str(v) for v in sorted(QUESTIONNAIRES))
        raise UnknownVersionError(f"unknown questionnaire version {version} (known: {known})")
    return QUESTIONNAIRES[version]
