"""Authentication and authorisation: clinician sessions, bearer tokens with scopes, CSRF.

Every request passes ``authenticate`` (a ``before_request`` hook): only the endpoints in
``PUBLIC_ENDPOINTS`` are served without an identity. Reads (GET/HEAD/OPTIONS) need the ``read``
scope, everything else ``write``. Session-authenticated writes must carry the session's CSRF
token (form field ``csrf_token`` or header ``X-CSRF-Token``).

The Flask cookie carries only the server-side session's random id and the CSRF token
(``sessions``); tokens are checked against their row on every request (``tokens``); logins
are throttled (``logins``); the commands are in ``cli``.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from flask import Flask, current_app, g, redirect, request, session, url_for
from sqlalchemy import select

from app import db
from app.auth import cli, sessions, tokens
from app.auth.identity import READ_METHODS, SCOPES, SESSION_ENDED, Identity, hash_token
from app.auth.logins import LoginResult, check_login
from app.errors import problem, wants_problem
from app.models import User

__all__ = ["PUBLIC_ENDPOINTS", "READ_METHODS", "SCOPES", "SESSION_ENDED", "Identity",
           "LoginResult", "actor", "authenticate", "check_login", "csrf_token", "hash_token",
           "init_app", "issue_token", "login_user", "logout_user"]

PUBLIC_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "web.login", "static",
                              "web.static", "web.favicon"})


#: requests the pages make by themselves (live updates): they do not keep a session alive,
#: so a page left open still ends at the idle timeout
PASSIVE_ENDPOINTS = frozenset({
    "web.ward_events", "web.ward_rows_fragment", "web.ward_row_fragment",
    "web.patient_live_fragment", "web.forecast_section", "web.whatif_section"})


def _identity_from_session() -> tuple[Identity | None, bool]:
    """(identity, ended): ``ended`` when the cookie names a session the server refuses."""
    sid = session.get("sid")
    if not sid:
        # a cookie of the old kind (a bare user name) is no session any more
        return None, session.pop("user", None) is not None
    ident = sessions.resolve(str(sid), touch=request.endpoint not in PASSIVE_ENDPOINTS)
    if ident is None:
        session.pop("sid", None)
        return None, True
    return ident, False


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf", "")
    return bool(expected) and hmac.compare_digest(sent, expected)


def _deny(status: int, detail: str, ended: bool = False):
    if wants_problem():
        headers = {"WWW-Authenticate": 'Bearer realm="twin"'} if status == 401 else {}
        title = "Unauthorized" if status == 401 else "Forbidden"
        return problem(status, title, detail, headers=headers)
    if status == 401:
        args = {"ended": 1} if ended else {}
        return redirect(url_for("web.login", next=quote(request.full_path.rstrip("?")),
                                **args))
    return detail, status


def authenticate():
    """``before_request``: resolve the caller and enforce scopes and CSRF."""
    g.identity = None
    ended = False
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        g.identity, why = tokens.resolve(auth[7:].strip())
        if g.identity is None and request.endpoint not in PUBLIC_ENDPOINTS:
            return _deny(401, why)
    else:
        g.identity, ended = _identity_from_session()
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
        if ended:
            return _deny(401, SESSION_ENDED, ended=True)
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


def login_user(name: str) -> None:
    """Start a fresh server-side session for ``name`` (new id and CSRF token, no fixation)."""
    user_id = db.session().scalar(select(User.id).where(User.name == name))
    if user_id is None:
        raise LookupError(name)
    previous = session.get("sid")
    if previous:  # a login over a live session ends that one (its cookie may be copied)
        sessions.revoke(str(previous))
    sid = sessions.start(user_id, request.remote_addr)
    session.clear()
    session["sid"] = sid
    csrf_token()


def logout_user() -> None:
    """End the caller's server-side session and clear the cookie."""
    sid = session.get("sid")
    if sid:
        sessions.revoke(str(sid))
    session.clear()


def issue_token(name: str, scopes: str = "read,write",
                expires_days: float | None = tokens.DEFAULT_EXPIRES_DAYS) -> str:
    """Create a token programmatically (tests, scripts); returns the secret."""
    with db.new_session() as s:
        user = cli.get_or_create_user(s, name)
        token, _ = tokens.add_token(s, user, scopes, expires_days)
        s.commit()
    return token


def init_app(app: Flask) -> None:
    """Register the auth hook and CLI commands; say where the signing key came from."""
    app.before_request(authenticate)
    for command in cli.COMMANDS:
        app.cli.add_command(command)
    app.jinja_env.globals["csrf_token"] = csrf_token
    source = app.config.get("SECRET_KEY_SOURCE")
    if source and source != "environment" and app.config.get("SECRET_KEY"):
        app.logger.info("SECRET_KEY is not set: using the quick start's key file",
                        extra={"path": source})
