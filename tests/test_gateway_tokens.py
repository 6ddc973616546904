"""API tokens per tenant and role: issued and revoked with `shopfloor gateway token`, checked
by the gateway's API on its real stores, and by a running gateway with Mosquitto."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.tokens import PLATFORM, Role, TokenChecker, issue, read_book, revoke
from shopfloor.messages import AssetPath, Event
from shopfloor.plant import Plant
from shopfloor.store import Point, Scope, Store, StoreSettings, open_store
from tests.conftest import API_TOKEN, EXAMPLE_PLANT, ROOT
from tests.servers import Mosquitto, free_port
from tests.test_cli import shopfloor
from tests.test_end_to_end import shopfloor as start_shopfloor
from tests.test_end_to_end import stop_all, wait_until
from tests.test_gateway_api import HEALTHY, PROTECTED

TENANT = "polimer"  # the example plant's
OTHER = "metalform"
PRESS = AssetPath(TENANT, "brest", "moulding", "line-1", "imm-01")
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
READ_ROUTES = PROTECTED  # every GET route: a read token's
ACK = "/api/v1/events/imm-01/bearing_wear/acknowledgement"
ACK_BODY = {"start": "2026-11-02T08:00:00Z"}
AROUND_T0 = {"start": "2026-11-02T07:00:00Z", "end": "2026-11-02T09:00:00Z"}
TOKEN_SHAPE = re.compile(r"sft_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def token_command(tokens_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return shopfloor("gateway", "token", *args, "--api-tokens-file", str(tokens_file))


def issued(tokens_file: Path, tenant: str, role: str, name: str | None = None) -> str:
    """A token issued as the command issues it, for the tests whose subject is its use."""
    return issue(tokens_file, tenant, Role(role), name, None)[0]


def issued_by_command(tokens_file: Path, tenant: str, role: str, *options: str) -> str:
    """A token issued by the command, as it printed it."""
    result = token_command(tokens_file, "issue", "--tenant", tenant, "--role", role, *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "api-tokens.json"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
    yield opened
    opened.close()


def with_event(store: Store) -> Store:
    store.write([Point.from_event(PRESS, Event(name="bearing_wear", start=T0))])
    return store


def api(plant: Plant, store: Store, tokens_file: Path, platform: str | None = None) -> TestClient:
    checker = TokenChecker(tokens_file, platform)
    return TestClient(create_app(plant, store, lambda: HEALTHY, checker))


def answers(client: TestClient, token: str | None) -> dict[str, int]:
    """The status of every guarded route for `token`."""
    headers = bearer(token) if token is not None else {}
    found = {path: client.get(path, headers=headers).status_code for path in READ_ROUTES}
    found[ACK] = client.post(ACK, json=ACK_BODY, headers=headers).status_code
    return found


def only(read: int, admin: int) -> dict[str, int]:
    return {**dict.fromkeys(READ_ROUTES, read), ACK: admin}


# Issuing, listing and revoking with the command


def test_issue_prints_the_token_once_and_keeps_only_its_hash(tokens_file: Path) -> None:
    result = token_command(
        tokens_file, "issue", "--tenant", TENANT, "--role", "read", "--name", "grafana",
        "--expires", "30",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert TOKEN_SHAPE.fullmatch(token) and result.stdout == f"{token}\n"
    token_id = token.split("_")[1]
    assert token not in result.stderr and token_id in result.stderr
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(tokens_file.parent.stat().st_mode) == 0o700
    text = tokens_file.read_text()
    assert token not in text and token.split("_")[2] not in text
    (record,) = read_book(tokens_file).tokens
    assert (record.id, record.name, record.tenant, record.role) == (
        token_id, "grafana", TENANT, Role.READ,
    )  # fmt: skip
    assert record.sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert record.expires is not None and record.expires - record.created == timedelta(days=30)
    assert record.revoked is None

    listed = token_command(tokens_file, "list")
    assert listed.returncode == 0
    assert re.search(rf"{token_id} .*grafana .*{TENANT} .*read .* active", listed.stdout)
    assert token not in listed.stdout and record.sha256 not in listed.stdout


def test_revoke_by_name_or_id_keeps_the_record_marked(tokens_file: Path) -> None:
    first = issued_by_command(tokens_file, TENANT, "admin", "--name", "mes")
    second = issued_by_command(tokens_file, PLATFORM, "read")
    assert token_command(tokens_file, "revoke", "mes").returncode == 0
    assert token_command(tokens_file, "revoke", second.split("_")[1]).returncode == 0
    assert [r.revoked is not None for r in read_book(tokens_file).tokens] == [True, True]
    assert first != second
    listed = token_command(tokens_file, "list").stdout
    assert listed.count("revoked") == 2 and "active" not in listed
    assert issued(tokens_file, TENANT, "admin", "mes")  # the name is free again


def test_concurrent_issues_and_revokes_lose_nothing(tokens_file: Path) -> None:
    """Each command rewrites the whole file: under the lock, none undoes another."""
    victim = issued(tokens_file, TENANT, "read", "victim")
    command = [sys.executable, "-m", "launcher", "gateway", "token"]
    where = ["--api-tokens-file", str(tokens_file)]
    issues = [
        subprocess.Popen(
            [*command, "issue", "--tenant", TENANT, "--role", "read", *where],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, text=True,
        )
        for _ in range(6)
    ]  # fmt: skip
    revoking = subprocess.Popen([*command, "revoke", "victim", *where], cwd=ROOT)
    tokens = [process.communicate(timeout=60)[0].strip() for process in issues]
    assert revoking.wait(60) == 0
    book = read_book(tokens_file)
    assert len(book.tokens) == 7
    digests = {r.sha256: r for r in book.tokens}
    assert all(hashlib.sha256(t.encode()).hexdigest() in digests for t in [*tokens, victim])
    assert [r.name for r in book.tokens if r.revoked] == ["victim"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["issue", "--tenant", "Polimer", "--role", "read"],
         "error: tenant 'Polimer' is not a valid id: use lower-case letters"),
        (["issue", "--tenant", "polimer/brest", "--role", "read"],
         "error: tenant 'polimer/brest' is not a valid id"),
        (["issue", "--tenant", TENANT, "--role", "read", "--name", "two\nlines"],
         "error: name 'two\\nlines': use up to 64 letters"),
        (["issue", "--tenant", TENANT, "--role", "read", "--name", "taken"],
         "is already named 'taken': revoke it first or choose another name"),
        (["revoke", "nobody"], "error: no token with the id or name 'nobody' in "),
        (["revoke", "gone"], "was already revoked on "),
    ],
)  # fmt: skip
def test_bad_commands_fail_in_one_line_and_change_nothing(
    tokens_file: Path, args: list[str], message: str
) -> None:
    issued(tokens_file, TENANT, "read", "taken")
    issued(tokens_file, TENANT, "read", "gone")
    revoke(tokens_file, "gone")
    before = tokens_file.read_bytes()
    result = token_command(tokens_file, *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and tokens_file.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "write"], "Invalid value for '--role'"),
        (["--role", "read", "--expires", "0"], "Invalid value for '--expires'"),
        (["--role", "read", "--expires", "-3"], "Invalid value for '--expires'"),
    ],
)
def test_a_role_or_expiry_out_of_range_issues_nothing(
    tokens_file: Path, args: list[str], message: str
) -> None:
    result = token_command(tokens_file, "issue", "--tenant", TENANT, *args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stdout == "" and not tokens_file.exists()


def test_a_broken_token_file_is_named_in_one_line(tokens_file: Path) -> None:
    tokens_file.parent.mkdir()
    tokens_file.write_text('{"tokens": [{"id": "x"}]}')
    for args in (["list"], ["revoke", "x"], ["issue", "--tenant", TENANT, "--role", "read"]):
        result = token_command(tokens_file, *args)
        assert result.returncode == 2
        assert (
            result.stderr == f"error: token file {tokens_file}: tokens.0.tenant: Field required\n"
        )
    tokens_file.unlink()
    tokens_file.mkdir()  # unreadable as a file, to root too
    result = token_command(tokens_file, "list")
    assert result.stderr == f"error: cannot read the token file {tokens_file}: Is a directory\n"


def test_list_of_no_file_says_so(tokens_file: Path) -> None:
    result = token_command(tokens_file, "list")
    assert (result.returncode, result.stdout) == (0, f"no tokens in {tokens_file}\n")


# What each token may do, on the real stores


def test_each_role_and_tenant_gets_exactly_its_routes(
    example_plant: Plant, store: Store, tokens_file: Path
) -> None:
    client = api(example_plant, with_event(store), tokens_file, API_TOKEN)
    read = issued(tokens_file, TENANT, "read")
    admin = issued(tokens_file, TENANT, "admin")
    assert answers(client, read) == only(200, 403)
    assert answers(client, admin) == only(200, 200)
    assert answers(client, issued(tokens_file, PLATFORM, "read")) == only(200, 403)
    assert answers(client, issued(tokens_file, PLATFORM, "admin")) == only(200, 200)
    assert answers(client, API_TOKEN) == only(200, 200)  # --api-token: the platform's admin
    for role in ("read", "admin"):
        assert answers(client, issued(tokens_file, OTHER, role)) == only(403, 403)


def test_a_refusal_says_why(example_plant: Plant, embedded: Store, tokens_file: Path) -> None:
    client = api(example_plant, with_event(embedded), tokens_file)
    other = client.get("/api/v1/latest", headers=bearer(issued(tokens_file, OTHER, "admin")))
    assert (other.status_code, other.json()) == (
        403, {"detail": "this token is for tenant 'metalform'; this gateway serves 'polimer'"},
    )  # fmt: skip
    read = client.post(ACK, json=ACK_BODY, headers=bearer(issued(tokens_file, TENANT, "read")))
    assert (read.status_code, read.json()) == (
        403, {"detail": "this route needs a token with the admin role; this one has read"},
    )  # fmt: skip


def test_missing_unknown_and_forged_tokens_are_401(
    example_plant: Plant, embedded: Store, tokens_file: Path
) -> None:
    client = api(example_plant, with_event(embedded), tokens_file, API_TOKEN)
    real = issued(tokens_file, TENANT, "admin")
    prefix, token_id, secret = real.split("_", 2)
    refused = {
        None: "missing bearer token",
        "": "missing bearer token",
        "wrong": "unknown bearer token",
        f"{prefix}_{token_id}_{secret[:-1]}A" if secret[-1] != "A" else f"{real[:-1]}B":
            "unknown bearer token",
        f"{prefix}_{'0' * 8}_{secret}": "unknown bearer token",  # the secret under another id
        hashlib.sha256(real.encode()).hexdigest(): "unknown bearer token",  # the stored hash
        API_TOKEN[:-1]: "unknown bearer token",
    }  # fmt: skip
    for token, detail in refused.items():
        assert answers(client, token) == only(401, 401), token
        response = client.get("/api/v1/plant", headers=bearer(token) if token is not None else {})
        assert response.json() == {"detail": detail}
        assert response.headers["www-authenticate"] == "Bearer"
    basic = client.get("/api/v1/plant", headers={"Authorization": f"Basic {real}"})
    assert basic.status_code == 401


def test_a_revoked_token_stops_at_its_next_request(
    example_plant: Plant, embedded: Store, tokens_file: Path
) -> None:
    client = api(example_plant, with_event(embedded), tokens_file)
    token = issued(tokens_file, TENANT, "admin", "line-display")
    assert answers(client, token) == only(200, 200)
    assert token_command(tokens_file, "revoke", "line-display").returncode == 0
    assert answers(client, token) == only(401, 401)
    assert client.get("/api/v1/plant", headers=bearer(token)).json() == {
        "detail": "revoked bearer token"
    }


def test_an_expired_token_is_401(example_plant: Plant, embedded: Store, tokens_file: Path) -> None:
    client = api(example_plant, with_event(embedded), tokens_file)
    expired, _ = issue(tokens_file, TENANT, Role.ADMIN, None, timedelta(0))
    lasting, _ = issue(tokens_file, TENANT, Role.ADMIN, None, timedelta(minutes=10))
    assert answers(client, expired) == only(401, 401)
    assert client.get("/api/v1/plant", headers=bearer(expired)).json() == {
        "detail": "expired bearer token"
    }
    assert answers(client, lasting) == only(200, 200)
    assert "expired" in token_command(tokens_file, "list").stdout


def test_a_broken_token_file_refuses_its_tokens_until_fixed(
    example_plant: Plant, embedded: Store, tokens_file: Path
) -> None:
    """Fail closed: a file that cannot be read lets none of its tokens in (503, the server's
    fault), while the platform token of --api-token still works."""
    client = api(example_plant, with_event(embedded), tokens_file, API_TOKEN)
    token = issued(tokens_file, TENANT, "read")
    good = tokens_file.read_bytes()
    tokens_file.write_bytes(good[: len(good) // 2])
    assert answers(client, token) == only(503, 503)
    assert client.get("/api/v1/plant", headers=bearer(token)).json() == {
        "detail": "the gateway cannot read its token file"
    }
    assert answers(client, API_TOKEN) == only(200, 200)
    tokens_file.write_bytes(good)
    assert answers(client, token) == only(200, 403)
    tokens_file.unlink()  # no file: no tokens of the file
    assert answers(client, token) == only(401, 401)


def test_with_no_token_anywhere_everything_is_refused(
    example_plant: Plant, embedded: Store, tokens_file: Path
) -> None:
    client = api(example_plant, with_event(embedded), tokens_file)
    assert answers(client, "sft_00000000_" + "x" * 43) == only(401, 401)
    assert client.get("/api/v1/plant", headers=bearer("anything")).json() == {
        "detail": "the gateway has no API token configured, so its API refuses every request"
    }
    assert client.get("/health").status_code == 200


# Acknowledging, the admin route


def test_an_admin_acknowledges_an_event_once(
    example_plant: Plant, store: Store, tokens_file: Path
) -> None:
    client = api(example_plant, with_event(store), tokens_file)
    admin = bearer(issued(tokens_file, TENANT, "admin"))
    reader = bearer(issued(tokens_file, TENANT, "read"))
    events = client.get("/api/v1/events", params=AROUND_T0, headers=reader)
    assert [e["acknowledged"] for e in events.json()] == [None]
    before = datetime.now(UTC)
    first = client.post(ACK, json=ACK_BODY, headers=admin)
    assert first.status_code == 200
    acknowledged = datetime.fromisoformat(first.json()["acknowledged"])
    assert before <= acknowledged <= datetime.now(UTC)
    assert first.json()["name"] == "bearing_wear" and first.json()["asset"]["asset"] == "imm-01"
    again = client.post(ACK, json={"start": "2026-11-02T10:00:00+02:00"}, headers=admin)
    assert again.json() == first.json()  # the same event, named in another zone; kept as it was
    events = client.get("/api/v1/events", params=AROUND_T0, headers=reader)
    assert [datetime.fromisoformat(e["acknowledged"]) for e in events.json()] == [acknowledged]


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/api/v1/events/imm-01/bearing_wear/acknowledgement", {"start": "2026-11-02T08:00:01Z"},
         404, "asset 'imm-01' has no event 'bearing_wear' starting at 2026-11-02 08:00:01+00:00"),
        ("/api/v1/events/imm-01/overheat/acknowledgement", ACK_BODY,
         404, "asset 'imm-01' has no event 'overheat' starting at 2026-11-02 08:00:00+00:00"),
        ("/api/v1/events/press-9/bearing_wear/acknowledgement", ACK_BODY,
         404, "no asset 'press-9' in polimer/brest"),
        (ACK, {"start": "2026-11-02T08:00:00"}, 422, None),
        (ACK, {"start": "2300-01-01T00:00:00Z"}, 422, None),
        (ACK, {"start": "0001-01-01T00:00:00+00:01"}, 422, None),  # before year 1 in UTC
        (ACK, {}, 422, None),
    ],
)  # fmt: skip
def test_acknowledging_what_is_not_there_is_refused(
    example_plant: Plant,
    embedded: Store,
    tokens_file: Path,
    path: str,
    body: dict[str, Any],
    status: int,
    detail: str | None,
) -> None:
    client = api(example_plant, with_event(embedded), tokens_file, API_TOKEN)
    response = client.post(path, json=body, headers=bearer(API_TOKEN))
    assert response.status_code == status
    if detail is not None:
        assert response.json() == {"detail": detail}
    else:
        assert response.json()["detail"][0]["loc"] == ["body", "start"]
    assert not [p for p in embedded.latest(Scope.of(PRESS)) if p.signal.startswith("ack.")]


# The spec


def test_the_spec_states_the_scope_of_every_route(
    example_plant: Plant, embedded: Store, tokens_file: Path
) -> None:
    spec = api(example_plant, embedded, tokens_file).get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "polimer" in spec["info"]["description"] and "`*`" in spec["info"]["description"]
    operations = {
        (path, method): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    assert "security" not in operations["/health", "get"]
    roles = {key: "read" for key in operations if key[1] == "get" and key[0] != "/health"}
    roles["/api/v1/events/{asset}/{name}/acknowledgement", "post"] = "admin"
    assert set(operations) == {*roles, ("/health", "get")}
    assert len(roles) == 8
    for key, role in roles.items():
        operation = operations[key]
        assert operation["security"] == [{"HTTPBearer": [role]}], key
        assert operation["description"].endswith(
            f"Needs a bearer token with the `{role}` role (or a wider one) of tenant "
            "`polimer` or of the platform (tenant `*`)."
        ), key
        assert operation["responses"]["401"]["description"] == (
            "missing, unknown, revoked or expired token"
        )
        forbidden = operation["responses"]["403"]["description"]
        assert forbidden.startswith("the token is of another tenant than `polimer`")
        assert ("only the `read` role" in forbidden) == (role == "admin")


# A running gateway


def _status(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers=bearer(token))
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return 0  # nothing answers yet


def test_a_running_gateway_takes_new_tokens_and_drops_revoked_ones_without_a_restart(
    mosquitto: Mosquitto, tmp_path: Path, tokens_file: Path
) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    process = start_shopfloor(
        "gateway", "--plant", str(EXAMPLE_PLANT), "--broker", mosquitto.url,
        "--store-url", f"sqlite:{tmp_path / 'store.db'}", "--spill", str(tmp_path / "spill.db"),
        "--http-port", str(port), "--api-tokens-file", str(tokens_file),
        log=log, env={"SHOPFLOOR_API_TOKEN": API_TOKEN},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/v1/plant"
    tokens = []
    try:
        wait_until(lambda: _status(url, API_TOKEN) == 200, 30, "the gateway's API")
        reader = issued_by_command(tokens_file, TENANT, "read", "--name", "kiosk")  # new file
        stranger = issued_by_command(tokens_file, OTHER, "admin")
        tokens = [reader, stranger]
        assert _status(url, reader) == 200
        assert _status(url, stranger) == 403
        assert token_command(tokens_file, "revoke", "kiosk").returncode == 0
        assert _status(url, reader) == 401
        assert _status(url, API_TOKEN) == 200
    finally:
        stop_all([process])
    text = log.read_text()
    assert "API tokens: 2 active of 2" in text and "API tokens: 1 active of 2" in text
    assert "Traceback" not in text
    assert not [token for token in [*tokens, API_TOKEN] if token in text]


def test_a_gateway_with_a_broken_token_file_does_not_start(
    tmp_path: Path, tokens_file: Path
) -> None:
    tokens_file.parent.mkdir()
    tokens_file.write_text(json.dumps({"tokens": [{"id": "x", "tenant": "Acme"}]}))
    result = shopfloor(
        "gateway", "--plant", str(EXAMPLE_PLANT), "--store-url", f"sqlite:{tmp_path / 's.db'}",
        "--api-tokens-file", str(tokens_file),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: token file {tokens_file}: tokens.0.tenant")
    assert len(result.stderr.splitlines()) == 1
