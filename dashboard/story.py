"""The "Demo story" page: the guided 20-minute demo of docs/demo-story.md, for the centre's staff.

Each step says what to show, what to tell the visitors and for how long, links to the page it
uses, and, where the story drives the simulator, has a button that sends the command (through
the demo controls' publisher). docs/demo-story.md has the same steps with more to say and what to
do when something goes wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from dashboard.controls import Controls, speed_text
from dashboard.i18n import N_, _, ngettext
from dashboard.labels import number_text
from shopfloor.messages import Action, FaultKind, InjectFault, SetSpeed
from shopfloor.plant import Machine, Plant

WEAR_SIGNAL = "vibration"  # what bearing wear shows in (docs/simulator.md, section 4)
WEAR_S = 30 * 60  # simulated: three minutes at x10, then the bearing fails
STORY_SPEED = 10.0


@dataclass(frozen=True)
class Command:
    """A story button: its label and the commands it sends, in order."""

    label: str  # English, marked N_: may name {machine} and {speed}, as a step's texts
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Step:
    """One step of the story. Its texts are English, marked N_, and shown in the visitor's
    language; `show`, `say` and the command's label may name {machine} (the machine whose
    bearing wears) and {speed} (the story's simulation speed)."""

    title: str
    minutes: int
    pages: tuple[str, ...]  # URL paths of the pages it shows ("" is the shop floor)
    show: str  # what to click and where to look
    say: str  # what to tell the visiting SME owners
    command: Command | None = None


def wear_machine(plant: Plant) -> Machine | None:
    """The machine whose bearing wears in the story: the first with a vibration signal."""
    return next(
        (m for _path, m in plant.machines() if any(s.id == WEAR_SIGNAL for s in m.signals)),
        None,
    )


def story_steps(worn: Machine | None) -> list[Step]:
    """The story's steps; without a machine that can show bearing wear, the wear step has no
    button and the steps that name the machine say so."""
    wear = (
        Command(
            N_("Inject bearing wear on {machine} and speed up to {speed}"),
            (
                InjectFault(asset=worn.id, fault=FaultKind.BEARING_WEAR, duration_s=WEAR_S),
                SetSpeed(speed=STORY_SPEED),
            ),
        )
        if worn
        else None
    )
    return [
        Step(
            N_("A normal shift"), 3, ("",),
            N_(
                "Open the Shop floor. Point at each machine card: its state, parts, rejects, "
                "power and process values, updated every two seconds; then the environment "
                "sensors."
            ),
            N_(
                "This is a small moulding line like yours: a press, a trimming centre and a "
                "packaging station, retrofitted with cheap sensors and an edge box. Everything "
                "you see arrives live from the machines, as it would on your floor."
            ),
        ),
        Step(
            N_("OEE and losses"), 3, ("oee",),
            N_(
                "Open OEE, choose the line, then a machine. Show the last hour's availability, "
                "performance and quality, the shift table and the losses."
            ),
            N_(
                "OEE is the share of the planned time spent making good parts at full speed. "
                "Most SMEs guess 80 %; measured, it is often nearer 60 %. The losses show where "
                "the rest goes: waiting for the press, short stops, scrap."
            ),
        ),
        Step(
            N_("Inject bearing wear"), 1, ("",),
            N_(
                "Press the button below: the spindle bearing of {machine} starts to wear and "
                "the clock runs at {speed}, so the next 30 minutes of the shift take three."
            )
            if worn
            else N_(
                "This plant has no machine with a vibration sensor, so there is no button here: "
                "bearing wear needs one to show. In a plant with one, the button makes its "
                "spindle bearing wear and the clock run at {speed}."
            ),
            N_(
                "We now break something, on purpose. A bearing does not fail at once: it wears, "
                "and the wear shows in the vibration long before the machine stops."
            ),
            wear,
        ),
        Step(
            N_("The anomaly warns"), 3, ("anomalies", ""),
            N_(
                "Open Anomalies and choose {machine}: the vibration's anomaly score rises, an "
                "anomaly event opens (orange) next to the injected fault (red, the ground "
                "truth). On the Shop floor its card shows the anomaly."
            )
            if worn
            else N_(
                "Open Anomalies and choose the machine with the worn bearing: the vibration's "
                "anomaly score rises, an anomaly event opens (orange) next to the injected "
                "fault (red, the ground truth). On the Shop floor its card shows the anomaly."
            ),
            N_(
                "Nobody set a threshold: the analytics learnt what normal looks like for this "
                "machine and flags what is not. That is the warning your maintenance team gets, "
                "minutes to hours before the breakdown."
            ),
        ),
        Step(
            N_("The breakdown"), 3, ("",),
            N_(
                "On the Shop floor {machine} turns red: unplanned stop, bearing failure. The "
                "press before it fills the buffer and blocks, packaging after it starves. Then "
                "press the button below to go back to x1, so the stop lasts the rest of the "
                "demo."
            )
            if worn
            else N_(
                "On the Shop floor the machine with the worn bearing turns red: unplanned stop, "
                "bearing failure. The machine before it fills the buffer and blocks, the one "
                "after it starves. Then press the button below to go back to x1, so the stop "
                "lasts the rest of the demo."
            ),
            N_(
                "Without the warning this is where you find out: the whole line stops behind "
                "one bearing, for half an hour, often longer while the part is ordered."
            ),
            Command(N_("Back to x1"), (SetSpeed(speed=1),)),
        ),
        Step(
            N_("OEE drop and energy wasted"), 3, ("oee", "energy"),
            N_(
                "Open OEE: the machine's availability and OEE drop, the stop is the largest "
                "loss. Then Energy: the energy used in stopped, starved and blocked states, and "
                "its cost."
            ),
            N_(
                "This is what the breakdown cost: lost output, and energy paid for while "
                "nothing was made. A planned bearing change at the warning would have cost ten "
                "minutes."
            ),
        ),
        Step(
            N_("Readiness radar and recommendations"), 4, ("readiness",),
            N_(
                "Open Readiness, choose the visitors' kind of SME: the readiness index, the "
                "radar of its dimensions and, under Recommendations, the next steps."
            ),
            N_(
                "Where does your company stand? The radar shows it per dimension, and the "
                "recommendations say what to do first: usually the data you already have, "
                "before any new machine. We can fill in the questionnaire with you today."
            ),
        ),
    ]  # fmt: skip


# --- rendering ------------------------------------------------------------------------------


def story_page(plant: Plant, broker_url: str | None, pages: Sequence[StreamlitPage]) -> None:
    st.title(_("Demo story"))
    worn = wear_machine(plant)
    steps = story_steps(worn)

    def text(message: str) -> str:
        """A step's text in the visitor's language, with the machine and the speed in it."""
        return _(message).format(machine=worn.name if worn else "", speed=speed_text(STORY_SPEED))

    total = sum(s.minutes for s in steps)
    st.caption(
        ngettext(
            "A guided demo in {minutes} minute for visiting SME owners (docs/demo-story.md has "
            "it with more to say and what to do when something goes wrong). Start the demo at "
            "least ten minutes before the visitors arrive: the anomaly detection learns each "
            "machine's normal behaviour from its first minutes of running.",
            "A guided demo in {minutes} minutes for visiting SME owners (docs/demo-story.md has "
            "it with more to say and what to do when something goes wrong). Start the demo at "
            "least ten minutes before the visitors arrive: the anomaly detection learns each "
            "machine's normal behaviour from its first minutes of running.",
            total,
        ).format(minutes=number_text(total, digits=0))
    )
    by_path = {page.url_path: page for page in pages}
    send = _sender(plant, broker_url)
    elapsed = 0
    for number, step in enumerate(steps, 1):
        with st.container(border=True):
            st.subheader(f"{number}. {_(step.title)}")
            st.caption(
                _("minute {start} to {end}").format(
                    start=number_text(elapsed, digits=0),
                    end=number_text(elapsed + step.minutes, digits=0),
                )
            )
            st.markdown(_("**Show:** {text}").format(text=text(step.show)))
            st.markdown(_("**Say:** {text}").format(text=text(step.say)))
            for column, path in zip(st.columns(3), step.pages, strict=False):
                if path in by_path:
                    page = by_path[path]
                    column.page_link(page, label=_("Open {page}").format(page=page.title))
            if step.command:
                _button(text(step.command.label), step.command, send, key=f"story.{number}")
        elapsed += step.minutes


def _sender(plant: Plant, broker_url: str | None) -> Callable[[Command], str | None] | None:
    """Sends a story command, returning the error to show (None when sent); None without a
    broker to send to."""
    if not broker_url:
        return None
    controls = Controls(broker_url, plant)

    def send(command: Command) -> str | None:
        try:
            for action in command.actions:
                controls.send(action)
        except ConnectionError as exc:
            return _("The command was not sent: {error}").format(error=exc)
        return None

    return send


def _button(
    label: str, command: Command, send: Callable[[Command], str | None] | None, key: str
) -> None:
    if send is None:
        st.caption(_("Start the dashboard with --broker to drive the simulator from here."))
        return
    if not st.button(label, key=key):
        return
    problem = send(command)
    if problem:
        st.error(problem)
    else:
        st.success(_("Sent: {command}").format(command=label))
