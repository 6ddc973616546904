"""Secrets stay secret: placeholders refused at start, and no credential in any log line.

The components check the secrets they are given before they start (`check_secret`,
`check_api_token`, `check_broker_password`), so that a server brought up with the placeholders of
`.env.example` stops with one line naming the variable instead of running with a published
password. What holds a secret (the MQTT client, the store, the gateway's API) also `hide`s it:
`RedactingFilter`, on every log handler, then masks it in any record, whichever library wrote it.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

# Every secret of .env.example starts with this; none of them may be used.
PLACEHOLDER_PREFIX = "change-me"
MIN_API_TOKEN_LENGTH = 16
MASK = "***"

_hidden: set[str] = set()


class CredentialError(ValueError):
    """A secret that must not be used; the message names where it came from, never its value."""


def check_secret(name: str, value: str | None) -> None:
    """Refuse a placeholder of `.env.example` given as `name`."""
    if value and value.startswith(PLACEHOLDER_PREFIX):
        raise CredentialError(
            f"{name} is still the placeholder of .env.example ({PLACEHOLDER_PREFIX}...): "
            "set a secret of your own"
        )


def check_api_token(name: str, token: str | None) -> None:
    """Refuse a placeholder or a token short enough to guess; no token at all is allowed (the
    API then refuses every request)."""
    check_secret(name, token)
    if token and len(token) < MIN_API_TOKEN_LENGTH:
        raise CredentialError(
            f"{name} has {len(token)} characters; an API token needs at least "
            f"{MIN_API_TOKEN_LENGTH}"
        )


def check_broker_password(name: str, url: str | None) -> None:
    """Refuse a broker URL whose password is a placeholder."""
    password = urlsplit(url).password if url else None
    check_secret(f"the password in {name}", unquote(password) if password else None)


def hide(*secrets: str | None) -> None:
    """Mask these strings in every log record from now on (see RedactingFilter)."""
    _hidden.update(secret for secret in secrets if secret)


def redact(text: str) -> str:
    """`text` with every hidden secret replaced by MASK."""
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted(_hidden, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks the hidden secrets in a record's message, traceback and stack before a handler
    writes it: a defence behind keeping credentials out of URLs and messages in the first place.

    On a handler it sees the records of every logger that propagate to it, third parties' too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _hidden:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)  # arguments that do not fit: logged without them
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
