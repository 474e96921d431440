"""The audit log (one row per API request, and one per correction with its detail) and the
forecast-run log."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import insert

from app import db
from app.models import AuditEvent, ForecastRun, utcnow
from app.observability import METRICS


class _AuditQueue:
    """Reads are appended in batches (every FLUSH_S or BATCH rows) from a per-process thread,
    so a cached forecast costs no database write; writes are audited synchronously."""

    FLUSH_S = 0.5
    BATCH = 500

    def __init__(self, engine) -> None:
        self.lock = threading.Lock()
        self.rows: list[dict] = []
        self.pid = 0
        self.engine = engine

    def add(self, row: dict) -> None:
        with self.lock:
            self.rows.append(row)
            full = len(self.rows) >= self.BATCH
            if self.pid != os.getpid():  # first use in this (forked) process
                self.pid = os.getpid()
                threading.Thread(target=self._loop, daemon=True, name="audit").start()
                atexit.register(self.flush)
        if full:
            self.flush()

    def _loop(self) -> None:
        while True:
            time.sleep(self.FLUSH_S)
            try:
                self.flush()
            except Exception:
                logging.getLogger("app.audit").exception("audit flush failed")

    def flush(self) -> None:
        with self.lock:
            rows, self.rows, engine = self.rows, [], self.engine
        if rows and engine is not None:
            with engine.begin() as conn:
                conn.execute(insert(AuditEvent), rows)


def _audit_queue() -> _AuditQueue:
    ext = current_app.extensions
    queue = ext.get("audit_queue")
    if queue is None:
        queue = ext.setdefault("audit_queue", _AuditQueue(db.get_engine()))
    return queue


def audit(actor: str | None, method: str, path: str, patient_id: str | None,
          status: int) -> None:
    """Record one request in the audit log (writes at once, reads in the next batch)."""
    action = "read" if method in {"GET", "HEAD", "OPTIONS"} else "write"
    row = {"time": datetime.now(UTC), "actor": actor, "action": action, "method": method,
           "path": path[:256].replace("\x00", "\\0"),
           "patient_id": None if patient_id is None else patient_id.replace("\x00", "\\0"),
           "status": status}
    if action == "read":
        _audit_queue().add(row)
        return
    with db.get_engine().begin() as conn:
        conn.execute(insert(AuditEvent).values(**row))


def audit_change(actor: str | None, method: str, path: str, patient_id: str,
                 detail: dict[str, Any], status: int = 200) -> None:
    """One write row with ``detail`` (what changed, as JSON; codes and ids, never values)."""
    with db.get_engine().begin() as conn:
        conn.execute(insert(AuditEvent).values(
            time=utcnow(), actor=actor, action="write", method=method[:8], path=path[:256],
            patient_id=patient_id, status=status, detail=json.dumps(detail)))


def flush_audit() -> None:
    """Write pending audit rows of the current app now (tests, shutdown)."""
    _audit_queue().flush()


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
