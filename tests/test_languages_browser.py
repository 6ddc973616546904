"""Every page of the live demo in every language, as a visitor's Chromium shows it.

The real demo runs (`python -m launcher demo` on the moulding scenario); each page is opened
with `?lang=xx` and its text (the HTML's and the charts' SVG) is searched for what a forgotten
translation leaves: an English page name in the navigation, an English sentence of the
catalogue, a `{placeholder}` never filled, an exception. Names the plant file gives (machines,
lines, signal labels) are English in the example plant and are left out of the search: they
stay as the plant gives them. Each page leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator

import pytest
import yaml
from babel.messages.pofile import read_po
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from readiness.catalogue import CURRENT
from shopfloor import i18n
from shopfloor.plant import Plant, load_plant
from tests.conftest import ROOT
from tests.servers import require_binary
from tests.test_dashboard_driving import artifact
from tests.test_demo import Demo, start_demo
from tests.test_demo_day import chromium, scenario_on_free_ports, stop_demo

PAGES = ("", "story", "controls", "edge", "oee", "anomalies", "energy", "readiness")
NAVIGATION = (
    "Shop floor", "Demo story", "Demo controls", "Edge devices", "Anomalies", "Energy",
    "Readiness",
)  # fmt: skip
# Serbian Latin is Serbian Cyrillic transliterated (test_i18n holds them equal), so walking the
# Cyrillic pages covers its texts; a browser set to Serbian Latin reads a page in the next test.
WALKED = [code for code in i18n.LANGUAGES if code not in (i18n.SOURCE_LANGUAGE, "sr-Latn")]
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
FIRST_READINGS_S = 120
STREAMLIT_TEXTS = ("Skip to main content",)  # Streamlit's own, in English in every app


def plant_names(plant: Plant) -> list[str]:
    """Every name, label and description the plant file and the demo SMEs' answers give,
    longest first (so that a name inside another is removed after it)."""
    names: set[str] = set()

    def collect(part: object) -> None:
        if isinstance(part, dict):
            for key, value in part.items():
                if key in ("name", "label", "description") and isinstance(value, str) and value:
                    names.add(value)
                collect(value)
        elif isinstance(part, list):
            for item in part:
                collect(item)

    collect(plant.model_dump())
    for answers in (ROOT / "examples" / "readiness").glob("*.yaml"):  # the demo's SMEs
        collect(yaml.safe_load(answers.read_text(encoding="utf-8")))
    return sorted(names, key=len, reverse=True)


def english_sentences(code: str) -> list[str]:
    """The catalogue's English texts that a translated page must not show: each run of words
    between placeholders that is translated differently and is long enough to be a phrase
    rather than a shared word (kWh, OEE, PM2.5)."""
    with i18n.catalogue_path(code).open("rb") as po:
        catalogue = read_po(po, locale=code.replace("-", "_"))
    found: set[str] = set()
    for message in catalogue:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        string = message.string if isinstance(message.string, str) else (message.string or [""])[0]
        if string == msgid:
            continue
        for part in PLACEHOLDER.split(msgid):
            words = re.findall(r"[A-Za-z][A-Za-z'-]+", part)
            if len(words) >= 3:
                found.add(" ".join(words))
    return sorted(found)


def words_of(text: str) -> str:
    """Text reduced to its words, one space apart: how english_sentences are matched."""
    return " ".join(re.findall(r"[A-Za-z][A-Za-z'-]+|[^\sA-Za-z]+", text))


def settled_text(page: Page) -> str:
    """The page's text once Streamlit has drawn it (EVERY_TEXT)."""
    page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=60_000)
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function(
            "!document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=20_000
        )
    time.sleep(2)  # the page's last elements and charts after the script's run
    return str(page.evaluate(EVERY_TEXT))


# Every text node of the page, one per line: hidden tabs and closed expanders too, and the
# charts' SVG text (plotly draws titles, axes and legends as SVG); not styles or scripts.
EVERY_TEXT = """() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const texts = [];
    while (walker.nextNode()) {
        const parent = walker.currentNode.parentElement;
        if (parent && !["STYLE", "SCRIPT", "NOSCRIPT"].includes(parent.tagName)) {
            texts.push(walker.currentNode.textContent);
        }
    }
    return texts.join("\\n");
}"""


def forgotten(text: str, code: str, plant: Plant) -> list[str]:
    """What on a page in `code` is still English or unfilled."""
    for name in (*plant_names(plant), *STREAMLIT_TEXTS):
        text = text.replace(name, " ")
    problems = [f"navigation {label!r}" for label in NAVIGATION if re.search(rf"\b{label}\b", text)]
    problems += [f"placeholder {p!r}" for p in PLACEHOLDER.findall(text)]
    spoken = words_of(text)
    problems += [f"English {s!r}" for s in english_sentences(code) if s in spoken]
    if code != "sr-Latn" and code != i18n.SOURCE_LANGUAGE:  # the Cyrillic ones
        problems += [f"Latin words {run!r}" for run in latin_runs(text)]
    return problems


# Latin words a Cyrillic page may show: codes and names of standards, units, products.
LATIN_WORDS = {
    "OEE", "SMED", "MTBF", "MTTR", "OPC", "UA", "MQTT", "Lean", "kWh", "kW", "Wh", "PM", "CO",
    "RMS", "ISO", "ERP", "MES", "CSV", "PDF", "JSON", "SME", "WIP", "TPM", "kanban", "shopfloor",
    "Streamlit", "InfluxDB", "Mosquitto", "Node-RED", "IoT", "CO2", "dB", "A", "RH", "min", "s",
    "h", "Wi-Fi", "VDMA", "IMPULS", "acatech",
}  # fmt: skip


def latin_runs(text: str) -> list[str]:
    """Runs of three or more Latin words that are not codes or names of things: on a page in
    Cyrillic, a sentence someone forgot to mark for translation."""
    runs = []
    for run in re.findall(r"[A-Za-z][A-Za-z'-]*(?:[ ,]+[A-Za-z][A-Za-z'-]*){2,}", text):
        words = [w for w in re.split(r"[ ,]+", run) if w and w not in LATIN_WORDS]
        if len(words) >= 3:
            runs.append(run)
    return sorted(set(runs))


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Demo, Plant]]:
    """One live demo for the module's tests: they only read its pages."""
    tmp_path = tmp_path_factory.mktemp("demo")
    require_binary("mosquitto")
    scenario = scenario_on_free_ports(tmp_path)
    demo = start_demo(tmp_path, "mosquitto", "--scenario", str(scenario))
    try:
        demo.wait_until_up()
        deadline = time.monotonic() + FIRST_READINGS_S
        while not demo.machines_with_data() and time.monotonic() < deadline:
            time.sleep(1)
        assert demo.machines_with_data(), f"no readings; the demo printed {demo.output}"
        yield demo, load_plant(tmp_path / "plant.yaml")
    finally:
        stop_demo(demo)


@pytest.mark.browser
def test_every_page_in_every_language_has_nothing_left_in_english(
    running_demo: tuple[Demo, Plant],
) -> None:
    problems: list[str] = []
    demo, plant = running_demo
    with chromium() as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        url = f"http://127.0.0.1:{demo.dashboard_port}"
        for code in WALKED:
            for path in PAGES:
                page.goto(f"{url}/{path}?lang={code}", timeout=60_000)
                text = settled_text(page)
                page.screenshot(path=str(artifact(f"lang-{code}-{path or 'floor'}.png")))
                if page.locator('[data-testid="stException"]').count():
                    problems.append(f"{code} /{path}: an exception is shown")
                problems += [f"{code} /{path}: {p}" for p in forgotten(text, code, plant)]
                if path == "readiness":  # its questionnaire is on a tab not shown at first
                    item = i18n.translations(code).gettext(CURRENT.items[-1].text)
                    assert item in text, f"{code}: the questionnaire tab is not searched"
        problems += [f"page error: {e}" for e in errors]
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_the_language_stays_while_moving_between_pages_and_english_is_whole(
    running_demo: tuple[Demo, Plant],
) -> None:
    demo, plant = running_demo
    with chromium() as page:
        url = f"http://127.0.0.1:{demo.dashboard_port}"
        page.goto(f"{url}/?lang=ru", timeout=60_000)
        settled_text(page)
        translated_oee = page.locator('[data-testid="stSidebarNav"] a').nth(4)
        translated_oee.click()
        page.wait_for_url(re.compile(r"/oee\?lang=ru"), timeout=30_000)
        assert not forgotten(settled_text(page), "ru", plant)

        page.goto(f"{url}/energy?lang=en", timeout=60_000)
        english = settled_text(page)
        assert all(label in english for label in NAVIGATION), english

        browser = page.context.browser
        assert browser is not None
        serbian = browser.new_page(locale="sr-Latn-RS")  # a visitor's browser set to Serbian
        serbian.goto(url, timeout=60_000)
        assert not forgotten(settled_text(serbian), "sr-Latn", plant)
        assert "lang=sr-Latn" in serbian.url
