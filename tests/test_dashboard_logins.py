"""Dashboard logins with roles, in headless Chromium against the real dashboard.

The dashboard listens on every interface (0.0.0.0) and is browsed at this machine's own
address, as a visitor on the centre's network would: nothing before a login; `staff` sees
every tenant and the demo controls; an `sme` user its own tenant alone (demo plant polimer is
tenant A, a trainee sandbox metalform tenant B); a `visitor` the kiosk's pages read-only. On
loopback the session is staff's without a login. The users file, the throttle and the CLI are
tested without a browser.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from typer.testing import CliRunner

from dashboard.auth import (
    Role,
    Session,
    Throttle,
    UsersError,
    is_loopback,
    new_user,
    read_users,
    verify,
    write_users,
)
from launcher.cli import app
from shopfloor.sandboxes import SESSION_DIR_ENV, write_tenant_plant
from tests.conftest import ROOT
from tests.servers import Mosquitto, free_port, require_binary
from tests.test_end_to_end import shopfloor, stop_all, wait_until

PLANT = ROOT / "examples" / "plant.yaml"  # tenant A: polimer
PASSWORD = "correct horse battery"
USERS = {  # name: (role, tenant)
    "sam": (Role.STAFF, None),
    "ana": (Role.SME, "polimer"),
    "mark": (Role.SME, "metalform"),
    "vic": (Role.VISITOR, None),
    "lock": (Role.STAFF, None),
    "ghost": (Role.SME, "nowhere"),  # a tenant this dashboard does not show
}
WRONG = "Wrong user name or password."
TIMEOUT_MS = 30_000


# --- without a browser ------------------------------------------------------------------------


def test_the_users_file_keeps_argon2_hashes_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "users.json"
    write_users(path, [new_user("ana", Role.SME, "polimer", PASSWORD)])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text and "$argon2id$" in text
    users = read_users(path)
    assert verify(users, "ana", PASSWORD) == users["ana"]
    assert users["ana"].tenant == "polimer" and users["ana"].role is Role.SME
    assert verify(users, "ana", "correct horse battery!") is None
    assert verify(users, "nobody", PASSWORD) is None
    path.chmod(0o644)
    with pytest.raises(UsersError, match=r"readable by others \(mode 644\): chmod 600"):
        read_users(path)


@pytest.mark.parametrize(
    ("role", "tenant", "password", "problem"),
    [
        (Role.SME, None, PASSWORD, "--tenant: an sme user needs"),
        (Role.STAFF, "polimer", PASSWORD, "--tenant: only sme users belong to a tenant"),
        (Role.VISITOR, None, "short", "password: at least 12 characters"),
    ],
)
def test_a_user_that_cannot_log_in_as_asked_is_refused(
    role: Role, tenant: str | None, password: str, problem: str
) -> None:
    with pytest.raises(UsersError, match=problem):
        new_user("someone", role, tenant, password)


def test_a_broken_users_file_is_named() -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"users-{os.getpid()}.json"
    path.write_text('{"users": {"ana": {"role": "boss"}}}')
    path.chmod(0o600)
    try:
        with pytest.raises(UsersError, match=f"{path}: not a users file"):
            read_users(path)
    finally:
        path.unlink()


def test_failed_logins_slow_down_after_a_few_and_longer_each_time() -> None:
    throttle = Throttle(free=3, base_s=30, max_s=100)
    keys = ["user:ana"]
    for _ in range(3):
        throttle.failed(keys, now=0)
        assert throttle.wait_s(keys, now=0) <= 0
    throttle.failed(keys, now=0)
    assert throttle.wait_s(keys, now=0) == 30
    assert throttle.wait_s(["user:sam"], now=0) <= 0  # another user is not slowed
    throttle.failed(keys, now=40)
    assert throttle.wait_s(keys, now=40) == 60
    throttle.failed(keys, now=200)
    assert throttle.wait_s(keys, now=200) == 100  # at most max_s
    throttle.succeeded(keys)
    assert throttle.wait_s(keys, now=200) <= 0


def test_a_session_expires_when_idle_or_too_old() -> None:
    session = Session("ana", Role.SME, "polimer", started=0, seen=0)
    assert not session.expired(now=59, idle_s=60, max_s=3600)
    assert session.expired(now=61, idle_s=60, max_s=3600)
    busy = Session("ana", Role.SME, "polimer", started=0, seen=3599)
    assert not busy.expired(now=3600, idle_s=60, max_s=3600)
    assert busy.expired(now=3601, idle_s=60, max_s=3600)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("", False), ("192.168.1.10", False), ("dashboard.example.org", False)],
)  # fmt: skip
def test_only_a_loopback_address_spares_the_login(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_users_are_managed_with_the_cli_and_passwords_never_leave_the_file(
    tmp_path: Path,
) -> None:
    runner, path = CliRunner(), tmp_path / "users.json"
    typed = runner.invoke(
        app, ["users", "add", "sam", "--role", "staff", "--users", str(path)],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert typed.exit_code == 0, typed.output
    scripted = runner.invoke(
        app, ["users", "add", "ana", "--role", "sme", "--tenant", "polimer", "--users", str(path)],
        env={"SHOPFLOOR_USER_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert scripted.exit_code == 0 and PASSWORD not in scripted.output
    listed = runner.invoke(app, ["users", "list", "--users", str(path)])
    assert listed.output.splitlines() == ["ana\tsme\tpolimer", "sam\tstaff\t"]
    assert verify(read_users(path), "sam", PASSWORD) is not None
    mismatched = runner.invoke(
        app, ["users", "add", "vic", "--role", "visitor", "--users", str(path)],
        input=f"{PASSWORD}\nanother password\n{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert "do not match" in mismatched.output and mismatched.exit_code == 0
    bad_role = runner.invoke(
        app, ["users", "add", "x", "--role", "boss", "--users", str(path)],
        env={"SHOPFLOOR_USER_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert bad_role.exit_code == 2 and "--role boss: one of staff, sme, visitor" in bad_role.output
    assert runner.invoke(app, ["users", "remove", "ana", "--users", str(path)]).exit_code == 0
    missing = runner.invoke(app, ["users", "remove", "ana", "--users", str(path)])
    assert missing.exit_code == 2 and "no user ana" in missing.output
    assert sorted(read_users(path)) == ["sam", "vic"]


def test_a_dashboard_beyond_loopback_without_users_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "dashboard", "--address", "0.0.0.0",
         "--users", str(tmp_path / "none.json"), "--store-url", f"sqlite:{tmp_path / 's.db'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no users to log in on 0.0.0.0: add one with `shopfloor users add" in result.stderr


# --- in the browser ---------------------------------------------------------------------------


def own_address() -> str:
    """This machine's address on its network (no packet is sent); loopback when it has none,
    which still reaches a dashboard listening on 0.0.0.0."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@dataclass(frozen=True)
class Dashboard:
    url: str
    log: Path


@contextlib.contextmanager
def dashboard(
    workdir: Path, address: str, users: Path | None, broker: Mosquitto,
    env: dict[str, str] | None = None,
) -> Iterator[Dashboard]:  # fmt: skip
    """`shopfloor dashboard` on `address`, with a trainee sandbox of tenant metalform beside
    the demo plant of polimer, a readiness database of both SMEs, and a broker for the demo
    controls to drive."""
    port, log = free_port(), workdir / f"dashboard-{address}.log"
    session_dir = workdir / "session"
    write_tenant_plant(PLANT, "metalform", session_dir)
    readiness = workdir / "readiness.db"
    if not readiness.exists():
        for answers in ("moulding", "machining"):
            subprocess.run(
                [sys.executable, "-m", "launcher", "assess",
                 str(ROOT / "examples" / "readiness" / f"{answers}.yaml"),
                 "--questionnaire-only", "--db", str(readiness)],
                cwd=ROOT, capture_output=True, check=True, timeout=120,
            )  # fmt: skip
    options = ["--users", str(users)] if users else []
    process = shopfloor(
        "dashboard", "--plant", str(PLANT), "--port", str(port), "--address", address,
        "--store-url", f"sqlite:{workdir / 'store.db'}", "--broker", broker.url, *options,
        log=log,
        env={SESSION_DIR_ENV: str(session_dir), "SHOPFLOOR_READINESS_DB": str(readiness),
             **(env or {})},
    )  # fmt: skip
    host = "127.0.0.1" if is_loopback(address) else own_address()
    try:
        wait_until(lambda: _listening(process, host, port, log), 90, "the dashboard")
        yield Dashboard(f"http://{host}:{port}", log)
    finally:
        stop_all([process])


def _listening(process: subprocess.Popen[bytes], host: str, port: int, log: Path) -> bool:
    assert process.poll() is None, log.read_text()
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def users_file(directory: Path) -> Path:
    path = directory / "users.json"
    write_users(path, [new_user(name, *USERS[name], PASSWORD) for name in USERS])
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=require_binary("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto) -> Iterator[Dashboard]:
    workdir = tmp_path_factory.mktemp("logins")
    with dashboard(workdir, "0.0.0.0", users_file(workdir), mosquitto) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def open_login(page: Page, url: str) -> None:
    page.goto(url, timeout=60_000)
    expect(page.get_by_label("User name")).to_be_visible(timeout=TIMEOUT_MS)


def log_in(page: Page, name: str, password: str = PASSWORD) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def logged_in(page: Page, url: str, name: str) -> None:
    """Open `url` and log in as `name`; return once the page behind the login is drawn."""
    open_login(page, url)
    log_in(page, name)
    expect(page.get_by_text(f"Logged in as {name}")).to_be_visible(timeout=TIMEOUT_MS)


def error_shown(page: Page) -> str:
    alert = page.locator("[data-testid='stAlertContentError']")
    expect(alert).to_be_visible(timeout=TIMEOUT_MS)
    return alert.inner_text().strip()


def navigation(page: Page) -> list[str]:
    links = page.locator("[data-testid='stSidebarNavLink']")
    expect(links.first).to_be_visible(timeout=TIMEOUT_MS)
    return [text.strip() for text in links.all_inner_texts()]


TITLE_A = "Polimer Moulding (demo SME) · "
SITE_A = "Brest demonstration centre"
TITLE_B = "trainee metalform"


def title(page: Page) -> str:
    """The page's heading once the page behind the login has replaced the form's (Streamlit
    keeps the form's heading on screen until the new page's first element is drawn)."""
    heading = page.locator("h1").first
    expect(heading).to_be_visible(timeout=TIMEOUT_MS)
    expect(heading).not_to_have_text("Log in", timeout=TIMEOUT_MS)
    return heading.inner_text()


@pytest.mark.browser
@pytest.mark.parametrize("path", ["", "/controls", "/readiness?tenant=metalform"])
def test_nothing_is_shown_before_a_login(served: Dashboard, page: Page, path: str) -> None:
    open_login(page, served.url + path)
    body = page.locator("body").inner_text()
    assert "Polimer" not in body and "Inject fault" not in body and "Readiness" not in body
    assert page.locator("[data-testid='stSidebarNavLink']").count() == 0


@pytest.mark.browser
def test_a_wrong_password_and_a_wrong_user_get_the_same_answer(
    served: Dashboard, page: Page
) -> None:
    open_login(page, served.url)
    log_in(page, "sam", "not the password")
    wrong_password = error_shown(page)
    open_login(page, served.url)  # a fresh page: the answer read is this try's
    log_in(page, "samuel", PASSWORD)
    wrong_user = error_shown(page)
    assert wrong_password == wrong_user == WRONG
    assert "Polimer" not in page.locator("body").inner_text()


@pytest.mark.browser
def test_repeated_failures_lock_the_user_even_with_the_right_password(
    served: Dashboard, page: Page
) -> None:
    for attempt in range(4):  # each on a fresh page: the answer read is this try's
        open_login(page, served.url)
        log_in(page, "lock", f"wrong password {attempt}")
        assert error_shown(page) == WRONG
    open_login(page, served.url)
    log_in(page, "lock", PASSWORD)
    assert error_shown(page).startswith("Too many failed logins: try again in ")
    assert page.get_by_text("Logged in as lock").count() == 0
    open_login(page, served.url)
    log_in(page, "sam", PASSWORD)  # the address is not locked for every user behind it
    expect(page.get_by_text("Logged in as sam")).to_be_visible(timeout=TIMEOUT_MS)


def go_by_url(page: Page, path: str) -> None:
    """Go to `path` within this browser session (a new page load is a new session, which
    asks for a login), the way the browser's back and forward buttons move between pages."""
    page.evaluate(
        "path => { history.pushState({}, '', path); dispatchEvent(new PopStateEvent('popstate')); }",
        path,
    )


def menu_options(page: Page, label: str) -> list[str]:
    """The options a selectbox offers, as its open menu lists them. A page that is still
    rendering after a change of page can swallow the click that opens the menu: it is clicked
    again until the menu shows."""
    selectbox = page.locator("[data-testid='stSelectbox']").filter(
        has=page.get_by_text(label, exact=True)
    )
    options = page.get_by_role("option")
    for _ in range(3):
        selectbox.click()
        try:
            expect(options.first).to_be_visible(timeout=TIMEOUT_MS // 3)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    expect(options.first).to_be_visible(timeout=TIMEOUT_MS)
    shown = [option.strip() for option in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return shown


@pytest.mark.browser
def test_staff_sees_every_tenant_and_the_demo_controls(served: Dashboard, page: Page) -> None:
    logged_in(page, served.url + "/controls", "sam")  # the page the link asked for
    expect(page.get_by_role("button", name="Inject fault")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("link", name="Shop floor").click()
    assert navigation(page) == [
        "Shop floor", "Demo story", "Demo controls", "Edge devices", "OEE", "Anomalies",
        "Energy", "Readiness",
    ]  # fmt: skip
    assert menu_options(page, "Plant") == [f"{TITLE_A}{SITE_A}", TITLE_B]
    go_by_url(page, "/controls")
    expect(page.get_by_role("button", name="Inject fault")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("link", name="Readiness").click()
    assert menu_options(page, "SME") == [
        "Metalform Machining (demo SME)",
        "Polimer Moulding (demo SME)",
    ]


@pytest.mark.browser
@pytest.mark.parametrize(
    ("name", "own", "other", "sme"),
    [("ana", TITLE_A, TITLE_B, "Polimer Moulding (demo SME)"),
     ("mark", TITLE_B, TITLE_A, "Metalform Machining (demo SME)")],
)  # fmt: skip
def test_an_sme_user_sees_its_own_tenant_only(
    served: Dashboard, page: Page, name: str, own: str, other: str, sme: str
) -> None:
    other_tenant = "metalform" if name == "ana" else "polimer"
    logged_in(page, f"{served.url}/?tenant={other_tenant}", name)
    assert own in title(page) and other not in title(page)
    assert navigation(page) == [
        "Shop floor",
        "Edge devices",
        "OEE",
        "Anomalies",
        "Energy",
        "Readiness",
    ]
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_by_text("Plant", exact=True).count() == 0  # no other tenant to choose
    page.get_by_role("link", name="Readiness").click()
    assert menu_options(page, "SME") == [sme]
    page.get_by_role("tab", name="Cohort").click()
    expect(page.get_by_text("The cohort compares every SME assessed: staff see it.")).to_be_visible(
        timeout=TIMEOUT_MS
    )


@pytest.mark.browser
def test_an_sme_user_of_a_tenant_not_shown_sees_no_plant(served: Dashboard, page: Page) -> None:
    logged_in(page, served.url, "ghost")
    assert error_shown(page) == "No plant of tenant nowhere is shown on this dashboard."
    assert "Polimer" not in page.locator("[data-testid='stMain']").inner_text()


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/controls", "/story"])
def test_an_sme_user_cannot_open_the_demo_controls_by_url(
    served: Dashboard, page: Page, path: str
) -> None:
    open_login(page, served.url + path)
    log_in(page, "ana")
    expect(page.get_by_text(TITLE_A)).to_be_visible(timeout=TIMEOUT_MS)  # not the asked page
    go_by_url(page, path)
    page.get_by_role("link", name="OEE").click()
    go_by_url(page, path)
    expect(page.get_by_text(TITLE_A)).to_be_visible(timeout=TIMEOUT_MS)
    assert page.get_by_role("button", name="Inject fault").count() == 0
    assert page.get_by_role("button", name="Back to x1").count() == 0
    assert "Demo controls" not in navigation(page)


@pytest.mark.browser
@pytest.mark.parametrize("path", ["", "/controls", "/story", "/edge"])
def test_a_visitor_cannot_drive_the_demo(served: Dashboard, page: Page, path: str) -> None:
    logged_in(page, served.url + path, "vic")
    assert navigation(page) == ["Shop floor", "OEE", "Anomalies", "Energy", "Readiness"]
    assert TITLE_A in title(page)
    if path:
        go_by_url(page, path)
        expect(page.get_by_text(TITLE_A)).to_be_visible(timeout=TIMEOUT_MS)
    assert page.get_by_role("button", name="Inject fault").count() == 0
    page.get_by_role("link", name="Readiness").click()
    assert menu_options(page, "SME") == ["Polimer Moulding (demo SME)"]
    page.get_by_role("tab", name="Questionnaire").click()
    expect(
        page.get_by_text("Answers are changed by staff or the SME, not from this view.")
    ).to_be_visible(timeout=TIMEOUT_MS)
    assert page.get_by_role("button", name="Save answers and score").count() == 0


@pytest.mark.browser
def test_logging_out_asks_again(served: Dashboard, page: Page) -> None:
    logged_in(page, served.url, "sam")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("User name")).to_be_visible(timeout=TIMEOUT_MS)
    assert "Polimer" not in page.locator("body").inner_text()


@pytest.mark.browser
def test_an_expired_session_asks_again(page: Page, tmp_path: Path, mosquitto: Mosquitto) -> None:
    idle_s = 3
    env = {"SHOPFLOOR_SESSION_IDLE_MINUTES": str(idle_s / 60)}
    with dashboard(tmp_path, "0.0.0.0", users_file(tmp_path), mosquitto, env) as running:
        logged_in(page, running.url, "sam")
        page.get_by_role("link", name="OEE").click()  # in use: the session goes on
        expect(page.get_by_text("Logged in as sam")).to_be_visible(timeout=TIMEOUT_MS)
        time.sleep(idle_s + 1)
        page.get_by_role("link", name="Energy").click()
        expect(page.get_by_text("Your session has ended: log in again.")).to_be_visible(
            timeout=TIMEOUT_MS
        )
        expect(page.get_by_label("User name")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator("[data-testid='stSidebarNavLink']")).to_have_count(0)


@pytest.mark.browser
def test_a_removed_user_is_logged_out_at_its_next_page(served: Dashboard, page: Page) -> None:
    users = Path(served.log.parent / "users.json")
    logged_in(page, served.url, "mark")
    remaining = [u for u in read_users(users).values() if u.name != "mark"]
    write_users(users, remaining)
    try:
        page.get_by_role("link", name="OEE").click()
        expect(page.get_by_label("User name")).to_be_visible(timeout=TIMEOUT_MS)
    finally:
        write_users(users, [*remaining, new_user("mark", *USERS["mark"], PASSWORD)])


@pytest.mark.browser
def test_on_loopback_the_demo_is_staff_without_a_login(
    page: Page, tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with dashboard(tmp_path, "127.0.0.1", None, mosquitto) as running:
        page.goto(running.url + "/controls", timeout=60_000)
        expect(page.get_by_role("button", name="Inject fault")).to_be_visible(timeout=TIMEOUT_MS)
        assert "Demo controls" in navigation(page)
        assert page.get_by_label("User name").count() == 0
        assert page.get_by_role("button", name="Log out").count() == 0
