"""OpenAPI 3.1 path items of the alert endpoints (``PATHS``), in the style of
``app.api.openapi``; self-contained schemas (only ``Problem`` is referenced from the main
document's components), so the API document merges them with ``paths.update(PATHS)``."""

from __future__ import annotations

from typing import Any

from app.alerts.rules import LEVELS, OPS
from app.alerts.service import STATUSES

PROBLEM = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": ["string", "null"]}
_NUM = {"type": ["number", "null"]}
_LEVEL = {"type": "string", "enum": list(LEVELS)}

ALERT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "patient_id", "rule", "level", "status", "raised_at", "message",
                 "values"],
    "properties": {
        "id": {"type": "integer"}, "patient_id": {"type": "string"},
        "rule": {"type": "string", "description": "the rule's name in the rules file"},
        "level": _LEVEL,
        "status": {"type": "string", "enum": ["raised", "acknowledged", "resolved"]},
        "raised_at": {"type": "string", "format": "date-time"},
        "acknowledged_at": _TIME, "acknowledged_by": _TEXT, "note": _TEXT,
        "resolved_at": _TIME,
        "resolved_by": {"type": ["string", "null"],
                        "description": "a user's name, or `system` when the condition cleared"},
        "escalated_at": _TIME,
        "message": {"type": "string"},
        "values": {"type": "object", "description": "the values the alert rests on"},
    },
}
EVENT = {"type": "object", "required": ["time", "event", "actor", "level"],
         "properties": {"time": {"type": "string", "format": "date-time"},
                        "event": {"type": "string",
                                  "enum": ["raised", "escalated", "acknowledged", "resolved"]},
                        "actor": {"type": "string"}, "level": _LEVEL, "note": _TEXT}}
ALERT_DETAIL = {**ALERT, "properties": {**ALERT["properties"],
                                        "events": {"type": "array", "items": EVENT}}}
RULE = {"type": "object", "required": ["name", "kind", "level", "enabled"],
        "properties": {"name": {"type": "string"},
                       "kind": {"type": "string"}, "level": _LEVEL, "code": _TEXT,
                       "op": {"type": ["string", "null"], "enum": [*OPS, None]},
                       "threshold": _NUM, "clear": _NUM, "threshold_scale2": _NUM,
                       "clear_scale2": _NUM, "max_age_h": {"type": "number"},
                       "enabled": {"type": "boolean"}, "horizon_h": _NUM,
                       "direction": _TEXT, "window_h": _NUM,
                       "replaces": {"type": "array", "items": {"type": "string"}},
                       "description": {"type": "string"}}}
OVERRIDE_IN = {"type": "object", "required": ["rule"], "additionalProperties": False,
               "properties": {"rule": {"type": "string", "minLength": 1, "maxLength": 64},
                              "threshold": _NUM, "clear": _NUM,
                              "enabled": {"type": ["boolean", "null"]}}}
OVERRIDES_OUT = {
    "type": "object", "required": ["patient_id", "overrides", "rules"],
    "properties": {"patient_id": {"type": "string"},
                   "overrides": {"type": "array", "items": {
                       "type": "object", "properties": {
                           **OVERRIDE_IN["properties"], "updated_by": _TEXT,
                           "updated_at": _TIME}}},
                   "rules": {"type": "array", "items": RULE,
                             "description": "the rules as they apply to this patient"}}}
NOTE_IN = {"type": "object", "additionalProperties": False,
           "properties": {"note": {"type": ["string", "null"], "maxLength": 2000}}}

_AID = {"name": "alert_id", "in": "path", "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}
_PID = {"name": "patient_id", "in": "path", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 64}}


def _problem(description: str) -> dict:
    return {"description": description, "content": {PROBLEM: {"schema": _PROBLEM_REF}}}


_ERR = {"400": _problem("bad query parameter or malformed JSON"),
        "401": _problem("authentication required"),
        "403": _problem("missing scope (writes need `write`) or CSRF token"),
        "404": _problem("unknown alert or patient"),
        "409": _problem("the alert is already acknowledged or resolved"),
        "415": _problem("unsupported Content-Type"),
        "422": _problem("invalid input; `errors` names each field")}


def _errors(*codes: str) -> dict:
    return {c: _ERR[c] for c in ("401", "403", *codes)}


def _ok(schema: dict) -> dict:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}


def _transition(op_id: str, summary: str) -> dict:
    return {"post": {"operationId": op_id, "tags": ["alerts"], "summary": summary,
                     "parameters": [_AID],
                     "requestBody": {"required": False, "content": {
                         "application/json": {"schema": NOTE_IN}}},
                     "responses": {**_ok(ALERT), **_errors("400", "404", "409", "415",
                                                           "422")}}}


PATHS: dict[str, Any] = {
    "/api/v1/alerts": {"get": {
        "operationId": "listAlerts", "tags": ["alerts"],
        "summary": "Alerts, newest first (escalates the overdue ones first)",
        "parameters": [
            {"name": "status", "in": "query", "required": False,
             "schema": {"type": "string", "enum": list(STATUSES)},
             "description": "open: raised or acknowledged"},
            {"name": "patient_id", "in": "query", "required": False,
             "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
        "responses": {**_ok({"type": "object", "required": ["alerts"],
                             "properties": {"alerts": {"type": "array", "items": ALERT}}}),
                      **_errors("400")}}},
    "/api/v1/alerts/{alert_id}": {"get": {
        "operationId": "getAlert", "tags": ["alerts"], "summary": "One alert with its events",
        "parameters": [_AID], "responses": {**_ok(ALERT_DETAIL), **_errors("404")}}},
    "/api/v1/alerts/{alert_id}/acknowledge": _transition(
        "acknowledgeAlert", "Acknowledge a raised alert (by the caller, with a note)"),
    "/api/v1/alerts/{alert_id}/resolve": _transition(
        "resolveAlert", "Resolve an open alert by hand"),
    "/api/v1/alert-rules": {"get": {
        "operationId": "listAlertRules", "tags": ["alerts"],
        "summary": "The rules file in force and the escalation minutes per level",
        "responses": {**_ok({"type": "object", "required": ["rules", "escalate_after_min"],
                             "properties": {"rules": {"type": "array", "items": RULE},
                                            "escalate_after_min": {"type": "object"}}}),
                      **_errors()}}},
    "/api/v1/patients/{patient_id}/alert-overrides": {
        "get": {"operationId": "getAlertOverrides", "tags": ["alerts"],
                "summary": "A patient's alert overrides and the rules as they apply",
                "parameters": [_PID], "responses": {**_ok(OVERRIDES_OUT), **_errors("404")}},
        "put": {"operationId": "putAlertOverrides", "tags": ["alerts"],
                "summary": "Replace a patient's overrides (threshold, clear, enabled per rule)",
                "parameters": [_PID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["overrides"], "additionalProperties": False,
                    "properties": {"overrides": {"type": "array", "maxItems": 100,
                                                 "items": OVERRIDE_IN}}}}}},
                "responses": {**_ok(OVERRIDES_OUT),
                              **_errors("400", "404", "415", "422")}}},
}
