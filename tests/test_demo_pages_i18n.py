"""The demo centre's own pages in the visitor's language: the Demo story, the Demo controls
(fault kinds, stop reasons and the example scenarios in words, speeds in the language's digits)
and the kiosk's warning. Streamlit's AppTest, with the language chosen in the session as the
dashboard's menu does."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from dashboard.controls import SCENARIOS, scenario_text, speed_text
from dashboard.labels import REASON_NAMES, reason_text
from dashboard.story import story_steps
from shopfloor import i18n
from shopfloor.messages import FaultKind, PendingFault
from shopfloor.states import BREAKDOWN_REASONS
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import Mosquitto
from tests.test_dashboard_driving import MOULDING, announcing, plant_of_tenant, texts

SCENARIO_DIR = ROOT / "examples" / "scenarios"


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_example_scenarios_are_named_and_described_as_their_files_say() -> None:
    files = {path.stem: yaml.safe_load(path.read_text()) for path in SCENARIO_DIR.glob("*.yaml")}
    assert set(SCENARIOS) == set(files)
    for stem, (name, description) in SCENARIOS.items():
        assert name == files[stem]["name"], stem
        assert description == _words(files[stem]["description"]), stem


def test_every_fault_and_every_example_stop_reason_has_words() -> None:
    assert set(FaultKind) <= set(REASON_NAMES)
    shipped: set[str] = set(BREAKDOWN_REASONS)
    for path in SCENARIO_DIR.glob("*.yaml"):
        scenario = yaml.safe_load(path.read_text())
        for machine in (scenario.get("machines") or {}).values():
            shipped |= set((machine or {}).get("stop_reasons", {}))
        shipped |= {
            stop["reason"] for stop in scenario.get("planned_stops") or [] if "reason" in stop
        }
    assert shipped <= set(REASON_NAMES), shipped - set(REASON_NAMES)
    for code, words in REASON_NAMES.items():
        assert words == code.replace("_", " ")  # the English words are the code's


def test_codes_outside_the_tables_are_shown_in_words_as_they_are() -> None:
    assert reason_text("heater_fault") == "heater fault"
    assert reason_text("spindle_crash") == "spindle crash"
    assert reason_text(FaultKind.AIR_LEAK) == "air leak"
    assert scenario_text("Injection moulding SME, early shift") == (
        "Injection moulding SME, early shift"
    )
    assert scenario_text("Our own line") == "Our own line"
    assert [speed_text(s) for s in (1, 10.0, 0.5, 1000)] == ["x1", "x10", "x0.5", "x1000"]


def test_the_story_says_how_long_it_takes_in_slavic_plurals() -> None:
    ru = i18n.translations("ru")
    story = next(
        message
        for message in _story_caption_ids()
        if message[0].startswith("A guided demo in {minutes} minute ")
    )
    words = [ru.ngettext(*story, n).format(minutes=n).split()[5] for n in (1, 2, 5, 21)]
    assert words == ["минуту", "минуты", "минут", "минуту"]


def _story_caption_ids() -> list[tuple[str, str]]:
    """The story's (singular, plural) message ids, read from its source as Babel does."""
    from babel.messages.extract import extract_from_file

    found = extract_from_file(
        "python", str(ROOT / "dashboard" / "story.py"), keywords={"ngettext": (1, 2)}
    )
    return [
        (message[0], message[1])
        for _line, message, _comments, _context in found
        if isinstance(message, tuple)
    ]


# --- pages in a language, rendered by AppTest --------------------------------------------------


def render_story(plant_file: str, broker_url: str | None) -> None:
    from dashboard.story import story_page
    from shopfloor.plant import load_plant

    story_page(load_plant(plant_file), broker_url, [])


def render_controls(plant_file: str, broker_url: str | None) -> None:
    from dashboard.controls import controls_page
    from shopfloor.plant import load_plant

    controls_page(load_plant(plant_file), broker_url)


def render_kiosk_warning(rotate: str) -> None:
    import streamlit as st

    from dashboard.kiosk import kiosk_from

    _kiosk, problem = kiosk_from({"kiosk": "1", "rotate": rotate})
    st.warning(problem or "")


def _in(language: str, app: AppTest) -> AppTest:
    app.session_state["lang"] = language
    return app.run()


def _shown(app: AppTest) -> str:
    elements = [
        *app.title, *app.subheader, *app.markdown, *app.caption, *app.info, *app.warning,
        *app.success, *app.error,
    ]  # fmt: skip
    return " | ".join(str(e.value) for e in elements)


STORY = {
    "ru": ("Демонстрационный сценарий", "1. Обычная смена", "5. Поломка", "**Что показать:**"),
    "be": ("Дэманстрацыйны сцэнарый", "1. Звычайная змена", "5. Паломка", "**Што паказаць:**"),
    "sr-Cyrl": ("Демо сценарио", "1. Уобичајена смена", "5. Квар", "**Шта показати:**"),
    "sr-Latn": ("Demo scenario", "1. Uobičajena smena", "5. Kvar", "**Šta pokazati:**"),
}


@pytest.mark.parametrize("code", sorted(STORY))
def test_the_story_is_told_in_the_visitors_language(code: str) -> None:
    app = _in(code, AppTest.from_function(render_story, args=(str(EXAMPLE_PLANT), None)))
    assert not app.exception, app.exception
    shown = _shown(app)
    for text in STORY[code]:
        assert text in shown, (code, text)
    assert "Trimming centre" in shown  # the plant's names stay as the plant gives them
    assert "x10" in shown
    for step in story_steps(None):
        assert f". {step.title}" not in shown, (code, step.title)
    for english in ("Show:", "Say:", "minute 0 to 3", "Start the dashboard with --broker"):
        assert english not in shown, (code, english)


def test_the_story_in_english_is_the_one_it_was() -> None:
    app = AppTest.from_function(render_story, args=(str(EXAMPLE_PLANT), None)).run()
    shown = _shown(app)
    assert "1. A normal shift" in shown and "minute 0 to 3" in shown
    assert "**Show:** Press the button below: the spindle bearing of Trimming centre" in shown
    assert "A guided demo in 20 minutes" in shown


def test_the_controls_without_a_broker_say_so_in_the_language() -> None:
    app = _in("be", AppTest.from_function(render_controls, args=(str(EXAMPLE_PLANT), None)))
    assert texts(app.title) == "Кіраванне дэманстрацыяй"
    assert "--broker" in texts(app.info) and "Start the dashboard" not in texts(app.info)


def test_the_controls_speak_russian_with_the_codes_in_words(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    plant = plant_of_tenant(tmp_path, f"t{uuid.uuid4().hex[:8]}")
    status = MOULDING.model_copy(
        update={
            "scenario": "Injection moulding SME, early shift",
            "speed": 0.5,
            "stop_reasons": {"imm-01": ["mould_jam", "heater_fault", "spindle_crash"]},
            "pending": [PendingFault(asset="cnc-01", fault=FaultKind.TOOL_WEAR, waits_for="lunch")],
        }
    )
    # One run: AppTest formats a chosen option with the widget's format_func outside the
    # session, in English, so a rerun after choosing one cannot find it among Russian options.
    with announcing(mosquitto.url, plant, status):
        app = _in("ru", AppTest.from_function(render_controls, args=(str(plant), mosquitto.url)))
        assert not app.exception, app.exception
        shown = _shown(app)
        assert "Работает: МСП литья под давлением, ранняя смена, скорость x0,5" in shown
        assert "«износ инструмента» на станке Trimming centre ждёт окончания остановки «обед»" in (
            shown
        )
        assert [h.value for h in app.subheader] == [
            "Внести неисправность", "Вызвать поломку", "Скорость и смена", "Сценарий",
        ]  # fmt: skip
        [fault] = [s for s in app.selectbox if s.label == "Неисправность"]
        assert fault.options[0] == "износ подшипника"
        [reason] = [s for s in app.selectbox if s.label == "Причина остановки"]
        assert reason.options == [
            "заклинивание пресс-формы", "неисправность нагревателя", "spindle crash",
        ]  # fmt: skip
        assert app.select_slider[0].options[0] == "x0,5"
        assert "утечка сжатого воздуха" not in shown  # only the chosen scenario is described
        assert "середине смены начинает изнашиваться подшипник" in texts(app.caption)
    assert not re.search(r"\b(Inject a fault|Breakdown now|Stop reason|Running:)", _shown(app))


def test_the_kiosk_names_a_bad_interval_in_the_language() -> None:
    app = _in("sr-Cyrl", AppTest.from_function(render_kiosk_warning, args=("soon",)))
    warning = texts(app.warning)
    assert warning.startswith("rotate=soon: наведите колико секунди"), warning
    assert "најмање 5" in warning and "30 сек" in warning
