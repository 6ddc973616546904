"""The simulator: run a plant live or fast, record and replay its data, drive it while it runs."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from launcher.cli.common import (
    DEFAULT_PLANT,
    BrokerOption,
    DataDirOption,
    PlantOption,
    VerboseOption,
    app,
    checked,
    exit_now,
    fail,
    read_plant,
    read_scenario,
    run_until_interrupted,
    settle_heap,
    setup_logging,
)
from launcher.session import DEFAULT_DATA_DIR, running_demo
from shopfloor.config import ConfigError
from shopfloor.mqtt import DEFAULT_BROKER_URL, check_broker_url

ScenarioOption = Annotated[
    Path | None,
    typer.Option(
        "--scenario", envvar="SHOPFLOOR_SCENARIO", help="Scenario file; its plant replaces --plant."
    ),
]


@app.command()
def simulate(
    plant_file: PlantOption = DEFAULT_PLANT,
    scenario_file: ScenarioOption = None,
    broker: BrokerOption = DEFAULT_BROKER_URL,
    bind_host: Annotated[
        str, typer.Option(envvar="SHOPFLOOR_BIND_HOST", help="Address the OPC UA servers bind.")
    ] = "127.0.0.1",
    speed: Annotated[
        float,
        typer.Option(
            min=0.001, envvar="SHOPFLOOR_SPEED", help="Simulated seconds per second: 1, 10, 60..."
        ),
    ] = 1.0,
    fast: Annotated[
        bool,
        typer.Option("--fast", help="Run the whole scenario as fast as possible into --output."),
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="With --fast: the recording file to write (replayable).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed instead of the scenario's; same seed, same run.")
    ] = None,
    opcua_secure: Annotated[
        Path | None,
        typer.Option(
            envvar="SHOPFLOOR_OPCUA_SECURE",
            help="Serve OPC UA only with Basic256Sha256 Sign & Encrypt, with the server "
            "certificate kept (or created) in this directory.",
        ),
    ] = None,
    opcua_user: Annotated[
        list[str] | None,
        typer.Option(
            envvar="SHOPFLOOR_OPCUA_USERS",
            help="With --opcua-secure: a NAME:PASSWORD allowed in (repeatable); no anonymous.",
        ),
    ] = None,
    not_before: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%dT%H:%M:%S%z"],
            help="Start the simulated clock no sooner than this (a resumed demo's newest data).",
        ),
    ] = None,
    shift_calendar: Annotated[
        bool,
        typer.Option(
            "--shift-calendar",
            help="Keep the simulated clock in the plant's shifts: start in one (the next, "
            "off-shift) once every machine has a subscriber (30 s at most), skip from each "
            "shift's end to the next; readings then run ahead of the wall clock, which the "
            "gateway must accept (its --max-future).",
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Run a plant or scenario live (OPC UA servers, MQTT sensors), or as fast as possible."""
    setup_logging(verbose)
    loaded = read_scenario(plant_file, scenario_file, seed)
    if fast:
        _simulate_fast(loaded, output)
        return
    from simulators.live import LiveSimulator

    security = _server_security(opcua_secure, opcua_user or [])
    simulator = LiveSimulator(
        loaded, broker, bind_host, speed, security, not_before, shift_calendar
    )
    settle_heap()
    run_until_interrupted(simulator.run())
    exit_now()


def _server_security(directory: Path | None, users: list[str]) -> Any:
    from shopfloor.opcua_security import create_certificate
    from simulators.opcua import ServerSecurity

    if directory is None:
        if users:
            raise fail("--opcua-user needs --opcua-secure: passwords travel encrypted only")
        return None
    if any(":" not in user for user in users):
        raise fail("--opcua-user takes NAME:PASSWORD")
    uri = "urn:shopfloor:simulator"
    cert, key = asyncio.run(create_certificate(directory, "simulator", uri, server=True))
    return ServerSecurity(cert, key, dict(user.split(":", 1) for user in users))


def _simulate_fast(loaded: Any, output: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from simulators.fast import run_fast

    started = time.perf_counter()
    floor = run_fast(loaded, output)
    elapsed = time.perf_counter() - started
    table = Table(title=f"{loaded.scenario.name}: {loaded.scenario.duration / 3600:g} h")
    for column in ("machine", "parts", "rejects", "energy kWh", "time by state (min)"):
        table.add_column(column)
    for machine_id, machine in floor.machines.items():
        minutes: dict[str, float] = {}
        for interval in machine.log:
            minutes[interval.state] = (
                minutes.get(interval.state, 0.0) + (interval.end - interval.start) / 60
            )
        by_state = ", ".join(f"{state} {value:.0f}" for state, value in sorted(minutes.items()))
        table.add_row(
            machine_id,
            str(machine.part_count),
            str(machine.reject_count),
            f"{machine.energy_kwh:.1f}",
            by_state,
        )
    console = Console()
    console.print(table)
    for event in floor.ground_truth:
        fault = event.event
        console.print(f"fault {fault.name} on {event.path.asset}: {fault.start} to {fault.end}")
    speedup = loaded.scenario.duration / max(elapsed, 1e-9)
    console.print(
        f"simulated in {elapsed:.2f} s, x{speedup:,.0f} real time"
        + (f"; recording in {output}" if output else "")
    )


@app.command()
def record(
    output: Annotated[Path, typer.Argument(help="Recording file to write (JSON Lines).")],
    plant_file: PlantOption = DEFAULT_PLANT,
    broker: BrokerOption = DEFAULT_BROKER_URL,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Record the plant's live data and events from the broker into a file for replay."""
    from simulators.recording import record as record_session

    setup_logging(verbose)
    plant = read_plant(plant_file)
    stop = threading.Event()
    try:
        count = record_session(broker, plant.tenant.id, output, duration, stop)
    except KeyboardInterrupt:
        stop.set()
        return
    except OSError as exc:
        raise fail(f"{output}: {exc.strerror or exc}") from None
    typer.echo(f"recorded {count} messages to {output}")


@app.command()
def replay(
    recording: Annotated[
        Path, typer.Argument(help="Recording file (from record or simulate --fast).")
    ],
    broker: DemoBrokerOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Playback speed: 1, 10, 60, 1000...")
    ] = 1.0,
    tenant: Annotated[
        str | None,
        typer.Option(
            help="Publish under this tenant instead: an isolated sandbox. While a demo runs, "
            "into the demo, where its dashboard offers the sandbox."
        ),
    ] = None,
    keep_time: Annotated[
        bool, typer.Option("--keep-time", help="Keep the recorded timestamps (backfill history).")
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Play a recording back into the broker, timestamps shifted to now, with a progress bar."""
    from simulators.recording import RecordingError
    from simulators.recording import replay as replay_session

    setup_logging(verbose)
    target = demo_target(broker, None, data_dir)
    try:
        if tenant is not None:
            _into_running_demo(recording, tenant, data_dir)
        url = broker or _demo_login(recording, tenant, data_dir) or target.broker
        count = replay_session(recording, url, speed, tenant, shift_time=not keep_time)
    except ConnectionError as exc:
        raise fail(f"{exc}{target.hint}") from None
    except (RecordingError, ValueError, ConfigError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    typer.echo(f"replayed {count} messages from {recording}")


def _into_running_demo(recording: Path, tenant: str, data_dir: Path) -> None:
    """With a demo running, add the sandbox of `tenant` to its session, where its supervisor
    starts the sandbox's services. Raises ValueError when the recording is not of the demo's
    plant."""
    from shopfloor.sandboxes import write_tenant_plant
    from simulators.recording import recording_header

    demo = running_demo(data_dir)
    if demo is None:
        return
    recorded, _ = recording_header(recording)
    plant = read_plant(demo.plant)
    if recorded != plant.tenant.id:
        raise ValueError(
            f"{recording} is a recording of tenant {recorded!r}, but the demo runs "
            f"{plant.tenant.id!r} ({demo.plant}); replay it into a demo of its plant"
        )
    write_tenant_plant(demo.plant, tenant, demo.session_dir)
    typer.echo(f"trainee sandbox {tenant}: into the demo's dashboard ({demo.dashboard_url})")


def _demo_login(recording: Path, tenant: str | None, data_dir: Path) -> str | None:
    """With a demo running, its broker with the login of the replayed tenant's simulator
    (a new sandbox's once the supervisor has made it)."""
    from launcher.broker import Role
    from launcher.session import ACCOUNT_WAIT_S
    from simulators.recording import recording_header

    demo = running_demo(data_dir)
    if demo is None:
        return None
    recorded, _ = recording_header(recording)
    return demo.login(tenant or recorded, Role.SIMULATOR, ACCOUNT_WAIT_S)


control_app = typer.Typer(help="Drive a running simulator: inject faults, set speed, reset shift.")
app.add_typer(control_app, name="control")


DemoBrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="SHOPFLOOR_BROKER_URL",
        help="MQTT broker, mqtt[s]://[user:pw@]host:port; default: the running demo's.",
        callback=checked(check_broker_url),
    ),
]
DemoPlantOption = Annotated[
    Path | None,
    typer.Option(
        "--plant", envvar="SHOPFLOOR_PLANT", help="Plant file (YAML); default: the running demo's."
    ),
]


@dataclass(frozen=True)
class DemoTarget:
    """The broker and plant a command drives, and what to add to an error reaching it."""

    broker: str
    plant: Path
    hint: str


def demo_target(broker: str | None, plant_file: Path | None, data_dir: Path) -> DemoTarget:
    """Those given, else the running demo's (its broker from its session, never a guessed
    port), else the defaults."""
    demo = running_demo(data_dir)
    if demo is not None:
        return DemoTarget(broker or demo.broker_url, plant_file or demo.plant, "")
    hint = "" if broker else f" (no demo runs from {data_dir}; start one or give --broker)"
    return DemoTarget(broker or DEFAULT_BROKER_URL, plant_file or DEFAULT_PLANT, hint)


def _send(target: DemoTarget, action: Any) -> None:
    from shopfloor.messages import control_topic, encode_command
    from shopfloor.mqtt import publish_once

    plant = read_plant(target.plant)
    topic = control_topic(plant.tenant.id, plant.site.id)
    try:
        publish_once(target.broker, topic, encode_command(action))
    except ConnectionError as exc:
        raise fail(f"{exc}{target.hint}") from None
    typer.echo(f"sent {action.command} to {plant.tenant.id}/{plant.site.id}")


@control_app.command("inject")
def control_inject(
    machine: Annotated[str, typer.Argument(help="Machine id, e.g. cnc-01.")],
    fault: Annotated[str, typer.Argument(help="Fault kind, e.g. bearing_wear or air_leak.")],
    duration: Annotated[float, typer.Option(min=1, help="Seconds of simulated time.")] = 600,
    plant_file: DemoPlantOption = None,
    broker: DemoBrokerOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Inject a fault into a running simulator; it appears as a labelled event."""
    from shopfloor.messages import FaultKind, InjectFault

    if fault not in set(FaultKind):
        raise fail(f"unknown fault {fault!r}; choose one of {', '.join(FaultKind)}")
    target = demo_target(broker, plant_file, data_dir)
    problem = read_plant(target.plant).injection_problem(machine, FaultKind(fault))
    if problem:
        raise fail(problem)
    _send(target, InjectFault(asset=machine, fault=FaultKind(fault), duration_s=duration))


@control_app.command("breakdown")
def control_breakdown(
    machine: Annotated[str, typer.Argument(help="Machine id, e.g. imm-01.")],
    reason: Annotated[
        str, typer.Option(help="Stop reason code, e.g. mould_jam, mechanical or electrical.")
    ],
    duration: Annotated[float, typer.Option(min=1, help="Seconds of simulated repair.")] = 900,
    plant_file: DemoPlantOption = None,
    broker: DemoBrokerOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Break a machine down now with a stop reason; its state and the reason show at once."""
    from pydantic import ValidationError

    from shopfloor.messages import Breakdown

    target = demo_target(broker, plant_file, data_dir)
    problem = read_plant(target.plant).injection_problem(machine)
    if problem:
        raise fail(problem)
    try:
        action = Breakdown(asset=machine, reason=reason, duration_s=duration)
    except ValidationError:
        raise fail(f"--reason {reason!r}: a reason code is lower case, digits and _") from None
    _send(target, action)


@control_app.command("speed")
def control_speed(
    speed: Annotated[float, typer.Argument(min=0.001, help="Simulated seconds per second.")],
    plant_file: DemoPlantOption = None,
    broker: DemoBrokerOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Change a running simulator's speed (x1 live, x60 a shift in eight minutes)."""
    from shopfloor.messages import SetSpeed

    _send(demo_target(broker, plant_file, data_dir), SetSpeed(speed=speed))


@control_app.command("scenario")
def control_scenario(
    name: Annotated[str, typer.Argument(help="Scenario file name beside the running one.")],
    plant_file: DemoPlantOption = None,
    broker: DemoBrokerOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Switch the running simulator to another scenario of the same plant (a demo also
    switches to another plant's, in a new session)."""
    from shopfloor.messages import LoadScenario

    _send(demo_target(broker, plant_file, data_dir), LoadScenario(name=name))


@control_app.command("reset-shift")
def control_reset_shift(
    plant_file: DemoPlantOption = None,
    broker: DemoBrokerOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Start a new shift in the running simulator: at the next shift of the plant's calendar,
    with every counter from zero."""
    from shopfloor.messages import ResetShift

    _send(demo_target(broker, plant_file, data_dir), ResetShift())
