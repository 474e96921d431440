"""The audit log (one row per API request and page request, and one per correction with its
detail) and the forecast-run log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import insert

from app import db
from app.models import ForecastRun, utcnow
from app.observability import METRICS
from app.services import audit_chain


def _client_addr() -> str | None:
    """The caller's address (the socket's peer; a proxy's forwarded address is not trusted)."""
    return request.remote_addr[:64] if has_request_context() and request.remote_addr else None


def audit(actor: str | None, method: str, path: str, patient_id: str | None,
          status: int) -> None:
    """Record one request in the audit log, committed before the response goes out (reads
    too: a worker that dies loses no audit row)."""
    action = "read" if method in {"GET", "HEAD", "OPTIONS"} else "write"
    row = {"time": datetime.now(UTC), "actor": actor, "action": action, "method": method,
           "path": path[:256].replace("\x00", "\\0"),
           "patient_id": None if patient_id is None else patient_id.replace("\x00", "\\0"),
           "status": status, "client_addr": _client_addr()}
    with db.get_engine().begin() as conn:
        audit_chain.append(conn, row)


def audit_change(actor: str | None, method: str, path: str, patient_id: str,
                 detail: dict[str, Any], status: int = 200) -> None:
    """One write row with ``detail`` (what changed, as JSON; codes and ids, never values)."""
    with db.get_engine().begin() as conn:
        audit_chain.append(conn, {
            "time": utcnow(), "actor": actor, "action": "write", "method": method[:8],
            "path": path[:256], "patient_id": patient_id, "status": status,
            "detail": json.dumps(detail), "client_addr": _client_addr()})


def flush_audit() -> None:
    """Nothing is pending: every audit row is committed when it is recorded (kept for the
    callers that make sure of it, e.g. before an erasure)."""


def record_run(kind: str, patient_id: str | None, fc_version: str, engine: str | None,
               digest: str, horizon_h: float | None, coverage: float | None,
               actor: str | None, seconds: float) -> None:
    """One forecast/what-if/simulation in the forecast-run log (and its timing metric)."""
    with db.get_engine().begin() as conn:
        conn.execute(insert(ForecastRun).values(
            patient_id=patient_id, kind=kind, model_version=fc_version, engine=engine,
            input_digest=digest, horizon_h=horizon_h, coverage=coverage, actor=actor,
            duration_ms=seconds * 1000, created_at=utcnow()))
    METRICS.observe_forecast(kind, seconds)
