"""The Anomalies and Edge devices pages, the store's error, the plant chooser and the stop and
fault reasons in the visitor's language: Russian words, Slavic plurals and a decimal comma."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import i18n as dashboard_i18n
from dashboard import labels
from dashboard.edge_devices import CAUSE_NAMES
from dashboard.labels import REASON_NAMES, event_text, note_text, reason_text
from dashboard.sandboxes import plant_choices, plant_label
from shopfloor import i18n
from shopfloor.messages import FaultKind
from shopfloor.plant import Plant, load_plant
from shopfloor.sandboxes import write_tenant_plant
from shopfloor.states import BREAKDOWN_REASONS
from shopfloor.store import StoreSettings, open_store
from simulators.live import OPERATOR_STOP
from simulators.machines import MICRO_STOP
from simulators.plant_sim import BREAKDOWN_EVENT
from simulators.scenario import PlannedStop, load_scenario
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.test_dashboard_analytics import analysed_store

SCENARIOS = sorted((ROOT / "examples" / "scenarios").glob("*.yaml"))


@pytest.fixture
def russian(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Texts outside a page (table look-ups, helpers) in Russian, as a Russian visitor's."""
    monkeypatch.setattr(dashboard_i18n, "language", lambda: "ru")
    monkeypatch.setattr(labels, "language", lambda: "ru")
    yield


def _simulators_reasons() -> set[str]:
    """Every reason code the simulator itself gives, and those of the example scenarios."""
    codes = {*BREAKDOWN_REASONS, *FaultKind, MICRO_STOP, OPERATOR_STOP, BREAKDOWN_EVENT}
    codes |= {"tool_change", PlannedStop.model_fields["reason"].default}
    for path in SCENARIOS:
        scenario = load_scenario(path).scenario
        codes |= {r for b in scenario.machines.values() for r in b.stop_reasons}
        codes |= {stop.reason for stop in scenario.planned_stops}
    return codes


def test_every_reason_the_simulator_gives_has_words_in_each_language() -> None:
    codes = _simulators_reasons()
    assert codes - set(REASON_NAMES) == set()
    for code in (c for c in i18n.LANGUAGES if c != i18n.SOURCE_LANGUAGE):
        words = i18n.translations(code)
        untranslated = [c for c in codes if words.gettext(REASON_NAMES[c]) == REASON_NAMES[c]]
        assert not untranslated, (code, untranslated)


def test_reasons_events_and_notes_in_english_are_as_before() -> None:
    assert reason_text("bearing_failure") == "bearing failure"
    assert reason_text("hydraulics") == "hydraulics"  # a plant's own code: its words
    assert event_text("bearing_wear") == "bearing wear"
    assert event_text("bearing_wear_pending") == "bearing wear, waiting for the machine to run"
    start = datetime(2026, 11, 2, 23, 50, tzinfo=UTC)
    plant = load_plant(EXAMPLE_PLANT)
    assert note_text("vibration: score 0.998 at 00:05:00Z", start, plant) == (
        "score 0.998 at 03:05:00"
    )
    assert note_text("injected", start, plant) == "injected"  # a note it does not know


def test_reasons_events_and_notes_in_russian(russian: None) -> None:
    assert reason_text("bearing_failure") == "отказ подшипника"
    assert reason_text("colour_changeover") == "переналадка на другой цвет"
    assert reason_text("hydraulics") == "hydraulics"
    assert event_text("bearing_wear_pending") == "износ подшипника, ожидает запуска станка"
    assert event_text("anomaly_temperature") == "аномалия: Температура"
    assert event_text("silent_noise") == "нет значений: Шум"
    start = datetime(2026, 11, 2, 23, 50, tzinfo=UTC)
    plant = load_plant(EXAMPLE_PLANT)
    assert note_text("reason=overheat_trip", start, plant) == "причина: отключение по перегреву"
    assert note_text("waits for the stop 'lunch' to end", start, plant) == (
        "ожидает окончания остановки: обед"
    )
    assert note_text("waits for the stop 'planned_stop' to end", start, plant).endswith(
        ": Плановый простой"
    )  # no reason given: the state it holds the machine in
    assert note_text("vibration: score 0.998 at 00:05:00Z", start, plant) == (
        "оценка 0,998 в 03:05:00"
    )
    assert note_text("vibration: no value for 12 min while running", start, plant) == (
        "нет значений 12 мин во время работы"
    )


def render_in(page: str, language: str, plant_file: str, store_url: str) -> None:
    """A page of the dashboard for AppTest, in a language (as the app sets it per visitor)."""
    import importlib

    import streamlit as st

    from shopfloor.plant import load_plant
    from shopfloor.store import StoreSettings, open_store

    st.session_state["lang"] = language
    module, function = page.split(":")
    page_function = getattr(importlib.import_module(module), function)
    page_function(load_plant(plant_file), open_store(StoreSettings(url=store_url)))


def test_the_anomalies_page_in_russian(tmp_path: Path, russian: None) -> None:
    url = f"sqlite:{tmp_path / 'store.db'}"
    store = open_store(StoreSettings(url=url))
    try:
        analysed_store(store)
    finally:
        store.close()
    app = AppTest.from_function(
        render_in,
        args=("dashboard.anomalies:anomalies_page", "ru", str(EXAMPLE_PLANT), url),
        default_timeout=60,
    ).run()
    window = app.selectbox(key="window")
    assert window.label == "Период"
    assert window.options[:3] == ["последний 1 ч", "последние 4 ч", "последние 8 ч"]
    window.select(4).run()  # AppTest formats the choice in the test's thread: Russian too
    app.selectbox(key="machine").select("Trimming centre").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Аномалии"
    assert [h.value for h in app.subheader] == ["События аномалий", "Нормальный период", "Сигналы"]
    [table] = app.dataframe
    rows = table.value.to_dict("records")
    assert list(rows[0]) == [
        "Станок", "Сигнал", "Когда (время данных, Europe/Minsk)", "Время реакции",
        "Последовавший простой", "Главные сигналы", "Пик",
    ]  # fmt: skip
    assert rows[0]["Последовавший простой"] == (
        "Остановлен (поломка): механическая неисправность через 40 мин, на 15 мин"
    )
    assert rows[0]["Пик"] == "оценка 9,300 в 19:05:00"
    assert rows[0]["Время реакции"] == "ожидает"
    assert rows[0]["Когда (время данных, Europe/Minsk)"] == "16.11.2026 19:00:00 – 19:20:00"
    assert [e.label for e in app.expander] == ["1 ожидает подтверждения"]
    assert [b.label for b in app.button] == ["Подтвердить"]
    shown = " | ".join(str(c.value) for c in app.caption)
    assert "Оранжевый: события аномалий сигнала" in shown and "0,99" in shown
    [chart] = app.get("plotly_chart")
    layout = json.loads(chart.proto.spec)["layout"]
    assert (layout["yaxis2"]["title"]["text"], layout["xaxis2"]["title"]["text"]) == (
        "оценка аномальности", "время (Europe/Minsk)",
    )  # fmt: skip
    assert next(s["label"]["text"] for s in layout["shapes"]) == "износ подшипника (имитация)"
    for english in ("Anomal", "Signals", "Acknowledge", "waiting", "Orange", "score "):
        assert english not in shown + " ".join(str(h.value) for h in app.subheader), english


def test_counts_on_the_floor_pages_take_slavic_plurals() -> None:
    ru = i18n.translations("ru")
    one, few, many = (
        ru.ngettext(
            "{count} message on the edge topics could not be read.",
            "{count} messages on the edge topics could not be read.",
            n,
        ).format(count=n)
        for n in (1, 2, 5)
    )
    assert (one.split()[1], few.split()[1], many.split()[1]) == (
        "сообщение", "сообщения", "сообщений",
    )  # fmt: skip
    waiting = [
        ru.ngettext(
            "{count} waiting for acknowledgement", "{count} waiting for acknowledgement", n
        ).format(count=n)
        for n in (1, 2, 5)
    ]
    assert waiting == [
        "1 ожидает подтверждения", "2 ожидают подтверждения", "5 ожидают подтверждения",
    ]  # fmt: skip


def render_edge_page(plant_file: str) -> None:
    """The Edge devices page for AppTest in Russian, on a fleet read from no broker."""
    from datetime import UTC, datetime, timedelta

    import streamlit as st

    from dashboard import edge_devices
    from dashboard.edge_devices import EdgeDeviceRow, EdgeFleet
    from shopfloor.plant import load_plant

    now = datetime.now(UTC)
    fleet = EdgeFleet(
        [
            EdgeDeviceRow("pi-gone", online=False, last_seen=None),
            EdgeDeviceRow(
                "pi-sick", online=True, last_seen=now, queue_depth=1234, queue_bytes=2560,
                dropped_total=0, broker_reconnects=3, source_reconnects=1, readings_per_s=12.5,
                sources="1/1", causes=("broker_disconnected", "forwarder_stalled"),
            ),
            EdgeDeviceRow("pi-slow", online=True, last_seen=now - timedelta(minutes=5)),
        ],
        undecodable=2,
    )  # fmt: skip
    edge_devices.read_edge_devices = lambda url, tenant, site: fleet  # type: ignore[assignment]
    st.session_state["lang"] = "ru"
    edge_devices.edge_devices_page(load_plant(plant_file), "mqtt://127.0.0.1:1")


def test_the_edge_devices_page_in_russian() -> None:
    app = AppTest.from_function(
        render_edge_page, args=(str(EXAMPLE_PLANT),), default_timeout=30
    ).run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Периферийные устройства"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {
        "Устройств в сети": "2 / 3", "Сообщений в очереди": "1\xa0234", "Отброшено сообщений": "0",
    }  # fmt: skip
    rows = app.dataframe[0].value.to_dict("records")
    assert list(rows[0])[:4] == ["Устройство", "Состояние", "Последняя связь", "Очередь"]
    assert [(r["Устройство"], r["Состояние"]) for r in rows] == [
        ("pi-gone", "не в сети"), ("pi-sick", "сбой"), ("pi-slow", "в сети"),
    ]  # fmt: skip
    assert rows[0]["Последняя связь"] == "нет статуса"
    assert rows[1]["Очередь, КБ"] == "2,5" and rows[1]["Показаний/с"] == "12,5"
    assert rows[2]["Последняя связь"] == "5 мин назад (устарело)"
    warnings = [w.value for w in app.warning]
    assert "Сбои: pi-sick (нет связи с брокером, пересылка остановилась)." in warnings
    assert "2 сообщения в темах периферийных устройств не удалось прочитать." in warnings
    assert any(w.startswith("Нет статуса более 30 с от: pi-slow") for w in warnings), warnings


def test_every_cause_an_edge_agent_gives_has_words() -> None:
    source = (ROOT / "edge" / "agent.py").read_text()
    checks = source.split("checks = {", 1)[1].split("}", 1)[0]
    causes = {line.split('"')[1] for line in checks.splitlines() if '"' in line}
    assert causes == set(CAUSE_NAMES)


def render_store_error() -> None:
    import streamlit as st

    from dashboard.store_errors import shows_store_errors
    from shopfloor.store import StoreError

    @shows_store_errors
    def page() -> None:
        raise StoreError("InfluxDB at http://127.0.0.1:9 unreachable")

    st.session_state["lang"] = "be"
    page()


def test_a_store_error_in_belarusian() -> None:
    app = AppTest.from_function(render_store_error).run()
    assert [e.value for e in app.error] == [
        "Не ўдаецца прачытаць сховішча даных: InfluxDB at http://127.0.0.1:9 unreachable"
    ]


def test_the_plant_chooser_names_a_sandbox_in_the_language(
    tmp_path: Path, example_plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tenant_plant(EXAMPLE_PLANT, "trainee-1", tmp_path)
    choices = plant_choices(example_plant, tmp_path)
    monkeypatch.setattr(dashboard_i18n, "language", lambda: "sr-Latn")
    assert plant_label(choices["trainee-1"], example_plant) == "polaznik trainee-1"
    assert plant_label(example_plant, example_plant) == (
        f"{example_plant.tenant.name} · {example_plant.site.name}"
    )
