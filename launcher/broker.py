"""Broker accounts and ACLs generated from plant files (`shopfloor broker config`).

One account per tenant and role (`<tenant>-<role>`, and `staff` for every tenant), each
allowed exactly the topics its component publishes and subscribes to, named with the literal
tenant and site of the plant files: no rule names another tenant's topics, and no `%u`
pattern or leading wildcard reaches across tenants. The output folder holds what Mosquitto
reads (`passwd`, hashed as `mosquitto_passwd` writes it; `acl`; `mosquitto.conf`) and
`accounts.json`, the passwords to hand to each component. Every file is readable by its owner
only. Generating again keeps the passwords of accounts that still exist, so deployed edges go
on working; `rotate` replaces named ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote, urlsplit

from shopfloor.messages import (
    MessageKind,
    control_topic,
    dead_letter_topic,
    edge_state_topic,
    edge_status_topic,
    edge_subscription,
    status_topic,
    subscription,
)
from shopfloor.mqtt import MOSQUITTO_POLICY
from shopfloor.plant import Plant

PASSWD_FILE, ACL_FILE, CONF_FILE, ACCOUNTS_FILE = "passwd", "acl", "mosquitto.conf", "accounts.json"
ALL_TENANTS = "*"
STAFF_USERNAME = "staff"
# mosquitto_passwd's own count; the passwords are 256-bit random, so stretching adds nothing.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12


class Role(StrEnum):
    EDGE = "edge"
    SIMULATOR = "simulator"
    GATEWAY = "gateway"
    ANALYTICS = "analytics"
    DASHBOARD = "dashboard"
    STAFF = "staff"


TENANT_ROLES = tuple(role for role in Role if role is not Role.STAFF)


class BrokerConfigError(ValueError):
    """Plant files, options or an accounts file the broker configuration cannot be made from."""


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    tenant: str
    role: Role

    def url(self, broker_url: str) -> str:
        """`broker_url` (which carries no credentials) logging in as this account."""
        parts = urlsplit(broker_url)
        credentials = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        return parts._replace(netloc=f"{credentials}@{parts.netloc.rpartition('@')[2]}").geturl()


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener; paths as the broker sees them."""

    port: int
    certfile: str
    keyfile: str
    cafile: str | None = None


@dataclass(frozen=True)
class Listeners:
    """The plain listener (on every address unless `bind` names one) and an optional TLS one."""

    port: int = 1883
    bind: str | None = None
    tls: TlsListener | None = None


def username(tenant: str, role: Role) -> str:
    """Unique: tenant ids never hold the role words' position, since roles have no '-'."""
    return STAFF_USERNAME if role is Role.STAFF else f"{tenant}-{role.value}"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Mosquitto 2's `$7$` format: PBKDF2-HMAC-SHA512, `$7$<iterations>$<salt>$<hash>` in
    base64, what `mosquitto_passwd` writes."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encoded = (base64.b64encode(part).decode() for part in (salt, digest))
    return f"$7${PBKDF2_ITERATIONS}${'$'.join(encoded)}"


Rules = dict[str, list[tuple[str, str]]]  # username -> (access, topic), in order


def acl_rules(plants: Sequence[Plant], replay_only: Sequence[Plant] = ()) -> Rules:
    """Each account's topics. `replay_only` plants (trainee sandboxes, copies of a demo plant)
    get accounts too, but no raw sensor-kit topics: a replay publishes contract topics only, and
    their kits' raw topics are the original plant's."""
    rules: Rules = defaultdict(list)
    raw_owner: dict[str, str] = {}
    tenants = {plant.tenant.id for plant in (*plants, *replay_only)}
    for plant in _unique_sites(plants, replay_only):
        tenant, site = plant.tenant.id, plant.site.id
        raw = [] if _is_replay_only(plant, replay_only) else _raw_topics(plant, tenants, raw_owner)
        data, events = (subscription(tenant, kind, site) for kind in MessageKind)
        control, status = control_topic(tenant, site), status_topic(tenant, site)
        edge_health = edge_subscription(tenant, site)
        edge_reports = [edge_state_topic(tenant, site, "+"), edge_status_topic(tenant, site, "+")]
        grants = {
            Role.EDGE: [("write", data), ("write", events), *(("write", t) for t in edge_reports),
                        ("read", control), *(("read", f"{prefix}/#") for prefix in raw)],
            Role.SIMULATOR: [("write", data), ("write", events), ("write", status),
                             ("read", control), *(("write", f"{prefix}/+") for prefix in raw)],
            Role.GATEWAY: [("read", data), ("read", events), ("read", status),
                           ("write", dead_letter_topic(tenant, site))],
            Role.ANALYTICS: [("read", data), ("read", events)],
            Role.DASHBOARD: [("read", status), ("read", edge_health), ("write", control)],
            Role.STAFF: [("read", status), ("write", control)],
        }  # fmt: skip
        for role, topics in grants.items():
            rules[username(tenant, role)].extend(topics)
    return dict(rules)


def _unique_sites(plants: Sequence[Plant], replay_only: Sequence[Plant]) -> list[Plant]:
    seen: dict[tuple[str, str], Plant] = {}
    for plant in (*plants, *replay_only):
        key = (plant.tenant.id, plant.site.id)
        if key in seen and seen[key] != plant:
            raise BrokerConfigError(f"two different plant files for {key[0]}/{key[1]}")
        seen[key] = plant
    return list(seen.values())


def _is_replay_only(plant: Plant, replay_only: Sequence[Plant]) -> bool:
    return any(plant is other for other in replay_only)


def _raw_topics(plant: Plant, tenants: set[str], owner: dict[str, str]) -> list[str]:
    """The raw topic prefixes of a plant's sensor kits, refused where they would reach another
    tenant (a prefix above, below or equal to another tenant's, or under another tenant's id)
    or break the ACL file's lines."""
    tenant, prefixes = plant.tenant.id, []
    for path, sensor in plant.sensors():
        prefix = sensor.mqtt_topic.rstrip("/")
        where = f"{tenant}/{plant.site.id}: sensor {path.asset}'s mqtt_topic {prefix!r}"
        if prefix != prefix.strip() or not prefix.isprintable() or prefix.startswith("$"):
            raise BrokerConfigError(f"{where} has spaces at its ends, control characters or $")
        first = prefix.split("/", 1)[0]
        if first in tenants and first != tenant:
            raise BrokerConfigError(f"{where} lies in tenant {first!r}'s topics")
        for other, other_tenant in owner.items():
            if other_tenant != tenant and _nested(prefix, other):
                raise BrokerConfigError(f"{where} overlaps tenant {other_tenant!r}'s {other!r}")
        owner[prefix] = tenant
        prefixes.append(prefix)
    return prefixes


def _nested(a: str, b: str) -> bool:
    """Whether one topic prefix contains the other, level by level."""
    levels_a, levels_b = a.split("/"), b.split("/")
    shorter = min(len(levels_a), len(levels_b))
    return levels_a[:shorter] == levels_b[:shorter]


def wanted_accounts(plants: Iterable[Plant]) -> list[tuple[str, Role]]:
    """(tenant, role) of every account the plants need, staff last."""
    tenants = sorted({plant.tenant.id for plant in plants})
    return [*((t, role) for t in tenants for role in TENANT_ROLES), (ALL_TENANTS, Role.STAFF)]


def read_accounts(path: Path) -> list[Account]:
    """The accounts of an accounts.json; none if there is no file."""
    try:
        records = json.loads(path.read_text())
        return [
            Account(r["username"], r["password"], r["tenant"], Role(r["role"])) for r in records
        ]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BrokerConfigError(f"{path}: not an accounts file ({type(exc).__name__})") from None


def write_broker_config(
    output: Path,
    plants: Sequence[Plant],
    listeners: Listeners = Listeners(),
    rotate: Sequence[str] = (),
    replay_only: Sequence[Plant] = (),
    run_as: str | None = None,
) -> list[Account]:
    """Write passwd, acl, mosquitto.conf and accounts.json into `output`; return the accounts.

    Accounts already in `output`'s accounts.json keep their passwords, except those named in
    `rotate`; accounts the plants no longer need are dropped (revoked). `run_as` is the user
    Mosquitto runs as when started by root (it must be able to read these files)."""
    rules = acl_rules(plants, replay_only)
    kept = {a.username: a for a in read_accounts(output / ACCOUNTS_FILE)}
    wanted = wanted_accounts((*plants, *replay_only))
    unknown = sorted(set(rotate) - {username(t, r) for t, r in wanted})
    if unknown:
        raise BrokerConfigError(f"--rotate: no account {', '.join(unknown)} for these plants")
    accounts = []
    for tenant, role in wanted:
        name = username(tenant, role)
        old = kept.get(name)
        keep = old is not None and name not in rotate
        password = old.password if old is not None and keep else secrets.token_urlsafe(32)
        accounts.append(Account(name, password, tenant, role))
    output.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = output.resolve()
    _write_private(out / PASSWD_FILE, "".join(f"{a.username}:{hash_password(a.password)}\n"
                                             for a in accounts))  # fmt: skip
    _write_private(out / ACL_FILE, acl_text(rules))
    _write_private(out / CONF_FILE, mosquitto_conf(out, listeners, run_as))
    # Last: a reader that finds an account here finds it in the broker's files too.
    _write_private(out / ACCOUNTS_FILE, json.dumps([asdict(a) for a in accounts], indent=2))
    return accounts


def acl_text(rules: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    lines = [
        "# Generated by `shopfloor broker config` from the plant files: regenerate, do not edit.",
        "# No rule before the first `user`: an anonymous client may do nothing.",
    ]
    for name, grants in rules.items():
        lines += ["", f"user {name}", *(f"topic {access} {topic}" for access, topic in grants)]
    return "\n".join(lines) + "\n"


def mosquitto_conf(output: Path, listeners: Listeners, run_as: str | None = None) -> str:
    plain = f"listener {listeners.port}" + (f" {listeners.bind}" if listeners.bind else "")
    lines = ["# Generated by `shopfloor broker config`: regenerate, do not edit.",
             plain, "protocol mqtt"]  # fmt: skip
    if listeners.tls:
        tls = listeners.tls
        lines += [f"listener {tls.port}", "protocol mqtt", f"certfile {tls.certfile}"]
        lines += [f"keyfile {tls.keyfile}", *([f"cafile {tls.cafile}"] if tls.cafile else [])]
    lines += ["allow_anonymous false", f"password_file {output / PASSWD_FILE}",
              f"acl_file {output / ACL_FILE}", f"persistence_location {output}/",
              *([f"user {run_as}"] if run_as else []),
              *(f"{option} {value}" for option, value in MOSQUITTO_POLICY.items())]  # fmt: skip
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Replace `path` whole with a file only its owner can read, from its creation on."""
    staged = path.with_name(f".{path.name}.tmp")
    staged.unlink(missing_ok=True)
    with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)
    staged.replace(path)


def account_for(accounts: Sequence[Account], tenant: str, role: Role) -> Account:
    name = username(tenant, role)
    found = next((a for a in accounts if a.username == name), None)
    if found is None:
        raise BrokerConfigError(f"no broker account {name}")
    return found
