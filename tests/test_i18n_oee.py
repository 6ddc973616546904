"""The OEE and Energy pages in the visitor's language: headings, metrics, charts and tables
translated with the glossary's terms, numbers with the language's decimal sign, Slavic plurals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from shopfloor import i18n
from shopfloor.store import Point, StoreSettings, open_store
from tests.conftest import EXAMPLE_PLANT
from tests.test_dashboard_analytics import (
    EARLY,
    IDLE_BUT_COUNTING,
    NOW,
    PRESS,
    analysed_store,
    shift_report_point,
)

OEE_HEADINGS = {
    "en": ["Last hour", "Per shift", "Losses"],
    "ru": ["Последний час", "По сменам", "Потери"],
    "be": ["Апошняя гадзіна", "Па зменах", "Страты"],
    "sr-Cyrl": ["Последњи сат", "По сменама", "Губици"],
    "sr-Latn": ["Poslednji sat", "Po smenama", "Gubici"],
}


def render_in(page: str, plant_file: str, store_url: str, lang: str) -> None:
    """The body of a script for AppTest: one page of the dashboard in a visitor's language."""
    import importlib

    import streamlit as st

    from shopfloor.plant import load_plant
    from shopfloor.store import StoreSettings, open_store

    st.session_state["lang"] = lang  # as dashboard.i18n.choose_language leaves it
    module, function = page.split(":")
    page_function = getattr(importlib.import_module(module), function)
    page_function(load_plant(plant_file), open_store(StoreSettings(url=store_url)))


@pytest.fixture
def analysed_url(tmp_path: Path) -> str:
    url = f"sqlite:{tmp_path / 'store.db'}"
    store = open_store(StoreSettings(url=url))
    try:
        analysed_store(store)
    finally:
        store.close()
    return url


def page_in(page: str, url: str, lang: str) -> AppTest:
    app = AppTest.from_function(
        render_in, args=(page, str(EXAMPLE_PLANT), url, lang), default_timeout=60
    ).run()
    assert not app.exception, app.exception
    return app


def figures(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def shown_cells(app: AppTest, index: int) -> Any:
    """A table as people see it: the text of each cell, as the page's Styler wrote it."""
    styler = app.dataframe[index].proto.arrow_data.styler
    return convert_arrow_bytes_to_pandas_df(styler.display_values)


@pytest.mark.parametrize("code", i18n.LANGUAGES)
def test_the_oee_page_speaks_the_visitors_language(code: str, analysed_url: str) -> None:
    app = page_in("dashboard.oee:oee_page", analysed_url, code)
    app.selectbox[1].select("Injection press 1").run()
    assert not app.exception, app.exception
    assert [h.value for h in app.subheader] == OEE_HEADINGS[code]
    shown = " | ".join(
        [*(c.value for c in app.caption), *(m.label for m in app.metric), *app.selectbox[0].options]
    )
    for word in ["Availability", "Performance", "Quality", "last 7 days", "Data up to"]:
        assert (word in shown) == (code == "en"), (code, word, shown)


def test_the_oee_page_in_russian(analysed_url: str) -> None:
    app = page_in("dashboard.oee:oee_page", analysed_url, "ru")
    assert app.selectbox[0].options == ["последний 1 день", "последние 7 дней", "последние 30 дней"]
    app.selectbox[1].select("Injection press 1").run()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Доступность"] == "80,0%"
    assert metrics["Производительность"] == "нет данных"
    factors, waterfall, pareto = figures(app)
    assert factors["layout"]["title"]["text"] == "OEE и составляющие"
    assert factors["layout"]["separators"] == ",\xa0"  # ticks with a decimal comma
    assert [bar["name"] for bar in factors["data"]][:3] == [
        "Доступность",
        "Производительность",
        "Качество",
    ]
    assert factors["data"][0]["x"][0] == "пн, 16 нояб. early"  # the shift's name is the plant's
    assert factors["data"][0]["customdata"][0] == "87,8%"
    assert waterfall["layout"]["title"]["text"] == "Куда ушло плановое время"
    assert waterfall["data"][0]["x"] == [
        "Плановое время работы",
        "Плановый простой",
        "Плановое время загрузки",
        "Внеплановый простой",
        "Ожидание деталей",
        "Фактическое время производства",
        "Снижение скорости",
        "Брак",
        "Полностью продуктивное время",
    ]
    assert waterfall["data"][0]["text"][0] == "16,00 ч"  # two shifts of 8 h
    assert pareto["layout"]["title"]["text"] == "Причины остановок"
    assert pareto["data"][0]["x"][1] == "без кода причины"
    assert pareto["data"][0]["customdata"][0] == "60,0 мин"
    table = shown_cells(app, 0)
    assert list(table.columns)[:4] == ["Дата", "Смена", "Доступность", "Производительность"]
    assert table["Дата"][0] == "16.11.2026"
    assert table["Доступность"][0] == "87,8%"
    assert table["MTBF (мин)"][0] == "197,5"


def test_implausible_figures_are_explained_in_serbian(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'store.db'}"
    store = open_store(StoreSettings(url=url))
    try:
        store.write(
            [
                shift_report_point(PRESS, "early", EARLY, 100.0, 20.0, IDLE_BUT_COUNTING),
                Point(PRESS, "kpi.performance", NOW, 37.9),
                Point(PRESS, "kpi.availability", NOW, 1.5),
                Point(PRESS, "state", NOW, "idle"),
            ]
        )
    finally:
        store.close()
    app = page_in("dashboard.oee:oee_page", url, "sr-Cyrl")
    app.selectbox[1].select("Injection press 1").run()
    assert not app.exception, app.exception
    headline, problems = (w.value for w in app.warning)
    assert headline.startswith("Расположивост и Учинак изнад 100 % није могуће")
    assert problems.startswith("Анализа је нашла проблеме у подацима ових смена")
    assert "(Injection press 1, пон 16. нов early)" in problems
    assert {m.label: m.value for m in app.metric}["Учинак"] == "3.790,0%"


def test_the_energy_page_in_belarusian(analysed_url: str) -> None:
    app = page_in("dashboard.energy:energy_page", analysed_url, "be")
    assert [t.value for t in app.title] == ["Энергія"]
    assert [h.value for h in app.subheader] == ["Па станках і станах", "Па зменах"]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Энергія"] == "260,0 кВт·г"
    assert metrics["CO₂"] == "65,0 кг"
    assert app.number_input[0].label == "Цана за кВт·г (BYN)"
    states, per_part = figures(app)
    assert states["layout"]["title"]["text"] == "кВт·г па станах станкоў"
    assert states["data"][0]["customdata"][0] == "176,0 кВт·г"
    assert per_part["layout"]["yaxis"]["title"]["text"] == "кВт·г/дэталь"
    machines, shifts = shown_cells(app, 0), shown_cells(app, 1)
    assert list(machines.columns) == [
        "Станок",
        "кВт·г",
        "кВт·г на годную дэталь",
        "Пікавая магутнасць (кВт)",
        "Кошт (BYN)",
        "CO₂ (кг)",
    ]
    assert machines["кВт·г"][0] == "220,00"
    assert shifts["Доля энергіі ў прастоі"][0] == "20,0%"


def test_a_table_keeps_its_numbers_for_sorting(analysed_url: str) -> None:
    app = page_in("dashboard.energy:energy_page", analysed_url, "ru")
    assert app.dataframe[0].value["кВт·ч"].tolist() == [220.0, 40.0]


@pytest.mark.parametrize(
    ("code", "forms"),
    [
        ("ru", ["последний 1 день", "последние 2 дня", "последние 5 дней", "последний 21 день"]),
        ("be", ["апошні 1 дзень", "апошнія 2 дні", "апошнія 5 дзён", "апошні 21 дзень"]),
        ("sr-Cyrl", ["последњи 1 дан", "последња 2 дана", "последњих 5 дана", "последњи 21 дан"]),
        (
            "sr-Latn",
            ["poslednji 1 dan", "poslednja 2 dana", "poslednjih 5 dana", "poslednji 21 dan"],
        ),
    ],
)
def test_periods_take_the_languages_plural_forms(code: str, forms: list[str]) -> None:
    ngettext = i18n.translations(code).ngettext
    shown = [
        ngettext("last {count} day", "last {count} days", n).format(count=n) for n in (1, 2, 5, 21)
    ]
    assert shown == forms


def clock_script(lang: str) -> None:
    from datetime import UTC, datetime, timedelta

    import streamlit as st

    from dashboard.kpis import clock_note
    from shopfloor.plant import load_plant
    from tests.conftest import EXAMPLE_PLANT

    st.session_state["lang"] = lang
    wall = datetime(2026, 11, 23, 3, 53, 2, tzinfo=UTC)
    plant = load_plant(EXAMPLE_PLANT)
    st.text(clock_note(plant, wall + timedelta(days=1, hours=3, minutes=51), wall))


@pytest.mark.parametrize(
    ("code", "span"),
    [
        ("en", "1 day 3 hr 51 min ahead"),
        ("ru", "опережение настенных часов на 1 дн. 3 ч 51 мин"),
        ("be", "на 1 сут 3 гадз 51 хв"),
    ],
)
def test_the_clock_note_names_its_span_in_the_languages_units(code: str, span: str) -> None:
    app = AppTest.from_function(clock_script, args=(code,), default_timeout=30).run()
    assert not app.exception, app.exception
    assert span in app.text[0].value
