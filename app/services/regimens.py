"""Regimen reads and "stop treatment": the history of every regimen set (newest first, who
set it, the warnings confirmed) and the request/response models of the regimen routes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app import db
from app.errors import ApiError
from app.models import Regimen, utcnow
from app.schemas import RegimenIn, RegimenOut, Timestamp
from app.services import dosing
from app.services.patients import _bump, _changed, get_patient


class RegimenChange(RegimenIn):
    """A regimen to set (PUT); ``confirm`` acknowledges the dosing warnings of a 409."""

    confirm: bool = Field(default=False, description=(
        "true after a 409 confirmation-required: the warnings were read and the regimen is "
        "set anyway (audited with the warnings)"))


class DosingWarning(BaseModel):
    """A reason to confirm a regimen: a contraindication check or a start in the past."""

    code: str = Field(description="low-sbp, high-potassium, low-egfr, rising-creatinine, "
                                  "renal-start-dose, start-in-past, unlabelled-drug, pregnancy")
    message: str = Field(description="in clinical words")


class RegimenEntry(RegimenOut):
    """One stored regimen: what was set, when and by whom, and the warnings confirmed."""

    id: int
    set_at: Timestamp
    set_by: str | None = Field(description="user or token name that set it, if known")
    confirmed_warnings: list[DosingWarning] = Field(
        description="the dosing warnings confirmed when it was set (empty if none)")


class RegimenCurrent(BaseModel):
    regimen: RegimenEntry | None = Field(description="the latest regimen set, or null")
    active: bool = Field(description="doses are given now or later: a regimen with a dose "
                                     "above 0 that has not stopped")


class RegimenHistory(BaseModel):
    items: list[RegimenEntry] = Field(description="every regimen set, newest first")
    total: int


class ConfirmationProblem(BaseModel):
    """409 ``confirmation-required``: the regimen raises dosing warnings; repeat the request
    with ``"confirm": true`` to set it anyway."""

    type: Literal["confirmation-required"]
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None
    warnings: list[DosingWarning]


def regimen_entry(r: Regimen) -> dict[str, Any]:
    """A stored regimen as the API shows it (``RegimenEntry``)."""
    return {"id": r.id, "drug": r.drug, "dose_mg": r.dose_mg, "interval_h": r.interval_h,
            "start": r.start, "stop": r.stop, "set_at": r.created_at, "set_by": r.set_by,
            "confirmed_warnings": json.loads(r.confirmed_warnings) if r.confirmed_warnings
            else []}


def regimen_active(r: Regimen | None, now: datetime | None = None) -> bool:
    """True if ``r`` gives doses now or later (dose above 0, not stopped)."""
    now = now or utcnow()
    return r is not None and r.dose_mg > 0 and (r.stop is None or r.stop > now)


def current_regimen(patient_id: str) -> dict[str, Any]:
    """``RegimenCurrent``: the latest regimen set (or None) and whether it is active."""
    r = get_patient(patient_id).regimen
    return {"regimen": None if r is None else regimen_entry(r), "active": regimen_active(r)}


def regimen_history(patient_id: str) -> dict[str, Any]:
    """``RegimenHistory``: every regimen set for the patient, newest first."""
    rows = list(reversed(get_patient(patient_id).regimens))
    return {"items": [regimen_entry(r) for r in rows], "total": len(rows)}


def stop_treatment(patient_id: str, actor: str | None = None, method: str = "POST",
                   path: str | None = None):
    """End the current regimen now: a new history row, the same regimen with ``stop`` =
    now (stopping never needs a confirmation); audited. 409 if nothing is being given."""
    p = get_patient(patient_id)
    now = utcnow()
    r = p.regimen
    if not regimen_active(r, now):
        raise ApiError(409, "No current treatment", "there is no current treatment to stop",
                       [{"field": "regimen", "message": "none current"}])
    s = db.session()
    s.add(Regimen(patient_id=patient_id, drug=r.drug, dose_mg=r.dose_mg,
                  interval_h=r.interval_h, start=min(r.start, now), stop=now, set_by=actor))
    _bump(s, patient_id)
    s.commit()
    s.expire_all()
    dosing.audit_regimen(actor, method, path or f"/patients/{patient_id}/regimen/stop",
                         patient_id, {"event": "treatment-stopped", "drug": r.drug,
                                      "dose_mg": r.dose_mg, "interval_h": r.interval_h,
                                      "stop": now.isoformat()}, action="write")
    _changed(patient_id)
    return get_patient(patient_id)
