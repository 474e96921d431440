"""Patients, their observations and regimens: validated writes, paged reads.

Functions take validated pydantic inputs, raise ``ApiError`` (4xx, naming the field) on bad
input, write nothing unless everything is valid, and commit themselves. Every write sends
``signals.patient_changed``.

A patient is ``admitted`` or ``discharged`` (issue 14): a discharged patient is kept and
findable (``list_patients(status="discharged", search=...)``) and can be read, but takes no
new readings, regimens or details until readmitted (409 problem type ``patient-discharged``).
Every change of a detail (and a discharge or readmission, field ``status``) is a row of
``patient_changes`` with who and when (``patient_history``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import selectinload

from app import codes, db, signals
from app.errors import ApiError, field_error
from app.models import (
    ADMITTED,
    DISCHARGED,
    OBS_FINAL,
    Observation,
    Patient,
    PatientChange,
    Regimen,
    utcnow,
)
from app.schemas import ObservationIn, PatientIn, PatientPatch, RegimenIn
from app.services import dosing, readings
from app.services.admission import (
    PATIENT_DISCHARGED,
    change_text,
    discharged_error,
    require_admitted,
    ward_time,
)
from app.services.audit import audit_change
from app.services.timeline import check_regimen_start

#: an observation may be this far in the future (clock skew) before it is rejected
CLOCK_SKEW = timedelta(minutes=5)


def _changed(patient_id: str) -> None:
    signals.patient_changed.send(current_app._get_current_object(), patient_id=patient_id)


def _not_future(field: str, t: datetime | None) -> None:
    if t is not None and t > utcnow() + CLOCK_SKEW:
        raise field_error(field, f"is in the future ({t.isoformat()})")


def _apply_covariates(p: Patient, data: dict[str, Any]) -> None:
    if "age" in data and data["age"] is not None:
        p.age_years = data["age"]
    if "renal_function" in data and data["renal_function"] is not None:
        p.renal_function = data["renal_function"]
    if "glucose" in data and data["glucose"] is not None:
        g = data["glucose"]
        p.glucose_pattern = g if isinstance(g, str) else None
        p.glucose_mmol_per_l = None if isinstance(g, str) else float(g)
    if "infected" in data and data["infected"] is not None:
        p.infected = data["infected"]
    if "infection_onset" in data:
        p.infection_onset = data["infection_onset"]
    if "external_id" in data:
        p.external_id = data["external_id"]
    if data.get("spo2_scale") is not None:
        p.spo2_scale = data["spo2_scale"]


def _external_id_free(s, external_id: str | None, patient_id: str | None = None) -> None:
    if external_id is None:
        return
    other = s.scalar(select(Patient.id).where(Patient.external_id == external_id))
    if other is not None and other != patient_id:
        raise field_error("external_id", "already used by another patient", status=409)


def _unknown(patient_id: str) -> ApiError:
    return ApiError(404, "Not Found", f"patient {patient_id!r} does not exist",
                    [{"field": "patient_id", "message": "unknown patient"}])


def admit_patient(data: PatientIn) -> Patient:
    """Store a new patient; returns it (with its new pseudonymous id)."""
    _not_future("infection_onset", data.infection_onset)
    s = db.session()
    _external_id_free(s, data.external_id)
    p = Patient(version=1, infected=False)
    _apply_covariates(p, data.model_dump())
    s.add(p)
    s.commit()
    return get_patient(p.id)


def get_patient(patient_id: str) -> Patient:
    """The patient with its regimens, or a 404 problem."""
    p = db.session().scalar(select(Patient).options(selectinload(Patient.regimens))
                            .where(Patient.id == patient_id))
    if p is None:
        raise _unknown(patient_id)
    return p


_VERSION_QUERY = select(Patient.version).where(Patient.id == bindparam("pid"))


def patient_version(patient_id: str) -> int:
    """The data version of a patient (one cheap query), or a 404 problem."""
    with db.get_engine().connect() as conn:  # Core, not the ORM: this is the hot path
        v = conn.execute(_VERSION_QUERY, {"pid": patient_id}).scalar()
    if v is None:
        raise _unknown(patient_id)
    return v


def _bump(s, patient_id: str) -> None:
    """Bump the patient's data version. A new reading or regimen of a discharged patient
    (whatever the write path: observations, sets, regimen, stop) is refused here: the
    session is rolled back and a 409 ``patient-discharged`` raised."""
    if any(isinstance(o, Observation | Regimen) for o in s.new):
        row = s.execute(select(Patient.status, Patient.discharged_at)
                        .where(Patient.id == patient_id)).first()
        if row is not None and row.status == DISCHARGED:
            s.rollback()
            raise discharged_error(row.discharged_at)
    s.execute(update(Patient).where(Patient.id == patient_id)
              .values(version=Patient.version + 1, updated_at=utcnow()))


# --- admission status and the history of the details ----------------------------------------

#: the admission statuses ``list_patients`` takes (``all``: both)
LIST_STATUSES = (ADMITTED, DISCHARGED, "all")
#: the details ``update_patient`` changes, as the API names them (history field names)
DETAIL_FIELDS = ("external_id", "age", "renal_function", "glucose", "infected",
                 "infection_onset", "spo2_scale")


def _details(p: Patient) -> dict[str, str | None]:
    return {"external_id": change_text(p.external_id), "age": change_text(p.age_years),
            "renal_function": change_text(p.renal_function),
            "glucose": change_text(p.glucose), "infected": change_text(bool(p.infected)),
            "infection_onset": change_text(p.infection_onset),
            "spo2_scale": change_text(p.spo2_scale or 1)}


def _record_changes(s, patient_id: str, actor: str | None,
                    changes: list[tuple[str, str | None, str | None]]) -> None:
    now = utcnow()
    s.add_all(PatientChange(patient_id=patient_id, time=now, actor=actor, field=field,
                            old_value=old, new_value=new) for field, old, new in changes)


def update_patient(patient_id: str, patch: PatientPatch, actor: str | None = None,
                   method: str = "PATCH", path: str | None = None) -> Patient:
    """Change details of an admitted patient (409 if discharged): one history row per field
    that changed, with ``actor``; audited with the changed fields' names."""
    data = patch.model_dump(exclude_unset=True)
    _not_future("infection_onset", data.get("infection_onset"))
    p = get_patient(patient_id)
    require_admitted(p)
    s = db.session()
    _external_id_free(s, data.get("external_id"), patient_id)
    before = _details(p)
    _apply_covariates(p, data)
    after = _details(p)
    changes = [(f, before[f], after[f]) for f in DETAIL_FIELDS if before[f] != after[f]]
    _record_changes(s, patient_id, actor, changes)
    s.flush()
    _bump(s, patient_id)
    s.commit()
    s.expire_all()
    if changes:
        audit_change(actor, method, path or f"/patients/{patient_id}", patient_id,
                     {"event": "details-changed", "fields": [c[0] for c in changes]})
    _changed(patient_id)
    return get_patient(patient_id)


def _set_status(patient_id: str, status: str, discharged_at: datetime | None,
                actor: str | None, method: str, path: str) -> Patient:
    p = get_patient(patient_id)
    s = db.session()
    old = p.status or ADMITTED
    p.status, p.discharged_at = status, discharged_at
    _record_changes(s, patient_id, actor, [("status", old, status)])
    s.flush()
    _bump(s, patient_id)
    s.commit()
    s.expire_all()
    detail: dict[str, Any] = {"event": status}
    if discharged_at is not None:
        detail["time"] = discharged_at.isoformat()
    audit_change(actor, method, path, patient_id, detail)
    _changed(patient_id)
    return get_patient(patient_id)


def discharge_patient(patient_id: str, actor: str | None, time: datetime | None = None,
                      method: str = "POST", path: str | None = None) -> Patient:
    """Discharge the patient at ``time`` (default now; not in the future): off the ward,
    kept and findable, read-only until readmitted. 409 if already discharged."""
    p = get_patient(patient_id)
    if p.status == DISCHARGED:
        raise ApiError(409, "Patient discharged",
                       f"This patient was already discharged on {ward_time(p.discharged_at)}.",
                       [{"field": "patient_id", "message": "already discharged"}],
                       type=PATIENT_DISCHARGED)
    _not_future("time", time)
    return _set_status(patient_id, DISCHARGED, time or utcnow(), actor, method,
                       path or f"/patients/{patient_id}/discharge")


def readmit_patient(patient_id: str, actor: str | None, method: str = "POST",
                    path: str | None = None) -> Patient:
    """Readmit a discharged patient (back on the ward). 409 if the patient is admitted."""
    p = get_patient(patient_id)
    if p.status != DISCHARGED:
        raise ApiError(409, "Patient admitted", "This patient is on the ward (admitted): "
                       "there is nothing to readmit.",
                       [{"field": "patient_id", "message": "not discharged"}],
                       type="patient-admitted")
    return _set_status(patient_id, ADMITTED, None, actor, method,
                       path or f"/patients/{patient_id}/readmit")


def patient_history(patient_id: str) -> list[PatientChange]:
    """Every change of the patient's details (and discharge, readmission), newest first."""
    get_patient(patient_id)
    return list(db.session().scalars(
        select(PatientChange).where(PatientChange.patient_id == patient_id)
        .order_by(PatientChange.time.desc(), PatientChange.id.desc())).all())


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_patients(limit: int, offset: int, status: str = ADMITTED,
                  search: str | None = None) -> tuple[list[Patient], int]:
    """A page of patients (oldest first) and the total count: the admitted ones (the ward),
    the discharged ones or ``all``; ``search`` matches a part of the id or external id
    (case-insensitive)."""
    if status not in LIST_STATUSES:
        raise field_error("status", f"must be one of {', '.join(LIST_STATUSES)}", 400)
    q = select(Patient)
    if status != "all":
        q = q.where(Patient.status == status)
    search = (search or "").strip()[:64]
    if search:
        pattern = _like(search)
        q = q.where(or_(func.lower(Patient.id).like(pattern, escape="\\"),
                        func.lower(Patient.external_id).like(pattern, escape="\\")))
    s = db.session()
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    rows = s.scalars(q.options(selectinload(Patient.regimens))
                     .order_by(Patient.created_at, Patient.id).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


def record_observations(patient_id: str, items: list[ObservationIn] | list[dict],
                        paths: list[str] | None = None) -> tuple[list[Observation], int]:
    """Validate every observation (unit, plausible value, not in the future; no DBP >= SBP
    and no exact duplicate, ``app.services.readings``), then store all. 409 if the patient
    is discharged."""
    require_admitted(get_patient(patient_id))
    rows, new = [], []
    for i, item in enumerate(items):
        obs = item if isinstance(item, ObservationIn) else ObservationIn.model_validate(
            {k: v for k, v in item.items() if not k.startswith("_")})
        path = paths[i] if paths else f"observations[{i}]"
        problem = codes.check(obs.code, obs.value, obs.unit)
        if problem:
            part, message = problem
            raise field_error(f"{path}.{part}", message)
        _not_future(f"{path}.time", obs.time)
        value = codes.convert(obs.code, obs.value, obs.unit)
        new.append(readings.Reading(obs.time, obs.code, value, path,
                                    path if paths else f"{path}.value"))
        rows.append(Observation(patient_id=patient_id, time=obs.time, code=obs.code,
                                value=value, unit=codes.CODES[obs.code].unit,
                                source=obs.source))
    readings.check(patient_id, new)
    s = db.session()
    s.add_all(rows)
    _bump(s, patient_id)
    s.commit()
    _changed(patient_id)
    return rows, patient_version(patient_id)


def list_observations(patient_id: str, since: datetime | None, until: datetime | None,
                      limit: int | None = None, offset: int = 0, code: str | None = None,
                      code_in: Collection[str] | None = None, include_errors: bool = False
                      ) -> tuple[list[Observation], int]:
    """The patient's observations in time order, filtered by [since, until] and code (or any
    of ``code_in``, e.g. ``app.codes.TWIN_CODES`` for the ones the forecaster takes).

    Readings marked entered in error are left out (so no forecast, score, status, alert or
    trend sees them) unless ``include_errors`` (the lists a person reads: API, page)."""
    patient_version(patient_id)  # 404 for an unknown patient (one light query)
    q = select(Observation).where(Observation.patient_id == patient_id)
    if not include_errors:
        q = q.where(Observation.status == OBS_FINAL)
    if since is not None:
        q = q.where(Observation.time >= since)
    if until is not None:
        q = q.where(Observation.time <= until)
    if code is not None:
        q = q.where(Observation.code == code)
    if code_in is not None:
        q = q.where(Observation.code.in_(sorted(code_in)))
    s = db.session()
    ordered = q.order_by(Observation.time, Observation.id)
    if limit is None and not offset:  # all of them: the count is their number
        rows = list(s.scalars(ordered).all())
        return rows, len(rows)
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    q = ordered.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q).all()), int(total or 0)


def _warnings_json(warnings: list[dict[str, str]]) -> str | None:
    return json.dumps(warnings) if warnings else None


def set_regimen(patient_id: str, data: RegimenIn, actor: str | None = None,
                confirm: bool | None = None, method: str = "PUT",
                path: str | None = None) -> Patient:
    """Make ``data`` the patient's current regimen (earlier ones are kept as history).

    Dosing safety first (``app.services.dosing``): a dose outside the labelling is a 422
    naming ``dose_mg``; warnings (starting or raising an ACE inhibitor against a low SBP,
    high potassium, ...; a start more than 3 days ago) are a 409 ``confirmation-required``
    unless ``confirm`` (else ``data.confirm``) is true, and a confirmation is audited with
    its warnings."""
    p = get_patient(patient_id)
    require_admitted(p)
    check_regimen_start(data)
    if confirm is None:
        confirm = bool(getattr(data, "confirm", False))
    warnings = dosing.check(p, data.drug, data.dose_mg, data.interval_h, data.start, confirm)
    s = db.session()
    s.add(Regimen(patient_id=patient_id, drug=data.drug, dose_mg=data.dose_mg,
                  interval_h=data.interval_h, start=data.start, stop=data.stop,
                  set_by=actor, confirmed_warnings=_warnings_json(warnings)))
    _bump(s, patient_id)
    s.commit()
    s.expire_all()
    if warnings:
        dosing.audit_regimen(actor, method, path or f"/patients/{patient_id}/regimen",
                             patient_id, {"event": "regimen-confirmed", "drug": data.drug,
                                          "dose_mg": data.dose_mg,
                                          "interval_h": data.interval_h,
                                          "warnings": warnings})
    _changed(patient_id)
    return get_patient(patient_id)
