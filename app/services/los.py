"""Remaining ICU length of stay for a patient (twin.los), for the ward, page and API."""

from __future__ import annotations

from typing import Any


def remaining_stay(patient_id: str) -> dict[str, Any] | None:
    """The patient's expected remaining stay, or None when it cannot be estimated."""
    return None
