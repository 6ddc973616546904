"""Every dashboard page in headless Chromium, fed with a simulated and analysed shift, says
nothing in the browser console: no chart error or warning (NaN into plotly, empty subplots),
at the live sampling rate and after data at x60 (a value every 30 s of data time, as the
simulator's half-second ticks make it)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page

from analytics.service import AnalyticsService, AnalyticsSettings
from shopfloor.store import Point, Store
from shopfloor.store.embedded import EmbeddedStore
from simulators.plant_sim import PlantSim
from simulators.scenario import load_scenario
from tests.conftest import EXAMPLE_PLANT, ROOT
from tests.servers import Mosquitto
from tests.test_dashboard_driving import artifact, choose, open_page, start_dashboard
from tests.test_end_to_end import stop_all

PAGES = {  # by their titles in the sidebar, and their URL paths
    "Shop floor": "", "Demo controls": "controls", "Edge devices": "edge", "OEE": "oee",
    "Anomalies": "anomalies", "Energy": "energy", "Readiness": "readiness",
}  # fmt: skip
LIVE_UNTIL_H, X60_UNTIL_H = 5, 8  # the moulding shift: the bearing wears from 4 h


class Shift:
    """The moulding scenario's shift written to a store as the gateway would, in stretches."""

    def __init__(self, store: Store):
        self.loaded = load_scenario(ROOT / "examples" / "scenarios" / "moulding.yaml")
        self.floor = PlantSim(self.loaded, self.loaded.scenario.start or datetime.now())
        self.store, self.done_s = store, 0.0
        self.analysis = AnalyticsService(self.loaded.plant, store, AnalyticsSettings())
        self.units = {path: {s: signal.unit for s, signal in signals.items()}
                      for path, signals in self.loaded.plant.catalogue().items()}  # fmt: skip

    def run(self, until_s: float, every_s: float) -> None:
        """Sample every `every_s` up to `until_s`, then analyse as the service does live."""
        points: list[Point] = []
        while self.done_s < until_s:
            self.done_s += every_s
            self.floor.run_until(self.done_s)
            ts = self.floor.wall(self.done_s)
            for path, values in self.floor.sample().items():
                units = self.units[path]
                points += [Point(path, s, ts, v, unit=units[s]) for s, v in values.items()]
            points += [Point.from_event(e.path, e.event) for e in self.floor.take_outbox()]
        self.store.write(points)
        self.analysis.run_once(self.floor.wall(self.done_s))


class Console:
    """Console errors and warnings, and uncaught exceptions, of a page, by the path shown."""

    def __init__(self, page: Page):
        self.problems: list[str] = []
        self.where = ""
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.problems.append(f"{self.where}: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            where = message.location.get("url", "")
            self.problems.append(f"{self.where}: {message.type}: {message.text} ({where})")


def visit_every_page(page: Page, console: Console, url: str, stage: str) -> None:
    """Each page in turn from the sidebar, as a visitor goes (a deep link makes Streamlit probe
    for its server under the page's path first, a 404 in the console of its own)."""
    for title, name in PAGES.items():
        console.where = f"{stage} /{name}"
        page.locator("[data-testid='stSidebarNav'] a", has_text=title).click()
        page.wait_for_url(f"{url}/{name}?lang=en", timeout=30_000)  # the language kept
        settle(page)
        if name == "anomalies":  # the machine whose bearing wears: an open fault, a joint score
            choose(page, "Machine", "Trimming centre")
            settle(page)
        shot = artifact(f"console-{stage}-{name or 'shop-floor'}.png")
        page.screenshot(path=str(shot), full_page=True)


def settle(page: Page) -> None:
    page.wait_for_timeout(1500)  # the script starts; then it runs to its end
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=30_000)
    page.wait_for_timeout(1500)  # its charts draw


def time_ticks(page: Page) -> list[str]:
    return page.locator(".js-plotly-plot .xtick text").all_text_contents()


@pytest.mark.browser
def test_no_page_has_a_console_error_live_or_after_x60(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    store = EmbeddedStore(tmp_path / "store.db")
    shift = Shift(store)
    shift.run(LIVE_UNTIL_H * 3600, every_s=5.0)
    dashboard, port = start_dashboard(
        EXAMPLE_PLANT, f"sqlite:{tmp_path / 'store.db'}", mosquitto.url, tmp_path / "dash.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with open_page(url, artifact("console-anomalies.png")) as page:
            console = Console(page)
            visit_every_page(page, console, url, "live")
            shift.run(X60_UNTIL_H * 3600, every_s=30.0)
            visit_every_page(page, console, url, "x60")
            page.locator("[data-testid='stSidebarNav'] a", has_text="Anomalies").click()
            choose(page, "Window", "last 4 h")  # the live stretch's scores, and the x60 values
            settle(page)
            ticks = time_ticks(page)
            text = page.inner_text("body")
        assert console.problems == [], "\n".join(console.problems)
        # Times of day on the site's clock, not the "-1 ... 5" of an axis with nothing to draw.
        assert ticks and all(re.search(r"\d\d:\d\d", tick) for tick in ticks if tick), ticks
        assert "time (Europe/Minsk)" in text
    finally:
        stop_all([dashboard])
        store.close()
