"""A patient's JSON, the history of their details, discharge and readmission (issue 14).

The routes are registered on the v1 blueprint by ``app.api.routes``; ``PATHS`` documents them
(``app.api.openapi``). A discharged patient is kept and readable; writes of readings,
regimens or details are a 409 ``patient-discharged`` until readmitted."""

from __future__ import annotations

from typing import Any

from flask import Response, json, request
from pydantic import BaseModel, ValidationError

from app import services
from app.auth import actor
from app.errors import ApiError, validation_problem
from app.models import Patient
from app.schemas.core import DischargeIn, PatientHistoryOut, PatientOut


def patient_json(p: Patient) -> dict[str, Any]:
    """A patient as ``PatientOut`` takes it (without the status and remaining stay)."""
    r = p.regimen
    return {"id": p.id, "age": p.age_years, "renal_function": p.renal_function,
            "glucose": p.glucose, "infected": p.infected, "infection_onset": p.infection_onset,
            "external_id": p.external_id, "spo2_scale": getattr(p, "spo2_scale", None) or 1,
            "version": p.version,
            "regimen": None if r is None else {"drug": r.drug, "dose_mg": r.dose_mg,
                                               "interval_h": r.interval_h, "start": r.start,
                                               "stop": r.stop},
            "created_at": p.created_at, "updated_at": p.updated_at,
            "admission_status": p.status or "admitted", "discharged_at": p.discharged_at}


def _out(model: type[BaseModel], data: Any, status: int = 200) -> Response:
    body = model.model_validate(data).model_dump(mode="json")
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _discharge_body() -> DischargeIn:
    """The optional body ``{"time": ...}``: empty means now."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return DischargeIn()
    if request.mimetype != "application/json":
        raise ApiError(415, "Unsupported Media Type",
                       f"Content-Type must be application/json, got {request.mimetype or 'none'!r}",
                       [{"field": "Content-Type", "message": "unsupported"}])
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "Malformed JSON", f"body: not valid JSON ({type(exc).__name__})",
                       [{"field": "body", "message": "malformed JSON"}]) from None
    try:
        return DischargeIn.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def get_history(patient_id: str) -> Response:
    """Every change of the patient's details (discharge, readmission: field status)."""
    rows = services.patient_history(patient_id)
    return _out(PatientHistoryOut, {"total": len(rows), "items": [
        {"time": c.time, "actor": c.actor, "field": c.field, "old": c.old_value,
         "new": c.new_value} for c in rows]})


def discharge(patient_id: str) -> Response:
    """Discharge now (or at ``time``): off the ward, findable, read-only until readmitted."""
    services.get_patient(patient_id)
    body = _discharge_body()
    p = services.discharge_patient(patient_id, actor(), body.time, "POST", request.path)
    return _out(PatientOut, patient_json(p))


def readmit(patient_id: str) -> Response:
    """Readmit a discharged patient (back on the ward)."""
    p = services.readmit_patient(patient_id, actor(), "POST", request.path)
    return _out(PatientOut, patient_json(p))


def register(bp) -> None:
    """Add the routes to the v1 blueprint ``bp``."""
    bp.add_url_rule("/patients/<patient_id>/history", view_func=get_history)
    bp.add_url_rule("/patients/<patient_id>/discharge", methods=["POST"],
                    view_func=discharge)
    bp.add_url_rule("/patients/<patient_id>/readmit", methods=["POST"], view_func=readmit)


def _problem(description: str) -> dict:
    return {"description": description, "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _ok(model: str) -> dict:
    return {"200": {"description": "OK", "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model}"}}}}}


_PID = {"name": "patient_id", "in": "path", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
_AUTH = {"401": _problem("authentication required"),
         "403": _problem("missing scope or CSRF token"),
         "404": _problem("unknown patient")}

#: the OpenAPI paths of this module (``app.api.openapi`` adds them)
PATHS: dict[str, Any] = {
    "/api/v1/patients/{patient_id}/history": {
        "get": {"operationId": "getPatientHistory", "tags": ["patients"],
                "summary": "Every change of the patient's details, newest first: time, by "
                           "whom, field, old and new value (discharge and readmission are "
                           "changes of the field status)",
                "parameters": [_PID],
                "responses": {**_ok("PatientHistoryOut"), **_AUTH}}},
    "/api/v1/patients/{patient_id}/discharge": {
        "post": {"operationId": "dischargePatient", "tags": ["patients"],
                 "summary": "Discharge the patient (now, or at `time`, not in the future): "
                            "off the ward and the default patient list, findable with "
                            "status=discharged, readable; new readings, regimens and details "
                            "are a 409 patient-discharged until readmitted; audited",
                 "parameters": [_PID],
                 "requestBody": {"required": False, "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/DischargeIn"}}}},
                 "responses": {**_ok("PatientOut"), **_AUTH,
                               "400": _problem("malformed JSON"),
                               "409": _problem("patient-discharged: already discharged"),
                               "415": _problem("unsupported Content-Type"),
                               "422": _problem("invalid input (e.g. a time in the future)")}}},
    "/api/v1/patients/{patient_id}/readmit": {
        "post": {"operationId": "readmitPatient", "tags": ["patients"],
                 "summary": "Readmit a discharged patient (back on the ward); audited",
                 "parameters": [_PID],
                 "responses": {**_ok("PatientOut"), **_AUTH,
                               "409": _problem("patient-admitted: the patient is not "
                                               "discharged")}}},
}
