"""The dashboard's language: chosen per visitor, kept while they move between pages.

The language is, first, `?lang=ru` on the page's URL; then the one this session chose before
(Streamlit drops the URL's parameters when it changes page; the session keeps the choice and
the URL gets it back); then the plant file's `site.language`; then the browser's locale; else
English. The sidebar's menu changes it. Texts are marked `_("...")` (`N_` in tables read later,
`ngettext` for counts) and translated in the visitor's language at the moment they are shown.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from shopfloor import i18n
from shopfloor.i18n import N_ as N_  # re-exported: pages mark table texts with it
from shopfloor.plant import Plant

LANG_KEY = "lang"  # the query parameter and the session-state key alike
MENU_KEY = "i18n.menu"


def language() -> str:
    """The visitor's language; English outside a Streamlit session (tests, the CLI)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return i18n.SOURCE_LANGUAGE
    return str(st.session_state.get(LANG_KEY, i18n.SOURCE_LANGUAGE))


def _(message: str) -> str:
    """The message in the visitor's language."""
    return i18n.translations(language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The message for `count` things in the visitor's language and its plural forms."""
    return i18n.translations(language()).ngettext(singular, plural, count)


def choose_language(plant: Plant) -> str:
    """Settle this run's language (see the module's docstring) and put it on the URL."""
    asked = st.query_params.get(LANG_KEY)
    chosen = (
        (asked if asked in i18n.LANGUAGES else None)
        or st.session_state.get(LANG_KEY)
        or plant.site.language
        or i18n.match_language(st.context.locale)
        or i18n.SOURCE_LANGUAGE
    )
    st.session_state[LANG_KEY] = chosen
    if st.query_params.get(LANG_KEY) != chosen:
        st.query_params[LANG_KEY] = chosen
    return str(chosen)


def language_menu() -> None:
    """The sidebar's language menu, each language named in itself."""
    st.session_state[MENU_KEY] = language()
    st.sidebar.selectbox(
        "🌐",
        i18n.LANGUAGES,
        key=MENU_KEY,
        format_func=i18n.language_name,
        on_change=_switch_language,
        label_visibility="collapsed",
    )


def _switch_language() -> None:
    chosen = st.session_state[MENU_KEY]
    st.session_state[LANG_KEY] = chosen
    st.query_params[LANG_KEY] = chosen


_MINUTE_MS, _DAY_MS = 60_000, 86_400_000


def chart_separators() -> str:
    """Plotly's `separators` in the visitor's language: the decimal sign, then the grouping
    one (".," in English, ", " in Russian, ",." in Serbian), from CLDR."""
    locale = i18n.babel_locale(language())
    symbols = locale.number_symbols[locale.default_numbering_system]
    return f"{symbols['decimal']}{symbols['group']}"


def chart_date_format() -> str:
    """The language's numeric date as a d3 time format (plotly's): %d.%m.%Y in Russian.
    Plotly names months in English only, so a chart's dates are numeric, as on the page."""
    pattern = i18n.numeric_date_pattern(language())
    for letters, directive in (("y+", "%Y"), ("M+", "%m"), ("d+", "%d")):
        pattern = re.sub(letters, directive, pattern)
    return pattern.replace("'", "")


def _is_time(values: object) -> bool:
    if values is None or isinstance(values, str):
        return False
    first = next(iter(np.asarray(values).ravel()), None)
    return isinstance(first, datetime | date | np.datetime64)


def localised(figure: go.Figure) -> go.Figure:
    """A chart in the visitor's language: the language's decimal and group separators, and
    numeric dates on a time axis."""
    figure.update_layout(separators=chart_separators())
    if any(_is_time(getattr(trace, "x", None)) for trace in figure.data):
        day = chart_date_format()
        figure.update_xaxes(
            hoverformat=f"{day} %H:%M:%S",
            tickformatstops=[
                {"dtickrange": [None, _MINUTE_MS], "value": "%H:%M:%S"},
                {"dtickrange": [_MINUTE_MS, _DAY_MS], "value": "%H:%M"},
                {"dtickrange": [_DAY_MS, None], "value": day},
            ],
        )
    return figure
