"""Who is calling (``Identity``, kept in ``g.identity``), the scopes, and the one hash of a
secret (session id or bearer token) that the database keeps instead of the secret."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SCOPES = ("read", "write")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: last-seen and last-used times are written at most this often (seconds), not per request
TOUCH_EVERY_S = 60.0
#: what a clinician reads when the server has ended their session
SESSION_ENDED = "Your session has ended; log in again."


@dataclass(frozen=True)
class Identity:
    """Who is calling and what they may do."""

    name: str
    scopes: frozenset[str]
    kind: str  # "session" | "token"
    user_id: int | None = None
    token_id: int | None = None


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a bearer token or session id (the only form stored)."""
    return hashlib.sha256(token.encode()).hexdigest()
