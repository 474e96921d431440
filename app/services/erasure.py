"""Erasure and retention (issue 15, item 8).

``erase_patient`` removes a patient from every table that holds their id or data (readings,
regimens, details history, alerts and their events and overrides, webhook deliveries about
them, forecast runs, the shared forecast cache, the audit trail) in one transaction, then
writes one audit row saying what was erased (row counts per table), by whom, and nothing
else. ``purge_older_than`` is the retention job: audit rows and observations older than the
configured ages.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select

from app import db
from app.errors import ApiError
from app.models import (
    Alert,
    AlertEvent,
    AlertOverride,
    AuditEvent,
    ForecastCache,
    ForecastRun,
    IdempotencyKey,
    Observation,
    Patient,
    PatientChange,
    Regimen,
    WebhookDelivery,
    utcnow,
)
from app.services import audit_chain
from app.services.audit import flush_audit

#: tables whose rows carry the patient's id in ``patient_id``, erased in this order (and the
#: audit rows naming them, recorded in the erasure's own row so the chain still verifies)
BY_PATIENT = (Observation, Regimen, PatientChange, AlertOverride, AlertEvent, Alert,
              ForecastRun, ForecastCache)


def erase_patient(patient_id: str, actor: str) -> dict[str, int]:
    """Erase the patient everywhere; the rows removed per table (the erasure audit row's
    detail). 404 problem for an unknown patient."""
    flush_audit()  # this worker's pending read audits land first, and are erased with the rest
    s = db.session()
    if s.get(Patient, patient_id) is None:
        raise ApiError(404, "Unknown patient", f"no patient {patient_id}",
                       [{"field": "patient_id", "message": "unknown"}])
    counts: dict[str, int] = {}
    alert_ids = select(Alert.id).where(Alert.patient_id == patient_id)
    mentioned = f'%"{patient_id}"%'  # a delivery's JSON body names the patient
    counts[WebhookDelivery.__tablename__] = s.execute(
        delete(WebhookDelivery).where(or_(WebhookDelivery.alert_id.in_(alert_ids),
                                          WebhookDelivery.body.like(mentioned)))).rowcount
    conn = s.connection()
    audit_ids = list(s.scalars(select(AuditEvent.id).where(or_(
        AuditEvent.patient_id == patient_id, AuditEvent.path.like(f"%{patient_id}%")))))
    erased_audit = audit_chain.chain_of(conn, audit_ids)  # ids and hashes, no values
    counts[IdempotencyKey.__tablename__] = s.execute(delete(IdempotencyKey).where(or_(
        IdempotencyKey.patient_id == patient_id, IdempotencyKey.location.like(f"%{patient_id}%"),
        IdempotencyKey.body.like(f"%{patient_id}%")))).rowcount
    for table in BY_PATIENT:
        counts[table.__tablename__] = s.execute(
            delete(table).where(table.patient_id == patient_id)).rowcount
    counts[AuditEvent.__tablename__] = s.execute(
        delete(AuditEvent).where(AuditEvent.id.in_(audit_ids))).rowcount
    counts[Patient.__tablename__] = s.execute(
        delete(Patient).where(Patient.id == patient_id)).rowcount
    audit_chain.append(conn, {
        "time": utcnow(), "actor": actor, "action": "erase", "method": "ERASE",
        "path": "erase-patient", "patient_id": patient_id, "status": 200,
        "detail": json.dumps({"erased_rows": counts, "erased_audit": erased_audit},
                             sort_keys=True)})
    s.commit()
    return counts


def purge_older_than(audit_days: float | None, observation_days: float | None,
                     actor: str, now: datetime | None = None) -> dict[str, int]:
    """Delete audit rows and observations older than the given ages (days; None keeps
    them); one audit row records the purge. The rows removed per table."""
    now = now or utcnow()
    s = db.session()
    counts: dict[str, int] = {}
    if observation_days is not None:
        cutoff = now - timedelta(days=observation_days)
        counts["observations"] = s.execute(
            delete(Observation).where(Observation.time < cutoff)).rowcount
    cut = None
    if audit_days is not None:  # the oldest rows, a prefix of the chain by id
        cutoff = now - timedelta(days=audit_days)
        last = s.scalar(select(func.max(AuditEvent.id)).where(AuditEvent.time < cutoff))
        counts["audit_log"] = 0
        if last is not None:
            cut = s.scalar(select(AuditEvent.row_hash).where(AuditEvent.id == last))
            counts["audit_log"] = s.execute(
                delete(AuditEvent).where(AuditEvent.id <= last)).rowcount
    audit_chain.append(s.connection(), {
        "time": now, "actor": actor, "action": "purge", "method": "PURGE", "path": "purge",
        "status": 200, "detail": json.dumps(
            {"audit_days": audit_days, "observation_days": observation_days,
             "deleted_rows": counts, "chain_cut": cut}, sort_keys=True)})
    s.commit()
    return counts


def rows_mentioning(patient_id: str) -> dict[str, int]:
    """Rows per table that still carry the id (a check after an erasure)."""
    s = db.session()
    out = {t.__tablename__: s.scalar(select(func.count()).select_from(t)
                                     .where(t.patient_id == patient_id)) or 0
           for t in (*BY_PATIENT, AuditEvent)}
    out["patients"] = s.scalar(select(func.count()).select_from(Patient)
                               .where(Patient.id == patient_id)) or 0
    out["webhook_deliveries"] = s.scalar(
        select(func.count()).select_from(WebhookDelivery)
        .where(WebhookDelivery.body.like(f'%"{patient_id}"%'))) or 0
    return out
