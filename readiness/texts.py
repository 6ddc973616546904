"""Texts for people that scoring builds (why a gate holds, what a claim flag found), kept as
their English message id and its values rather than as finished sentences.

A snapshot stores the assessment as it was scored and is read back months later, by a reader
who may prefer Russian or Serbian: a finished English sentence with "0.50" in it could only be
shown in English. A `Text` keeps the msgid and its values (codes, numbers, other texts), so the
report translates the msgid and formats the numbers in the reader's language when it shows it;
`str()` of a text is its English, as the CLI and the JSON output give it.

Stored form (`to_dict`, JSON-ready): a text is `{"msgid": ..., "values": {...}}`, or
`{"formula": ..., "values": {...}}` for a formula of codes and numbers that reads the same in
every language but for its numbers ("CC >= 0.50"); a value is a string (a code, shown as it is),
`{"number": x, "digits": d}` (d null: the shortest form, up to three decimals; `"signed": true`
writes the sign of a positive number too), a text, or `{"all": [...]}` (values joined by the
language's "and").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from babel.lists import format_list
from babel.numbers import format_decimal

from shopfloor import i18n
from shopfloor.i18n import SOURCE_LANGUAGE


@dataclass(frozen=True)
class Number:
    """A number, formatted in the reader's language when shown."""

    value: float
    digits: int | None = None  # None: as short as it goes (0.6, 30, 4.5), at most 3 decimals
    signed: bool = False  # "+1.50" for a positive difference

    def text(self, lang: str = SOURCE_LANGUAGE) -> str:
        """The number in the language's way (CLDR): 0.50 or 0,50; never "-0"."""
        if self.digits is None:
            pattern = "#,##0.###"
        else:
            pattern = "#,##0" + ("." + "0" * self.digits if self.digits > 0 else "")
        if self.signed:
            pattern = f"+{pattern};-{pattern}"
        value = self.value if self.digits is None else round(self.value, self.digits)
        return format_decimal(value + 0.0, format=pattern, locale=i18n.babel_locale(lang))


@dataclass(frozen=True)
class All:
    """Values joined by the language's "and": "A and B", "A и B"."""

    items: tuple[Value, ...]


@dataclass(frozen=True)
class Text:
    """A message id (marked with N_ where it is written) and its named values; a formula
    (`translated` False) is not translated, only its values are formatted."""

    msgid: str
    values: Mapping[str, Value] = field(default_factory=dict)
    translated: bool = True

    def __str__(self) -> str:
        return self.render(SOURCE_LANGUAGE)

    def render(self, lang: str = SOURCE_LANGUAGE) -> str:
        """The text in a language: its msgid translated, its values formatted there."""
        template = i18n.translations(lang).gettext(self.msgid) if self.translated else self.msgid
        if not self.values:
            return template
        return template.format(**{k: value_text(v, lang) for k, v in self.values.items()})

    def to_dict(self) -> dict[str, object]:
        key = "msgid" if self.translated else "formula"
        return {key: self.msgid, "values": {k: _value_dict(v) for k, v in self.values.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Text:
        """The inverse of `to_dict`; ValueError for anything else."""
        values = {k: _value_from(v) for k, v in dict(data.get("values") or {}).items()}
        if isinstance(data.get("msgid"), str):
            return cls(data["msgid"], values)
        if isinstance(data.get("formula"), str):
            return cls(data["formula"], values, translated=False)
        raise ValueError(f"not a stored text: {data!r}")


Value = str | Number | Text | All


def formula(template: str, **values: Value) -> Text:
    """Codes and numbers only ("Q {questionnaire} - E {evidence} = {gap}"): no translation."""
    return Text(template, values, translated=False)


def value_text(value: Value, lang: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Number):
        return value.text(lang)
    if isinstance(value, All):
        parts = [value_text(v, lang) for v in value.items]
        return format_list(parts, locale=i18n.babel_locale(lang)) if parts else ""
    return value.render(lang)


def _value_dict(value: Value) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, Number):
        data: dict[str, object] = {"number": value.value, "digits": value.digits}
        return data | ({"signed": True} if value.signed else {})
    if isinstance(value, All):
        return {"all": [_value_dict(v) for v in value.items]}
    return value.to_dict()


def _value_from(data: object) -> Value:
    if isinstance(data, str):
        return data
    if isinstance(data, Mapping):
        if "number" in data:
            return Number(float(data["number"]), data.get("digits"), bool(data.get("signed")))
        if "all" in data:
            return All(tuple(_value_from(v) for v in data["all"]))
        return Text.from_dict(data)
    raise ValueError(f"not a stored value: {data!r}")
