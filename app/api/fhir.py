"""FHIR R4 Observation / Bundle <-> our observations (the subset we need, no FHIR library).

Inbound we read vital signs (LOINC 85354-9 panel with 8480-6 / 8462-4 components, 8867-4
heart rate, 8478-0 mean BP, 9279-1 respiratory rate, 59408-5 or 2708-6 SpO2, 3151-8 oxygen
flow, 3150-0 FiO2, 8310-5 temperature), consciousness (SNOMED CT 1104441000000107, ACVPU, a
``valueCodeableConcept``), labs (2823-3 potassium, 2160-0 or 14682-9 creatinine, 2720-1
angiotensin II, 2719-3 angiotensin I, 2915-7 plasma renin activity) and our own code system
for the other endpoints (``on_oxygen`` as ``valueBoolean``). See ``app.codes`` for what was
verified and how units convert.

Refused (422 naming the path): a ``subject`` other than ``Patient/<the URL's id>`` (absent is
fine), a ``valueQuantity.comparator`` (we store measured values only), a BP panel component
other than 8480-6 or 8462-4 or one of them twice, a time outside 1900-2100 (the shared
``AwareDatetime`` check).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from app.codes import (
    ACVPU,
    ACVPU_DISPLAY,
    ACVPU_SNOMED,
    ACVPU_SYSTEM,
    BP_PANEL_LOINC,
    CODES,
    EXTRA_LOINC,
    LOCAL_SYSTEM,
    LOINC_SYSTEM,
    LOINC_TO_CODE,
    SNOMED_SYSTEM,
    SNOMED_TO_ACVPU,
    SNOMED_TO_CODE,
    UCUM_SYSTEM,
)
from app.errors import field_error
from app.schemas import aware_time

ACCEPTED_STATUS = {"final", "amended", "corrected", "preliminary", "registered"}
#: the components a BP panel (85354-9) may carry, each at most once: 8480-6 and 8462-4
PANEL_COMPONENTS = ("sbp_mmhg", "dbp_mmhg")


def _obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise field_error(path, "must be a JSON object")
    return value


def _system_codes(concept: Any, path: str) -> list[tuple[Any, Any]]:
    """(system, code) of each coding of a CodeableConcept (400-class error naming the path
    when it has none)."""
    codings = _obj(concept, path).get("coding")
    if not isinstance(codings, list) or not codings:
        raise field_error(f"{path}.coding", "needs at least one coding")
    return [(c.get("system"), c.get("code"))
            for c in (_obj(c, f"{path}.coding[{i}]") for i, c in enumerate(codings))]


def _code_of(concept: Any, path: str) -> str:
    """Our code name (or the BP panel marker) for a CodeableConcept."""
    for system, code in _system_codes(concept, path):
        if not isinstance(code, str):
            continue
        if system == LOINC_SYSTEM and code == BP_PANEL_LOINC:
            return BP_PANEL_LOINC
        if system == LOINC_SYSTEM and code in LOINC_TO_CODE:
            return LOINC_TO_CODE[code]
        if system == SNOMED_SYSTEM and code in SNOMED_TO_CODE:
            return SNOMED_TO_CODE[code]
        if system == LOCAL_SYSTEM and code in CODES:
            return code
    supported = ", ".join([BP_PANEL_LOINC, *sorted(LOINC_TO_CODE)])
    raise field_error(f"{path}.coding", f"no supported code (LOINC {supported}; SNOMED CT "
                      f"{', '.join(SNOMED_TO_CODE)}; or {LOCAL_SYSTEM})")


def _quantity(q: Any, path: str) -> tuple[float, str]:
    q = _obj(q, path)
    if q.get("comparator") is not None:
        raise field_error(f"{path}.comparator", "not supported: send the measured value "
                          "(a value beyond a device's or laboratory's range cannot be stored)",
                          kind="unsupported")
    value = q.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise field_error(f"{path}.value", "must be a number")
    system = q.get("system")
    if system is not None and system != UCUM_SYSTEM:
        raise field_error(f"{path}.system", f"must be {UCUM_SYSTEM}")
    unit = q.get("code") or q.get("unit")
    if not isinstance(unit, str) or not unit:
        raise field_error(f"{path}.code", "a UCUM unit code is required")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise field_error(f"{path}.value", "must be a finite number")
    return number, unit


def _acvpu(concept: Any, path: str) -> tuple[float, str]:
    """An ACVPU valueCodeableConcept (our system A/C/V/P/U, or SNOMED CT AVPU findings)."""
    for system, code in _system_codes(concept, path):
        if system == ACVPU_SYSTEM and code in ACVPU:
            return float(ACVPU.index(code)), CODES["acvpu"].unit
        if system == SNOMED_SYSTEM and code in SNOMED_TO_ACVPU:
            return float(ACVPU.index(SNOMED_TO_ACVPU[code])), CODES["acvpu"].unit
    raise field_error(f"{path}.coding", f"an ACVPU level: {ACVPU_SYSTEM} A, C, V, P or U, or "
                      f"SNOMED CT {', '.join(ACVPU_SNOMED.values())}")


def _value(res: dict, code: str, path: str) -> tuple[float, str]:
    """(value, unit) of an Observation or component of our ``code``."""
    if code == "acvpu" and "valueCodeableConcept" in res:
        return _acvpu(res["valueCodeableConcept"], f"{path}.valueCodeableConcept")
    if code == "on_oxygen" and "valueBoolean" in res:
        flag = res["valueBoolean"]
        if not isinstance(flag, bool):
            raise field_error(f"{path}.valueBoolean", "must be true or false")
        return (1.0 if flag else 0.0), CODES["on_oxygen"].unit
    return _quantity(res.get("valueQuantity"), f"{path}.valueQuantity")


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
    try:
        time = aware_time(time)
    except ValueError as exc:
        raise field_error(f"{path}.effectiveDateTime", str(exc), kind="datetime_window"
                          ) from None
    code = _code_of(res.get("code"), f"{path}.code")
    out = []
    if code == BP_PANEL_LOINC:
        comps = res.get("component")
        if not isinstance(comps, list) or not comps:
            raise field_error(f"{path}.component", "the 85354-9 panel needs components")
        seen: set[str] = set()
        for i, comp in enumerate(comps):
            cpath = f"{path}.component[{i}]"
            comp = _obj(comp, cpath)
            ccode = _code_of(comp.get("code"), f"{cpath}.code")
            if ccode not in PANEL_COMPONENTS:
                raise field_error(f"{cpath}.code", "a blood pressure panel (85354-9) takes "
                                  "only 8480-6 (systolic) and 8462-4 (diastolic) components")
            if ccode in seen:
                raise field_error(f"{cpath}.code", "a blood pressure panel takes each of "
                                  "8480-6 and 8462-4 at most once", kind="duplicate")
            seen.add(ccode)
            value, unit = _value(comp, ccode, cpath)
            out.append({"time": time, "code": ccode, "value": value, "unit": unit,
                        "source": source, "_path": cpath})
    else:
        value, unit = _value(res, code, path)
        out.append({"time": time, "code": code, "value": value, "unit": unit,
                    "source": source, "_path": path})
    return out


def _check_subject(res: dict, path: str, patient_id: str | None) -> None:
    """An Observation's ``subject``, if present, must reference the URL's patient
    (``Patient/<id>``, optionally after a base URL)."""
    if "subject" not in res or patient_id is None:
        return
    subject = _obj(res["subject"], f"{path}.subject")
    ref = subject.get("reference")
    if not isinstance(ref, str) or not (ref == f"Patient/{patient_id}"
                                        or ref.endswith(f"/Patient/{patient_id}")):
        raise field_error(f"{path}.subject", "must reference the patient of the URL "
                          "(Patient/<id>), or be left out", kind="subject_mismatch")


def parse(body: Any, source: str = "fhir", patient_id: str | None = None) -> list[dict]:
    """Observations from a FHIR Observation or Bundle of Observations (raises ApiError);
    with ``patient_id``, each ``subject`` must be that patient (or absent)."""
    body = _obj(body, "body")
    kind = body.get("resourceType")
    if kind == "Observation":
        _check_subject(body, "Observation", patient_id)
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
        _check_subject(res, f"entry[{i}].resource", patient_id)
        out.extend(_observation(res, f"entry[{i}].resource", source))
    return out


def _codings(name: str) -> list[dict]:
    spec = CODES[name]
    if spec.loinc:
        out = [{"system": LOINC_SYSTEM, "code": spec.loinc, "display": spec.display}]
        if name in EXTRA_LOINC:
            code, display = EXTRA_LOINC[name]
            out.append({"system": LOINC_SYSTEM, "code": code, "display": display})
        return out
    if spec.snomed:
        return [{"system": SNOMED_SYSTEM, "code": spec.snomed, "display": spec.display},
                {"system": LOCAL_SYSTEM, "code": spec.name, "display": spec.display}]
    return [{"system": LOCAL_SYSTEM, "code": spec.name, "display": spec.display}]


def _fhir_value(row) -> dict:
    if row.code == "on_oxygen":
        return {"valueBoolean": row.value >= 0.5}
    if row.code == "acvpu":
        letter = ACVPU[min(max(round(row.value), 0), len(ACVPU) - 1)]
        codings = [{"system": ACVPU_SYSTEM, "code": letter, "display": ACVPU_DISPLAY[letter]}]
        if letter in ACVPU_SNOMED:
            codings.append({"system": SNOMED_SYSTEM, "code": ACVPU_SNOMED[letter],
                            "display": ACVPU_DISPLAY[letter]})
        return {"valueCodeableConcept": {"coding": codings, "text": letter}}
    return {"valueQuantity": {"value": row.value, "unit": row.unit, "system": UCUM_SYSTEM,
                              "code": row.unit}}


def to_bundle(patient_id: str, rows: list) -> dict:
    """Stored observations as a FHIR searchset Bundle."""
    entries = []
    for row in rows:
        entries.append({"resource": {
            "resourceType": "Observation", "id": str(row.id), "status": row.status or "final",
            "code": {"coding": _codings(row.code)},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": row.time.isoformat(),
            **_fhir_value(row),
        }})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": entries}
