"""Live pages: a Server-Sent Events stream of patient/alert changes, the HTML fragments the
ward and patient pages swap in (``static/live.js``), and acknowledging an alert.

The stream (``GET /ward/events``, a clinician session like the pages):

- ``event: patient`` with ``{"patient_id": ...}`` when a patient's data or alerts changed,
  from the in-process bus (same worker, at once) or from the database change cursor polled
  every ``LIVE_POLL_S`` (default 0.5 s), which sees writes taken by any gunicorn worker;
- every event carries ``id:`` = a digest of the whole cursor; on reconnect the browser sends
  it back (``Last-Event-ID``) and, when the ward changed in between, gets ``event: resync``
  (the page refetches all its rows), so nothing is missed across reconnects;
- ``: keepalive`` comments every 5 s (a dead client is noticed at the next write).

gunicorn runs **gthread** workers (``app/gunicorn_conf.py``): each open stream holds one
thread of its worker. So a stream is **short-lived** (``LIVE_STREAM_S``, default 25 s,
then it ends with ``retry: 500`` and the browser reconnects), and a worker serves at most
half its threads as streams at a time (``LIVE_MAX_STREAMS``; at least one). Beyond that a
stream answers at once (the resync check only) with ``retry: 5000``: the page degrades to
polling every 5 s rather than starving the worker's other requests.
"""

from __future__ import annotations

import json
import queue
import threading
import time

from flask import (
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from app import auth, events, services
from app import config as app_config
from app.errors import ApiError
from app.models import DISCHARGED
from app.web import ward
from app.web.views import _safe_next, bp

KEEPALIVE_S = 5.0
RETRY_MS = 500
BUSY_RETRY_MS = 5000

_slots_lock = threading.Lock()
_slots: dict[str, threading.BoundedSemaphore] = {}


def _max_streams() -> int:
    configured = current_app.config.get("LIVE_MAX_STREAMS")
    if configured:
        return int(configured)
    return max(1, int(app_config.env("GUNICORN_THREADS") or 4) // 2)


def _slot() -> threading.BoundedSemaphore:
    n = _max_streams()
    key = str(n)
    with _slots_lock:
        if key not in _slots:
            _slots[key] = threading.BoundedSemaphore(n)
        return _slots[key]


def _event(kind: str, data: dict, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _stream(last_id: str | None):
    # The slot is taken here, when the body starts, never in the view: a response whose
    # body never starts (the client left first) is closed without running this generator,
    # and a slot taken outside it would leak for the life of the worker.
    slot = _slot()
    streaming = slot.acquire(blocking=False)
    q = events.BUS.subscribe() if streaming else None
    try:
        cfg = current_app.config
        duration = float(cfg.get("LIVE_STREAM_S", 25.0))
        poll = float(cfg.get("LIVE_POLL_S", 0.5))
        snap = events.cursor()
        token = events.digest(snap)
        yield f"retry: {RETRY_MS if streaming else BUSY_RETRY_MS}\n\n"
        if last_id and last_id != token:
            yield _event("resync", {}, token)
        yield _event("hello", {"streaming": streaming}, token)
        now = time.monotonic()
        end, next_poll, next_ping = now + duration, now + poll, now + KEEPALIVE_S
        while q is not None and (now := time.monotonic()) < end:
            pids: set[str] = set()
            try:
                ev = q.get(timeout=max(0.0, min(next_poll, end, next_ping) - now))
                pids.add(ev["patient_id"])
                while True:  # drain what else arrived
                    pids.add(q.get_nowait()["patient_id"])
            except queue.Empty:
                pass
            if pids or time.monotonic() >= next_poll:
                fresh = events.cursor()
                pids.update(events.changed(snap, fresh))
                snap, token = fresh, events.digest(fresh)
                next_poll = time.monotonic() + poll
            for pid in sorted(pids):
                yield _event("patient", {"patient_id": pid}, token)
            if time.monotonic() >= next_ping:
                yield ": keepalive\n\n"
                next_ping = time.monotonic() + KEEPALIVE_S
    finally:
        if q is not None:
            events.BUS.unsubscribe(q)
        if streaming:
            slot.release()


@bp.get("/ward/events")
def ward_events():
    """Server-Sent Events of patient and alert changes (see the module docstring)."""
    leftover = g.pop("db_session", None)
    if leftover is not None:  # hold no database connection for the stream's life
        leftover.close()
    last_id = request.headers.get("Last-Event-ID") or request.args.get("last")
    return Response(stream_with_context(_stream(last_id)), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})


def _patient(patient_id: str):
    try:
        return services.get_patient(patient_id)
    except ApiError:
        abort(404)


@bp.get("/ward/rows")
def ward_rows_fragment():
    """The ward's rows (``<tr>`` elements) in the page's order: a resync after a reconnect."""
    key = request.args.get("sort", "status")
    key = key if key in ward.SORT_KEYS else "status"
    rows = ward.sort_rows(ward.ward_rows(), key, request.args.get("order") == "desc")
    return render_template("_ward_rows.html", rows=rows)


@bp.get("/ward/rows/<patient_id>")
def ward_row_fragment(patient_id: str):
    """One patient's ward row (``<tr>``); 404 once the patient is gone or discharged
    (``live.js`` then removes the row)."""
    p = _patient(patient_id)
    if p.status == DISCHARGED:
        abort(404)
    return render_template("_ward_row.html", r=ward.ward_row(p, compute=False))


@bp.get("/patients/<patient_id>/live")
def patient_live_fragment(patient_id: str):
    """The patient page's live panel: status and reasons, latest values, NEWS2, alerts."""
    return render_template("_patient_live.html",
                           r=ward.ward_row(_patient(patient_id), compute=False))


@bp.post("/alerts/<alert_id>/acknowledge")
def acknowledge_alert(alert_id: str):
    """Acknowledge an open alert (by the logged-in clinician, with the form's note); back
    to ``next`` (a page), or JSON for ``live.js`` (``Accept: application/json``), which
    then refreshes the row in place."""
    back = _safe_next(request.form.get("next"))
    service = ward._alerts_service()
    if service is None:
        abort(404)
    note = (request.form.get("note") or "").strip()
    try:
        ident: int | str = int(alert_id)
    except ValueError:
        ident = alert_id
    wants_json = request.accept_mimetypes.best == "application/json"  # live.js
    try:
        alert = service.acknowledge(ident, auth.actor(), note or None)
    except ApiError as exc:
        if wants_json:
            return jsonify({"error": exc.detail}), exc.status
        return render_template("ack_error.html", error=exc.detail, back=back), exc.status
    if wants_json:
        return jsonify({"alert": alert})
    return redirect(back or url_for("web.ward"), code=303)
