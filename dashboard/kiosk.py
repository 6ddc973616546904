"""Kiosk mode: `?kiosk=1` on any page's URL turns the dashboard into a projector show.

For a 1920x1080 projector read from three metres: large type, no sidebar, toolbar or controls,
and the visitor pages in turn (shop floor, OEE, anomalies, energy, readiness), each for
`rotate` seconds (`?kiosk=1&rotate=30`, the default). Streamlit clears query parameters when
it changes page, so every switch passes them on: the next page is a kiosk page too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from dashboard.i18n import LANG_KEY, _, language
from dashboard.labels import age_text, number_text

# The pages shown in turn, by URL path ("" is the default page, the shop floor).
ROTATION = ("", "oee", "anomalies", "energy", "readiness")
DEFAULT_ROTATE_S = 30
MIN_ROTATE_S = 5
SHOWN_AT_KEY = "kiosk.shown_at"

# Rem-based sizes follow the root font size, so one rule scales the whole page for the room.
KIOSK_CSS = """
<style>
html { font-size: 26px; }
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stStatusWidget"], [data-testid="stButton"], [data-testid="stDownloadButton"],
[data-testid="stForm"], [data-testid="stNumberInput"], [data-testid="stSelectbox"],
[data-testid="stMultiSelect"], [data-testid="stRadio"], [data-testid="stSlider"],
[data-testid="stTooltipIcon"], [data-testid="stElementToolbar"],
[data-testid="stTabs"] [role="tablist"], .modebar-container { display: none; }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding: 1rem 2rem; }
</style>
"""


@dataclass(frozen=True)
class Kiosk:
    rotate_s: int = DEFAULT_ROTATE_S

    def query_params(self) -> dict[str, str]:
        """What the next page's URL must carry to stay a kiosk page."""
        return {"kiosk": "1", "rotate": str(self.rotate_s)}


def kiosk_from(params: Mapping[str, str]) -> tuple[Kiosk | None, str | None]:
    """The kiosk the URL asks for (None without `kiosk=1`), and what is wrong with its
    `rotate`, if anything (the default is used then)."""
    if params.get("kiosk") != "1":
        return None, None
    raw = params.get("rotate", str(DEFAULT_ROTATE_S))
    if not raw.isdigit() or int(raw) < MIN_ROTATE_S:
        problem = _(
            "rotate={raw}: give the seconds each page stays, a whole number of at least "
            "{least}; showing each for {default}"
        ).format(
            raw=raw,
            least=number_text(MIN_ROTATE_S, digits=0),
            default=age_text(DEFAULT_ROTATE_S),
        )
        return Kiosk(), problem
    return Kiosk(int(raw)), None


def next_page(pages: Sequence[StreamlitPage], current: StreamlitPage) -> StreamlitPage:
    """The rotation's page after `current`; its first when `current` is not in it."""
    by_path = {page.url_path: page for page in pages}
    shown = [by_path[path] for path in ROTATION if path in by_path]
    paths = [page.url_path for page in shown]
    if current.url_path not in paths:
        return shown[0]
    return shown[(paths.index(current.url_path) + 1) % len(shown)]


def navigate(pages: Sequence[StreamlitPage]) -> None:
    """Run the page the URL asks for, as a kiosk page when it says `kiosk=1`."""
    kiosk, problem = kiosk_from(st.query_params.to_dict())
    page = st.navigation(list(pages), position="hidden" if kiosk else "sidebar")
    if kiosk is not None:
        st.html(KIOSK_CSS)
        if problem:
            st.warning(problem)
        st.session_state[SHOWN_AT_KEY] = time.monotonic()
        _rotation(kiosk, next_page(pages, page))
    page.run()


def _rotation(kiosk: Kiosk, following: StreamlitPage) -> None:
    """Switch to the following page once this one has been shown for the kiosk's interval."""

    @st.fragment(run_every=kiosk.rotate_s)
    def rotate() -> None:
        shown_for = time.monotonic() - st.session_state.get(SHOWN_AT_KEY, time.monotonic())
        if shown_for >= kiosk.rotate_s - 1:  # the fragment's first run is the page's own
            params = kiosk.query_params() | {LANG_KEY: language()}  # the next page's language too
            st.switch_page(following, query_params=params)

    rotate()
