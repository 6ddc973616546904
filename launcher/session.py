"""Demo sessions: each `shopfloor demo` runs in a directory of its own, kept for later.

A session directory `<data_dir>/sessions/<id>/` holds everything one demo writes (store, broker
persistence, edge buffer, gateway spill, logs, API token, readiness database) and
`session.json`, what it runs. A new demo starts a new session, so no reading of an earlier
demo (hours ahead after a speed-up, say) ever shows in the live one; `--resume` reopens one.

While a demo runs, `<data_dir>/running.json` says where to reach it (`running_demo`): the CLI's
`control` and `replay` commands take its broker from there, never from a guessed port. On
Mosquitto they log in with the session's accounts (`broker/accounts.json`, its owner's only):
`control` as staff, a replay as its tenant's simulator.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from launcher.broker import (
    ACCOUNTS_FILE,
    ALL_TENANTS,
    BrokerConfigError,
    Role,
    account_for,
    read_accounts,
)
from shopfloor.config import ConfigError
from shopfloor.plant import load_plant
from shopfloor.sandboxes import TENANTS_DIR
from shopfloor.store import StoreError, data_clock
from shopfloor.store.embedded import EmbeddedStore

DEFAULT_DATA_DIR = Path(".shopfloor")
RUNNING_FILE = "running.json"
SESSION_FILE = "session.json"
STORE_FILE = "store.db"
BROKER_DIR = "broker"  # the session's Mosquitto accounts, ACLs and persistence
ACCOUNT_WAIT_S = 10.0  # for the supervisor to give a new sandbox's tenant its accounts


class SessionError(Exception):
    """No such session, or a session directory that cannot be read."""


@dataclass(frozen=True)
class RunningDemo:
    """Where the running demo is: its session and the addresses of its servers. `broker_url`
    carries no login; `running_demo` returns it with staff's, when the broker has accounts."""

    session_dir: Path
    broker_url: str
    api_url: str
    dashboard_url: str
    plant: Path
    scenario: Path | None
    pid: int

    def login(self, tenant: str, role: Role, wait_s: float = 0.0) -> str:
        """The broker URL logging in as `tenant`'s `role`, waiting up to `wait_s` for the
        supervisor to create the account; the bare URL when the broker has no accounts."""
        accounts_file = self.session_dir / BROKER_DIR / ACCOUNTS_FILE
        deadline = time.monotonic() + wait_s
        while True:
            accounts = read_accounts(accounts_file)
            if not accounts:
                return _bare(self.broker_url)
            try:
                return account_for(accounts, tenant, role).url(self.broker_url)
            except BrokerConfigError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def write(self, data_dir: Path) -> None:
        fields = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        fields["broker_url"] = _bare(self.broker_url)
        path = data_dir / RUNNING_FILE
        path.with_suffix(".tmp").write_text(json.dumps(fields, indent=2) + "\n")
        path.with_suffix(".tmp").replace(path)  # a reader never sees half a file


def running_demo(data_dir: Path = DEFAULT_DATA_DIR) -> RunningDemo | None:
    """The demo running from `data_dir`, or None (no running.json, or its supervisor is gone)."""
    try:
        fields = json.loads((data_dir / RUNNING_FILE).read_text())
        demo = RunningDemo(
            session_dir=Path(fields["session_dir"]),
            broker_url=fields["broker_url"],
            api_url=fields["api_url"],
            dashboard_url=fields["dashboard_url"],
            plant=Path(fields["plant"]),
            scenario=Path(fields["scenario"]) if fields["scenario"] else None,
            pid=int(fields["pid"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(demo.pid):
        return None
    try:
        return replace(demo, broker_url=demo.login(ALL_TENANTS, Role.STAFF))
    except BrokerConfigError:
        return demo


def _bare(url: str) -> str:
    """`url` without a login."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clear_running(data_dir: Path) -> None:
    """Say that no demo runs from `data_dir` any more (the supervisor, as it stops)."""
    (data_dir / RUNNING_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class Session:
    """One demo session: its directory and what it runs (plant, scenario), since when."""

    directory: Path
    plant: Path
    scenario: Path | None
    started: datetime

    @property
    def id(self) -> str:
        return self.directory.name

    @property
    def store_url(self) -> str:
        return f"sqlite:{self.directory / STORE_FILE}"

    def last_data_time(self) -> datetime | None:
        """The session's data clock: its newest plant reading in its embedded store."""
        database = self.directory / STORE_FILE
        if not database.exists():
            return None
        try:
            plant = load_plant(self.plant)
            store = EmbeddedStore(str(database))
        except (ConfigError, StoreError, OSError):
            return None
        try:
            return data_clock(plant, store)
        finally:
            store.close()

    def save(self) -> None:
        record = {
            "plant": str(self.plant),
            "scenario": str(self.scenario) if self.scenario else None,
            "started": self.started.isoformat(),
        }
        (self.directory / SESSION_FILE).write_text(json.dumps(record, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Session:
        try:
            record = json.loads((directory / SESSION_FILE).read_text())
            return cls(
                directory,
                Path(record["plant"]),
                Path(record["scenario"]) if record["scenario"] else None,
                datetime.fromisoformat(record["started"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SessionError(f"{directory / SESSION_FILE}: not a demo session ({exc})") from None


def new_session(data_dir: Path, plant: Path, scenario: Path | None) -> Session:
    """A fresh session directory, named after its start time (unique to the second)."""
    started = datetime.now(UTC).replace(microsecond=0)
    root = data_dir / "sessions"
    root.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%d-%H%M%S")
    directory, number = root / stem, 1
    while True:
        try:
            directory.mkdir()
            break
        except FileExistsError:
            number += 1
            directory = root / f"{stem}-{number}"
    (directory / TENANTS_DIR).mkdir()
    session = Session(directory, plant.resolve(), scenario.resolve() if scenario else None, started)
    session.save()
    return session


def sessions(data_dir: Path) -> list[Session]:
    """Every session kept under `data_dir`, oldest first; unreadable directories skipped."""
    found = []
    for directory in sorted((data_dir / "sessions").glob("*/")):
        try:
            found.append(Session.load(directory))
        except SessionError:
            continue
    return sorted(found, key=lambda s: (s.started, s.id))


def find_session(data_dir: Path, session_id: str | None) -> Session:
    """The session `session_id`, or the latest one when None."""
    kept = sessions(data_dir)
    if session_id is None:
        if not kept:
            raise SessionError(f"no demo session in {data_dir / 'sessions'} to resume")
        return kept[-1]
    for session in kept:
        if session.id == session_id:
            return session
    known = ", ".join(s.id for s in kept) or "none"
    raise SessionError(
        f"no demo session {session_id!r} in {data_dir / 'sessions'} (known: {known})"
    )
