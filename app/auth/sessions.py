"""Server-side login sessions (table ``sessions``): the cookie carries a random id, the
database its SHA-256, the user, the times and the client address.

A session is refused once it is revoked (logout, password change, deactivation), idle for
``SESSION_IDLE_MINUTES``, older than ``SESSION_MAX_HOURS``, or its user is missing or
inactive; the user is read from the database on every request. ``last_seen_at`` is written
at most once a minute.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from app import db
from app.auth.identity import SCOPES, TOUCH_EVERY_S, Identity, hash_token
from app.models import LoginSession, User, utcnow


def _limits() -> tuple[timedelta, timedelta]:
    cfg = current_app.config
    return (timedelta(minutes=float(cfg.get("SESSION_IDLE_MINUTES", 15))),
            timedelta(hours=float(cfg.get("SESSION_MAX_HOURS", 12))))


def start(user_id: int, client_addr: str | None) -> str:
    """A new session for ``user_id``; returns its id (the only copy: it goes in the cookie)."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    _, lifetime = _limits()
    with db.get_engine().begin() as conn:
        conn.execute(LoginSession.__table__.insert().values(
            id_sha256=hash_token(sid), user_id=user_id, created_at=now, last_seen_at=now,
            expires_at=now + lifetime, revoked_at=None,
            client_addr=(client_addr or "")[:64] or None))
    return sid


def resolve(sid: str, touch: bool = True) -> Identity | None:
    """The identity of a live session, else None (ended, unknown, or its user inactive).
    ``touch`` False (a page's own live update): the idle clock is not reset."""
    digest = hash_token(sid)
    row = db.session().execute(
        select(LoginSession.last_seen_at, LoginSession.expires_at, LoginSession.revoked_at,
               User.id, User.name, User.active)
        .join(User, LoginSession.user_id == User.id)
        .where(LoginSession.id_sha256 == digest)
    ).first()
    if row is None or row.revoked_at is not None or not row.active:
        return None
    now = utcnow()
    idle, _ = _limits()
    if now >= row.expires_at or now - row.last_seen_at >= idle:
        return None
    if touch and (now - row.last_seen_at).total_seconds() >= TOUCH_EVERY_S:
        with db.get_engine().begin() as conn:
            conn.execute(update(LoginSession).where(LoginSession.id_sha256 == digest)
                         .values(last_seen_at=now))
    return Identity(row.name, frozenset(SCOPES), "session", user_id=row.id)


def revoke(sid: str) -> None:
    """End one session (logout)."""
    with db.get_engine().begin() as conn:
        conn.execute(update(LoginSession)
                     .where(LoginSession.id_sha256 == hash_token(sid),
                            LoginSession.revoked_at.is_(None))
                     .values(revoked_at=utcnow()))


def revoke_user(s, user_id: int) -> int:
    """End every open session of ``user_id`` in session ``s`` (committed by the caller)."""
    return s.execute(update(LoginSession)
                     .where(LoginSession.user_id == user_id,
                            LoginSession.revoked_at.is_(None))
                     .values(revoked_at=utcnow())).rowcount
