"""Corrections: mark a stored reading entered in error (issue 14).

The reading is kept (the API and the patient page list it, struck through) but every use of
the patient's data leaves it out (``list_observations`` without ``include_errors``): the
forecast, NEWS2, status, alerts and trends. Marking bumps the patient's data version (so
cached forecasts, statuses and plots are stale), sends ``patient_changed`` and is audited with
the observation's id and code. Marking twice changes nothing. It cannot be undone: record
the right reading again.
"""

from __future__ import annotations

from sqlalchemy import select

from app import db
from app.errors import ApiError
from app.models import OBS_ENTERED_IN_ERROR, Observation
from app.services.audit import audit_change
from app.services.patients import _bump, _changed, get_patient

#: the largest id an ``Integer`` column holds on every database we run on (PostgreSQL int4)
MAX_ID = 2**31 - 1


def _unknown(patient_id: str, raw: object) -> ApiError:
    return ApiError(404, "Not Found", f"observation {str(raw)[:40]!r} of patient "
                                      f"{patient_id!r} does not exist",
                    [{"field": "observation_id", "message": "unknown observation"}])


def observation_id(patient_id: str, raw: str) -> int:
    """``raw`` (a URL segment) as an observation id, or a 404 problem."""
    try:
        value = int(raw)
    except ValueError:
        raise _unknown(patient_id, raw) from None
    if not 1 <= value <= MAX_ID or not raw.isdigit():
        raise _unknown(patient_id, raw)
    return value


def mark_entered_in_error(patient_id: str, obs_id: int, actor: str | None,
                          method: str, path: str) -> Observation:
    """Mark the patient's observation ``obs_id`` entered in error (idempotent); returns it.

    404 if the patient or the observation (of this patient) does not exist."""
    get_patient(patient_id)
    s = db.session()
    row = s.scalar(select(Observation).where(Observation.id == obs_id,
                                             Observation.patient_id == patient_id))
    if row is None:
        raise _unknown(patient_id, obs_id)
    if row.status == OBS_ENTERED_IN_ERROR:
        return row
    row.status = OBS_ENTERED_IN_ERROR
    s.flush()
    _bump(s, patient_id)
    s.commit()
    audit_change(actor, method, path, patient_id,
                 {"event": "entered-in-error", "observation_id": obs_id, "code": row.code,
                  "time": row.time.isoformat()})
    _changed(patient_id)
    return row
