"""The questionnaire model: dimensions, items, answer scales, and the versions the platform knows.

A questionnaire version fixes everything an answer means (items, scales, dimensions and their
weights), so an assessment saved under one version can always be read back and compared. A
change to any of them is a new version, never an edit of an old one.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopfloor import i18n
from shopfloor.i18n import N_, SOURCE_LANGUAGE

# The texts people read (level names, dimension names, items, their options) stay English in
# the data and in a saved assessment, marked for extraction; they are translated where they
# are shown, with `i18n.translations(lang).gettext` (or `translate` below).
LEVEL_NAMES = (
    N_("Not started"),
    N_("Beginner"),
    N_("Basic/connected"),
    N_("Visible"),
    N_("Transparent"),
    N_("Predictive/adaptive"),
)
MAX_SCORE = 5


def translate(message: str, *, lang: str = SOURCE_LANGUAGE) -> str:
    """A marked text (a questionnaire's name, item or anchor; a text a snapshot stores) in a
    language; a text that is no known message id is shown as it is, and "" stays "" (gettext
    would give the catalogue's header for it)."""
    return i18n.translations(lang).gettext(message) if message else message


def level_name(level: int, *, lang: str = SOURCE_LANGUAGE) -> str:
    """The name of a readiness level 0-5 in a language: Visible, Видимый."""
    return translate(LEVEL_NAMES[level], lang=lang)


class Scale(StrEnum):
    """How an item is answered; each maps its options onto 0-5."""

    ANCHORED = "A"  # the item's own statement per level, after its dimension's levels
    SHARE = "P"  # 0 %, <10 %, 10-30 %, 30-60 %, 60-90 %, >90 %
    FREQUENCY = "F"  # never, yearly, quarterly, monthly, weekly, daily or per shift


SCALE_NAMES = {  # for the answers file's error messages (the CLI's, English)
    Scale.ANCHORED: "an anchored level",
    Scale.SHARE: "a share",
    Scale.FREQUENCY: "a frequency",
}
Options = tuple[str, str, str, str, str, str]  # what levels 0-5 mean


@cache
def share_options(lang: str = SOURCE_LANGUAGE) -> Options:
    """The share scale's brackets 0-5 with the language's percentages: 10-30% or 10-30 %."""

    def percent(value: int) -> str:
        return i18n.percent_text(value / 100, lang, 0)

    def span(low: int, high: int) -> str:
        return f"{i18n.number_text(low, lang, 0)}-{percent(high)}"

    return (percent(0), f"< {percent(10)}", span(10, 30), span(30, 60), span(60, 90),
            f"> {percent(90)}")  # fmt: skip


SHARE_OPTIONS: Options = share_options()
FREQUENCY_OPTIONS: Options = (
    N_("never"), N_("yearly"), N_("quarterly"), N_("monthly"), N_("weekly"),
    N_("daily or per shift"),
)  # fmt: skip


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(_Frozen):
    """One question; an anchored item carries its own statement per level, since a
    dimension's generic levels often contradict the question (Q10's level 4 is "automatic")."""

    id: str = Field(pattern=r"^Q\d+$")
    dimension: str
    text: str
    scale: Scale
    anchors: Options | None = None  # anchored items only

    @model_validator(mode="after")
    def _anchored(self) -> Item:
        if (self.anchors is None) == (self.scale is Scale.ANCHORED):
            raise ValueError(f"{self.id}: anchors are given for anchored items, and only there")
        return self

    @property
    def options(self) -> Options:
        """What each level 0-5 means for this item: its anchors, or its scale's brackets."""
        if self.anchors is not None:
            return self.anchors
        return SHARE_OPTIONS if self.scale is Scale.SHARE else FREQUENCY_OPTIONS

    def option_text(self, level: int, *, lang: str = SOURCE_LANGUAGE) -> str:
        """What level 0-5 means for this item, in a language (a share with its percentages)."""
        if self.scale is Scale.SHARE:
            return share_options(lang)[level]
        return translate(self.options[level], lang=lang)


class Dimension(_Frozen):
    id: str = Field(pattern=r"^D\d+$")
    name: str
    weight: float = Field(gt=0, le=1)
    levels: Options  # descriptor of levels 0-5
    indicators: tuple[str, ...]  # measured indicators that give this dimension its evidence


class Questionnaire(_Frozen):
    """One version of the questionnaire, checked for consistency when it is defined."""

    version: int = Field(ge=1)
    dimensions: tuple[Dimension, ...]
    items: tuple[Item, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Questionnaire:
        if abs(sum(d.weight for d in self.dimensions) - 1) > 1e-9:
            raise ValueError("dimension weights must sum to 1")
        known = {d.id for d in self.dimensions}
        if len(known) != len(self.dimensions) or len({i.id for i in self.items}) != len(self.items):
            raise ValueError("dimension and item ids must be unique")
        for item in self.items:
            if item.dimension not in known:
                raise ValueError(f"{item.id}: unknown dimension {item.dimension}")
        if any(not self.items_of(d.id) for d in self.dimensions):
            raise ValueError("every dimension needs at least one item")
        return self

    def item(self, item_id: str) -> Item | None:
        return next((item for item in self.items if item.id == item_id), None)

    def items_of(self, dimension_id: str) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.dimension == dimension_id)

    @property
    def item_range(self) -> str:
        return f"{self.items[0].id}-{self.items[-1].id}"
