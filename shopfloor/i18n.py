"""The languages screens and reports speak, and numbers, dates and money in each one's way.

English is the source language: the texts in the code are English and marked with `_()`.
Every other language is a gettext catalogue, `locales/<dir>/LC_MESSAGES/shopfloor.po` next to
this module, read by Babel at run time (no compiled .mo to build or ship): a translator adds a
language by adding its folder (`make translations NEW_LANG=xx` starts one), without a code change.

A language's code is its BCP 47 tag as a URL or a plant file gives it (`ru`, `sr-Latn`); its
folder is the same tag with `_` (`sr_Latn`), as gettext and Babel name locales. Serbian comes in
two scripts of one text: `sr-Latn` is generated from `sr-Cyrl` by `cyrillic_to_latin`.

Numbers, percentages, dates and money come from Babel's CLDR data for the language (decimal
comma, 09.03.2026, the currency's symbol); nothing here formats them by hand. Babel is imported
by the functions that use it: the plant file's model checks its language codes here, and the
edge agent, which loads the plant but formats nothing, is spared Babel's 2 MB.
"""

from __future__ import annotations

import gettext
import io
import re
from datetime import date, datetime, timedelta, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel import Locale

SOURCE_LANGUAGE = "en"
DOMAIN = "shopfloor"
LOCALES_DIR = Path(__file__).parent / "locales"


def _folder(code: str) -> str:
    return code.replace("-", "_")


def _code(folder: str) -> str:
    return folder.replace("_", "-")


def catalogue_path(code: str) -> Path:
    """Where a language's catalogue is: locales/sr_Latn/LC_MESSAGES/shopfloor.po for sr-Latn."""
    return LOCALES_DIR / _folder(code) / "LC_MESSAGES" / f"{DOMAIN}.po"


def _discovered() -> tuple[str, ...]:
    found = sorted(
        _code(path.parent.parent.name) for path in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )
    return (SOURCE_LANGUAGE, *found)


# English first, then every language with a catalogue, by code.
LANGUAGES: tuple[str, ...] = _discovered()


def check_language(code: str) -> str:
    """The code when it is a supported language; ValueError naming the supported ones."""
    if code not in LANGUAGES:
        raise ValueError(
            f"unknown language {code!r}: use one of {', '.join(LANGUAGES)} "
            "(a language is supported once its catalogue is in shopfloor/locales)"
        )
    return code


@cache
def babel_locale(code: str) -> Locale:
    """Babel's locale for a language code: its CLDR numbers, dates and plural rules."""
    from babel import Locale

    return Locale.parse(_folder(check_language(code)))


def language_name(code: str) -> str:
    """A language's name in itself, for a language menu: русский, srpski (latinica)."""
    name = babel_locale(code).get_display_name(babel_locale(code)) or code
    return name[:1].upper() + name[1:]


def match_language(tag: str | None) -> str | None:
    """The supported language for a browser's or system's locale tag (ru-RU, sr-Latn-RS,
    sr_RS), or None. A Serbian tag without a script is Cyrillic, as CLDR says."""
    if not tag:
        return None
    from babel import Locale, UnknownLocaleError

    try:
        wanted = Locale.parse(tag.replace("-", "_").split(".")[0].split("@")[0])
    except (ValueError, UnknownLocaleError):
        return None
    candidates = [f"{wanted.language}-{wanted.script}"] if wanted.script else []
    candidates.append(wanted.language)
    for candidate in candidates:
        if candidate in LANGUAGES:
            return candidate
    # A language offered only with scripts: its likely script (sr -> sr-Cyrl).
    likely = Locale.parse(wanted.language)
    with_script = [code for code in LANGUAGES if code.startswith(f"{wanted.language}-")]
    if likely.script and f"{wanted.language}-{likely.script}" in with_script:
        return f"{wanted.language}-{likely.script}"
    return with_script[0] if with_script else None


@cache
def translations(code: str) -> gettext.NullTranslations:
    """The language's messages, read from its .po file (English: the source texts as they are).
    Fuzzy entries are not used: a translation a translator has not confirmed shows in English."""
    if check_language(code) == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with catalogue_path(code).open("rb") as po:
        catalogue = read_po(po, locale=_folder(code), domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark only"
    """Marks a text for extraction where it is defined (a table, a questionnaire item);
    `gettext` translates it where it is shown, in that reader's language."""
    return message


def number_text(value: float, code: str, digits: int = 1) -> str:
    """A number with `digits` decimals in the language's way: 12,345.7 or 12 345,7; never "-0"."""
    from babel.numbers import format_decimal

    rounded = round(value, digits) + 0.0  # adding 0.0 turns -0.0 into 0.0
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(rounded, format=pattern, locale=babel_locale(code))


def percent_text(share: float, code: str, digits: int = 1) -> str:
    """A share (0.875) as a percentage in the language's way: 87.5% or 87,5 %."""
    from babel.numbers import format_percent

    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return format_percent(share, format=pattern, locale=babel_locale(code))


def money_text(amount: float, currency: str, code: str) -> str:
    """An amount in an ISO 4217 currency, with the language's symbol and separators."""
    from babel.numbers import format_currency

    return format_currency(amount, currency, locale=babel_locale(code))


@cache
def numeric_date_pattern(code: str) -> str:
    """CLDR's numeric date (skeleton yMd) with a two-digit day and month and a four-digit year:
    dd.MM.y in Russian and Belarusian, dd.MM.y. in Serbian, MM/dd/y in English."""
    pattern = str(babel_locale(code).datetime_skeletons["yMd"].pattern)
    widened = re.sub(r"(?<!d)d(?!d)", "dd", pattern)
    return re.sub(r"(?<!M)M(?!M)", "MM", widened)


def date_text(day: date | datetime, code: str) -> str:
    """A calendar date, numeric, in the language's order: 09.03.2026 in Russian."""
    from babel.dates import format_date

    return format_date(day, numeric_date_pattern(code), locale=babel_locale(code))


def time_text(ts: datetime, code: str, zone: tzinfo | None = None) -> str:
    """A time of day with seconds on a 24-hour clock (14:05:09), on `zone`'s clock when given."""
    from babel.dates import format_time

    return format_time(ts, "HH:mm:ss", tzinfo=zone, locale=babel_locale(code))


def duration_text(seconds: float, code: str) -> str:
    """A duration in its largest whole unit, in the language's words: 42 s, 5 мин, 3 ч."""
    from babel.dates import format_timedelta

    return format_timedelta(
        timedelta(seconds=seconds), threshold=1, format="short", locale=babel_locale(code)
    )


_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_DECIMAL = re.compile(r"-?\d+(?:\.(\d+))?")


def _template_pattern(template: str) -> re.Pattern[str]:
    """A template as a regular expression that reads its values back:
    "{n} parts" -> "(?P<n>.+?) parts"."""
    parts, end = [], 0
    for found in _PLACEHOLDER.finditer(template):
        parts += [re.escape(template[end : found.start()]), f"(?P<{found[1]}>.+?)"]
        end = found.end()
    return re.compile("".join([*parts, re.escape(template[end:])]) + r"\Z", re.DOTALL)


def _value_text(value: str, code: str) -> str:
    """A value read back from an English text, written again in the language: a plain number
    with the language's decimal sign and as many decimals; anything else as it is."""
    number = _DECIMAL.fullmatch(value)
    if number is None:
        return value
    return number_text(float(value), code, len(number[1] or ""))


def reword(text: str, templates: tuple[str, ...], code: str) -> str:
    """An English text that one of `templates` (marked N_) wrote, in the language `code`, its
    values kept: for texts another component wrote and stored in English (the analysis's
    problems), shown later to a reader of another language. A text no template wrote is
    translated as a whole if it is a known message, else returned as it is."""
    if code == SOURCE_LANGUAGE:
        return text
    catalogue = translations(code)
    for template in templates:
        found = _template_pattern(template).match(text)
        if found is not None:
            translated = _PLACEHOLDER.sub(r"{\1}", catalogue.gettext(template))
            return translated.format(
                **{k: _value_text(v, code) for k, v in found.groupdict().items()}
            )
    return catalogue.gettext(text)


# Serbian Cyrillic to Latin (Gaj's alphabet), letter by letter: the mapping is exact, so the
# sr-Latn catalogue is generated from sr-Cyrl and a test holds them to each other.
_SERBIAN_LATIN = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Д": "D", "Ђ": "Đ", "Е": "E", "Ж": "Ž", "З": "Z",
    "И": "I", "Ј": "J", "К": "K", "Л": "L", "Љ": "Lj", "М": "M", "Н": "N", "Њ": "Nj", "О": "O",
    "П": "P", "Р": "R", "С": "S", "Т": "T", "Ћ": "Ć", "У": "U", "Ф": "F", "Х": "H", "Ц": "C",
    "Ч": "Č", "Џ": "Dž", "Ш": "Š",
}  # fmt: skip
_SERBIAN_LATIN |= {cyr.lower(): lat.lower() for cyr, lat in _SERBIAN_LATIN.items()}
_DIGRAPHS = {"Lj": "LJ", "Nj": "NJ", "Dž": "DŽ"}


def cyrillic_to_latin(text: str) -> str:
    """Serbian Cyrillic in Latin letters: Љубљана -> Ljubljana, ЊЕГОШ -> NJEGOŠ. Other
    characters (Latin placeholders, digits, punctuation) stay as they are."""
    out: list[str] = []
    for index, char in enumerate(text):
        latin = _SERBIAN_LATIN.get(char, char)
        if latin in _DIGRAPHS and _in_capitals(text, index):
            latin = _DIGRAPHS[latin]
        out.append(latin)
    return "".join(out)


def _in_capitals(text: str, index: int) -> bool:
    """Whether the capital at `index` stands in a word written in capitals (ЉУБА, not Љуба)."""
    neighbours = [text[i] for i in (index - 1, index + 1) if 0 <= i < len(text)]
    letters = [c for c in neighbours if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


def write_serbian_latin() -> None:
    """Generate the sr-Latn catalogue from the sr-Cyrl one (`make translations` runs this)."""
    from babel import Locale
    from babel.messages.pofile import read_po, write_po

    with catalogue_path("sr-Cyrl").open("rb") as po:
        catalogue = read_po(po, locale="sr_Cyrl", domain=DOMAIN)
    catalogue.locale = Locale.parse("sr_Latn")
    catalogue.header_comment = catalogue.header_comment.replace("(Cyrillic)", "(Latin)") + (
        "\n# Generated from sr_Cyrl by `make translations`: translate there, not here."
    )
    catalogue.language_team = "sr_Latn"
    for message in catalogue:
        if not message.id:
            continue
        if isinstance(message.string, str):
            message.string = cyrillic_to_latin(message.string)
        elif message.string:
            message.string = tuple(cyrillic_to_latin(s) for s in message.string)
    target = LOCALES_DIR / "sr_Latn" / "LC_MESSAGES" / f"{DOMAIN}.po"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as po:
        write_po(po, catalogue, width=100)


if __name__ == "__main__":
    write_serbian_latin()
