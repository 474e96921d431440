"""Bearer tokens (table ``api_tokens``, SHA-256 only): expiry, last use, listing, revocation.

No per-worker cache: every request reads the token's row (one indexed query on the unique
hash, joined to its user), so a revoked or expired token, or a deactivated user, is refused on
the next request on every worker. ``last_used_at`` is written at most once a minute.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app import db
from app.auth.identity import TOUCH_EVERY_S, Identity, hash_token
from app.models import ApiToken, User, utcnow

DEFAULT_EXPIRES_DAYS = 90


def new_secret() -> str:
    """A fresh bearer token (256 random bits)."""
    return "twn_" + secrets.token_urlsafe(32)


def resolve(token: str) -> tuple[Identity | None, str]:
    """(identity, "") for a live token, else (None, why it is refused)."""
    row = db.session().execute(
        select(ApiToken.id, ApiToken.scopes, ApiToken.revoked, ApiToken.expires_at,
               ApiToken.last_used_at, User.id.label("user_id"), User.name, User.active)
        .join(User, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == hash_token(token))
    ).first()
    if row is None:
        return None, "invalid bearer token"
    if row.revoked or not row.active:
        return None, "this bearer token is revoked"
    now = utcnow()
    if row.expires_at is not None and now >= row.expires_at:
        return None, "this bearer token has expired"
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= TOUCH_EVERY_S:
        with db.get_engine().begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == row.id)
                         .values(last_used_at=now))
    return Identity(row.name, frozenset(row.scopes.split(",")), "token",
                    user_id=row.user_id, token_id=row.id), ""


def add_token(s, user: User, scopes: str, expires_days: float | None) -> tuple[str, ApiToken]:
    """A new token row for ``user`` in session ``s``; returns (secret, row)."""
    token = new_secret()
    expires = None if expires_days is None else utcnow() + timedelta(days=expires_days)
    row = ApiToken(user_id=user.id, token_sha256=hash_token(token), scopes=scopes,
                   expires_at=expires)
    s.add(row)
    return token, row


def token_rows(s) -> list[dict]:
    """Every token, for ``list-tokens`` (never the secret, nor its hash)."""
    rows = s.execute(
        select(ApiToken.id, User.name, ApiToken.scopes, ApiToken.created_at,
               ApiToken.expires_at, ApiToken.last_used_at, ApiToken.revoked)
        .join(User, ApiToken.user_id == User.id).order_by(ApiToken.id)).all()
    return [dict(r._mapping) for r in rows]


def revoke(s, token_id: int | None = None, user_name: str | None = None) -> int:
    """Revoke one token by id, or every token of a user; the number revoked."""
    query = update(ApiToken).where(ApiToken.revoked.is_(False))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    else:
        user_ids = select(User.id).where(User.name == user_name).scalar_subquery()
        query = query.where(ApiToken.user_id == user_ids)
    return s.execute(query.values(revoked=True)).rowcount


def when(t: datetime | None) -> str:
    """A time as the commands print it (UTC, to the minute), or "-"."""
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M")
