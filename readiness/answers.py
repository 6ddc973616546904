"""An SME's answers to the questionnaire, read from YAML with one-line located errors.

```yaml
questionnaire: 1            # the version answered
sme: polimer                # the SME's id (its tenant id on the platform)
name: Polimer Moulding      # optional
answered_on: 2026-11-02     # optional
targets: {default: 3, D5: 4}            # optional; target level per dimension (default 3)
risk_zones: [dryer, metrology-room]     # optional; zones whose environment must be monitored
answers:
  Q1: 2                     # every scale takes 0-5
  Q2: monthly               # a frequency item also takes its word
  Q6: 45%                   # a share item also takes a percentage
  Q23: na                   # not applicable: left out of the dimension's mean
  Q24: dont_know            # don't know: scores 0 and is flagged
```

Every item of the version must be answered (a value, `dont_know` or `na`): an item left out
would silently change a dimension's mean. A dimension whose items are all `na` has no
questionnaire score and is refused. The file's errors are the CLI's and stay English.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from readiness.catalogue import UnknownVersionError, questionnaire
from readiness.questionnaire import MAX_SCORE, SCALE_NAMES, Item, Questionnaire, Scale
from shopfloor.config import LocatedValueError, load_yaml_model
from shopfloor.i18n import N_
from shopfloor.plant import Identifier


class Special(StrEnum):
    DONT_KNOW = "dont_know"
    NOT_APPLICABLE = "na"


Response = int | Special
# How the special answers read on a form or in a report (a file gives the codes above): English,
# marked for the catalogues, translated where they are shown.
SPECIAL_NAMES = {
    Special.DONT_KNOW: N_("don't know"),
    Special.NOT_APPLICABLE: N_("not applicable"),
}

_SPECIAL_WORDS = {
    "dont_know": Special.DONT_KNOW,
    "don't_know": Special.DONT_KNOW,
    "na": Special.NOT_APPLICABLE,
    "n/a": Special.NOT_APPLICABLE,
    "not_applicable": Special.NOT_APPLICABLE,
}
FREQUENCY_WORDS = {
    "never": 0,
    "yearly": 1,
    "quarterly": 2,
    "monthly": 3,
    "weekly": 4,
    "daily": 5,
    "per_shift": 5,
}
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
# Upper bounds of the share brackets 1-4 (<10 %, 10-30 %, 30-60 %, 60-90 %); a bound belongs
# to the bracket above it except 90 %, which the scale's ">90 %" leaves in bracket 4.
_SHARE_BOUNDS = ((10.0, False), (30.0, False), (60.0, False), (90.0, True))


def share_bracket(percent: float) -> int:
    """The P-scale level of a percentage: 0 %, <10, 10-30, 30-60, 60-90, >90 %."""
    if percent == 0:
        return 0
    for level, (bound, inclusive) in enumerate(_SHARE_BOUNDS, 1):
        if percent < bound or (inclusive and percent == bound):
            return level
    return MAX_SCORE


def _scale_hint(item: Item) -> str:
    extra = {
        Scale.ANCHORED: "",
        Scale.SHARE: " or a percentage such as 45%",
        Scale.FREQUENCY: " or never/yearly/quarterly/monthly/weekly/daily/per_shift",
    }[item.scale]
    return f"answer 0-{MAX_SCORE}{extra}, dont_know or na"


def parse_response(item: Item, value: object) -> Response:
    """One answer as a level 0-5 or a special answer; ValueError says what the item takes."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not an answer: {_scale_hint(item)}")
    if isinstance(value, int | float):
        return _level(item, value)
    word = "_".join(value.strip().lower().split())
    if word in _SPECIAL_WORDS:
        return _SPECIAL_WORDS[word]
    percent = _PERCENT.match(value.strip())
    if word in FREQUENCY_WORDS or percent:
        given = Scale.FREQUENCY if word in FREQUENCY_WORDS else Scale.SHARE
        if item.scale is not given:
            raise ValueError(
                f"{value!r} is {SCALE_NAMES[given]} but {item.id} is answered as "
                f"{SCALE_NAMES[item.scale]}: {_scale_hint(item)}"
            )
        if percent:
            return _share(item, float(percent.group(1)))
        return FREQUENCY_WORDS[word]
    raise ValueError(f"{value!r} is not an answer: {_scale_hint(item)}")


def _level(item: Item, value: float) -> int:
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{value!r} is not a whole level: {_scale_hint(item)}")
    if not 0 <= value <= MAX_SCORE:
        raise ValueError(f"{value!r} is out of range: {_scale_hint(item)}")
    return int(value)


def _share(item: Item, percent: float) -> int:
    if percent > 100:
        raise ValueError(f"{percent:g}% is out of range: {_scale_hint(item)}")
    return share_bracket(percent)


Target = Annotated[float, Field(ge=0, le=MAX_SCORE)]


class AnswersFile(BaseModel):
    """The YAML file as written; `responses` holds the answers checked against the version."""

    model_config = ConfigDict(extra="forbid")

    questionnaire: int
    sme: Identifier
    name: str = ""
    answered_on: date | None = None
    targets: dict[str, Target] = {}
    risk_zones: list[Identifier] = []
    answers: dict[str, object]
    _responses: dict[str, Response] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> AnswersFile:
        try:
            version = questionnaire(self.questionnaire)
        except UnknownVersionError as exc:
            raise LocatedValueError(("questionnaire",), str(exc.args[0])) from None
        self._responses = _checked_responses(version, self.answers)
        for key in self.targets:
            if key != "default" and key not in {d.id for d in version.dimensions}:
                raise LocatedValueError(
                    ("targets", key), "unknown dimension (use default or D1-D7)"
                )
        return self

    @property
    def responses(self) -> dict[str, Response]:
        return dict(self._responses)


def _checked_responses(
    version: Questionnaire, answers: Mapping[str, object]
) -> dict[str, Response]:
    responses: dict[str, Response] = {}
    for item_id, value in answers.items():
        item = version.item(item_id)
        if item is None:
            raise LocatedValueError(
                ("answers", item_id),
                f"unknown item (questionnaire {version.version} has {version.item_range})",
            )
        try:
            responses[item_id] = parse_response(item, value)
        except ValueError as exc:
            raise LocatedValueError(("answers", item_id), str(exc)) from None
    missing = [item.id for item in version.items if item.id not in responses]
    if missing:
        raise LocatedValueError(
            ("answers",),
            f"{', '.join(missing)} not answered (every item takes 0-5, dont_know or na)",
        )
    for dimension in version.dimensions:
        items = version.items_of(dimension.id)
        if all(responses[i.id] is Special.NOT_APPLICABLE for i in items):
            raise LocatedValueError(
                ("answers", items[0].id),
                f"every item of {dimension.id} is na: at least one must apply",
            )
    return responses


@dataclass(frozen=True)
class SmeAnswers:
    """What the scoring needs from an SME's answers."""

    sme: str
    questionnaire: Questionnaire
    responses: Mapping[str, Response]
    targets: Mapping[str, float] = field(default_factory=dict)
    risk_zones: tuple[str, ...] = ()
    name: str = ""
    answered_on: date | None = None


def load_answers(path: str | Path) -> SmeAnswers:
    """Read an answers file; ConfigError names file, line and item."""
    loaded = load_yaml_model(path, AnswersFile)
    return SmeAnswers(
        sme=loaded.sme,
        questionnaire=questionnaire(loaded.questionnaire),
        responses=loaded.responses,
        targets=dict(loaded.targets),
        risk_zones=tuple(loaded.risk_zones),
        name=loaded.name,
        answered_on=loaded.answered_on,
    )
