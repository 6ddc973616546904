"""Dashboard logins: who may see what, when the dashboard is served beyond this machine.

Users are kept in a JSON file (SHOPFLOOR_USERS, which `shopfloor dashboard` sets) that only
its owner may read (0600): name, role, tenant and an argon2id hash of the password, never the
password. Roles: `staff` (every tenant, the demo controls), `sme` (its own tenant's pages, no
controls), `visitor` (the kiosk's pages, read-only). `shopfloor users add|remove|list` manage
the file; the dashboard reads it at each login and each page load, so a removed user is out at
once.

A login lasts in the browser session (`st.session_state`) until it has been idle for
SHOPFLOOR_SESSION_IDLE_MINUTES (30) or open for SHOPFLOOR_SESSION_HOURS (12), or its user
logs out. Failed logins slow down per user name and per address: past a few, the next try
waits, longer after each. On a loopback address nobody but this machine can connect, so the
session is staff's without a login (`make demo` stays one command), unless
SHOPFLOOR_DASHBOARD_REQUIRE_LOGIN=1 says otherwise (a reverse proxy on the same machine).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path

import streamlit as st
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dashboard.i18n import _

USERS_ENV = "SHOPFLOOR_USERS"
REQUIRE_LOGIN_ENV = "SHOPFLOOR_DASHBOARD_REQUIRE_LOGIN"
IDLE_ENV, MAX_ENV = "SHOPFLOOR_SESSION_IDLE_MINUTES", "SHOPFLOOR_SESSION_HOURS"
DEFAULT_IDLE_MINUTES, DEFAULT_MAX_HOURS = 30.0, 12.0
MIN_PASSWORD_LENGTH = 12
LOOPBACK_USER = "local"
SESSION_KEY = "auth.session"

_hasher = PasswordHasher()


@functools.cache
def _unknown_user_hash() -> str:
    """Verified when the user name is unknown, so that a wrong name takes as long as a wrong
    password; made at the first such login, not at import (half a second of the dashboard's
    first page)."""
    return _hasher.hash("no such user")


class Role(StrEnum):
    STAFF = "staff"
    SME = "sme"
    VISITOR = "visitor"


class UsersError(Exception):
    """A users file that cannot be read or written, or a user that cannot be added."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    tenant: str | None
    password_hash: str


# --- the users file ---------------------------------------------------------------------------


def _dashboard_users() -> dict[str, User]:
    """The users of the dashboard's file; none without one."""
    path = os.environ.get(USERS_ENV)
    return read_users(Path(path)) if path else {}


def read_users(path: Path) -> dict[str, User]:
    """The users of `path` by name; none when it does not exist yet."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsersError(f"{path}: readable by others (mode {mode & 0o777:o}): chmod 600 {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["users"]
        return {
            name: User(name, Role(entry["role"]), entry.get("tenant"), entry["password_hash"])
            for name, entry in entries.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsersError(f"{path}: not a users file ({exc})") from None


def write_users(path: Path, users: Iterable[User]) -> None:
    """Replace the file at once, created 0600 so that the hashes are never readable by others."""
    entries = {user.name: {k: v for k, v in asdict(user).items() if k != "name"} for user in users}
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump({"users": entries}, out, indent=2, sort_keys=True)
    os.replace(scratch, path)


def new_user(name: str, role: Role, tenant: str | None, password: str) -> User:
    """A user to add, checked: an `sme` belongs to a tenant, the others to none."""
    if not name.strip() or name != name.strip():
        raise UsersError(f"user name {name!r}: give a name without spaces around it")
    if role is Role.SME and not tenant:
        raise UsersError("--tenant: an sme user needs the tenant id whose pages it sees")
    if role is not Role.SME and tenant:
        raise UsersError(f"--tenant: only sme users belong to a tenant, not {role} users")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsersError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    return User(name, role, tenant, _hasher.hash(password))


def verify(users: dict[str, User], name: str, password: str) -> User | None:
    """The user whose name and password these are, or None; as slow for a name that does
    not exist as for a wrong password."""
    user = users.get(name)
    try:
        _hasher.verify(user.password_hash if user else _unknown_user_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return user


# --- failed logins ----------------------------------------------------------------------------


class Throttle:
    """Failed logins by key (a user name, an address): the first `free` failures cost
    nothing, each one after locks the key for `base_s` seconds, doubling up to `max_s`."""

    def __init__(self, free: int, base_s: float, max_s: float) -> None:
        self.free, self.base_s, self.max_s = free, base_s, max_s
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()  # every browser session's script thread shares it

    def wait_s(self, keys: Iterable[str], now: float) -> float:
        """How long these keys must still wait before the next try (0: try now)."""
        with self._lock:
            return max((self._locked_until.get(key, 0.0) - now for key in keys), default=0.0)

    def failed(self, keys: Iterable[str], now: float) -> None:
        with self._lock:
            for key in keys:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                if failures > self.free:
                    delay = min(self.base_s * 2 ** (failures - self.free - 1), self.max_s)
                    self._locked_until[key] = now + delay

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
                self._locked_until.pop(key, None)


@st.cache_resource
def _throttle() -> Throttle:
    """One for the whole dashboard process: failures count across browser sessions."""
    return Throttle(free=3, base_s=30, max_s=900)


# An address is shared by every user behind it (a centre's NAT): it gets more free tries.
ADDRESS_FREE_TRIES = 20


@st.cache_resource
def _address_throttle() -> Throttle:
    return Throttle(free=ADDRESS_FREE_TRIES, base_s=30, max_s=900)


# --- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A logged-in browser session: whose, and since when (monotonic seconds)."""

    user: str
    role: Role
    tenant: str | None
    started: float
    seen: float

    def expired(self, now: float, idle_s: float, max_s: float) -> bool:
        return now - self.seen > idle_s or now - self.started > max_s


def session_limits() -> tuple[float, float]:
    """The idle and absolute limits of a session, in seconds."""
    idle = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_MINUTES) * 60
    longest = float(os.environ.get(MAX_ENV) or DEFAULT_MAX_HOURS) * 3600
    return idle, longest


def is_loopback(address: str) -> bool:
    """Whether only this machine can reach a server listening on `address`."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # "" or a host name: every interface, or one we cannot vouch for


def login_required() -> bool:
    """A login unless the dashboard listens on loopback only (and nothing asks for one)."""
    address = str(st.get_option("server.address") or "")
    return not is_loopback(address) or os.environ.get(REQUIRE_LOGIN_ENV) == "1"


def current_session() -> Session | None:
    """This browser's session, renewed; None when it must log in (first, or again because
    its session expired or its user was removed or changed)."""
    now = time.monotonic()
    if not login_required():
        return Session(LOOPBACK_USER, Role.STAFF, None, now, now)
    session: Session | None = st.session_state.get(SESSION_KEY)
    if session is None:
        return None
    user = _dashboard_users().get(session.user)
    if session.expired(now, *session_limits()) or not _still(user, session):
        del st.session_state[SESSION_KEY]
        st.session_state["auth.expired"] = True
        return None
    session = replace(session, seen=now)
    st.session_state[SESSION_KEY] = session
    return session


def _still(user: User | None, session: Session) -> bool:
    return user is not None and (user.role, user.tenant) == (session.role, session.tenant)


def login_page() -> None:
    """The login form, the only thing shown before a login."""
    st.title(_("Log in"))
    if st.session_state.pop("auth.expired", False):
        st.info(_("Your session has ended: log in again."))
    with st.form("login"):
        name = st.text_input(_("User name"))
        password = st.text_input(_("Password"), type="password")
        if not st.form_submit_button(_("Log in")):
            return
    keys = [f"user:{name}"]
    address = [f"address:{st.context.ip_address or 'unknown'}"]
    now = time.monotonic()
    wait = max(_throttle().wait_s(keys, now), _address_throttle().wait_s(address, now))
    if wait > 0:
        st.error(
            _("Too many failed logins: try again in {seconds} s.").format(seconds=int(wait) + 1)
        )
        return
    try:
        user = verify(_dashboard_users(), name, password)
    except UsersError as exc:
        st.error(str(exc))
        return
    if user is None:
        _throttle().failed(keys, now)
        _address_throttle().failed(address, now)
        st.error(_("Wrong user name or password."))
        return
    _throttle().succeeded(keys)
    _address_throttle().succeeded(address)
    st.session_state[SESSION_KEY] = Session(user.name, user.role, user.tenant, now, now)
    st.rerun()


def session_menu(session: Session) -> None:
    """Who is logged in, and the logout button, in the sidebar."""
    if session.user == LOOPBACK_USER and not login_required():
        return
    st.sidebar.caption(
        _("Logged in as {user} ({role})").format(user=session.user, role=session.role)
    )
    if st.sidebar.button(_("Log out")):
        del st.session_state[SESSION_KEY]
        st.rerun()
