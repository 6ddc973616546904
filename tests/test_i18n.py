"""Languages: every text marked in the source is translated in every catalogue, Serbian Latin
is Serbian Cyrillic letter by letter, and numbers, dates and money follow each language."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
import yaml
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from pydantic import ValidationError
from streamlit import config
from streamlit.testing.v1 import AppTest

from shopfloor import i18n
from shopfloor.plant import Plant
from shopfloor.store import Point, StoreSettings, open_store

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (
    "dashboard",
    "readiness",
    "analytics",
)  # what `make translations` extracts, as babel.cfg says
TRANSLATED = [code for code in i18n.LANGUAGES if code != i18n.SOURCE_LANGUAGE]
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


def _source_messages() -> dict[str, str | tuple[str, ...]]:
    """Every message marked in the source, by msgid: (singular, plural) for ngettext's."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]
    found: dict[str, str | tuple[str, ...]] = {}
    for folder in SOURCES:
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder,
            method_map,
            options_map,
            keywords={"_": None, "N_": None, "ngettext": (1, 2)},
        ):
            key = message if isinstance(message, str) else message[0]
            found[key] = message
    return found


def _forms(message: Message) -> tuple[str, ...]:
    """A message's translation: one string, or one per plural form."""
    if isinstance(message.string, str):
        return (message.string,)
    return tuple(message.string or ())


def _catalogue(code: str) -> Catalog:
    with i18n.catalogue_path(code).open("rb") as po:
        return read_po(po, locale=code.replace("-", "_"))


def test_the_languages_are_english_and_every_catalogue() -> None:
    assert i18n.LANGUAGES == ("en", "be", "ru", "sr-Cyrl", "sr-Latn")


def test_the_source_marks_texts_for_translation() -> None:
    messages = _source_messages()
    assert "Shop floor" in messages and "Running" in messages
    assert len(messages) > 50


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_message_is_translated_none_fuzzy_none_stale(code: str) -> None:
    source = _source_messages()
    catalogue = _catalogue(code)
    entries = {
        message.id if isinstance(message.id, str) else message.id[0]: message
        for message in catalogue
        if message.id
    }
    missing = sorted(set(source) - set(entries))
    stale = sorted(set(entries) - set(source))
    assert not missing, f"{code}: not in the catalogue (run make translations): {missing}"
    assert not stale, f"{code}: no longer in the source (run make translations): {stale}"
    assert not catalogue.obsolete, f"{code}: obsolete entries: {list(catalogue.obsolete)}"
    for msgid, message in entries.items():
        assert not message.fuzzy, f"{code}: fuzzy: {msgid!r}"
        forms = _forms(message)
        assert forms and all(forms), f"{code}: untranslated: {msgid!r}"
        assert isinstance(message.id, tuple) == isinstance(source[msgid], tuple), msgid
        if isinstance(message.id, tuple):
            assert len(forms) == catalogue.num_plurals, f"{code}: plural forms of {msgid!r}"
        for form in forms:  # a translation keeps every placeholder and adds none
            assert set(PLACEHOLDER.findall(form)) == set(PLACEHOLDER.findall(msgid)), (
                f"{code}: placeholders of {msgid!r} in {form!r}"
            )


def test_serbian_latin_is_serbian_cyrillic_transliterated() -> None:
    cyrillic, latin = _catalogue("sr-Cyrl"), _catalogue("sr-Latn")
    for message in cyrillic:
        if not message.id:
            continue
        other = latin[message.id]
        assert other is not None, message.id
        transliterated = tuple(i18n.cyrillic_to_latin(form) for form in _forms(message))
        assert _forms(other) == transliterated, message.id
    assert len(list(latin)) == len(list(cyrillic))


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("Љубљана", "Ljubljana"),
        ("ЊЕГОШ", "NJEGOŠ"),
        ("Џеп и Ђорђе", "Džep i Đorđe"),
        ("Нема података од {asset}", "Nema podataka od {asset}"),
        ("шкарт 0,99", "škart 0,99"),
    ],
)
def test_cyrillic_to_latin(cyrillic: str, latin: str) -> None:
    assert i18n.cyrillic_to_latin(cyrillic) == latin


def test_translations_come_from_the_po_files_with_slavic_plurals() -> None:
    ru = i18n.translations("ru")
    assert ru.gettext("Shop floor") == "Цех"
    forms = [
        ru.ngettext("last hour: {count} good part", "last hour: {count} good parts", n)
        for n in (1, 3, 5, 11, 21, 22)
    ]
    assert [f.split()[-2] for f in forms] == [
        "годная",
        "годные",
        "годных",
        "годных",
        "годная",
        "годные",
    ]
    assert i18n.translations("en").gettext("Shop floor") == "Shop floor"
    assert i18n.translations("sr-Latn").gettext("Shop floor") == "Pogon"


@pytest.mark.parametrize(
    ("code", "number", "percent", "money", "day"),
    [
        ("en", "12,345.7", "87.5%", "BYN1,234.50", "03/09/2026"),
        ("ru", "12\xa0345,7", "87,5%", "1\xa0234,50\xa0BYN", "09.03.2026"),
        ("be", "12\xa0345,7", "87,5%", "1\xa0234,50\xa0Br", "09.03.2026"),
        ("sr-Cyrl", "12.345,7", "87,5%", "1.234,50\xa0BYN", "09. 03. 2026."),
        ("sr-Latn", "12.345,7", "87,5%", "1.234,50\xa0BYN", "09. 03. 2026."),
    ],
)
def test_numbers_dates_and_money_follow_the_language(
    code: str, number: str, percent: str, money: str, day: str
) -> None:
    assert i18n.number_text(12345.678, code) == number
    assert i18n.percent_text(0.875, code) == percent
    assert i18n.money_text(1234.5, "BYN", code) == money
    assert i18n.date_text(date(2026, 3, 9), code) == day
    noon = datetime(2026, 3, 9, 12, 0, 5, tzinfo=UTC)
    assert i18n.time_text(noon, code, ZoneInfo("Europe/Minsk")) == "15:00:05"


def test_a_number_never_shows_minus_zero() -> None:
    assert i18n.number_text(-0.04, "ru") == "0,0"
    assert i18n.number_text(-12.94, "en") == "-12.9"
    assert i18n.number_text(1234.4, "ru", digits=0) == "1\xa0234"


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("ru-RU", "ru"),
        ("ru", "ru"),
        ("be-BY", "be"),
        ("sr-RS", "sr-Cyrl"),  # Serbian without a script is Cyrillic
        ("sr", "sr-Cyrl"),
        ("sr-Latn-RS", "sr-Latn"),
        ("sr-Cyrl-BA", "sr-Cyrl"),
        ("en-GB", "en"),
        ("de-DE", None),
        ("", None),
        (None, None),
        ("not a locale", None),
    ],
)
def test_a_browser_locale_picks_a_language(tag: str | None, code: str | None) -> None:
    assert i18n.match_language(tag) == code


def test_languages_are_named_in_themselves() -> None:
    assert i18n.language_name("ru") == "Русский"
    assert i18n.language_name("sr-Latn").startswith("Srpski")


def test_the_plant_file_may_name_a_supported_language(example_plant: Plant) -> None:
    assert example_plant.site.language is None
    data = example_plant.model_dump(mode="json")
    data["site"]["language"] = "sr-Latn"
    assert Plant.model_validate(data).site.language == "sr-Latn"
    data["site"]["language"] = "sr_RS@latin"
    with pytest.raises(ValidationError, match="unknown language 'sr_RS@latin'"):
        Plant.model_validate(data)


def test_dashboard_texts_are_english_outside_a_session() -> None:
    from dashboard.labels import KPI_HELP, number_text, state_text

    assert state_text("unplanned_stop") == "Stopped (breakdown)"
    assert KPI_HELP["parts"] == "Parts the machine made, good and rejected."
    assert number_text(1234.56, "kWh/pcs") == "1,234.6 kWh per part"


# The Shop floor page in every language: what it says, and no English text it marks left.
SHOP_FLOOR_WORDS = {
    "en": ("Machines", "Faults and events", "Stopped (breakdown)", "Parts"),
    "ru": ("Станки", "Отказы и события", "Остановлен (поломка)", "Детали"),
    "be": ("Станкі", "Адмовы і падзеі", "Спынены (паломка)", "Дэталі"),
    "sr-Cyrl": ("Машине", "Кварови и догађаји", "Заустављена (квар)", "Делови"),
    "sr-Latn": ("Mašine", "Kvarovi i događaji", "Zaustavljena (kvar)", "Delovi"),
}


@pytest.fixture
def dashboard_env(
    example_plant: Plant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Callable[[str | None], None]:
    """The dashboard's environment: a store with a stopped press, and the example plant with
    the given `site.language`."""
    store_url = f"sqlite:{tmp_path / 'store.db'}"
    store = open_store(StoreSettings(url=store_url))
    now = datetime.now(UTC).replace(microsecond=0)
    press = next(path for path, _ in example_plant.machines())
    store.write(
        [
            Point(press, "state", now, "unplanned_stop"),
            Point(press, "part_count", now, 1234.0),
            Point(press, "kpi.good_parts", now, 3.0),
        ]
    )
    store.close()
    monkeypatch.setenv("SHOPFLOOR_STORE_URL", store_url)
    # Served as `shopfloor dashboard` serves it by default: on loopback, where no login is asked.
    config.set_option("server.address", "127.0.0.1")
    request.addfinalizer(lambda: config.set_option("server.address", None))

    def with_language(language: str | None) -> None:
        data = example_plant.model_dump(mode="json", exclude_none=True)
        if language:
            data["site"]["language"] = language
        plant_file = tmp_path / f"plant-{language}.yaml"
        plant_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        monkeypatch.setenv("SHOPFLOOR_PLANT", str(plant_file))
        st.cache_resource.clear()  # the dashboard keeps the plant it read first

    return with_language


def _shown(app: AppTest) -> str:
    elements = [*app.subheader, *app.markdown, *app.caption, *app.warning]
    return " | ".join([*(str(e.value) for e in elements), *(m.label for m in app.metric)])


def _dashboard() -> AppTest:
    return AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=30)


@pytest.mark.parametrize("code", i18n.LANGUAGES)
def test_the_shop_floor_page_speaks_the_language_of_the_url(
    code: str, dashboard_env: Callable[[str | None], None]
) -> None:
    dashboard_env(None)
    app = _dashboard()
    app.query_params["lang"] = code
    app.run()
    assert not app.exception, app.exception
    shown = _shown(app)
    for word in SHOP_FLOOR_WORDS[code]:
        assert word in shown, (code, word, shown)
    if code != "en":
        for word in SHOP_FLOOR_WORDS["en"]:
            assert word not in shown, (code, word, shown)
        assert "1,234" not in shown  # the part count in the language's digits
    assert app.sidebar.selectbox[0].value == code
    assert app.query_params["lang"] == code


def test_the_language_comes_from_the_plant_then_stays_with_the_session(
    dashboard_env: Callable[[str | None], None],
) -> None:
    dashboard_env("be")
    app = _dashboard()
    app.run()
    assert "Адмовы і падзеі" in _shown(app)
    del app.query_params["lang"]  # as a change of page drops it
    app.run()
    assert "Адмовы і падзеі" in _shown(app) and app.query_params["lang"] == "be"
    app.sidebar.selectbox[0].select("sr-Latn").run()
    assert "Kvarovi i događaji" in _shown(app) and app.query_params["lang"] == "sr-Latn"


def test_an_unknown_language_in_the_url_falls_back(
    dashboard_env: Callable[[str | None], None],
) -> None:
    dashboard_env(None)
    app = _dashboard()
    app.query_params["lang"] = "xx"
    app.run()
    assert not app.exception
    assert "Faults and events" in _shown(app)  # AppTest's browser locale is English


GLOSSARY = ROOT / "docs" / "glossary.md"


def glossary() -> list[dict[str, str]]:
    """docs/glossary.md's terms: one row per term, by language code (each table's header
    names its languages: "Русский (ru)")."""
    rows, codes = [], ["en"]
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "English":
            codes = ["en", *(cell.rsplit("(", 1)[1].rstrip(")") for cell in cells[1:])]
        elif not cells[0].startswith("---"):
            rows.append(dict(zip(codes, cells, strict=True)))
    return rows


def _head(term: str) -> str:
    """A term without its explanation in brackets: "OEE (overall ...)" -> "OEE"."""
    return term.split(" (")[0].strip()


def _english_pattern(term: str) -> re.Pattern[str]:
    """The English term in a text, also in the plural; case matters for names (a level,
    a dimension) and not for common nouns."""
    words = re.escape(term)
    plural = words[:-1] + "(?:y|ies)" if term.endswith("y") else words + "(?:s|es)?"
    flags = 0 if term[:1].isupper() else re.IGNORECASE
    return re.compile(rf"(?<![\w-]){plural}(?![\w-])", flags)


def _stems(term: str) -> list[str]:
    """What a term's words keep in every grammatical case: each word of four letters or more
    without its last two (доступность -> доступност..., плановый простой -> планов, прост)."""
    words = re.findall(r"\w+", term.lower())
    return [w[: max(4, len(w) - 2)] for w in words if len(w) >= 4] or [term.lower()]


def test_the_glossary_has_every_core_term_and_serbian_latin_is_its_cyrillic() -> None:
    terms = {row["en"].split(" (")[0] for row in glossary()}
    core = {
        "OEE", "availability", "performance", "quality", "six big losses", "changeover", "SMED",
        "planned stop", "unplanned stop", "MTBF", "MTTR", "kaizen", "gemba", "standard work",
        "Not started", "Predictive/adaptive", "Strategy & leadership", "People & CI culture",
    }  # fmt: skip
    assert core <= terms, core - terms
    for row in glossary():
        assert row["sr-Latn"] == i18n.cyrillic_to_latin(row["sr-Cyrl"]), row


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_catalogues_use_the_glossary_terms(code: str) -> None:
    """A message that names a glossary term says it with the glossary's word: the longest
    term first (a dimension's name before the words in it)."""
    rows = sorted(glossary(), key=lambda row: len(_head(row["en"])), reverse=True)
    assert all(code in row for row in rows), f"docs/glossary.md has no column for {code}"
    wrong = []
    for message in _catalogue(code):
        if not message.id or not message.string:
            continue
        english = message.id if isinstance(message.id, str) else message.id[0]
        said = " ".join(_forms(message)).lower()
        for row in rows:
            term, pattern = _head(row["en"]), _english_pattern(_head(row["en"]))
            if not pattern.search(english):
                continue
            english = pattern.sub(" ", english)
            wanted = _head(row[code])
            abbreviation = term.isupper() or term[:1].isdigit()  # OEE, 5S: kept as they are
            stems = [term.lower()] if abbreviation else _stems(wanted)
            if not all(stem in said for stem in stems):
                wrong.append(f"{message.id!r}: {term!r} is {wanted!r}, not in {said!r}")
    assert not wrong, "\n".join(wrong)


def test_a_sixth_language_needs_no_code_change(tmp_path: Path) -> None:
    """`make translations NEW_LANG=pl`'s catalogue, translated, is a language of the platform:
    listed, matched from a browser's locale, and read with Polish plural forms."""
    package = tmp_path / "shopfloor"
    shutil.copytree(ROOT / "shopfloor", package, ignore=shutil.ignore_patterns("__pycache__"))
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [pybabel, "init", "--input-file", package / "locales" / "shopfloor.pot", "--output-dir",
         package / "locales", "--domain", "shopfloor", "--locale", "pl"],
        check=True, capture_output=True,
    )  # fmt: skip
    po = package / "locales" / "pl" / "LC_MESSAGES" / "shopfloor.po"
    po.write_text(
        po.read_text(encoding="utf-8").replace(
            'msgid "Shop floor"\nmsgstr ""', 'msgid "Shop floor"\nmsgstr "Hala produkcyjna"'
        ),
        encoding="utf-8",
    )
    probe = (
        "from shopfloor import i18n; "
        "print(i18n.LANGUAGES, i18n.match_language('pl-PL'), "
        "i18n.translations('pl').gettext('Shop floor'), i18n.number_text(1234.5, 'pl'))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert "'pl'" in shown and " pl Hala produkcyjna 1\xa0234,5" in shown, shown


@pytest.mark.parametrize(
    ("code", "separators", "day"),
    [("en", ".,", "%m/%d/%Y"), ("ru", ",\xa0", "%d.%m.%Y"), ("sr-Latn", ",.", "%d. %m. %Y.")],
)
def test_charts_write_numbers_and_dates_in_the_language(
    code: str, separators: str, day: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plotly.graph_objects as go

    from dashboard import i18n as page_i18n

    monkeypatch.setattr(page_i18n, "language", lambda: code)
    over_time = page_i18n.localised(
        go.Figure(go.Scatter(x=[datetime(2026, 3, 9, 8), datetime(2026, 3, 10, 8)], y=[1, 2]))
    )
    assert over_time.layout.separators == separators
    assert over_time.layout.xaxis.tickformatstops[-1].value == day
    assert over_time.layout.xaxis.hoverformat == f"{day} %H:%M:%S"
    by_name = page_i18n.localised(go.Figure(go.Bar(x=["press", "trim"], y=[1.5, 2.5])))
    assert by_name.layout.separators == separators and not by_name.layout.xaxis.tickformatstops


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_catalogue_passes_babels_checks(code: str) -> None:
    """What `pybabel compile` checks (placeholders of either style, plural forms): a text
    whose English reads as a %-format by chance ("100 % cannot") fails here, not at a
    translator's `make translations`."""
    errors = [
        f"{message.id!r}: {'; '.join(str(e) for e in found)}"
        for message, found in _catalogue(code).check()
    ]
    assert not errors, "\n".join(errors)


def test_the_analysiss_problems_read_in_the_language() -> None:
    """The analysis stores its problems in English; the OEE page shows each in the reader's
    language with its figures written the language's way, and an unknown text as it is."""
    from analytics.oee import PERFORMANCE_ABOVE_1, PROBLEMS, UNKNOWN_STATE

    english = PERFORMANCE_ABOVE_1.format(performance="3.200")
    assert i18n.reword(english, PROBLEMS, "en") == english
    assert i18n.reword(english, PROBLEMS, "ru").startswith("производительность 3,200 больше 1")
    unknown = UNKNOWN_STATE.format(seconds="12.5")
    assert i18n.reword(unknown, PROBLEMS, "sr-Latn") == (
        "stanje mašine nije poznato u prvih 12,5 s planiranog vremena"
    )
    assert i18n.reword("a problem of another version", PROBLEMS, "be") == (
        "a problem of another version"
    )
