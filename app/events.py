"""Patient and alert events for live pages: an in-process publish/subscribe, plus a cheap
database "change cursor" that reaches every gunicorn worker.

Two paths, because gunicorn runs several worker processes (``app/gunicorn_conf.py``):

- **Immediate, same worker**: :func:`init_app` connects ``signals.patient_changed`` to
  :data:`BUS`, which hands ``patient_id`` to every subscriber queue of *this* process (an
  SSE stream in ``app.web.live``).
- **Any worker**: :func:`cursor` reads, in one or two small queries, a fingerprint per
  patient (its data ``version``; and, when the alerts table exists, the count and latest
  change of its alerts). A stream polls it about once a second and reports the patients
  whose fingerprint moved, whichever worker took the write.

Nothing here knows about HTTP; the SSE adapter lives in ``app.web.live``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import queue
import threading
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app import db, signals
from app.models import Patient

#: a subscriber queue holds at most this many pending events (a stalled client drops some;
#: the cursor poll catches up)
QUEUE_SIZE = 256


class EventBus:
    """Fan-out of ``patient_id`` events to the subscriber queues of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: set[queue.Queue] = set()

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(QUEUE_SIZE)
        with self.lock:
            self.queues.add(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self.lock:
            self.queues.discard(q)

    def publish(self, event: dict[str, Any]) -> None:
        with self.lock:
            targets = list(self.queues)
        for q in targets:
            with contextlib.suppress(queue.Full):  # the cursor poll reports it anyway
                q.put_nowait(event)

    @property
    def subscribers(self) -> int:
        with self.lock:
            return len(self.queues)


BUS = EventBus()


def _on_patient_changed(sender: Any, patient_id: str | None = None, **extra: Any) -> None:
    if patient_id:
        BUS.publish({"type": "patient", "patient_id": patient_id})


def _alerts_table():
    """The alerts table if the alerts module registered one on our metadata, else None."""
    return db.Base.metadata.tables.get("alerts")


def cursor() -> dict[str, str]:
    """patient_id -> fingerprint of the patient's data and alerts (compare two cursors with
    :func:`changed`). Two indexed aggregate queries; no ORM objects."""
    out: dict[str, str] = {}
    with db.get_engine().connect() as conn:
        for pid, version in conn.execute(select(Patient.id, Patient.version)):
            out[pid] = str(version)
        alerts = _alerts_table()
        if alerts is not None and "patient_id" in alerts.c:
            stamp = [c for c in ("id", "updated_at", "raised_at", "acknowledged_at",
                                 "resolved_at", "escalated_at") if c in alerts.c]
            cols = [func.count()] + [func.max(alerts.c[c]) for c in stamp]
            for c in ("status", "level"):
                if c in alerts.c:
                    cols.append(func.group_concat(alerts.c[c])
                                if conn.dialect.name == "sqlite"
                                else func.string_agg(alerts.c[c], ","))
            try:
                rows = conn.execute(select(alerts.c.patient_id, *cols)
                                    .group_by(alerts.c.patient_id)).all()
            except SQLAlchemyError:  # table not migrated yet: patients only
                rows = []
            for row in rows:
                pid = row[0]
                if pid in out:
                    out[pid] += "|" + "|".join(str(v) for v in row[1:])
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Patients whose fingerprint differs (new, changed or gone), sorted."""
    return sorted(pid for pid in before.keys() | after.keys()
                  if before.get(pid) != after.get(pid))


def digest(snapshot: dict[str, str]) -> str:
    """A short token for a whole cursor (an SSE event id: equal tokens, nothing changed)."""
    raw = json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def init_app(app: Flask) -> None:
    """Connect the in-process bus to ``patient_changed`` and, when the alerts package is
    there, to its ``alert_changed`` (idempotent; blinker keeps one connection per receiver).
    """
    if app.extensions.get("twin-events"):
        return
    signals.patient_changed.connect(_on_patient_changed, weak=False)
    try:  # by name: the alerts package is optional here (not in the layer table yet)
        alerts = importlib.import_module("app.alerts.service")
        alerts.alert_changed.connect(_on_patient_changed, weak=False)
    except (ImportError, AttributeError):
        pass
    app.extensions["twin-events"] = BUS
