"""NEWS2 of a patient's observation sets, and the stateless NEWS2 (``twin.monitoring.news2``).

An *observation set* is what a nurse records at the bedside. Sets are stored as ordinary
observation rows (source ``"set"`` when posted through ``record_set``), so readings that
arrive one by one (FHIR, monitors) form sets too: the observations of the NEWS2 codes are
grouped backwards from the newest one, each set holding every reading within
``SET_WINDOW`` (15 min) before its newest reading; within a set the latest value of each
code counts. The set's time is its newest reading. Nothing is carried from one set to
another: a parameter not recorded in the set is *missing* and the set is *incomplete*, shown
with the points of what is present but never with a risk or a response.

Supplemental oxygen is the ``on_oxygen`` reading; without it a set's oxygen flow > 0 L/min
or FiO2 > 21 % means "on oxygen" and flow 0 or FiO2 21 % "on air" (the same fact, recorded
differently). The SpO2 scale is the patient's current one (``Patient.spo2_scale``).

A set is *stale* when it is older than the minimum monitoring interval its score sets
(RCP chart 4: 12 h, 4 h, 1 h; "continuous" counts as ``CONTINUOUS_STALE_H``); for an
incomplete set the interval of the points present, a lower bound of the score, is used.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import g, has_app_context
from sqlalchemy import func, select

from app import codes, db, forecasting
from app.errors import ApiError
from app.models import OBS_FINAL, Observation, Patient, utcnow
from app.schemas import News2In, ObservationSetIn
from app.services.patients import (
    CLOCK_SKEW,
    get_patient,
    list_observations,
    patient_version,
    record_observations,
)
from app.services.readings import DBP_NOT_BELOW_SBP
from twin.monitoring import news2 as twin_news2

#: readings within this window before a set's newest reading belong to the set
SET_WINDOW = timedelta(minutes=15)
#: a set whose NEWS2 calls for continuous monitoring is stale after this many hours
CONTINUOUS_STALE_H = 0.5
#: the history of ``patient_news2`` covers this long by default
HISTORY = timedelta(hours=72)
SET_FIELDS = codes.SET_FIELDS
SET_CODES: frozenset[str] = frozenset(SET_FIELDS.values())
SET_SOURCE = "set"


def _set_errors(data: ObservationSetIn) -> list[dict[str, str]]:
    """What the schema cannot see (each value's range it checks): emptiness, a future time,
    contradictions between fields."""
    errors = []
    values = data.model_dump(exclude={"time"}, exclude_none=True)
    if not values:
        errors.append({"field": "body", "message": "an observation set needs at least one "
                                                   "value besides time"})
    if data.time > utcnow() + CLOCK_SKEW:
        errors.append({"field": "time", "message": f"is in the future ({data.time.isoformat()})"})
    if data.sbp_mmhg is not None and data.dbp_mmhg is not None \
            and data.dbp_mmhg >= data.sbp_mmhg:
        errors.append({"field": "dbp_mmhg", "message": DBP_NOT_BELOW_SBP})
    if data.supplemental_oxygen is False:
        if (data.o2_flow_l_per_min or 0) > 0:
            errors.append({"field": "o2_flow_l_per_min",
                           "message": "an oxygen flow above 0 contradicts "
                                      "supplemental_oxygen false"})
        if (data.fio2_pct or 21) > 21:
            errors.append({"field": "fio2_pct", "message": "an FiO2 above 21 % contradicts "
                                                           "supplemental_oxygen false"})
    return errors


def record_set(patient_id: str, data: ObservationSetIn) -> tuple[list[Observation], int,
                                                                   dict | None]:
    """Store an observation set whole (422 naming every bad field, nothing written);
    returns the rows, the patient's new data version and the set as NEWS2 sees it."""
    get_patient(patient_id)
    errors = _set_errors(data)
    if errors:
        raise ApiError(422, "Invalid input",
                       "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)
    items, paths = [], []
    for name, value in data.model_dump(exclude={"time"}, exclude_none=True).items():
        code = SET_FIELDS[name]
        items.append({"time": data.time, "code": code, "value": codes.set_value(name, value),
                      "unit": codes.CODES[code].unit, "source": SET_SOURCE})
        paths.append(name)
    rows, version = record_observations(patient_id, items, paths)
    sets = _sets(patient_id, data.time - SET_WINDOW)
    view = next((s for s in sets if s["_start"] <= data.time <= s["time"]), None)
    return rows, version, _public(view)


def stateless(data: News2In) -> dict:
    """NEWS2 of one complete set (``News2.as_dict()``)."""
    obs = twin_news2.ObservationSet(**data.model_dump())
    with forecasting.twin_errors():
        return twin_news2.score(obs).as_dict()


def _group(rows: list[Observation]) -> list[list[Observation]]:
    """Rows (time order) grouped backwards from the newest; groups oldest first."""
    groups: list[list[Observation]] = []
    i = len(rows) - 1
    while i >= 0:
        end = rows[i].time
        group = []
        while i >= 0 and rows[i].time >= end - SET_WINDOW:
            group.append(rows[i])
            i -= 1
        groups.append(group[::-1])
    return groups[::-1]


def _oxygen(v: dict[str, float]) -> bool | None:
    if "on_oxygen" in v:
        return v["on_oxygen"] >= 0.5
    flow, fio2 = v.get("o2_flow_l_per_min"), v.get("fio2_pct")
    if (flow is not None and flow > 0) or (fio2 is not None and fio2 > 21):
        return True
    if flow is not None or fio2 is not None:
        return False
    return None


def _interval(total: int, pts: dict[str, int]) -> float:
    trigger = twin_news2.trigger(total, any(p == 3 for p in pts.values()))
    return twin_news2.MONITORING_INTERVAL_H[trigger]


def _view(group: list[Observation], spo2_scale: int, now: datetime) -> dict:
    values = {r.code: r.value for r in group}  # time order: the latest value wins
    acvpu = values.get("acvpu")
    obs = twin_news2.ObservationSet(
        respiratory_rate_per_min=values.get("rr_per_min"), spo2_pct=values.get("spo2_pct"),
        spo2_scale=spo2_scale, supplemental_oxygen=_oxygen(values),
        sbp_mmhg=values.get("sbp_mmhg"), hr_bpm=values.get("hr_bpm"),
        consciousness=None if acvpu is None else codes.ACVPU[int(acvpu)],
        temperature_c=values.get("temp_c"))
    total, pts, missing = twin_news2.partial_score(obs)
    time = group[-1].time
    age_h = max(0.0, (now - time).total_seconds() / 3600.0)
    view: dict[str, Any] = {
        "time": time, "_start": group[0].time, "spo2_scale": spo2_scale,
        "respiratory_rate_per_min": obs.respiratory_rate_per_min, "spo2_pct": obs.spo2_pct,
        "supplemental_oxygen": obs.supplemental_oxygen,
        "o2_flow_l_per_min": values.get("o2_flow_l_per_min"),
        "fio2_pct": values.get("fio2_pct"), "sbp_mmhg": obs.sbp_mmhg,
        "dbp_mmhg": values.get("dbp_mmhg"), "hr_bpm": obs.hr_bpm,
        "consciousness": obs.consciousness, "temperature_c": obs.temperature_c,
        "complete": not missing, "missing": list(missing), "age_h": round(age_h, 3),
        "_news2": None}
    if missing:
        view.update(score=total, components=pts, risk=None, single_parameter_3=None,
                    clinical_response=None, monitoring_interval_h=None)
        interval = _interval(total, pts)
    else:
        scored = twin_news2.score(obs)
        view.update(scored.as_dict())
        view["_news2"] = scored
        interval = scored.monitoring_interval_h
    view["stale"] = age_h > (interval or CONTINUOUS_STALE_H)
    return view


def _public(view: dict | None) -> dict | None:
    return None if view is None else {k: v for k, v in view.items() if not k.startswith("_")}


def _sets(patient_id: str, since: datetime | None, now: datetime | None = None) -> list[dict]:
    now = now or utcnow()
    rows, _ = list_observations(patient_id, since, None, code_in=SET_CODES)  # 404 if unknown
    scale = db.session().scalar(select(Patient.spo2_scale).where(Patient.id == patient_id))
    return [_view(g, scale or 1, now) for g in _group(rows)]


def _last_time(patient_id: str) -> datetime | None:
    return db.session().scalar(
        select(func.max(Observation.time)).where(Observation.patient_id == patient_id,
                                                 Observation.status == OBS_FINAL,
                                                 Observation.code.in_(sorted(SET_CODES))))


def latest_set(patient_id: str, now: datetime | None = None) -> dict | None:
    """The newest set (internal view: ``_news2`` is the News2 of a complete set), or None.
    Kept for the rest of the request (or app context) per patient data version: the ward
    row and the status rules both ask for it."""
    memo = g.setdefault("news2_latest_sets", {}) if has_app_context() else {}
    key = (patient_id, patient_version(patient_id))
    if key not in memo:
        memo[key] = _latest_set(patient_id, now)
    return memo[key]


def _latest_set(patient_id: str, now: datetime | None) -> dict | None:
    last = _last_time(patient_id)
    if last is None:
        get_patient(patient_id)
        return None
    sets = _sets(patient_id, last - SET_WINDOW, now)
    return sets[-1] if sets else None


def patient_news2(patient_id: str, hours: float | None = None) -> dict:
    """``{"patient_id", "latest", "history"}``: the newest set (however old) and every set of
    the last ``hours`` (default 72), oldest first."""
    now = utcnow()
    since = now - (HISTORY if hours is None else timedelta(hours=hours))
    history = _sets(patient_id, since, now)
    latest = history[-1] if history else latest_set(patient_id, now)
    return {"patient_id": patient_id, "latest": _public(latest),
            "history": [_public(s) for s in history]}
