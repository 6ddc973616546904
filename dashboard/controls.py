"""The demo controls page: commands to a running simulator over the broker, and its status.

The simulator keeps its status (scenario, the scenarios it can load, speed) retained on the
broker and announces it again after every command. The page reads it afresh on every rerun,
but a read can come back empty on a busy machine, so the page remembers the last status it saw
rather than forget the simulator (and its scenarios) until the next click; and after a command
it waits for the simulator's new announcement, so what it shows is the state after the command.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import streamlit as st
from babel.numbers import format_decimal

from dashboard.i18n import N_, _, language
from dashboard.labels import reason_text
from shopfloor import i18n
from shopfloor.messages import (
    COMPRESSOR_FAULTS,
    Action,
    Breakdown,
    FaultKind,
    InjectFault,
    LoadScenario,
    MessageError,
    ResetShift,
    SetSpeed,
    SimulatorStatus,
    control_topic,
    decode_status,
    encode_command,
    status_topic,
)
from shopfloor.mqtt import publish_once, read_retained
from shopfloor.plant import Plant
from shopfloor.states import BREAKDOWN_REASONS

SPEEDS = [1, 10, 60, 600, 1000]
READ_TIMEOUT_S = 3.0  # the retained status arrives in milliseconds; this is for a busy machine
ANNOUNCE_TIMEOUT_S = 3.0
FAULT_ANNOUNCE_S = 1.0  # a fault or breakdown changes the status only when a fault must wait
POLL_S = 0.1
STATUS_KEY = "controls.simulator_status"

# The example scenarios by file name (what the simulator offers to load): the name and the
# description their files give, for the staff choosing one.
SCENARIOS = {
    "moulding": (
        N_("Injection moulding SME, early shift"),
        N_(
            "A normal early shift with a breakfast break and a colour changeover on the press. "
            "Around mid-shift the trimming centre's spindle bearing starts to wear: its "
            "vibration rises for 90 minutes before the bearing fails and the line loses half an "
            "hour."
        ),
    ),
    "moulding-bad-day": (
        N_("Injection moulding SME, a bad day"),
        N_(
            "The press's barrel heater control drifts and the melt overheats until the press "
            "trips; the trimming centre's tool wears through the morning and scrap climbs until "
            "it is changed; the packaging station's belt-speed sensor drops out for a while."
        ),
    ),
    "machining": (
        N_("Metal-machining SME, day shift"),
        N_(
            "Two CNC machines working independently on small batches of DN50 and DN80 flanges, "
            "with a lunch break and a logged setup at every size change. Tool wear on the "
            "turning centre raises scrap and spindle load until a tool change; overheating on "
            "the machining centre ends in a thermal trip."
        ),
    ),
    "packaging": (
        N_("Food-packaging SME, two shifts and a night"),
        N_(
            "Filler, sealer and cartoner in a row with small buffers between them; the filler "
            "is the bottleneck. Micro-stops are frequent; a film change stops the sealer "
            "mid-shift. From the evening on, a compressed-air leak makes the compressor draw "
            "power through the night."
        ),
    ),
}
_SCENARIO_NAMES = {name for name, _description in SCENARIOS.values()}


def scenario_text(name: str) -> str:
    """A running scenario's name: an example scenario's in the visitor's language, another's
    as its file gives it."""
    return _(name) if name in _SCENARIO_NAMES else name


def speed_text(speed: float) -> str:
    """A simulation speed as the slider shows it: x10, x0,5 (no grouping: x1000)."""
    return "x" + format_decimal(speed, format="0.###", locale=i18n.babel_locale(language()))


class Controls:
    """Drives the simulator of one plant's site."""

    def __init__(self, broker_url: str, plant: Plant, read_timeout_s: float = READ_TIMEOUT_S):
        self.broker_url = broker_url
        self.tenant, self.site = plant.tenant.id, plant.site.id
        self.read_timeout_s = read_timeout_s

    def send(self, action: Action) -> None:
        """Publish a command; raises ConnectionError naming the broker if it cannot."""
        publish_once(self.broker_url, control_topic(self.tenant, self.site), encode_command(action))

    def status(self) -> SimulatorStatus | None:
        """What the running simulator last announced, or None if none did."""
        try:
            topic = status_topic(self.tenant, self.site)
            payload = read_retained(self.broker_url, topic, self.read_timeout_s)
        except ValueError:
            return None
        if payload is None:
            return None
        try:
            return decode_status(payload)
        except MessageError:
            return None

    def announced_after(
        self, before: SimulatorStatus | None, timeout_s: float = ANNOUNCE_TIMEOUT_S
    ) -> SimulatorStatus | None:
        """The status once it differs from `before` (the simulator announces it again after
        each command, within milliseconds), or the one read at the deadline if it did not
        change (a command that changed nothing, or a simulator that is not running)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            if (status is not None and status != before) or time.monotonic() >= deadline:
                return status
            time.sleep(POLL_S)


def slider_speeds(current: float | None) -> list[float]:
    """The speeds to offer: the usual ones and the simulator's own, which the CLI may have set
    to any other value, so that the slider can start where the simulator is."""
    return sorted({*SPEEDS, current} if current is not None else SPEEDS)


def remembered(status: SimulatorStatus | None) -> SimulatorStatus | None:
    """The status just read, else the last one this browser session saw: one read that came
    back empty must not make the page forget the simulator and hide its scenarios."""
    if status is not None:
        st.session_state[STATUS_KEY] = status
        return status
    last: SimulatorStatus | None = st.session_state.get(STATUS_KEY)
    return last


# --- rendering ------------------------------------------------------------------------------


def controls_page(plant: Plant, broker_url: str | None) -> None:
    st.title(_("Demo controls"))
    if not broker_url:
        st.info(_("Start the dashboard with --broker to drive a simulator."))
        return
    controls = Controls(broker_url, plant)
    status_line = st.empty()  # filled last: with the status after any command of this run
    read = controls.status()
    status = remembered(read)
    last_seen = None if read is not None else status  # until a command's answer replaces it
    status = _inject(plant, controls, status)
    status = _breakdown(plant, controls, status)
    status = _speed_and_shift(controls, status)
    status = _scenario(controls, status)
    with status_line.container():
        _status_text(status, fresh=status is not last_seen)
        _pending(plant, status)


def _status_text(status: SimulatorStatus | None, fresh: bool) -> None:
    if status is None:
        st.warning(_("No simulator is running for this plant (none has announced itself)."))
        return
    values = {"scenario": scenario_text(status.scenario), "speed": speed_text(status.speed)}
    if fresh:
        st.caption(_("Running: {scenario}, at {speed}").format(**values))
    else:
        st.caption(
            _(
                "Running: {scenario}, at {speed} (as last seen: the broker did not answer just now)"
            ).format(**values)
        )


def _inject(
    plant: Plant, controls: Controls, status: SimulatorStatus | None
) -> SimulatorStatus | None:
    machines = machine_names(plant)
    with st.form("inject"):
        st.subheader(_("Inject a fault"))
        machine = st.selectbox(_("Machine"), list(machines), format_func=lambda m: machines[m])
        fault = st.selectbox(_("Fault"), list(FaultKind), format_func=reason_text)
        minutes = st.number_input(_("Duration (simulated minutes)"), 1, 24 * 60, 20)
        if not (st.form_submit_button(_("Inject fault")) and machine and fault):
            return status
    kind = FaultKind(fault)
    problem = plant.injection_problem(machine, kind)
    if problem:
        st.error(_injection_problem_text(machines[machine], kind, problem))
        return status
    action = InjectFault(asset=machine, fault=kind, duration_s=minutes * 60)
    done = _("{fault} sent to {machine}").format(fault=reason_text(kind), machine=machines[machine])
    return _send(controls, action, done, status)


def _injection_problem_text(machine: str, fault: FaultKind, problem: str) -> str:
    """Why the fault cannot go to the machine, for people: of Plant.injection_problem's
    answers only a leak on a machine that is not a compressor can come from this form (its
    machines are the plant's); any other is shown as it is."""
    if fault in COMPRESSOR_FAULTS:
        return _("{machine} is not a compressor: an air leak needs one").format(machine=machine)
    return problem


def machine_names(plant: Plant) -> dict[str, str]:
    return {machine.id: machine.name for _path, machine in plant.machines()}


def breakdown_reasons(status: SimulatorStatus | None, machine: str) -> list[str]:
    """The reasons to offer for a machine: those its simulator announced (its scenario's own
    first), else the platform's common ones."""
    announced = status.stop_reasons.get(machine) if status else None
    return announced or list(BREAKDOWN_REASONS)


def _breakdown(
    plant: Plant, controls: Controls, status: SimulatorStatus | None
) -> SimulatorStatus | None:
    """Not a form: the reasons follow the machine chosen."""
    st.subheader(_("Breakdown now"))
    machines = machine_names(plant)
    machine = st.selectbox(
        _("Machine to break down"),
        list(machines),
        format_func=lambda m: machines[m],
        key="breakdown.machine",
    )
    if machine is None:
        return status
    reason = st.selectbox(
        _("Stop reason"),
        breakdown_reasons(status, machine),
        format_func=reason_text,
        key="breakdown.reason",
    )
    minutes = st.number_input(
        _("Repair time (simulated minutes)"), 1, 24 * 60, 15, key="breakdown.minutes"
    )
    if not (st.button(_("Breakdown now")) and reason):
        return status
    action = Breakdown(asset=machine, reason=reason, duration_s=minutes * 60)
    done = _("{machine} broken down: {reason}").format(
        machine=machines[machine], reason=reason_text(reason)
    )
    return _send(controls, action, done, status)


def _pending(plant: Plant, status: SimulatorStatus | None) -> None:
    """Faults injected into a machine in a planned stop wait for it to run: say so."""
    machines = machine_names(plant)
    for pending in status.pending if status else []:
        st.info(
            _(
                "{fault} on {machine} waits for the stop '{stop}' to end; it starts when the "
                "machine runs again."
            ).format(
                fault=reason_text(pending.fault),
                machine=machines.get(pending.asset, pending.asset),
                stop=reason_text(pending.waits_for),
            )
        )


def _speed_and_shift(controls: Controls, status: SimulatorStatus | None) -> SimulatorStatus | None:
    st.subheader(_("Speed and shift"))
    current = status.speed if status else None
    speed = st.select_slider(
        _("Simulation speed"),
        slider_speeds(current),
        value=current if current is not None else SPEEDS[0],
        format_func=speed_text,
    )
    set_speed, reset = st.columns(2)
    if set_speed.button(_("Set speed")):
        done = _("speed set to {speed}").format(speed=speed_text(speed))
        return _send(controls, SetSpeed(speed=speed), done, status)
    if reset.button(_("Reset shift")):
        return _send(controls, ResetShift(), _("shift reset"), status)
    return status


def _scenario(controls: Controls, status: SimulatorStatus | None) -> SimulatorStatus | None:
    st.subheader(_("Scenario"))
    same_plant: Sequence[str] = status.available if status else []
    other_plants: Sequence[str] = status.other_plants if status else []
    if not (same_plant or other_plants):
        st.caption(
            _(
                "No scenario to load: a simulator offers the scenario files beside its own (none "
                "when it runs a plant file, or before it has announced itself)."
            )
        )
        return status
    name = st.selectbox(
        _("Scenario"),
        [*same_plant, *other_plants],
        format_func=lambda n: (
            _("{name} (another plant: the demo restarts with it)").format(name=n)
            if n in other_plants
            else n
        ),
    )
    if name in SCENARIOS:
        title, description = SCENARIOS[name]
        st.caption(f"**{_(title)}** · {_(description)}")  # the example's name, then what it shows
    if st.button(_("Load scenario")) and name:
        if name in other_plants:
            return _send(controls, LoadScenario(name=name), _(_SWITCHING).format(name=name), status)
        done = _("scenario {name} loaded").format(name=name)
        return _send(controls, LoadScenario(name=name), done, status)
    return status


_SWITCHING = N_(
    "scenario {name} runs another plant: the demo restarts with it in a new session; this page "
    "comes back with the new plant in about twenty seconds"
)


def _send(
    controls: Controls, action: Action, done: str, status: SimulatorStatus | None
) -> SimulatorStatus | None:
    """Send the command and return the status after it, awaited in the simulator's next
    announcement (briefly for a fault or breakdown, which change it only when a fault waits)."""
    try:
        controls.send(action)
    except ConnectionError as exc:
        st.error(_("The command was not sent: {error}").format(error=exc))
        return status
    st.success(done)
    faulty = isinstance(action, InjectFault | Breakdown)
    return remembered(
        controls.announced_after(status, FAULT_ANNOUNCE_S if faulty else ANNOUNCE_TIMEOUT_S)
    )
