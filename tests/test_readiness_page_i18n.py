"""The readiness page in the visitor's language: its texts, its charts' words and numbers, and
the questionnaire's own texts, with none of the English ones left."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from dashboard.i18n import LANG_KEY
from launcher.seeding import seed_demo_smes
from readiness import DATABASE_ENV
from readiness.answers import load_answers
from readiness.assessment import run_assessment
from readiness.evidence import Evidence
from readiness.indicator_file import indicators_from_dict
from readiness.persistence import ReadinessStore
from shopfloor import i18n
from shopfloor.store import ENV_VARS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "readiness"
# The page's own English texts: none may show in another language.
ENGLISH = (
    "Lean 4.0 readiness",
    "Readiness index R",
    "Archetype",
    "Scored",
    "Profile",
    "Indicators",
    "Recommendations",
    "Questionnaire",
    "Cohort",
    "Claim check",
    "Gates holding a score down",
    "no score",
    "priority",
    "what-if",
    "One assessment so far",
)


def readiness_app() -> None:
    """The page as the dashboard runs it, with the plant and store of the environment."""
    import os

    from dashboard.lean_readiness import readiness_page
    from shopfloor.plant import load_plant
    from shopfloor.store import StoreSettings, open_store

    plant = load_plant(os.environ["SHOPFLOOR_PLANT"])
    readiness_page(plant, open_store(StoreSettings.from_env()))


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example plant and an empty store; returns the readiness database's path."""
    database = tmp_path / "readiness.db"
    monkeypatch.setenv(DATABASE_ENV, str(database))
    monkeypatch.setenv("SHOPFLOOR_PLANT", str(EXAMPLES.parent / "plant.yaml"))
    monkeypatch.setenv(ENV_VARS["url"], f"sqlite:{tmp_path / 'store.db'}")
    return database


def page_in(language: str) -> AppTest:
    page = AppTest.from_function(readiness_app, default_timeout=60)
    page.session_state[LANG_KEY] = language  # as dashboard.i18n settles it from ?lang=
    page.run()
    assert not page.exception, page.exception
    return page


def shown(page: AppTest) -> str:
    """Every text of the page a visitor reads, charts aside."""
    texts = [
        *(e.value for e in page.title),
        *(e.value for e in page.markdown),
        *(e.value for e in page.caption),
        *(e.value for e in page.info),
        *(e.value for e in page.error),
        *(t.label for t in page.tabs),
        *(m.label for m in page.metric),
        *(str(m.value) for m in page.metric),
        *(s.label for s in page.selectbox),
        *(o for s in page.selectbox for o in s.options),
        *(b.label for b in page.button),
        *(c.label for c in page.checkbox),
        *(t.label for t in page.toggle),
    ]
    return " | ".join(str(t) for t in texts)


def charts(page: AppTest | Block) -> list[dict[str, Any]]:
    """Every plotly chart of the page as the browser gets it."""
    return [json.loads(chart.proto.spec) for chart in page.get("plotly_chart")]


def test_the_page_speaks_russian_with_its_numbers_and_plurals(environment: Path) -> None:
    """Polimer scored on two days: the alert, the progress and its plural, all in Russian."""
    moulding = load_answers(EXAMPLES / "moulding.yaml")
    full = {name: 1.0 for name in ("DC", "CC", "OV", "RC", "STD")}
    monday = datetime(2026, 11, 2, 6, tzinfo=UTC)
    with ReadinessStore(environment) as store:
        for day, cc in ((0, 1.0), (1, 1 / 3)):
            evidence = Evidence(indicators_from_dict({**full, "CC": cc}), source="test")
            store.save(run_assessment(moulding, evidence, monday + timedelta(days=day)))
    page = page_in("ru")
    text = shown(page)
    assert page.title[0].value == "Готовность к Lean 4.0"
    assert [t.label for t in page.tabs] == [
        "Профиль", "Показатели", "Рекомендации", "Анкета", "Динамика", "Сравнение", "Экспорт",
    ]  # fmt: skip
    metrics = {m.label: m.value for m in page.metric[:3]}
    assert re.fullmatch(r"\d,\d\d", metrics["Индекс готовности R"])  # a decimal comma
    assert "Уровень" in metrics and "Архетип" in metrics
    assert re.search(r"Оценено 03\.11\.2026 09:00:00 \(Europe/Minsk\), анкета и данные", text)
    progress = page.tabs[4]
    assert any(
        c.value.startswith("2 снимка; F относительно исходного: D1 ") for c in progress.caption
    )
    assert re.fullmatch(r"\d,\d{3}", progress.metric[0].value)
    assert progress.metric[0].label == "R с первого снимка"
    for english in ENGLISH:
        assert english not in text, english
    assert [b.proto.label for b in page.get("download_button")] == ["Отчёт в CSV", "Отчёт в PDF"]


@pytest.mark.parametrize("code", ["ru", "be", "sr-Cyrl", "sr-Latn"])
def test_snapshots_take_the_languages_plural_forms(code: str) -> None:
    one, few, many = (
        i18n.translations(code)
        .ngettext(
            "{count} snapshot; F since the baseline: {changes}",
            "{count} snapshots; F since the baseline: {changes}",
            n,
        )
        .format(count=n, changes="D1 +0,25")
        .split(";")[0]
        for n in (1, 2, 5)
    )
    assert (one, few, many) == {
        "ru": ("1 снимок", "2 снимка", "5 снимков"),
        "be": ("1 здымак", "2 здымкі", "5 здымкаў"),
        "sr-Cyrl": ("1 снимак", "2 снимка", "5 снимака"),
        "sr-Latn": ("1 snimak", "2 snimka", "5 snimaka"),
    }[code]


def test_the_charts_and_the_form_speak_belarusian(environment: Path) -> None:
    """The demo's three SMEs in Belarusian: series, axes, hover and the cohort's table in its
    words, numbers with a decimal comma, and the questionnaire's own texts translated."""
    seed_demo_smes(environment, EXAMPLES.parent)
    page = page_in("be")
    radar, gaps, heatmap, quadrant = charts(page)
    for figure in (radar, gaps, heatmap, quadrant):
        assert figure["layout"]["separators"] == ",\xa0"  # 2,75 and 1 234
    assert [t["name"] for t in radar["data"]] == [
        "анкета", "даныя вымярэнняў", "выніковая", "мэта", "мяжа",
    ]  # fmt: skip
    assert "даныя вымярэнняў %{r:.2f}" in radar["data"][1]["hovertemplate"]
    assert gaps["layout"]["xaxis"]["title"]["text"] == "бал (0-5)"
    assert [t["name"] for t in gaps["data"][:2]] == ["выніковая", "адставанне ад мэты"]
    assert heatmap["data"][0]["y"][-1] == "медыяна групы"
    assert all(re.fullmatch(r"\d,\d\d", v) for row in heatmap["data"][0]["text"] for v in row)
    assert re.fullmatch(r".+ \(R \d,\d\d\)", heatmap["data"][0]["y"][0])
    assert quadrant["layout"]["xaxis"]["title"]["text"] == "індэкс ашчаднай вытворчасці Λ"
    assert {a["text"] for a in quadrant["layout"]["annotations"]} == {
        "Пачатковец", "Ашчаднасць наперадзе", "Тэхналогіі наперадзе", "Інтэгратар Lean 4.0",
    }  # fmt: skip
    [table] = page.dataframe
    assert list(table.value.columns) == [
        "месца", "Прадпрыемства", "R", "архетып", "Λ ашчаднасць", "Δ лічбавізацыя",
    ]  # fmt: skip
    assert all(re.fullmatch(r"\d,\d\d", v) for v in table.value["R"])
    q1 = page.selectbox(key="polimer-Q1")
    assert q1.options[-2:] == ["не ведаю", "не дастасоўваецца"]
    assert page.button[0].label == "Захаваць адказы і разлічыць балы"
    assert "(вага " in shown(page)


def test_the_progress_chart_dates_as_the_language_does(environment: Path) -> None:
    """Plotly names months in English only: the progress chart's dates are numeric in the
    language's order, on the site's clock."""
    moulding = load_answers(EXAMPLES / "moulding.yaml")
    with ReadinessStore(environment) as store:
        for day in (2, 3):
            store.save(run_assessment(moulding, None, datetime(2026, 11, day, 6, tzinfo=UTC)))
    formats = {}
    for code in ("en", "ru", "sr-Cyrl"):
        [figure] = charts(page_in(code).tabs[4])
        formats[code] = figure["layout"]["xaxis"]["tickformatstops"][-1]["value"]
        assert figure["data"][0]["x"][0].startswith("2026-11-02T09:00")  # Europe/Minsk
    assert formats == {"en": "%m/%d/%Y", "ru": "%d.%m.%Y", "sr-Cyrl": "%d. %m. %Y."}


def test_english_stays_as_it_was(environment: Path) -> None:
    seed_demo_smes(environment, EXAMPLES.parent)
    page = page_in("en")
    assert page.title[0].value == "Lean 4.0 readiness"
    assert [m.label for m in page.metric[:3]] == ["Readiness index R", "Level", "Archetype"]
    radar = charts(page)[0]
    assert radar["layout"]["separators"] == ".,"
    assert page.selectbox(key="polimer-Q1").options[-2:] == ["don't know", "not applicable"]
