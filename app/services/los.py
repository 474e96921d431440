"""Expected remaining ICU stay of a patient (``twin.los``), for the ward, page and API.

The patient's stay so far becomes the hourly grid the model learnt from (eICU-CRD, ricu
concepts and units): hour 0 is the clock hour of the admission (the earlier of the patient
record and the first reading), each clock hour holds the mean of that hour's readings, readings
marked entered in error are left out, creatinine is converted from umol/L to mg/dL (/ 88.42).
The estimate is made at the current hour; the trend is the estimate at every ``TREND_STEP_H``
hours of the last ``TREND_SPAN_H`` hours, from the same grid (each point sees only the readings
before it). Results are kept per patient, data version and hour (``CACHE_SIZE`` entries).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
from flask import current_app
from sqlalchemy import select

from app import db
from app.models import OBS_FINAL, Observation, utcnow
from app.schemas import RemainingStayOut
from app.services.patients import get_patient
from twin.errors import BundleError
from twin.los import LosModel, load_model, stay_features

log = logging.getLogger(__name__)

#: app code -> (ricu concept, factor to the ricu unit)
CONCEPT_OF: dict[str, tuple[str, float]] = {
    "sbp_mmhg": ("sbp", 1.0), "dbp_mmhg": ("dbp", 1.0), "map_mmhg": ("map", 1.0),
    "hr_bpm": ("hr", 1.0), "rr_per_min": ("resp", 1.0), "spo2_pct": ("o2sat", 1.0),
    "temp_c": ("temp", 1.0), "fio2_pct": ("fio2", 1.0),
    "potassium_mmol_per_l": ("k", 1.0), "creatinine_umol_per_l": ("crea", 1.0 / 88.42),
}
#: the model was fitted on ICU stays: beyond this many hours since admission it would
#: extrapolate, and no estimate is given
MAX_STAY_H = 60 * 24
TREND_STEP_H = 6
TREND_SPAN_H = 72
CACHE_SIZE = 4096
TRAINED_ON = ("ICU stays of the eICU-CRD demo (20 US hospitals, 2014-15): an ICU "
              "population, not a general ward")

_results: OrderedDict[tuple, dict[str, Any] | None] = OrderedDict()


@cache
def _model(uri: str | None) -> LosModel:
    return load_model(uri)


def model() -> LosModel:
    """The configured remaining-stay model (``LOS_MODEL_URI``; default: the shipped one)."""
    return _model(current_app.config.get("LOS_MODEL_URI") or None)


def _days(hours: float) -> float:
    return round(hours / 24.0, 1)


def interval_text(median_h: float, low_h: float, high_h: float) -> str:
    """'2.5 d (1-5)': days, the interval rounded outward to whole days (under 1 day: hours)."""
    if high_h < 24:
        return f"{median_h:.0f} h ({math.floor(low_h):.0f}-{math.ceil(high_h):.0f})"
    return (f"{median_h / 24:.1f} d ({math.floor(low_h / 24):.0f}-"
            f"{math.ceil(high_h / 24):.0f})")


def _grid(patient_id: str, admitted: datetime, now: datetime) -> tuple[dict, datetime]:
    # columns, not ORM objects: a week of hourly vitals is thousands of rows
    rows = db.session().execute(
        select(Observation.time, Observation.code, Observation.value)
        .where(Observation.patient_id == patient_id, Observation.status == OBS_FINAL,
               Observation.code.in_(sorted(CONCEPT_OF)), Observation.time <= now)).all()
    start = min([admitted, *(o.time for o in rows)]).replace(minute=0, second=0,
                                                              microsecond=0)
    n = int((now - start).total_seconds() // 3600) + 1
    sums = {c: np.zeros(n) for c, _ in CONCEPT_OF.values()}
    counts = {c: np.zeros(n) for c, _ in CONCEPT_OF.values()}
    for o in rows:
        concept, factor = CONCEPT_OF[o.code]
        h = int((o.time - start).total_seconds() // 3600)
        if 0 <= h < n:
            sums[concept][h] += o.value * factor
            counts[concept][h] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = {c: np.where(counts[c] > 0, sums[c] / counts[c], np.nan) for c in sums}
    return grid, start


def _point(med: float, lo: float, hi: float, at: datetime, hour: float) -> dict[str, Any]:
    return {"time": at, "hours_since_admission": hour, "median_h": round(med, 1),
            "low_h": round(lo, 1), "high_h": round(hi, 1), "median_days": _days(med),
            "low_days": _days(lo), "high_days": _days(hi),
            "text": interval_text(med, lo, hi)}


def remaining_stay(patient_id: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The patient's expected remaining ICU stay now (hours and days, 80 % interval, trend,
    model version, what it was trained on), or None without a vital sign or lab to go on or
    beyond ``MAX_STAY_H`` since admission."""
    p = get_patient(patient_id)
    now = now or utcnow()
    key = (current_app.config.get("LOS_MODEL_URI"), patient_id, p.version,
           now.replace(minute=0, second=0, microsecond=0))
    if key in _results:
        _results.move_to_end(key)
        return _results[key]
    try:
        found = _estimate(p, now)
    except BundleError as exc:  # the page and API go on without it; /health says why
        log.warning("remaining-stay model unavailable", extra={"reason": str(exc)})
        return None
    _results[key] = found
    while len(_results) > CACHE_SIZE:
        _results.popitem(last=False)
    return found


def _estimate(p, now: datetime) -> dict[str, Any] | None:
    grid, start = _grid(p.id, p.created_at, now)
    n = len(next(iter(grid.values())))
    if n > MAX_STAY_H or not any(np.isfinite(v).any() for v in grid.values()):
        return None
    m = model()
    # now, then every TREND_STEP_H hours back over TREND_SPAN_H (oldest first)
    rows = list(range(n - 1, max(n - 2 - TREND_SPAN_H, -1), -TREND_STEP_H))[::-1]
    static = {"age": float(p.age_years), "sex_male": math.nan, "height": math.nan,
              "weight": math.nan}
    x = stay_features(grid, static)[rows]
    med, lo, hi = m.predict(x)
    points = [_point(float(med[i]), float(lo[i]), float(hi[i]),
                     start + timedelta(hours=r + 1) if r < n - 1 else now, float(r))
              for i, r in enumerate(rows)]
    return {**points[-1], "coverage": m.coverage, "model_version": m.version,
            "trained_on": TRAINED_ON, "admitted": start, "trend": points}


def with_remaining_stay(body: bytes, stay: dict[str, Any] | None) -> bytes:
    """A forecast's JSON ``body`` (an object) with ``remaining_stay`` added."""
    value = RemainingStayOut.model_validate(stay).model_dump_json() if stay else "null"
    return body.rstrip()[:-1] + b', "remaining_stay": ' + value.encode() + b"}"
