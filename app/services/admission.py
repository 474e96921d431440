"""Admitted or discharged: the refusal of writes to a discharged patient (409
``patient-discharged``, in clinical words and ward time) and a detail's value as the change
history stores it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from app.errors import ApiError
from app.models import DISCHARGED, Patient

#: the problem type of a write refused because the patient is discharged
PATIENT_DISCHARGED = "patient-discharged"


def ward_time(t: datetime | None) -> str:
    """A stored UTC time in the ward's zone (WARD_TIMEZONE) with its abbreviation."""
    if t is None:
        return "an unknown date"
    zone = ZoneInfo(current_app.config.get("WARD_TIMEZONE") or "UTC")
    lt = t.astimezone(zone)
    return f"{lt:%Y-%m-%d %H:%M} {lt.tzname()}"


def discharged_error(discharged_at: datetime | None) -> ApiError:
    """The 409 of a write to a discharged patient, in clinical words."""
    return ApiError(409, "Patient discharged",
                    f"This patient was discharged on {ward_time(discharged_at)}; readmit "
                    "them to record readings or change treatment.",
                    [{"field": "patient_id", "message": "discharged"}],
                    type=PATIENT_DISCHARGED)


def require_admitted(p: Patient) -> None:
    """A 409 ``patient-discharged`` unless the patient is admitted."""
    if p.status == DISCHARGED:
        raise discharged_error(p.discharged_at)


def change_text(value: Any) -> str | None:
    """A detail's value as the history stores it: yes/no, 72, 6.5, normal, ISO UTC time."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
