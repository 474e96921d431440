"""Authentication and authorisation: clinician sessions, bearer tokens with scopes, CSRF.

Every request passes ``authenticate`` (a ``before_request`` hook): only the endpoints in
``PUBLIC_ENDPOINTS`` are served without an identity. Reads (GET/HEAD/OPTIONS) need the ``read``
scope, everything else ``write``. Session-authenticated writes must carry the session's CSRF
token (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

import click
from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.cli import with_appcontext
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app import config, db
from app.errors import problem, wants_problem
from app.models import ApiToken, User

PUBLIC_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "web.login", "static",
                              "web.static", "web.favicon"})
SCOPES = ("read", "write")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_CACHE_TTL_S = 30.0


@dataclass(frozen=True)
class Identity:
    """Who is calling and what they may do."""

    name: str
    scopes: frozenset[str]
    kind: str  # "session" | "token"


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a bearer token (the only form stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


class _TokenCache:
    """token hash -> (expiry, Identity | None); avoids a query per API request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[float, Identity | None]] = {}

    def get(self, digest: str) -> tuple[bool, Identity | None]:
        with self.lock:
            hit = self.entries.get(digest)
        if hit and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def put(self, digest: str, ident: Identity | None) -> None:
        with self.lock:
            if len(self.entries) > 10_000:
                self.entries.clear()
            self.entries[digest] = (time.monotonic() + TOKEN_CACHE_TTL_S, ident)


_TOKENS = _TokenCache()


def _identity_from_token(token: str) -> Identity | None:
    digest = hash_token(token)
    hit, ident = _TOKENS.get(digest)
    if hit:
        return ident
    row = db.session().execute(
        select(ApiToken.scopes, User.name)
        .join(User, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == digest, ApiToken.revoked.is_(False),
               User.active.is_(True))
    ).first()
    ident = None
    if row is not None:
        ident = Identity(row.name, frozenset(row.scopes.split(",")), "token")
    _TOKENS.put(digest, ident)
    return ident


def _identity_from_session() -> Identity | None:
    name = session.get("user")
    if not name:
        return None
    return Identity(name, frozenset(SCOPES), "session")


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf", "")
    return bool(expected) and hmac.compare_digest(sent, expected)


def _deny(status: int, detail: str):
    if wants_problem():
        headers = {"WWW-Authenticate": 'Bearer realm="twin"'} if status == 401 else {}
        title = "Unauthorized" if status == 401 else "Forbidden"
        return problem(status, title, detail, headers=headers)
    if status == 401:
        return redirect(url_for("web.login", next=quote(request.full_path.rstrip("?"))))
    return detail, status


def authenticate():
    """``before_request``: resolve the caller and enforce scopes and CSRF."""
    g.identity = None
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        g.identity = _identity_from_token(auth[7:].strip())
        if g.identity is None and request.endpoint not in PUBLIC_ENDPOINTS:
            return _deny(401, "invalid or revoked bearer token")
    else:
        g.identity = _identity_from_session()
    endpoint = request.endpoint
    if request.method == "OPTIONS":
        return None  # Flask answers OPTIONS itself (CORS preflight); no view runs
    if endpoint in PUBLIC_ENDPOINTS or (
        endpoint == "metrics" and current_app.config.get("METRICS_PUBLIC")
    ):
        if endpoint == "web.login" and request.method == "POST" and not _csrf_ok():
            return _deny(400, "missing or wrong CSRF token: reload the login page")
        return None
    ident = g.identity
    if ident is None:
        return _deny(401, "authentication required: log in or send a bearer token")
    needed = "read" if request.method in READ_METHODS else "write"
    if needed not in ident.scopes:
        return _deny(403, f"this token lacks the '{needed}' scope")
    if ident.kind == "session" and request.method not in READ_METHODS and not _csrf_ok():
        return _deny(403 if wants_problem() else 400, "missing or wrong CSRF token")
    return None


def actor() -> str | None:
    """Name of the caller, for audit records."""
    ident = g.get("identity")
    return ident.name if ident else None


def check_login(name: str, password: str) -> bool:
    """True if ``name`` is an active user with this password."""
    user = db.session().scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is None or not user.password_hash:
        # same work either way, so timing does not reveal which names exist
        check_password_hash(generate_password_hash("x"), password)
        return False
    return check_password_hash(user.password_hash, password)


def login_user(name: str) -> None:
    """Start a fresh session for ``name`` (new CSRF token, no fixation)."""
    session.clear()
    session["user"] = name
    session.permanent = False
    csrf_token()


# --- CLI -------------------------------------------------------------------------------------


def _get_or_create_user(s, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        s.add(user)
    return user


@click.command("create-user")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@with_appcontext
def create_user_command(name: str, password_stdin: bool) -> None:
    """Create (or reset the password of) clinician NAME.

    The password comes from stdin (--password-stdin), else TWIN_USER_PASSWORD, else a prompt.
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
        user = _get_or_create_user(s, name)
        user.password_hash = generate_password_hash(password)
        s.commit()
    click.echo(f"User {name} can log in.")


@click.command("create-token")
@click.argument("name")
@click.option("--scopes", default="read", show_default=True,
              help="comma-separated: read, write")
@with_appcontext
def create_token_command(name: str, scopes: str) -> None:
    """Create a bearer token for NAME (the user is created if missing); prints it last."""
    wanted = sorted({s.strip() for s in scopes.split(",") if s.strip()})
    bad = [s for s in wanted if s not in SCOPES]
    if bad or not wanted:
        raise click.UsageError(f"--scopes: allowed are {', '.join(SCOPES)}, got {scopes!r}")
    token = "twn_" + secrets.token_urlsafe(32)
    with db.new_session() as s:
        user = _get_or_create_user(s, name)
        s.flush()
        s.add(ApiToken(user_id=user.id, token_sha256=hash_token(token),
                       scopes=",".join(wanted)))
        s.commit()
    click.echo(f"Token for {name} with scopes {','.join(wanted)} (shown once):")
    click.echo(token)


def issue_token(name: str, scopes: str = "read,write") -> str:
    """Create a token programmatically (tests, scripts); returns the secret."""
    token = "twn_" + secrets.token_urlsafe(32)
    with db.new_session() as s:
        user = _get_or_create_user(s, name)
        s.flush()
        s.add(ApiToken(user_id=user.id, token_sha256=hash_token(token), scopes=scopes))
        s.commit()
    return token


def init_app(app: Flask) -> None:
    """Register the auth hook and CLI commands."""
    app.before_request(authenticate)
    app.cli.add_command(create_user_command)
    app.cli.add_command(create_token_command)
    app.jinja_env.globals["csrf_token"] = csrf_token
