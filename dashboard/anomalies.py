"""The anomalies page: each machine's process signals with their anomaly scores, the anomaly
events the analytics service found (and the stop that followed, when one did), and the
operators' acknowledgements of them.

An acknowledgement is stored as its own series (`Point.acknowledgement`), stamped with the
event's start, whose value is when it was given: the response time is that minus the start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard.i18n import N_, _, ngettext
from dashboard.kpis import JUST_AFTER, clock_note
from dashboard.labels import (
    KPI_HELP,
    SILENT_PREFIX,
    axis_title,
    chart_time,
    note_text,
    number_text,
    reason_text,
    signal_name,
    signal_title,
    state_text,
    time_text,
)
from dashboard.store_errors import shows_store_errors
from shopfloor.learning import (
    LearnCause,
    LearnRequest,
    NormalModelDoc,
    read_model,
    read_request,
    request_point,
)
from shopfloor.messages import AssetPath, Event, EventType, LossLink
from shopfloor.plant import Plant
from shopfloor.store import (
    ACK_PREFIX,
    ANOMALY_EVENT_PREFIX,
    EVENT_PREFIX,
    SCORE_PREFIX,
    Point,
    Scope,
    Store,
    acknowledgements,
    anomaly_event_name,
    data_clock,
)

log = logging.getLogger(__name__)

WINDOW_HOURS = [1, 4, 8, 24, 72]
MAX_CHART_POINTS = 2000
REFRESH_S = 10.0
EXPANDED_ACKS = 5
TOP_SIGNALS = 3  # of an event's contributors in the table


@dataclass(frozen=True)
class AssetEvent:
    """An event of one machine, and when an operator acknowledged it (None: not yet)."""

    path: AssetPath
    machine: str
    event: Event
    acknowledged: datetime | None = None

    @property
    def signal(self) -> str:
        """The signal an anomaly event was found in, as its name spells it (lower case, `_`)."""
        return self.event.name.removeprefix(ANOMALY_EVENT_PREFIX)

    @property
    def response_s(self) -> float | None:
        if self.acknowledged is None:
            return None
        return (self.acknowledged - self.event.start).total_seconds()


def read_events(plant: Plant, store: Store, start: datetime, end: datetime) -> list[AssetEvent]:
    """The machines' events that began in [start, end), anomalies and faults, newest first."""
    names = {path: machine.name for path, machine in plant.machines()}
    series = [p for p in store.latest(Scope(plant.tenant.id, plant.site.id)) if p.asset in names]
    acks = acknowledgements(_history(store, series, ACK_PREFIX, start, end))
    found = []
    for point in _history(store, series, EVENT_PREFIX, start, end):
        try:
            event = point.as_event()
        except ValueError as exc:
            log.warning("skipped unreadable event %s of %s: %s", point.signal, point.asset, exc)
            continue
        acknowledged = acks.get((point.asset, event.name, event.start))
        found.append(AssetEvent(point.asset, names[point.asset], event, acknowledged))
    return sorted(found, key=lambda e: e.event.start, reverse=True)


def _history(
    store: Store, latest: list[Point], prefix: str, start: datetime, end: datetime
) -> list[Point]:
    """Every point in [start, end) of the series named `prefix...` among `latest`."""
    return [
        point
        for series in latest
        if series.signal.startswith(prefix)
        for point in store.history(series.asset, series.signal, start, end)
    ]


def acknowledge(store: Store, item: AssetEvent, at: datetime) -> AssetEvent:
    """Record that an operator acknowledged the event at `at` (never before it began)."""
    at = max(at, item.event.start)
    store.write([Point.acknowledgement(item.path, item.event, at)])
    return replace(item, acknowledged=at)


def machine_clock(store: Store, path: AssetPath) -> datetime | None:
    """The machine's newest point: the clock its events are stamped on, which a simulator at
    x60 runs ahead of the wall clock, so an acknowledgement is timed on it too."""
    return max((p.ts for p in store.latest(Scope.of(path))), default=None)


@dataclass(frozen=True)
class ScoredSignal:
    """A process signal and its anomaly score over a window."""

    signal: str
    unit: str
    values: list[Point]
    scores: list[Point]


def read_scored_signals(
    plant: Plant, store: Store, path: AssetPath, start: datetime, end: datetime
) -> list[ScoredSignal]:
    """Every signal of the machine that has anomaly scores, with its values and scores in
    [start, end), averaged over intervals when the window holds too many samples to draw."""
    units = {signal: s.unit for signal, s in plant.catalogue().get(path, {}).items()}
    every = (end - start) / MAX_CHART_POINTS
    step = every if every > timedelta(seconds=1) else None
    scored = sorted(
        p.signal.removeprefix(SCORE_PREFIX)
        for p in store.latest(Scope.of(path))
        if p.signal.startswith(SCORE_PREFIX)
    )
    return [
        ScoredSignal(
            signal,
            units.get(signal, ""),
            store.history(path, signal, start, end, step),
            store.history(path, SCORE_PREFIX + signal, start, end, step),
        )
        for signal in scored
    ]


# --- rendering ------------------------------------------------------------------------------


def anomalies_page(
    plant: Plant, store: Store, *, read_only: bool = False, can_learn: bool = False
) -> None:
    """`can_learn`: the visitor may declare a period normal (staff alone)."""
    st.title(_("Anomalies"))
    _anomalies(plant, store, read_only, can_learn)


@shows_store_errors
def _anomalies(plant: Plant, store: Store, read_only: bool, can_learn: bool) -> None:
    if data_clock(plant, store) is None:
        st.info(_("No analysis yet: scores appear once `shopfloor analytics` has analysed data."))
        return
    hours = st.selectbox(_("Window"), WINDOW_HOURS, format_func=window_text, key="window") or 1
    machines = {m.name: path for path, m in plant.machines()}
    name = st.selectbox(_("Machine"), list(machines), key="machine") or next(iter(machines))
    live_anomalies(plant, store, machines[name], timedelta(hours=hours), read_only, can_learn)


def window_text(hours: int) -> str:
    """A window's option: "last 4 h"."""
    return ngettext("last {hours} h", "last {hours} h", hours).format(hours=hours)


@st.fragment(run_every=REFRESH_S)
@shows_store_errors
def live_anomalies(
    plant: Plant,
    store: Store,
    path: AssetPath,
    window: timedelta,
    read_only: bool = False,
    can_learn: bool = False,
) -> None:
    now = data_clock(plant, store)
    if now is None:
        return
    start, end = now - window, now + JUST_AFTER
    st.caption(
        _("{clock_note}, every {interval}").format(
            clock_note=clock_note(plant, now, datetime.now(UTC)),
            interval=number_text(REFRESH_S, "s", digits=0),
        )
    )
    events = read_events(plant, store, start, end)
    anomalies = [e for e in events if e.event.type is EventType.ANOMALY]
    _event_table(plant, store, anomalies, read_only)
    model = read_model(store, path, now)
    normal_period(plant, store, path, now, model, can_learn)
    st.subheader(_("Signals"))
    machine_events = [e for e in events if e.path == path]
    signals = [s for s in read_scored_signals(plant, store, path, start, end) if _finite(s.scores)]
    st.caption(
        _("Orange: the signal's anomaly events. Red: injected faults (ground truth).")
        + "  \n"
        + (_model_score_help() if model else KPI_HELP["anomaly_score"])
        if signals
        else _(
            "No anomaly scores for this machine in this window yet: the detector first learns "
            "each signal's normal behaviour from its readings while the machine runs, then "
            "scores every new reading against it."
        )
    )
    declared = plant.catalogue().get(path, {})
    for scored in signals:
        title = signal_title(scored.signal, declared.get(scored.signal))
        st.plotly_chart(_signal_figure(plant, title, scored, machine_events, (start, now)))


def _model_score_help() -> str:
    return _(
        "Learnt normal period: the machine's score is a ratio to its alarm level (1 is the "
        "level) and each signal's score is its part of it."
    )


def normal_period(
    plant: Plant,
    store: Store,
    path: AssetPath,
    now: datetime,
    model: NormalModelDoc | None,
    can_learn: bool,
) -> None:
    """The machine's normal period: the model learnt (or that there is none, and the
    detectors learn as data comes), the last request's fate, and for staff the control that
    declares a period normal."""
    st.subheader(_("Normal period"))
    if model is None:
        st.caption(
            _(
                "None declared: the detectors learn each signal's normal behaviour from the "
                "data as it comes, faults included."
            )
        )
    else:
        st.caption(
            _(
                "Learnt from {start} to {end} on {rows} samples taken while running: the "
                "machine's anomaly events come from it, at alarm levels set on that period."
            ).format(
                **_period_texts(plant, model.start, model.end),
                rows=number_text(model.rows, digits=0),
            )
        )
        shortest = model.shift_not_covered(plant)
        if shortest is not None:
            st.warning(
                _(
                    "Learnt on less than a shift ({length}): a swing of the process slower than "
                    "the period (the hall's heat, a slow cycle) may go beyond what it held and "
                    "raise alarms. If it does, learn again on a whole shift."
                ).format(length=number_text(shortest.total_seconds() / 3600, "h", digits=1))
            )
        if model.rest_model is not None:
            st.caption(
                _(
                    "And on {rows} samples taken while it stood: a fault that begins in a stop "
                    "is seen before the machine runs again."
                ).format(rows=number_text(model.rest_rows, digits=0))
            )
    found = read_request(store, path, now)
    if found is not None and not found[1].learnt:
        request = found[1]
        if request.error:
            st.warning(
                _("Could not learn from {start} to {end}: {reason}").format(
                    **_period_texts(plant, request.start, request.end),
                    reason=_learn_failure(request),
                )
            )
        else:
            st.info(_learning_text(plant, request.start, request.end))
    if can_learn:
        _learn_form(plant, store, path, now, again=model is not None)


# What each cause of a failed learning says (`shopfloor.learning.LearnCause`).
LEARN_FAILURES: dict[LearnCause, str] = {
    "ends_before_start": N_("the period ends before it starts"),
    "no_readings": N_("no process readings in the store"),
    "not_running": N_("the machine was not running"),
    "too_few_rows": N_(
        "the period has {rows} samples with every signal while running, {needed} are needed"
    ),
    "constant_signal": N_("{signal} does not change over the period: it cannot be learnt"),
    "too_flat": N_("the period's scores are too flat to set an alarm level on"),
}


def _learn_failure(request: LearnRequest) -> str:
    """Why learning failed, in the reader's language; the service's own line for a cause this
    page does not know."""
    text = LEARN_FAILURES.get(request.cause) if request.cause else None
    if text is None:
        return request.error
    values = {
        name: number_text(value, digits=0) if isinstance(value, int) else signal_name(value)
        for name, value in request.cause_values.items()
    }
    try:
        return _(text).format(**values)
    except KeyError:
        return request.error


def _period_texts(plant: Plant, start: datetime, end: datetime) -> dict[str, str]:
    return {
        "start": time_text(start, plant, with_date=True),
        "end": time_text(end, plant, with_date=True),
    }


def _learn_form(plant: Plant, store: Store, path: AssetPath, now: datetime, again: bool) -> None:
    """From and to, on the site's clock (the last hour by default), and the button that asks the
    analytics service to learn that period."""
    zone = ZoneInfo(plant.site.timezone)
    local = now.astimezone(zone).replace(second=0, microsecond=0)
    with st.form(key=f"learn-{path.asset}"):
        st.caption(
            _("Learn normal from … to … (site time, {zone})").format(zone=plant.site.timezone)
        )
        columns = st.columns(4)
        earlier = local - timedelta(hours=1)
        start_day = columns[0].date_input(
            _("From"), earlier.date(), key=f"learn-from-day-{path.asset}"
        )
        start_time = columns[1].time_input(
            _("time"),
            earlier.time(),
            key=f"learn-from-time-{path.asset}",
            label_visibility="hidden",
        )
        end_day = columns[2].date_input(_("To"), local.date(), key=f"learn-to-day-{path.asset}")
        end_time = columns[3].time_input(
            _("time"), local.time(), key=f"learn-to-time-{path.asset}", label_visibility="hidden"
        )
        asked = st.form_submit_button(_("Learn again") if again else _("Learn normal"))
    if not asked:
        return
    start = datetime.combine(start_day, start_time, zone)
    end = datetime.combine(end_day, end_time, zone)
    if end <= start:
        st.error(_("The normal period must end after it starts."))
        return
    store.write([request_point(path, now, LearnRequest(start=start, end=end))])
    st.info(_learning_text(plant, start, end))


def _learning_text(plant: Plant, start: datetime, end: datetime) -> str:
    return _(
        "Learning from {start} to {end}: the analytics service takes it up within a minute."
    ).format(**_period_texts(plant, start, end))


def _event_table(
    plant: Plant, store: Store, anomalies: Sequence[AssetEvent], read_only: bool
) -> None:
    st.subheader(_("Anomaly events"))
    if not anomalies:
        st.caption(_("None in this window."))
        return
    st.dataframe(
        [_event_row(plant, a) for a in anomalies],
        hide_index=True,
        column_config={
            _("Followed by"): st.column_config.TextColumn(
                help=_(
                    "The first unplanned stop after the event, within the analytics link horizon"
                )
            ),
            _("Top signals"): st.column_config.TextColumn(
                help=_("Each signal's share of the score that raised the event: check these first")
            ),
        },
    )
    waiting = [a for a in anomalies if a.acknowledged is None]
    if not waiting or read_only:  # a visitor's view acknowledges nothing
        return
    # A noisy line can raise dozens of events: past a few, the buttons fold away.
    label = ngettext(
        "{count} waiting for acknowledgement", "{count} waiting for acknowledgement", len(waiting)
    ).format(count=len(waiting))
    with st.expander(label, expanded=len(waiting) <= EXPANDED_ACKS):
        for item in waiting:
            text, button = st.columns([4, 1])
            when = _("{time} ({zone}, data time)").format(
                time=time_text(item.event.start, plant), zone=plant.site.timezone
            )
            text.markdown(f"**{item.machine}** · {signal_text(item)} · {when}")
            button.button(
                _("Acknowledge"),
                key=f"ack-{item.path.asset}-{item.event.name}-{item.event.start.isoformat()}",
                on_click=_acknowledge_now,
                args=(store, item),
            )


def _acknowledge_now(store: Store, item: AssetEvent) -> None:
    clock = machine_clock(store, item.path) or item.event.start
    acknowledge(store, item, clock)


def _event_row(plant: Plant, item: AssetEvent) -> dict[str, object]:
    event, loss = item.event, item.event.loss
    start = time_text(event.start, plant, with_date=True)
    return {
        _("Machine"): item.machine,
        _("Signal"): signal_text(item),
        _("When (data time, {zone})").format(zone=plant.site.timezone): (
            _("{start} to {end}").format(start=start, end=time_text(event.end, plant))
            if event.end
            else _("{start}, ongoing").format(start=start)
        ),
        _("Response"): _response_text(item.response_s),
        _("Followed by"): _loss_text(loss) if loss else "",
        _("Top signals"): contributors_text(plant, item),
        # the signal has a column of its own; the loss link matters more than the peak
        _("Peak"): peak_text(plant, item),
    }


def signal_text(item: AssetEvent) -> str:
    """The signal an anomaly event is about: its name, or that it fell silent."""
    if item.signal.startswith(SILENT_PREFIX):
        silent = signal_name(item.signal.removeprefix(SILENT_PREFIX))
        return _("{signal} (no values)").format(signal=silent)
    return signal_name(item.signal)


def contributors_text(plant: Plant, item: AssetEvent, top: int = TOP_SIGNALS) -> str:
    """The signals that drove the event, largest share first: "Flow (l/min) 61 %, ...";
    empty for an event nothing explains (a silence, a streaming detector's event)."""
    declared = plant.catalogue().get(item.path, {})
    shares = list(item.event.contributions.items())[:top]
    return ", ".join(
        f"{signal_title(signal, declared.get(signal))} {number_text(100 * share, '%', digits=0)}"
        for signal, share in shares
    )


def peak_text(plant: Plant, item: AssetEvent) -> str:
    """The analysis' note ("score 0.998 at 07:27:45Z") in the visitor's language, with the
    peak's time on the site's clock (the peak is within a day of the event's start)."""
    return note_text(item.event.note, item.event.start, plant)


def _loss_text(loss: LossLink) -> str:
    stop = state_text(loss.state) + (f": {reason_text(loss.reason)}" if loss.reason else "")
    return _("{stop} {lead} min after, for {duration} min").format(
        stop=stop,
        lead=number_text(loss.lead_s / 60, digits=0),
        duration=number_text(loss.duration_s / 60, digits=0),
    )


def _response_text(response_s: float | None) -> str:
    if response_s is None:
        return _("waiting")
    return _("{minutes} min").format(minutes=number_text(response_s / 60, digits=1))


def _signal_figure(
    plant: Plant,
    title: str,
    scored: ScoredSignal,
    events: Sequence[AssetEvent],
    window: tuple[datetime, datetime],
) -> go.Figure:
    """The signal above its score (the score alone for the machine's joint score, which has
    no signal of its own), with its anomaly events (orange) and the injected faults (red, the
    simulator's ground truth) as bands across both, on the window's span in site time."""
    values, scores = _finite(scored.values), _finite(scored.scores)
    rows = 2 if values else 1
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.05)
    if values:
        _add_line(figure, plant, values, title, row=1)
    _add_line(figure, plant, scores, _("anomaly score"), row=rows)
    last = (values or scores)[-1].ts
    own = anomaly_event_name(scored.signal)
    # One layout update: add_vrect re-validates the whole layout per band, seconds for dozens.
    bands = [_band(plant, item, last) for item in events if item.event.type is EventType.FAULT]
    bands += [_band(plant, item, last) for item in events
              if item.event.name == own or scored.signal in _drivers(item.event)]  # fmt: skip
    figure.update_layout(title=title, height=380 if values else 240, showlegend=False, shapes=bands)
    figure.update_xaxes(type="date", range=[chart_time(t, plant) for t in window])
    figure.update_xaxes(title_text=axis_title(plant), row=rows, col=1)
    figure.update_yaxes(title_text=_("anomaly score"), row=rows, col=1)
    return figure


def _drivers(event: Event) -> list[str]:
    """The signals an event names among its top contributors: its band shows on their charts."""
    return list(event.contributions)[:TOP_SIGNALS]


def _finite(points: Sequence[Point]) -> list[Point]:
    """The points a chart can draw: a mean over an empty interval is no number."""
    return [p for p in points if isinstance(p.value, int | float) and math.isfinite(p.value)]


def _add_line(
    figure: go.Figure, plant: Plant, points: Sequence[Point], name: str, row: int
) -> None:
    times = [chart_time(p.ts, plant) for p in points]
    figure.add_scatter(x=times, y=[p.value for p in points], name=name, row=row, col=1)


def _band(plant: Plant, item: AssetEvent, last: datetime) -> dict[str, object]:
    """A band over the event's span, up to the newest sample while it lasts."""
    event = item.event
    fault = event.type is EventType.FAULT
    return {
        "type": "rect",
        "xref": "x",
        "yref": "paper",
        "x0": chart_time(event.start, plant),
        "x1": chart_time(event.end or max(last, event.start), plant),
        "y0": 0,
        "y1": 1,
        "fillcolor": "red" if fault else "orange",
        "opacity": 0.15,
        "line": {"width": 0},
        "layer": "below",
        "label": {
            "text": _("{fault} (injected)").format(fault=reason_text(event.name)) if fault else "",
            "textposition": "top left",
            "font": {"size": 11},
        },
    }
