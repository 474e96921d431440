"""Login and token commands: ``create-user``, ``deactivate-user``, ``create-token``,
``list-tokens``, ``revoke-token``."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app import config, db
from app.auth import sessions, tokens
from app.auth.identity import SCOPES
from app.models import User


def get_or_create_user(s, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, active=True)
        s.add(user)
        s.flush()
    return user


@click.command("create-user")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@with_appcontext
def create_user_command(name: str, password_stdin: bool) -> None:
    """Create clinician NAME, or set a new password (and reactivate) an existing one.

    The password comes from stdin (--password-stdin), else TWIN_USER_PASSWORD, else a prompt.
    A new password ends every open session of the user.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif config.env("TWIN_USER_PASSWORD"):
        password = config.env("TWIN_USER_PASSWORD")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.UsageError("password: at least 8 characters")
    with db.new_session() as s:
        user = get_or_create_user(s, name)
        user.password_hash = generate_password_hash(password)
        user.active = True
        ended = sessions.revoke_user(s, user.id)
        s.commit()
    click.echo(f"User {name} can log in." + (f" {ended} open session(s) ended." if ended
                                             else ""))


@click.command("deactivate-user")
@click.argument("name")
@with_appcontext
def deactivate_user_command(name: str) -> None:
    """Deactivate user NAME: their sessions end and their tokens are refused at once."""
    with db.new_session() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise click.ClickException(f"no user named {name!r}")
        user.active = False
        ended = sessions.revoke_user(s, user.id)
        s.commit()
    click.echo(f"User {name} is deactivated; {ended} open session(s) ended, "
               "their tokens are refused.")


@click.command("create-token")
@click.argument("name")
@click.option("--scopes", default="read", show_default=True,
              help="comma-separated: read, write")
@click.option("--expires-days", type=click.IntRange(min=1), default=tokens.DEFAULT_EXPIRES_DAYS,
              show_default=True, help="the token is refused after this many days")
@with_appcontext
def create_token_command(name: str, scopes: str, expires_days: int) -> None:
    """Create a bearer token for NAME (the user is created if missing); prints it last."""
    wanted = sorted({s.strip() for s in scopes.split(",") if s.strip()})
    bad = [s for s in wanted if s not in SCOPES]
    if bad or not wanted:
        raise click.UsageError(f"--scopes: allowed are {', '.join(SCOPES)}, got {scopes!r}")
    with db.new_session() as s:
        user = get_or_create_user(s, name)
        token, row = tokens.add_token(s, user, ",".join(wanted), expires_days)
        s.commit()
        click.echo(f"Token {row.id} for {name} with scopes {','.join(wanted)}, expires "
                   f"{tokens.when(row.expires_at)} UTC (shown once):")
    click.echo(token)


@click.command("list-tokens")
@with_appcontext
def list_tokens_command() -> None:
    """Every token: id, user, scopes, created, expires, last used, revoked (never the token)."""
    with db.new_session() as s:
        rows = tokens.token_rows(s)
    header = ("id", "user", "scopes", "created", "expires", "last used", "revoked")
    table = [header] + [(str(r["id"]), r["name"], r["scopes"], tokens.when(r["created_at"]),
                         tokens.when(r["expires_at"]), tokens.when(r["last_used_at"]),
                         "yes" if r["revoked"] else "no") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@click.command("revoke-token")
@click.argument("token_id", type=int, required=False)
@click.option("--name", "user_name", help="revoke every token of this user")
@with_appcontext
def revoke_token_command(token_id: int | None, user_name: str | None) -> None:
    """Revoke token TOKEN_ID (see list-tokens), or with --name every token of a user.

    Takes effect on the next request on every worker."""
    if (token_id is None) == (user_name is None):
        raise click.UsageError("give a token ID or --name NAME")
    with db.new_session() as s:
        count = tokens.revoke(s, token_id=token_id, user_name=user_name)
        s.commit()
    if not count:
        raise click.ClickException("no such token that is not revoked yet")
    click.echo(f"Revoked {count} token(s).")


COMMANDS = (create_user_command, deactivate_user_command, create_token_command,
            list_tokens_command, revoke_token_command)
