"""Every page's answer to a store it cannot read: one error on the page, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

import streamlit as st

from dashboard.i18n import _
from shopfloor.store import StoreError

P = ParamSpec("P")


def shows_store_errors(render: Callable[P, None]) -> Callable[P, None]:
    """Render as usual; a StoreError (database down, bad credentials) ends the render with an
    error naming the cause, and the next rerun tries again."""

    @functools.wraps(render)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            render(*args, **kwargs)
        except StoreError as exc:
            st.error(_("The store cannot be read: {error}").format(error=exc))

    return guarded
