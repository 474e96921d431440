"""Alerts: evaluate a patient's rules, raise / acknowledge / escalate / resolve, overrides.

Lifecycle: ``raised`` -> ``acknowledged`` (a named user, with a note) -> ``resolved``
(automatically when the condition clears beyond its hysteresis band, or by hand). One open
alert per patient and rule (the ``open_key`` unique index). An alert left ``raised`` longer
than ``[escalation]`` minutes of its level moves up one level (watch -> urgent -> critical):
:func:`escalate_due` runs after every evaluation, on every ``GET /api/v1/alerts`` and from
``flask alerts escalate`` (run it from cron every minute on a quiet ward). Every transition
is an ``alert_events`` row (who, when, what) and queues the webhooks (``app.alerts.webhooks``)
in the same transaction; ``alert_changed`` is sent after the commit.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from blinker import Namespace
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.attributes import set_committed_value

from app import db
from app.alerts import conditions, webhooks
from app.alerts.rules import LEVELS, Rule, RuleSet
from app.errors import ApiError, field_error
from app.models import (
    OBS_FINAL,
    Alert,
    AlertEvent,
    AlertOverride,
    Observation,
    Patient,
    utcnow,
)

log = logging.getLogger("app.alerts")
OPEN = ("raised", "acknowledged")
STATUSES = ("open", "raised", "acknowledged", "resolved")
SYSTEM = "system"
#: sent with ``patient_id=``, ``alert=`` (the API dict) and ``event=`` after a transition
alert_changed = Namespace().signal("alert-changed")


def ruleset() -> RuleSet:
    """The rules file loaded at start (``app.alerts.api.init_app``)."""
    return current_app.extensions["alert_rules"]


def as_dict(a: Alert) -> dict[str, Any]:
    """An alert as the API shows it."""
    return {"id": a.id, "patient_id": a.patient_id, "rule": a.rule, "level": a.level,
            "status": a.status, "raised_at": iso(a.raised_at),
            "acknowledged_at": iso(a.acknowledged_at), "acknowledged_by": a.acknowledged_by,
            "note": a.note, "resolved_at": iso(a.resolved_at), "resolved_by": a.resolved_by,
            "escalated_at": iso(a.escalated_at), "message": a.message,
            "values": json.loads(a.values_json or "{}")}


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _event(s, a: Alert, event: str, actor: str, now: datetime, note: str | None = None,
           changes: list | None = None) -> None:
    s.add(AlertEvent(alert_id=a.id, patient_id=a.patient_id, time=now, event=event,
                     actor=actor, level=a.level, note=note))
    queued = webhooks.enqueue(s, f"alert.{event}", as_dict(a), now)
    if changes is not None:
        changes.append((event, as_dict(a), queued))


def _announce(changes: list[tuple[str, dict, int]]) -> None:
    if not changes:
        return
    if any(queued for _e, _a, queued in changes):
        webhooks.kick()
    app = current_app._get_current_object()
    for event, alert, _queued in changes:
        alert_changed.send(app, patient_id=alert["patient_id"], alert=alert, event=event)


# --- evaluation ------------------------------------------------------------------------------


def _readings(s, patient_id: str, now: datetime, hours: float
              ) -> tuple[dict[str, conditions.Reading], dict[str, list[conditions.Reading]]]:
    """(the latest reading of each code, every reading per code oldest first) within
    ``hours`` before ``now`` (none after it, bar clock skew; none entered in error)."""
    rows = s.execute(select(Observation.code, Observation.time, Observation.value)
                     .where(Observation.patient_id == patient_id,
                            Observation.status == OBS_FINAL,
                            Observation.time >= now - timedelta(hours=hours),
                            Observation.time <= now + timedelta(minutes=5))
                     .order_by(Observation.time, Observation.id)).all()
    series: dict[str, list[conditions.Reading]] = {}
    for code, at, value in rows:
        series.setdefault(code, []).append(conditions.Reading(at, value))
    return {code: rs[-1] for code, rs in series.items()}, series


def effective_rules(s, patient_id: str) -> list[Rule]:
    """The rules file with the patient's overrides applied (in the file's order)."""
    overrides = {o.rule: o for o in s.scalars(select(AlertOverride)
                                             .where(AlertOverride.patient_id == patient_id))}
    out = []
    for name, rule in ruleset().rules.items():
        o = overrides.get(name)
        out.append(rule if o is None else rule.with_override(o.threshold, o.clear, o.enabled))
    return out


def _raise(s, patient_id: str, rule: Rule, finding: conditions.Finding,
           now: datetime) -> Alert:
    a = Alert(patient_id=patient_id, rule=rule.name, level=rule.level, status="raised",
              open_key=f"{patient_id}:{rule.name}", raised_at=now,
              message=(rule.description + ": " if rule.description else "") + finding.message,
              values_json=json.dumps(finding.values, default=str))
    s.add(a)
    s.flush()
    return a


def _move(s, a: Alert, statuses: tuple[str, ...], at_level: str | None = None,
          **values: Any) -> bool:
    """Change ``a`` only if it is still in one of ``statuses`` (and at ``at_level``): one
    conditional UPDATE, so of two concurrent transitions exactly one wins; False if the
    other one did."""
    q = update(Alert).where(Alert.id == a.id, Alert.status.in_(statuses))
    if at_level is not None:
        q = q.where(Alert.level == at_level)
    res = s.execute(q.values(**values).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    for key, value in values.items():
        set_committed_value(a, key, value)
    return True


def _close(s, a: Alert, user: str, now: datetime) -> bool:
    return _move(s, a, OPEN, status="resolved", resolved_at=now, resolved_by=user,
                 open_key=None)


def _retry(fn, *args: Any) -> Any:
    """``fn(*args)`` again (fresh session) when SQLite refuses a write with "database is
    locked": a read transaction cannot become a write once another writer committed."""
    for attempt in range(5):
        try:
            return fn(*args)
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.02 * 2 ** attempt)
    return None  # pragma: no cover


def evaluate_patient(patient_id: str, now: datetime | None = None,
                     forecast: dict | None = None) -> list[dict]:
    """Evaluate every rule on the patient's latest readings; raise and auto-resolve.

    Forecast rules are evaluated only when ``forecast`` (the API's forecast dict) is given.
    Returns the alerts that changed (raised or resolved), as API dicts."""
    now = now or utcnow()
    changed = _retry(_evaluate, patient_id, now, forecast)
    escalate_due(now)
    return changed


def _evaluate(patient_id: str, now: datetime, forecast: dict | None) -> list[dict]:
    changes: list[tuple[str, dict, int]] = []
    with db.new_session() as s:
        if s.get(Patient, patient_id) is None:
            return []
        spo2_scale = s.scalar(select(Patient.spo2_scale).where(Patient.id == patient_id)) or 1
        rules = effective_rules(s, patient_id)
        hours = max([r.max_age_h for r in rules]
                    + [max(48.0, r.window_h) for r in rules if r.kind == "trend"])
        latest, series = _readings(s, patient_id, now, hours)
        open_ = {a.rule: a for a in s.scalars(select(Alert).where(
            Alert.patient_id == patient_id, Alert.status.in_(OPEN)))}
        findings = {r.name: conditions.evaluate(r, latest, now, spo2_scale, forecast, series)
                    for r in rules if r.enabled and (r.kind != "forecast" or forecast)}
        # a rule met (or open and not cleared) keeps the rules it replaces from raising
        replaced = {name for r in rules if r.name in findings and (
            findings[r.name].state == "met" or (
                r.name in open_ and findings[r.name].state != "cleared"))
            for name in r.replaces}
        for rule in rules:
            a = open_.get(rule.name)
            if not rule.enabled:
                if a is not None and _close(s, a, SYSTEM, now):
                    _event(s, a, "resolved", SYSTEM, now, "rule disabled for this patient",
                           changes)
                continue
            if rule.name not in findings:
                continue
            finding = findings[rule.name]
            if finding.state == "met" and a is None and rule.name not in replaced:
                a = _raise(s, patient_id, rule, finding, now)
                _event(s, a, "raised", SYSTEM, now, None, changes)
            elif finding.state == "cleared" and a is not None and _close(s, a, SYSTEM, now):
                _event(s, a, "resolved", SYSTEM, now, "condition cleared: " + finding.message,
                       changes)
        try:
            s.commit()
        except IntegrityError:  # another worker raised the same alert at the same moment
            s.rollback()
            log.info("concurrent alert evaluation", extra={"patient_id": patient_id})
            return []
    _announce(changes)
    return [alert for _e, alert, _q in changes]


def escalate_due(now: datetime | None = None) -> list[dict]:
    """Move every alert still ``raised`` (not acknowledged) past its level's escalation time
    (since it was raised or last escalated) up one level; returns the escalated alerts."""
    return _retry(_escalate, now or utcnow())


def _escalate(now: datetime) -> list[dict]:
    minutes = ruleset().escalate_after_min
    if not minutes:
        return []
    changes: list[tuple[str, dict, int]] = []
    with db.new_session() as s:
        for a in s.scalars(select(Alert).where(Alert.status == "raised",
                                               Alert.level.in_(sorted(minutes)))):
            since = a.escalated_at or a.raised_at
            nxt = ruleset().next_level(a.level)
            if nxt is None or now - since < timedelta(minutes=minutes[a.level]):
                continue
            note = f"{a.level} not acknowledged within {minutes[a.level]:g} min"
            if _move(s, a, ("raised",), a.level, level=nxt, escalated_at=now):
                _event(s, a, "escalated", SYSTEM, now, note, changes)
        s.commit()
    _announce(changes)
    return [alert for _e, alert, _q in changes]


# --- reads and hand transitions (request session) --------------------------------------------


def open_alerts(patient_id: str) -> list[tuple[str, str]]:
    """(rule, level) of the patient's open alerts, most severe first (the status service)."""
    rows = db.session().execute(select(Alert.rule, Alert.level).where(
        Alert.patient_id == patient_id, Alert.status.in_(OPEN))).all()
    return sorted(((r, lv) for r, lv in rows), key=lambda x: (-LEVELS.index(x[1]), x[0]))


def list_alerts(status: str | None = None, patient_id: str | None = None,
                limit: int = 200) -> list[dict]:
    """Alerts, newest first; ``status`` is open (raised or acknowledged) or one status."""
    q = select(Alert)
    if status is not None:
        if status not in STATUSES:
            raise field_error("status", f"must be one of {', '.join(STATUSES)}")
        q = q.where(Alert.status.in_(OPEN) if status == "open" else Alert.status == status)
    if patient_id is not None:
        q = q.where(Alert.patient_id == patient_id)
    q = q.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit)
    return [as_dict(a) for a in db.session().scalars(q)]


def _ident(alert_id: int | str) -> int:
    try:
        ident = int(alert_id)
    except (TypeError, ValueError):
        return 0
    return ident if 0 < ident < 2**31 else 0


def _get(s, alert_id: int | str) -> Alert:
    ident = _ident(alert_id)
    a = s.get(Alert, ident) if ident else None
    if a is None:
        raise ApiError(404, "Not Found", f"alert {alert_id} does not exist",
                       [{"field": "alert_id", "message": "unknown alert"}])
    return a


def get_alert(alert_id: int | str) -> dict:
    """One alert with its events (oldest first), or a 404 problem."""
    s = db.session()
    a = _get(s, alert_id)
    out = as_dict(a)
    out["events"] = [{"time": e.time.isoformat(), "event": e.event, "actor": e.actor,
                      "level": e.level, "note": e.note}
                     for e in s.scalars(select(AlertEvent).where(AlertEvent.alert_id == a.id)
                                        .order_by(AlertEvent.id))]
    return out


def _conflict(a: Alert) -> ApiError:
    if a.status == "resolved":
        detail = f"alert {a.id} was resolved by {a.resolved_by} at {iso(a.resolved_at)}"
    else:
        detail = (f"alert {a.id} was already acknowledged by {a.acknowledged_by} at "
                  f"{iso(a.acknowledged_at)}")
    return ApiError(409, "Conflict", detail, [{"field": "status", "message": a.status}])


def _hand(alert_id: int | str, event: str, user: str, note: str | None, now: datetime,
          statuses: tuple[str, ...], values: dict[str, Any]) -> dict:
    """A transition by a user: the conditional UPDATE is the first statement of a fresh
    transaction (so SQLite waits for the write lock instead of failing), then the event."""
    s = db.session()
    s.rollback()  # end the request's read transaction (the token lookup's)
    ident = _ident(alert_id)
    moved = bool(ident) and s.execute(
        update(Alert).where(Alert.id == ident, Alert.status.in_(statuses)).values(**values)
        .execution_options(synchronize_session=False)).rowcount == 1
    if not moved:
        s.rollback()  # never keep a write transaction open past the request's errors
        raise _conflict(_get(s, alert_id))  # (404 if there is no such alert)
    a = _get(s, alert_id)
    s.refresh(a)
    changes: list = []
    _event(s, a, event, user, now, note, changes)
    s.commit()
    _announce(changes)
    return as_dict(a)


def acknowledge(alert_id: int | str, user: str | None, note: str | None = None,
                now: datetime | None = None) -> dict:
    """``raised`` -> ``acknowledged`` by ``user`` with ``note``; 409 if not raised, 404 if
    unknown. Of two at once, one wins and the other gets the 409."""
    now, user = now or utcnow(), user or "unknown"
    return _hand(alert_id, "acknowledged", user, note, now, ("raised",),
                 {"status": "acknowledged", "acknowledged_at": now, "acknowledged_by": user,
                  "note": note})


def resolve(alert_id: int | str, user: str | None, note: str | None = None,
            now: datetime | None = None) -> dict:
    """An open alert resolved by hand by ``user``; 409 if already resolved. (The rule raises
    it again on a later reading that still meets the condition.)"""
    now, user = now or utcnow(), user or "unknown"
    return _hand(alert_id, "resolved", user, note, now, OPEN,
                 {"status": "resolved", "resolved_at": now, "resolved_by": user,
                  "open_key": None})
