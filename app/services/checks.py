"""Measurement checks on newly recorded readings: "check this reading" flags (a transposed
SBP/DBP, a pulse pressure below 10 mmHg, a jump no physiology explains), never alarms.

The rules are ``twin.monitoring.checks`` (thresholds and their reasons are there and in
docs/monitoring.md); here each new reading is checked against the readings of the same set
(same time) and the patient's earlier readings of the last ``LOOKBACK``.
"""

from __future__ import annotations

from datetime import timedelta

from app.models import Observation
from app.services.patients import list_observations
from twin.monitoring.checks import JUMP, check_reading

#: our observation code -> the name the checks use (where they differ)
_CHECK_NAME = {"rr_per_min": "respiratory_rate_per_min", "temp_c": "temperature_c"}
_CHECKED = {code for code in ("sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm", "rr_per_min",
                              "spo2_pct", "temp_c") if _CHECK_NAME.get(code, code) in JUMP}
#: earlier readings considered for the jump rule
LOOKBACK = timedelta(hours=6)


def reading_checks(patient_id: str, rows: list[Observation]) -> list[dict]:
    """Flags (``Flag.as_dict()`` plus the reading's ``time``) for the new ``rows``."""
    new = [r for r in rows if r.code in _CHECKED]
    if not new:
        return []
    start = min(r.time for r in new) - LOOKBACK
    earlier, _ = list_observations(patient_id, start, None, code_in=_CHECKED)
    new_ids = {r.id for r in new}
    out = []
    for r in new:
        others = {o.code: o.value for o in new if o.time == r.time and o.id != r.id}
        previous = [((o.time - r.time).total_seconds() / 3600.0, o.value) for o in earlier
                    if o.code == r.code and o.time < r.time and o.id not in new_ids]
        for flag in check_reading(_CHECK_NAME.get(r.code, r.code), r.value, others=others,
                                  previous=previous, time_h=0.0):
            out.append({**flag.as_dict(), "endpoint": r.code, "time": r.time})
    return out
