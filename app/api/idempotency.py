"""``Idempotency-Key`` on the API's writes (issue 15, item 6): a retried post does not
duplicate readings.

A POST, PUT or PATCH carrying the header is claimed under (caller, method, path, key) before
its view runs. The first request's response (if not a 5xx) is stored; a retry with the same
key and the same body gets that response again (``Idempotent-Replayed: true``) and changes
nothing; the same key with another body is a 422; a retry while the first is still running
is a 409. Keys are kept for ``KEEP`` (24 h). Follows the IETF draft
"The Idempotency-Key HTTP Header Field" (draft-ietf-httpapi-idempotency-key-header).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Blueprint, Response, g, request
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from app import auth, db
from app.errors import ApiError
from app.models import IdempotencyKey, utcnow

HEADER = "Idempotency-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
KEEP = timedelta(hours=24)
MAX_KEY = 255


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _problem(status: int, title: str, detail: str, kind: str) -> ApiError:
    return ApiError(status, title, detail, [{"field": HEADER, "message": kind}])


def claim() -> Response | None:
    """``before_request``: claim the key, or answer with the stored response or a refusal."""
    key = request.headers.get(HEADER)
    if key is None or request.method not in WRITE_METHODS:
        return None
    if not 0 < len(key) <= MAX_KEY or not key.isprintable():
        raise _problem(400, "Bad Idempotency-Key",
                       f"{HEADER} must be 1 to {MAX_KEY} printable characters", "invalid")
    digest = _digest(auth.actor() or "", request.method, request.path, key)
    body = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    now = utcnow()
    try:
        with db.get_engine().begin() as conn:
            conn.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
            conn.execute(insert(IdempotencyKey).values(
                key_sha256=digest, request_sha256=body, created_at=now,
                patient_id=(request.view_args or {}).get("patient_id")))
    except IntegrityError:
        return _replay(digest, body)
    g.idempotency_digest = digest
    return None


def _replay(digest: str, body: str) -> Response:
    with db.get_engine().connect() as conn:
        row = conn.execute(select(IdempotencyKey).where(
            IdempotencyKey.key_sha256 == digest)).first()
    if row is None:  # expired between the insert and now: let the client retry
        raise _problem(409, "Idempotency-Key conflict", "retry the request", "expired")
    if row.request_sha256 != body:
        raise _problem(422, "Idempotency-Key reused",
                       f"this {HEADER} was used for a different request body", "reused")
    if row.status is None:
        raise _problem(409, "Request in progress",
                       f"a request with this {HEADER} is still being processed; retry "
                       "shortly", "in-progress")
    resp = Response(row.body or "", status=row.status, mimetype=row.mimetype)
    if row.location:
        resp.headers["Location"] = row.location
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def store(resp: Response) -> Response:
    """``after_request``: keep the claimed request's response (a 5xx frees the key)."""
    digest = g.pop("idempotency_digest", None)
    if digest is None:
        return resp
    with db.get_engine().begin() as conn:
        if resp.status_code >= 500 or resp.is_streamed:
            conn.execute(delete(IdempotencyKey).where(IdempotencyKey.key_sha256 == digest))
        else:
            conn.execute(update(IdempotencyKey).where(IdempotencyKey.key_sha256 == digest)
                         .values(status=resp.status_code, body=resp.get_data(as_text=True),
                                 mimetype=resp.mimetype,
                                 location=resp.headers.get("Location")))
    return resp


def init_blueprint(bp: Blueprint) -> None:
    """Claim before the API's views and store after them."""
    bp.before_request(claim)
    bp.after_request(store)
