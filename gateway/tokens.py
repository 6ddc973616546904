"""API tokens: issued per tenant and role, kept hashed in a file, checked on every request.

A token is `sft_<id>_<secret>`: the id (8 hex digits, not secret) names it in the file, in
`shopfloor gateway token list` and in `revoke`; the secret is 256 random bits. The file keeps
the SHA-256 of the whole token, never the token: a fast hash is enough for a secret that
cannot be guessed (a slow password hash guards what people choose), and keeps the check cheap.

A token belongs to one tenant, or to the platform (tenant `*`, the centre's staff), and has a
role: `read` (the data of its tenant) or `admin` (also acknowledging events). The gateway reads
the file again whenever its bytes change, so a revoked token stops working at its next request,
without a restart. `issue` and `revoke` change the file under a lock and replace it whole
(mode 0600), so a gateway never reads half a file and two commands never undo each other.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

from shopfloor.plant import Identifier

log = logging.getLogger(__name__)

PLATFORM = "*"
PREFIX = "sft"
ID_HEX_DIGITS = 8
SECRET_BYTES = 32
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$"


class Role(StrEnum):
    READ = "read"
    ADMIN = "admin"


# A role may do all that a role of a lower rank may.
ROLE_RANK = {Role.READ: 0, Role.ADMIN: 1}


class TokenFileError(Exception):
    """The token file cannot be read or changed; the message names the file."""


class TokenRefusedError(Exception):
    """A request's token lets it in nowhere: missing, unknown, revoked or expired (401)."""


class TokenRecord(BaseModel):
    """One issued token as the file keeps it: its hash, never the token."""

    id: str
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    tenant: Identifier | Literal["*"]
    role: Role
    sha256: str
    created: AwareDatetime
    expires: AwareDatetime | None = None
    revoked: AwareDatetime | None = None

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"


class TokenBook(BaseModel):
    """The token file's content."""

    tokens: list[TokenRecord] = []


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_id(token: str) -> str | None:
    """The id a token of ours carries, or None for anything else."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    return token_id if prefix == PREFIX and len(token_id) == ID_HEX_DIGITS and secret else None


def check_tenant(tenant: str) -> None:
    """Refuse what is neither PLATFORM nor a tenant id, saying why (ValueError)."""
    if tenant != PLATFORM:
        try:
            TypeAdapter(Identifier).validate_python(tenant)
        except ValidationError as exc:
            raise ValueError(f"tenant {exc.errors()[0]['ctx']['error']}") from None


def check_name(name: str) -> None:
    """Refuse a name that would not read well in a table or a command line (ValueError)."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"name {name!r}: use up to 64 letters, digits, spaces and . _ @ -, "
            "starting with a letter or digit"
        )


def _content(path: Path) -> bytes:
    """The file's bytes; none when it does not exist yet."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc.strerror}") from None


def _parse(path: Path, content: bytes) -> TokenBook:
    if not content:
        return TokenBook()
    try:
        return TokenBook.model_validate_json(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TokenFileError(f"token file {path}: {where or 'content'}: {first['msg']}") from None


def read_book(path: Path) -> TokenBook:
    """The tokens in `path`; none when it does not exist yet."""
    return _parse(path, _content(path))


def _write_book(path: Path, book: TokenBook) -> None:
    """Replace `path` whole with a file only its owner can read."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(book.model_dump_json(indent=2, exclude_none=True))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _changing(path: Path) -> Iterator[TokenBook]:
    """The book under an exclusive lock, written back when the block ends without error."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise TokenFileError(f"cannot change the token file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        book = read_book(path)
        yield book
        try:
            _write_book(path, book)
        except OSError as exc:
            raise TokenFileError(f"cannot write the token file {path}: {exc.strerror}") from None
    finally:
        os.close(lock)


def issue(
    path: Path, tenant: str, role: Role, name: str | None, valid_for: timedelta | None
) -> tuple[str, TokenRecord]:
    """A new token of `tenant` (or PLATFORM) added to the file: the token, shown only now, and
    its record. A name must not be held by another token that is not revoked (ValueError for
    a bad tenant or name)."""
    check_tenant(tenant)
    if name is not None:
        check_name(name)
    with _changing(path) as book:
        taken = {record.id for record in book.tokens}
        held = [r for r in book.tokens if name is not None and r.name == name and not r.revoked]
        if held:
            raise TokenFileError(
                f"token {held[0].id} in {path} is already named {name!r}: revoke it first "
                "or choose another name"
            )
        token_id = secrets.token_hex(ID_HEX_DIGITS // 2)
        while token_id in taken:
            token_id = secrets.token_hex(ID_HEX_DIGITS // 2)
        token = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        now = datetime.now(UTC)
        record = TokenRecord(
            id=token_id,
            name=name,
            tenant=tenant,
            role=role,
            sha256=_digest(token),
            created=now,
            expires=None if valid_for is None else now + valid_for,
        )
        book.tokens.append(record)
    return token, record


def revoke(path: Path, key: str) -> TokenRecord:
    """Revoke the token with id `key`, else the unrevoked one named `key`."""
    with _changing(path) as book:
        by_id = [r for r in book.tokens if r.id == key]
        by_name = sorted(
            (r for r in book.tokens if r.name == key), key=lambda r: r.revoked is not None
        )
        found = by_id or by_name
        if not found:
            raise TokenFileError(f"no token with the id or name {key!r} in {path}")
        record = found[0]
        if record.revoked is not None:
            when = f"{record.revoked:%Y-%m-%d %H:%M} UTC"
            raise TokenFileError(f"token {record.id} in {path} was already revoked on {when}")
        record.revoked = datetime.now(UTC)
    return record


@dataclass(frozen=True)
class Grant:
    """What a request's token may do."""

    tenant: str
    role: Role

    def refusal(self, tenant: str, role: Role) -> str | None:
        """Why this token may not do what needs `role` on `tenant`'s data (403), else None."""
        if self.tenant not in (PLATFORM, tenant):
            return f"this token is for tenant {self.tenant!r}; this gateway serves {tenant!r}"
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            return f"this route needs a token with the {role} role; this one has {self.role}"
        return None


class TokenChecker:
    """Tells what a presented token may do: the platform token of `--api-token`, or a token of
    the file, read again whenever its bytes change (reading a small file per request is cheaper
    than a revoked token that lives on until a restart)."""

    def __init__(self, path: Path | None, platform_token: str | None = None):
        self.path = path
        self._platform_token = platform_token or None
        self._lock = threading.Lock()
        self._content: bytes | None = None
        self._book = TokenBook()
        self._failure: str | None = None  # the file's problem, once logged

    def book(self) -> TokenBook:
        """The file's tokens now; TokenFileError when it cannot be read, so nobody of the file
        gets in while it is broken (fail closed). Each new failure is logged once."""
        if self.path is None:
            return TokenBook()
        with self._lock:
            try:
                content = _content(self.path)
                if content != self._content:
                    self._book, self._content = _parse(self.path, content), content
                    now = datetime.now(UTC)
                    active = sum(r.state(now) == "active" for r in self._book.tokens)
                    issued = len(self._book.tokens)
                    log.info("API tokens: %d active of %d in %s", active, issued, self.path)
            except TokenFileError as exc:
                if str(exc) != self._failure:
                    log.error("%s; its tokens are refused until it is fixed", exc)
                    self._failure = str(exc)
                raise
            self._failure = None
            return self._book

    def grant(self, presented: str | None) -> Grant:
        """What `presented` may do; TokenRefusedError says why it may do nothing."""
        if not presented:
            raise TokenRefusedError("missing bearer token")
        if self._platform_token is not None and secrets.compare_digest(
            presented.encode(), self._platform_token.encode()
        ):
            return Grant(PLATFORM, Role.ADMIN)
        book = self.book()
        if self._platform_token is None and not book.tokens:
            raise TokenRefusedError(
                "the gateway has no API token configured, so its API refuses every request"
            )
        token_id = _token_id(presented)
        record = next((r for r in book.tokens if r.id == token_id), None)
        if record is None or not secrets.compare_digest(_digest(presented), record.sha256):
            raise TokenRefusedError("unknown bearer token")
        state = record.state(datetime.now(UTC))
        if state != "active":
            raise TokenRefusedError(f"{state} bearer token")
        return Grant(record.tenant, record.role)
