"""OpenAPI 3.1 description of the API, generated from the pydantic schemas."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from app import schemas as s
from app.api import admission
from app.codes import CODES
from app.schemas.core import DischargeIn, PatientHistoryOut
from app.services import regimens as reg

REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"

_MODELS = [
    (s.PatientIn, "validation"), (s.PatientPatch, "validation"), (s.RegimenIn, "validation"),
    (s.ObservationBatch, "validation"), (s.ScenarioRequest, "validation"),
    (s.SimulateRequest, "validation"), (s.PatientOut, "serialization"),
    (s.PatientPage, "serialization"), (s.ObservationPage, "serialization"),
    (s.Recorded, "serialization"), (s.ForecastOut, "serialization"),
    (s.ScenarioOut, "serialization"), (s.SimulationOut, "serialization"),
    (s.ModelOut, "serialization"), (s.Problem, "serialization"),
    (s.ObservationSetIn, "validation"), (s.News2In, "validation"),
    (s.ObservationSetRecorded, "serialization"), (s.News2Out, "serialization"),
    (s.PatientNews2Out, "serialization"), (s.StatusOut, "serialization"),
    (reg.RegimenChange, "validation"), (reg.RegimenCurrent, "serialization"),
    (reg.RegimenHistory, "serialization"), (reg.ConfirmationProblem, "serialization"),
    (s.ObservationStatusIn, "validation"), (s.ObservationOut, "serialization"),
    (DischargeIn, "validation"), (PatientHistoryOut, "serialization"),
]

_FHIR_SCHEMAS = {
    "FhirObservation": {
        "type": "object", "required": ["resourceType", "status", "code"],
        "description": "FHIR R4 Observation (vital signs / lab); see the API guide. "
                       "`subject`, if given, must be Patient/<the URL's id>; a "
                       "`valueQuantity.comparator` is refused; a BP panel (85354-9) takes "
                       "only 8480-6 and 8462-4 components, each at most once",
        "properties": {"resourceType": {"const": "Observation"},
                       "status": {"type": "string"},
                       "code": {"type": "object"},
                       "subject": {"type": "object", "properties": {
                           "reference": {"type": "string"}}},
                       "effectiveDateTime": {"type": "string", "format": "date-time",
                                             "description": "with a UTC offset, from "
                                                            "1900 to 2100 UTC"},
                       "valueQuantity": {"type": "object"},
                       "component": {"type": "array", "items": {"type": "object"}}}},
    "FhirBundle": {
        "type": "object", "required": ["resourceType", "entry"],
        "description": "FHIR R4 Bundle whose entries are Observations",
        "properties": {"resourceType": {"const": "Bundle"}, "type": {"type": "string"},
                       "entry": {"type": "array", "items": {"type": "object"}}}},
}


def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _problem(description: str) -> dict:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


ERR = {
    "400": _problem("bad query parameter, malformed JSON, or JSON nested deeper than 64 "
                    "levels"),
    "401": _problem("authentication required"),
    "403": _problem("missing scope or CSRF token"),
    "404": _problem("unknown patient (or observation)"),
    "409": _problem("conflict (duplicate external_id, no observations to forecast from, or "
                    "patient-discharged: a write to a discharged patient)"),
    "413": _problem("body over 2 MiB (chunked bodies too)"),
    "414": _problem("URL too long: a path segment over 256 characters or a URL over 4096"),
    "415": _problem("unsupported Content-Type"),
    "422": _problem("invalid input; `errors` names each field"),
    "503": _problem("model bundle not loaded"),
}


#: a write of readings: 409 for an exact duplicate, 422 also for DBP >= SBP (issue 14)
READINGS_ERR = {
    "409": _problem("duplicate-observation: the same code, time and value as a stored "
                    "reading in use (problem type `duplicate-observation`, `errors` names "
                    "the reading); or patient-discharged (readmit first); nothing stored"),
    "422": _problem("invalid input, or diastolic BP at or above the systolic BP of the same "
                    "time (`errors` names the field); nothing stored"),
}


def _errors(*codes: str) -> dict:
    return {c: ERR[c] for c in ("401", "403", "414", *codes)}


def _ok(model: str, status: str = "200", description: str = "OK") -> dict:
    return {status: {"description": description,
                     "content": {"application/json": {"schema": _ref(model)}}}}


def _body(model: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


PID = {"name": "patient_id", "in": "path", "required": True,
       "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
PAGING = [_query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size"),
          _query("offset", {"type": "integer", "minimum": 0}, "items to skip")]
FORECAST_Q = [
    _query("horizon_h", {"type": "number", "minimum": 1, "maximum": s.MAX_HORIZON_H},
           "hours ahead"),
    _query("coverage", {"type": "number", "minimum": 0.5, "maximum": 0.99},
           "central interval probability"),
    _query("engine", {"type": "string"}, "forecast engine (default: the bundle's)"),
]
PLOT_Q = [*FORECAST_Q, _query("panel", {"type": "string", "enum": ["bp", "ras", "drug"]},
                              "bp: blood pressure; ras: RAS endpoints; drug: drug and ACE"),
          _query("v", {"type": "string", "maxLength": 128},
                 "the plot version the patient page puts in the URL (data version, model "
                 "version, issue hour, plotting code): when current, the answer is "
                 "Cache-Control immutable; else (or absent) no-cache with an ETag")]


def _plot_op(fmt: str, mimetype: str) -> dict:
    return {"get": {
        "operationId": f"getForecast{fmt.upper()}", "tags": ["forecasts"],
        "summary": f"Forecast plot ({fmt.upper()}, matplotlib), cached by data/model version",
        "parameters": [PID, *PLOT_Q],
        "responses": {"200": {"description": "the plot; ETag names every input (data and "
                                             "model version, issue hour, arguments, code)",
                              "content": {mimetype: {"schema": {"type": "string",
                                                                "format": "binary"}}}},
                      "304": {"description": "If-None-Match matched: the plot is unchanged"},
                      **_errors("400", "404", "409", "422", "503")}}}


def _regimen_paths() -> dict[str, Any]:
    """The regimen: set (with dosing checks), read, history, stop (issue 14)."""
    conflict = {"409": {"description": (
        "confirmation-required: dosing warnings (problem type `confirmation-required`, "
        "`warnings` [{code, message}]); repeat with \"confirm\": true. Or a conflict of "
        "the patient's data"), "content": {PROBLEM: {"schema": {"anyOf": [
            _ref("ConfirmationProblem"), _ref("Problem")]}}}}}
    return {
        "/api/v1/patients/{patient_id}/regimen": {
            "put": {"operationId": "putRegimen", "tags": ["patients"],
                    "summary": "Set the current regimen (earlier ones kept as history). A "
                               "dose above the drug's labelled maximum (per dose or per day, "
                               "renal maximum when renal function is impaired) is a 422 "
                               "naming dose_mg; starting or raising an ACE inhibitor against "
                               "a contraindication, or a start > 3 days ago, is a 409 until "
                               "confirmed (docs/dosing.md)",
                    "parameters": [PID], "requestBody": _body("RegimenChange"),
                    "responses": {**_ok("PatientOut"), **_errors("400", "404", "415", "422"),
                                  **conflict}},
            "get": {"operationId": "getRegimen", "tags": ["patients"],
                    "summary": "The current (latest) regimen or null, and whether it is "
                               "active", "parameters": [PID],
                    "responses": {**_ok("RegimenCurrent"), **_errors("404")}}},
        "/api/v1/patients/{patient_id}/regimen/history": {
            "get": {"operationId": "getRegimenHistory", "tags": ["patients"],
                    "summary": "Every regimen set, newest first, with when (set_at), by whom "
                               "(set_by) and the warnings confirmed", "parameters": [PID],
                    "responses": {**_ok("RegimenHistory"), **_errors("404")}}},
        "/api/v1/patients/{patient_id}/regimen/stop": {
            "post": {"operationId": "stopRegimen", "tags": ["patients"],
                     "summary": "Stop treatment: the current regimen ends now (a new history "
                                "row; audited; no confirmation)", "parameters": [PID],
                     "responses": {**_ok("RegimenCurrent"), **_errors("404", "409")}}},
    }


OBS_ID = {"name": "observation_id", "in": "path", "required": True,
          "schema": {"type": "string", "minLength": 1, "maxLength": 64},
          "description": "the observation's id (``id`` in the observation list)"}


def _correction_paths() -> dict[str, Any]:
    """Mark a reading entered in error (issue 14)."""
    return {"/api/v1/patients/{patient_id}/observations/{observation_id}": {
        "patch": {"operationId": "patchObservation", "tags": ["observations"],
                  "summary": "Mark a reading entered in error (FHIR's status word): kept and "
                             "listed with status entered-in-error, left out of the forecast, "
                             "NEWS2, status, alerts and trends; audited; marking twice "
                             "changes nothing; it cannot be undone",
                  "parameters": [PID, OBS_ID], "requestBody": _body("ObservationStatusIn"),
                  "responses": {**_ok("ObservationOut"),
                                **_errors("400", "404", "415", "422")}}}}


def _monitoring_paths() -> dict[str, Any]:
    """Observation sets, NEWS2 and the status (issue 13)."""
    return {
        "/api/v1/patients/{patient_id}/observation-sets": {
            "post": {"operationId": "postObservationSet", "tags": ["observations"],
                     "summary": "Record a bedside observation set (RR, SpO2, oxygen, BP, HR, "
                                "ACVPU, temperature) at one time; refused whole, one error "
                                "per bad field",
                     "parameters": [PID], "requestBody": _body("ObservationSetIn"),
                     "responses": {**_ok("ObservationSetRecorded", "201", "stored"),
                                   **_errors("400", "404", "415"), **READINGS_ERR}}},
        "/api/v1/patients/{patient_id}/news2": {
            "get": {"operationId": "getPatientNews2", "tags": ["monitoring"],
                    "summary": "NEWS2 of the latest observation set and the history; "
                               "incomplete sets and sets older than their monitoring "
                               "interval are marked (complete, stale)",
                    "parameters": [PID, _query("hours", {"type": "number", "minimum": 1,
                                                         "maximum": 2160},
                                               "history window, hours (default 72)")],
                    "responses": {**_ok("PatientNews2Out"), **_errors("400", "404")}}},
        "/api/v1/patients/{patient_id}/status": {
            "get": {"operationId": "getPatientStatus", "tags": ["monitoring"],
                    "summary": "Ward status (critical, urgent, watch, stable, no-data) with "
                               "the reasons: NEWS2, forecast, trends, overdue, alerts",
                    "parameters": [PID],
                    "responses": {**_ok("StatusOut"), **_errors("404")}}},
        "/api/v1/news2": {
            "post": {"operationId": "news2", "tags": ["monitoring"],
                     "summary": "Stateless NEWS2 (RCP 2017) of one complete observation set",
                     "requestBody": _body("News2In"),
                     "responses": {**_ok("News2Out"), **_errors("400", "415", "422")}}},
    }


def _extra_paths() -> dict[str, Any]:
    """Paths other packages document themselves (alerts), when present."""
    try:  # by name: the alerts package is optional (see app.services.status._open_alerts)
        module = importlib.import_module("app.alerts.openapi")
    except ImportError:
        return {}
    return dict(module.PATHS)


def _paths() -> dict[str, Any]:
    return {**_core_paths(), **_correction_paths(), **_regimen_paths(), **_monitoring_paths(),
            **admission.PATHS, **_extra_paths()}


def _core_paths() -> dict[str, Any]:
    open_ = {"security": []}
    return {
        "/healthz": {"get": {"operationId": "healthz", "tags": ["health"], **open_,
                             "summary": "Liveness",
                             "responses": {"200": {"description": "alive"}}}},
        "/readyz": {"get": {"operationId": "readyz", "tags": ["health"], **open_,
                            "summary": "Readiness: database and model bundle",
                            "responses": {"200": {"description": "ready"},
                                          "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"operationId": "metrics", "tags": ["health"],
                             "summary": "Prometheus metrics of this worker process",
                             "responses": {"200": {"description": "text exposition format",
                                                   "content": {"text/plain": {
                                                       "schema": {"type": "string"}}}},
                                           **_errors()}}},
        "/api/v1/openapi.json": {"get": {
            "operationId": "openapi", "tags": ["meta"], "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {"application/json": {
                                      "schema": {"type": "object"}}}}, **_errors()}}},
        "/api/v1/docs": {"get": {
            "operationId": "docs", "tags": ["meta"], "summary": "Readable API docs (HTML)",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {
                "schema": {"type": "string"}}}}, **_errors()}}},
        "/api/v1/patients": {
            "post": {"operationId": "createPatient", "tags": ["patients"],
                     "summary": "Admit a patient (pseudonymous: covariates only)",
                     "requestBody": _body("PatientIn"),
                     "responses": {**_ok("PatientOut", "201", "created"),
                                   **_errors("400", "409", "415", "422")}},
            "get": {"operationId": "listPatients", "tags": ["patients"],
                    "summary": "Patients, paged: the admitted ones (default), the discharged "
                               "ones or all; q searches the id and external id",
                    "parameters": [*PAGING, _query(
                        "include", {"type": "string", "enum": ["status"]},
                        "status: each patient's ward status (a few queries per patient)"),
                        _query("status", {"type": "string",
                                          "enum": ["admitted", "discharged", "all"]},
                               "admission status (default admitted)"),
                        _query("q", {"type": "string", "maxLength": 64},
                               "a part of the id or external id (case-insensitive)")],
                    "responses": {**_ok("PatientPage"), **_errors("400")}}},
        "/api/v1/patients/{patient_id}": {
            "get": {"operationId": "getPatient", "tags": ["patients"], "parameters": [PID],
                    "summary": "One patient",
                    "responses": {**_ok("PatientOut"), **_errors("404")}},
            "patch": {"operationId": "patchPatient", "tags": ["patients"],
                      "summary": "Change details (each change in the history with who and "
                                 "when; 409 patient-discharged if discharged)",
                      "parameters": [PID],
                      "requestBody": _body("PatientPatch"),
                      "responses": {**_ok("PatientOut"),
                                    **_errors("400", "404", "409", "415", "422")}}},
        "/api/v1/patients/{patient_id}/observations": {
            "post": {"operationId": "postObservations", "tags": ["observations"],
                     "summary": "Record observations (our JSON, or FHIR R4 Observation/Bundle "
                                "as application/fhir+json); all or nothing",
                     "parameters": [PID],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": _ref("ObservationBatch")},
                         "application/fhir+json": {"schema": {"oneOf": [
                             _ref("FhirObservation"), _ref("FhirBundle")]}}}},
                     "responses": {**_ok("Recorded", "201", "stored"),
                                   **_errors("400", "404", "415"), **READINGS_ERR}},
            "get": {"operationId": "getObservations", "tags": ["observations"],
                    "summary": "Observations in time order (FHIR Bundle with "
                               "Accept: application/fhir+json)",
                    "parameters": [PID,
                                   _query("since", {"type": "string", "format": "date-time"},
                                          "from this time (inclusive; 1900-2100 UTC)"),
                                   _query("until", {"type": "string", "format": "date-time"},
                                          "up to this time (inclusive; 1900-2100 UTC)"),
                                   _query("code", {"type": "string", "enum": sorted(CODES)},
                                          "only this code"),
                                   _query("limit", {"type": "integer", "minimum": 1,
                                                    "maximum": 5000}, "page size"),
                                   _query("offset", {"type": "integer", "minimum": 0},
                                          "items to skip")],
                    "responses": {"200": {"description": "OK", "content": {
                        "application/json": {"schema": _ref("ObservationPage")},
                        "application/fhir+json": {"schema": _ref("FhirBundle")}}},
                        **_errors("400", "404", "422")}}},
        "/api/v1/patients/{patient_id}/forecast": {
            "get": {"operationId": "getForecast", "tags": ["forecasts"],
                    "summary": "Forecast with central intervals, cached by data/model version",
                    "parameters": [PID, *FORECAST_Q],
                    "responses": {**_ok("ForecastOut"),
                                  **_errors("400", "404", "409", "422", "503")}}},
        "/api/v1/patients/{patient_id}/forecast.png": _plot_op("png", "image/png"),
        "/api/v1/patients/{patient_id}/forecast.svg": _plot_op("svg", "image/svg+xml"),
        "/api/v1/patients/{patient_id}/scenarios": {
            "post": {"operationId": "postScenario", "tags": ["forecasts"],
                     "summary": "What-if: a proposed regimen next to the current one",
                     "parameters": [PID], "requestBody": _body("ScenarioRequest"),
                     "responses": {**_ok("ScenarioOut"),
                                   **_errors("400", "404", "409", "415", "422", "503")}}},
        "/api/v1/simulate": {
            "post": {"operationId": "simulate", "tags": ["forecasts"],
                     "summary": "Stateless simulation of one scenario (twin hours)",
                     "requestBody": _body("SimulateRequest"),
                     "responses": {**_ok("SimulationOut"),
                                   **_errors("400", "415", "422", "503")}}},
        "/api/v1/model": {
            "get": {"operationId": "getModel", "tags": ["meta"],
                    "summary": "Model version, engines and evaluation metrics (no server "
                               "path)",
                    "responses": {**_ok("ModelOut"), **_errors("503")}}},
    }


@cache
def spec() -> dict[str, Any]:
    """The complete OpenAPI 3.1 document."""
    _, top = models_json_schema(_MODELS, ref_template=REF)
    components = dict(top.get("$defs", {}))
    components.update(_FHIR_SCHEMAS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "RAS twin provider API", "version": "1.0.0",
                 "description": "Patients (pseudonymous), observations (JSON or FHIR R4), "
                                "regimens, forecasts, what-if scenarios and simulations. "
                                "Errors are application/problem+json naming the field."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "paths": _paths(),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "flask --app app create-token NAME "
                                              "--scopes read,write"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                                  "description": "clinician login; writes need X-CSRF-Token"},
            },
        },
    }
