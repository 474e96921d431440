"""Patient and alert events for live pages: an in-process publish/subscribe, plus a cheap
database "change cursor" that reaches every gunicorn worker.

Two paths, because gunicorn runs several worker processes (``app/gunicorn_conf.py``):

- **Immediate, same worker**: :func:`init_app` connects ``signals.patient_changed`` and
  the alerts' ``alert_changed`` to :data:`BUS`, which hands ``patient_id`` to every
  subscriber queue of *this* process (an SSE stream in ``app.web.live``).
- **Any worker**: :func:`cursor` reads, in two small queries, a fingerprint per patient
  (its data ``version``, the count and latest transitions of its alerts). A stream polls
  it twice a second and reports the patients whose fingerprint moved, whichever worker (or
  process: ``flask alerts escalate`` from cron) took the write.

Nothing here knows about HTTP; the SSE adapter lives in ``app.web.live``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from app import db, signals
from app.alerts.service import alert_changed
from app.models import Alert, Patient

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


def _concat(conn, column):
    return (func.group_concat(column) if conn.dialect.name == "sqlite"
            else func.string_agg(column, ","))


def cursor() -> dict[str, str]:
    """patient_id -> fingerprint of the patient's data (``version``) and alerts (count,
    latest id and transition times, statuses and levels); compare two with
    :func:`changed`. Two small queries, no ORM objects."""
    out: dict[str, str] = {}
    with db.get_engine().connect() as conn:
        for pid, version in conn.execute(select(Patient.id, Patient.version)):
            out[pid] = str(version)
        rows = conn.execute(select(
            Alert.patient_id, func.count(), func.max(Alert.id), func.max(Alert.raised_at),
            func.max(Alert.acknowledged_at), func.max(Alert.resolved_at),
            func.max(Alert.escalated_at), _concat(conn, Alert.status),
            _concat(conn, Alert.level)).group_by(Alert.patient_id))
        for row in rows:
            if row[0] in out:
                out[row[0]] += "|" + "|".join(str(v) for v in row[1:])
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
    """Connect the in-process bus to ``patient_changed`` and the alerts' ``alert_changed``
    (idempotent; blinker keeps one connection per receiver)."""
    if app.extensions.get("twin-events"):
        return
    signals.patient_changed.connect(_on_patient_changed, weak=False)
    alert_changed.connect(_on_patient_changed, weak=False)
    app.extensions["twin-events"] = BUS
