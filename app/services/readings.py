"""Impossible combinations of readings, refused before anything is stored (issue 14).

* **DBP >= SBP**: a diastolic at or above the systolic of the same time, in the new readings
  or against a stored one, is a 422 naming the diastolic's field ("Diastolic BP must be lower
  than systolic BP"). A ``check this reading`` flag (``app.services.checks``) is for what may
  be true; this cannot be.
* **Exact duplicate**: a reading with the same patient, code, time and value as a stored one
  in use (status ``final``), or as another of the same request, is a 409 of problem type
  ``duplicate-observation`` naming the field and the stored observation's id. A reading
  marked entered in error does not count: recording the right reading again is the correction.

Messages name fields and codes, never values; the log line of a refusal carries the field
and the kind of error (``ApiError.kinds``) only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app import db
from app.errors import ApiError
from app.models import OBS_FINAL, Observation

DUPLICATE_OBSERVATION = "duplicate-observation"
DBP_NOT_BELOW_SBP = "Diastolic BP must be lower than systolic BP"
#: stored readings are looked up this many times at a time (bound parameters)
_CHUNK = 400


@dataclass(frozen=True)
class Reading:
    """A new reading, converted to the stored unit; ``field`` names it in a duplicate error
    and ``value_field`` its value in a DBP error (e.g. ``observations[1]`` and
    ``observations[1].value``; an observation set's field name for both)."""

    time: datetime
    code: str
    value: float
    field: str
    value_field: str


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _stored(patient_id: str, times: set[datetime], codes: set[str]) -> list[Observation]:
    """The patient's readings in use at any of ``times`` with any of ``codes``."""
    out: list[Observation] = []
    ordered = sorted(times)
    for i in range(0, len(ordered), _CHUNK):
        q = select(Observation).where(Observation.patient_id == patient_id,
                                      Observation.status == OBS_FINAL,
                                      Observation.code.in_(sorted(codes)),
                                      Observation.time.in_(ordered[i:i + _CHUNK]))
        out.extend(db.session().scalars(q).all())
    return out


def duplicate_problem(field: str, existing_id: int | None) -> ApiError:
    """409 ``duplicate-observation`` about ``field``."""
    what = (f"observation {existing_id}" if existing_id is not None
            else "another reading of this request")
    return ApiError(409, "Duplicate observation",
                    f"{field}: the same code, time and value as {what}; it is already "
                    "recorded (mark the stored one entered in error to correct it)",
                    [{"field": field, "message": "duplicate of an existing reading"}],
                    type=DUPLICATE_OBSERVATION)


def check(patient_id: str, readings: Sequence[Reading]) -> None:
    """Refuse DBP >= SBP (422) and exact duplicates (409) among ``readings`` and against the
    patient's stored readings in use."""
    if not readings:
        return
    stored = _stored(patient_id, {r.time for r in readings},
                     {r.code for r in readings} | {"sbp_mmhg", "dbp_mmhg"})
    _check_bp(readings, stored)
    _check_duplicates(readings, stored)


def _check_bp(readings: Sequence[Reading], stored: list[Observation]) -> None:
    sbp: dict[datetime, list[float]] = {}
    dbp: dict[datetime, list[tuple[float, str | None]]] = {}
    for r in readings:
        if r.code == "sbp_mmhg":
            sbp.setdefault(r.time, []).append(r.value)
        elif r.code == "dbp_mmhg":
            dbp.setdefault(r.time, []).append((r.value, r.value_field))
    for o in stored:
        if o.code == "sbp_mmhg":
            sbp.setdefault(o.time, []).append(o.value)
        elif o.code == "dbp_mmhg":
            dbp.setdefault(o.time, []).append((o.value, None))
    new_sbp_times = {r.time for r in readings if r.code == "sbp_mmhg"}
    for t, values in dbp.items():
        for value, field in values:
            if field is None and t not in new_sbp_times:
                continue  # two stored readings: not this request's doing
            if any(value >= s for s in sbp.get(t, ())):
                name = field or next(r.value_field for r in readings
                                     if r.code == "sbp_mmhg" and r.time == t)
                raise ApiError(422, "Invalid input", f"{name}: {DBP_NOT_BELOW_SBP}",
                               [{"field": name, "message": DBP_NOT_BELOW_SBP}],
                               kinds=[DBP_NOT_BELOW_SBP])  # value-free: the log says it


def _check_duplicates(readings: Sequence[Reading], stored: list[Observation]) -> None:
    seen: list[Reading] = []
    for r in readings:
        for o in stored:
            if o.code == r.code and o.time == r.time and _same(o.value, r.value):
                raise duplicate_problem(r.field, o.id)
        if any(s.code == r.code and s.time == r.time and _same(s.value, r.value)
               for s in seen):
            raise duplicate_problem(r.field, None)
        seen.append(r)
