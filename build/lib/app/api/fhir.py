"""FHIR R4 Observation / Bundle <-> our observations (the subset we need, no FHIR library).

Inbound we read vital signs (LOINC 85354-9 panel with 8480-6 / 8462-4 components, 8867-4
heart rate, 8478-0 mean BP), RAS labs (2720-1 angiotensin II, 2719-3 angiotensin I, 2915-7
plasma renin activity) and our own code system for the other twin endpoints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.codes import (
    BP_PANEL_LOINC,
    CODES,
    LOCAL_SYSTEM,
    LOINC_SYSTEM,
    LOINC_TO_CODE,
    UCUM_SYSTEM,
)
from app.errors import field_error

ACCEPTED_STATUS = {"final", "amended", "corrected", "preliminary", "registered"}


def _obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise field_error(path, "must be a JSON object")
    return value


def _code_of(concept: Any, path: str) -> str:
    """Our code name (or the BP panel marker) for a CodeableConcept."""
    codings = _obj(concept, path).get("coding")
    if not isinstance(codings, list) or not codings:
        raise field_error(f"{path}.coding", "needs at least one coding")
    for i, coding in enumerate(codings):
        coding = _obj(coding, f"{path}.coding[{i}]")
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(code, str):
            continue
        if system == LOINC_SYSTEM and code == BP_PANEL_LOINC:
            return BP_PANEL_LOINC
        if system == LOINC_SYSTEM and code in LOINC_TO_CODE:
            return LOINC_TO_CODE[code]
        if system == LOCAL_SYSTEM and code in CODES:
            return code
    raise field_error(f"{path}.coding", "no supported code (LOINC 85354-9, 8480-6, 8462-4, "
                      "8867-4, 8478-0, 2720-1, 2719-3, 2915-7 or " + LOCAL_SYSTEM + ")")


def _quantity(q: Any, path: str) -> tuple[float, str]:
    q = _obj(q, path)
    value = q.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise field_error(f"{path}.value", "must be a number")
    system = q.get("system")
    if system is not None and system != UCUM_SYSTEM:
        raise field_error(f"{path}.system", f"must be {UCUM_SYSTEM}")
    unit = q.get("code") or q.get("unit")
    if not isinstance(unit, str) or not unit:
        raise field_error(f"{path}.code", "a UCUM unit code is required")
    return float(value), unit


def _observation(res: dict, path: str, source: str) -> list[dict]:
    status = res.get("status")
    if not isinstance(status, str) or status not in ACCEPTED_STATUS:
        raise field_error(f"{path}.status", f"must be one of {sorted(ACCEPTED_STATUS)}")
    when = res.get("effectiveDateTime") or res.get("effectiveInstant")
    if not isinstance(when, str):
        raise field_error(f"{path}.effectiveDateTime", "required (ISO 8601 with timezone)")
    try:
        time = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise field_error(f"{path}.effectiveDateTime", "not an ISO 8601 date-time") from None
    if time.tzinfo is None:
        raise field_error(f"{path}.effectiveDateTime", "needs a timezone")
    code = _code_of(res.get("code"), f"{path}.code")
    out = []
    if code == BP_PANEL_LOINC:
        comps = res.get("component")
        if not isinstance(comps, list) or not comps:
            raise field_error(f"{path}.component", "the 85354-9 panel needs components")
        for i, comp in enumerate(comps):
            cpath = f"{path}.component[{i}]"
            comp = _obj(comp, cpath)
            ccode = _code_of(comp.get("code"), f"{cpath}.code")
            if ccode == BP_PANEL_LOINC:
                raise field_error(f"{cpath}.code", "a panel cannot nest a panel")
            value, unit = _quantity(comp.get("valueQuantity"), f"{cpath}.valueQuantity")
            out.append({"time": time, "code": ccode, "value": value, "unit": unit,
                        "source": source, "_path": cpath})
    else:
        value, unit = _quantity(res.get("valueQuantity"), f"{path}.valueQuantity")
        out.append({"time": time, "code": code, "value": value, "unit": unit,
                    "source": source, "_path": path})
    return out


def parse(body: Any, source: str = "fhir") -> list[dict]:
    """Observations from a FHIR Observation or Bundle of Observations (raises ApiError)."""
    body = _obj(body, "body")
    kind = body.get("resourceType")
    if kind == "Observation":
        return _observation(body, "Observation", source)
    if kind != "Bundle":
        raise field_error("resourceType", f"must be Observation or Bundle, got {kind!r}")
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        raise field_error("entry", "a Bundle needs at least one entry")
    if len(entries) > 1000:
        raise field_error("entry", "at most 1000 entries")
    out: list[dict] = []
    for i, entry in enumerate(entries):
        res = _obj(_obj(entry, f"entry[{i}]").get("resource"), f"entry[{i}].resource")
        if res.get("resourceType") != "Observation":
            raise field_error(f"entry[{i}].resource.resourceType",
                              f"must be Observation, got {res.get('resourceType')!r}")
        out.extend(_observation(res, f"entry[{i}].resource", source))
    return out


def to_bundle(patient_id: str, rows: list) -> dict:
    """Stored observations as a FHIR searchset Bundle."""
    entries = []
    for row in rows:
        spec = CODES[row.code]
        coding = ({"system": LOINC_SYSTEM, "code": spec.loinc, "display": spec.display}
                  if spec.loinc else {"system": LOCAL_SYSTEM, "code": spec.name,
                                      "display": spec.display})
        entries.append({"resource": {
            "resourceType": "Observation", "id": str(row.id), "status": "final",
            "code": {"coding": [coding]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": row.time.isoformat(),
            "valueQuantity": {"value": row.value, "unit": row.unit, "system": UCUM_SYSTEM,
                              "code": row.unit},
        }})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": entries}
