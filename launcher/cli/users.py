"""`shopfloor users`: the dashboard's logins (`dashboard.auth` keeps them, hashed, in a 0600
file). A password is typed twice at a prompt, or read from SHOPFLOOR_USER_PASSWORD by a script,
never given as an argument (a command line is visible to every user of the machine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from launcher.cli.common import app, fail
from launcher.session import DEFAULT_DATA_DIR

DEFAULT_USERS_FILE = DEFAULT_DATA_DIR / "users.json"
PASSWORD_ENV = "SHOPFLOOR_USER_PASSWORD"

UsersFileOption = Annotated[
    Path,
    typer.Option(
        "--users",
        envvar="SHOPFLOOR_USERS",
        help="The dashboard's users file (created 0600).",
    ),
]

users_app = typer.Typer(help="Manage the dashboard's logins (users, roles, passwords).")
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user name to log in with.")],
    role: Annotated[
        str,
        typer.Option(
            help="staff (every tenant, the demo controls), sme (its tenant's pages, no "
            "controls) or visitor (the kiosk's pages, read-only)."
        ),
    ],
    tenant: Annotated[
        str | None, typer.Option(help="The tenant id of an sme user (as in its plant file).")
    ] = None,
    users_file: UsersFileOption = DEFAULT_USERS_FILE,
) -> None:
    """Add a user, or give an existing one a new password, role and tenant."""
    from dashboard.auth import Role, UsersError, new_user, read_users, write_users

    if role not in set(Role):
        raise fail(f"--role {role}: one of {', '.join(Role)}")
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        f"password for {name}", hide_input=True, confirmation_prompt=True
    )
    try:
        users = read_users(users_file)
        user = new_user(name, Role(role), tenant, password)
        write_users(users_file, [*(u for u in users.values() if u.name != name), user])
    except UsersError as exc:
        raise fail(str(exc)) from None
    verb = "changed" if name in users else "added"
    typer.echo(f"{verb} {name} ({role}{f', tenant {tenant}' if tenant else ''}) in {users_file}")


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="The user to remove.")],
    users_file: UsersFileOption = DEFAULT_USERS_FILE,
) -> None:
    """Remove a user: the dashboard logs it out at its next page load."""
    from dashboard.auth import UsersError, read_users, write_users

    try:
        users = read_users(users_file)
        if name not in users:
            raise fail(f"{users_file}: no user {name}")
        write_users(users_file, [u for u in users.values() if u.name != name])
    except UsersError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"removed {name} from {users_file}")


@users_app.command("list")
def users_list(users_file: UsersFileOption = DEFAULT_USERS_FILE) -> None:
    """The users, their roles and tenants (never their password hashes)."""
    from dashboard.auth import UsersError, read_users

    try:
        users = read_users(users_file)
    except UsersError as exc:
        raise fail(str(exc)) from None
    if not users:
        typer.echo(f"no users in {users_file}: add one with `shopfloor users add NAME --role ROLE`")
    for user in sorted(users.values(), key=lambda u: u.name):
        typer.echo(f"{user.name}\t{user.role}\t{user.tenant or ''}")
