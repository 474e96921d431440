"""Use cases shared by the API and the pages: admit, record, regimen, forecast, what-if.

Functions take validated pydantic inputs, raise ``ApiError`` (4xx, naming the field) on bad
input, write nothing unless everything is valid, and commit themselves.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import math
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from flask import current_app
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import codes, db, forecasting, prewarm
from app.api.schemas import ObservationIn, PatientIn, PatientPatch, RegimenIn, SimulateRequest
from app.errors import ApiError, field_error
from app.models import (
    AuditEvent,
    ForecastCache,
    ForecastRun,
    Observation,
    Patient,
    Regimen,
    utcnow,
)
from app.observability import METRICS

#: an observation may be this far in the future (clock skew) before it is rejected
CLOCK_SKEW = timedelta(minutes=5)


# --- patients ---------------------------------------------------------------------------------


def patient_dict(p: Patient) -> dict[str, Any]:
    """A patient as the API shows it."""
    r = p.regimen
    return {
        "id": p.id, "age": p.age_years, "renal_function": p.renal_function,
        "glucose": p.glucose, "infected": p.infected,
        "infection_onset": p.infection_onset.isoformat() if p.infection_onset else None,
        "external_id": p.external_id, "version": p.version,
        "regimen": None if r is None else {
            "drug": r.drug, "dose_mg": r.dose_mg, "interval_h": r.interval_h,
            "start": r.start.isoformat(), "stop": r.stop.isoformat() if r.stop else None},
        "created_at": p.created_at.isoformat(), "updated_at": p.updated_at.isoformat(),
    }


def _not_future(field: str, t: datetime | None) -> None:
    if t is not None and t > utcnow() + CLOCK_SKEW:
        raise field_error(field, f"is in the future ({t.isoformat()})")


def _apply_covariates(p: Patient, data: dict[str, Any]) -> None:
    if "age" in data and data["age"] is not None:
        p.age_years = data["age"]
    if "renal_function" in data and data["renal_function"] is not None:
        p.renal_function = data["renal_function"]
    if "glucose" in data and data["glucose"] is not None:
        g = data["glucose"]
        p.glucose_pattern = g if isinstance(g, str) else None
        p.glucose_mmol_per_l = None if isinstance(g, str) else float(g)
    if "infected" in data and data["infected"] is not None:
        p.infected = data["infected"]
    if "infection_onset" in data:
        p.infection_onset = data["infection_onset"]
    if "external_id" in data:
        p.external_id = data["external_id"]


def _external_id_free(s, external_id: str | None, patient_id: str | None = None) -> None:
    if external_id is None:
        return
    other = s.scalar(select(Patient.id).where(Patient.external_id == external_id))
    if other is not None and other != patient_id:
        raise field_error("external_id", "already used by another patient", status=409)


def admit_patient(data: PatientIn) -> Patient:
    """Store a new patient; returns it (with its new pseudonymous id)."""
    _not_future("infection_onset", data.infection_onset)
    s = db.session()
    _external_id_free(s, data.external_id)
    p = Patient(version=1, infected=False)
    _apply_covariates(p, data.model_dump())
    s.add(p)
    s.commit()
    return get_patient(p.id)


def get_patient(patient_id: str) -> Patient:
    """The patient with its regimens, or a 404 problem."""
    p = db.session().scalar(select(Patient).options(selectinload(Patient.regimens))
                            .where(Patient.id == patient_id))
    if p is None:
        raise ApiError(404, "Not Found", f"patient {patient_id!r} does not exist",
                       [{"field": "patient_id", "message": "unknown patient"}])
    return p


_VERSION_QUERY = select(Patient.version).where(Patient.id == bindparam("pid"))


def patient_version(patient_id: str) -> int:
    """The data version of a patient (one cheap query), or a 404 problem."""
    with db.get_engine().connect() as conn:  # Core, not the ORM: this is the hot path
        v = conn.execute(_VERSION_QUERY, {"pid": patient_id}).scalar()
    if v is None:
        raise ApiError(404, "Not Found", f"patient {patient_id!r} does not exist",
                       [{"field": "patient_id", "message": "unknown patient"}])
    return v


def _bump(s, patient_id: str) -> None:
    s.execute(update(Patient).where(Patient.id == patient_id)
              .values(version=Patient.version + 1, updated_at=utcnow()))


def update_patient(patient_id: str, patch: PatientPatch) -> Patient:
    """Change covariates of a patient."""
    data = patch.model_dump(exclude_unset=True)
    _not_future("infection_onset", data.get("infection_onset"))
    p = get_patient(patient_id)
    s = db.session()
    _external_id_free(s, data.get("external_id"), patient_id)
    _apply_covariates(p, data)
    s.flush()
    _bump(s, patient_id)
    s.commit()
    s.expire_all()
    prewarm.schedule(patient_id)
    return get_patient(patient_id)


def list_patients(limit: int, offset: int) -> tuple[list[Patient], int]:
    """A page of patients (oldest first) and the total count."""
    s = db.session()
    total = s.scalar(select(func.count()).select_from(Patient))
    rows = s.scalars(select(Patient).options(selectinload(Patient.regimens))
                     .order_by(Patient.created_at, Patient.id).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


# --- observations and regimen -----------------------------------------------------------------


def record_observations(patient_id: str, items: list[ObservationIn] | list[dict],
                        paths: list[str] | None = None) -> tuple[list[Observation], int]:
    """Validate every observation (unit, plausible value, not in the future), then store all."""
    get_patient(patient_id)
    rows = []
    for i, item in enumerate(items):
        obs = item if isinstance(item, ObservationIn) else ObservationIn.model_validate(
            {k: v for k, v in item.items() if not k.startswith("_")})
        path = paths[i] if paths else f"observations[{i}]"
        problem_text = codes.check(obs.code, obs.value, obs.unit)
        if problem_text:
            part, message = problem_text.split(": ", 1)
            raise field_error(f"{path}.{part}", message)
        _not_future(f"{path}.time", obs.time)
        rows.append(Observation(patient_id=patient_id, time=obs.time, code=obs.code,
                                value=obs.value, unit=codes.normalise_unit(obs.unit),
                                source=obs.source))
    s = db.session()
    s.add_all(rows)
    _bump(s, patient_id)
    s.commit()
    prewarm.schedule(patient_id)
    return rows, patient_version(patient_id)


def list_observations(patient_id: str, since: datetime | None, until: datetime | None,
                      limit: int | None = None, offset: int = 0,
                      code: str | None = None) -> tuple[list[Observation], int]:
    """The patient's observations in time order, filtered by [since, until] and code."""
    get_patient(patient_id)
    q = select(Observation).where(Observation.patient_id == patient_id)
    if since is not None:
        q = q.where(Observation.time >= since)
    if until is not None:
        q = q.where(Observation.time <= until)
    if code is not None:
        q = q.where(Observation.code == code)
    s = db.session()
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    q = q.order_by(Observation.time, Observation.id).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q).all()), int(total or 0)


def set_regimen(patient_id: str, data: RegimenIn) -> Patient:
    """Make ``data`` the patient's current regimen (earlier ones are kept as history)."""
    get_patient(patient_id)
    check_regimen_start(data)
    s = db.session()
    s.add(Regimen(patient_id=patient_id, drug=data.drug, dose_mg=data.dose_mg,
                  interval_h=data.interval_h, start=data.start, stop=data.stop))
    _bump(s, patient_id)
    s.commit()
    s.expire_all()
    prewarm.schedule(patient_id)
    return get_patient(patient_id)


# --- forecasts --------------------------------------------------------------------------------


def _twin_error(exc: ValueError) -> ApiError:
    """A twin ScenarioError/ObservationError ("field: message") as a 422 problem."""
    text = str(exc)
    field, _, message = text.partition(": ")
    if not message:
        field, message = "scenario", text
    return field_error(field, message)


#: forecasts use the observations of this window before "now" (twin time stays short)
LOOKBACK = timedelta(days=30)
#: a regimen may start at most this far ahead
MAX_START_AHEAD = timedelta(days=180)


def _hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _phase_start(r, floor: datetime) -> datetime:
    """The regimen's first dose time at or after ``floor`` (same dosing phase)."""
    if r.start >= floor:
        return r.start
    step = timedelta(hours=r.interval_h)
    k = math.ceil((floor - r.start) / step)
    return r.start + k * step


def _origin(p: Patient, obs: list[Observation], now: datetime, regimens=()) -> datetime:
    """Twin hour 0: the earliest of the first observation, regimen starts and infection
    onset within the look-back window (never before ``now - LOOKBACK``)."""
    floor = now - LOOKBACK
    times = [o.time for o in obs[:1]]
    times += [_phase_start(r, floor) for r in regimens if r is not None]
    if p.infection_onset is not None:
        times.append(p.infection_onset)
    return max(min(times), floor) if times else floor


def _twin_regimen(r, origin: datetime, until_h: float):
    """A stored/proposed regimen in twin hours (untreated if None or already stopped)."""
    if r is None or (r.stop is not None and r.stop <= origin):
        return forecasting.make_regimen("benazepril", 0.0, 24.0, 0.0, None)
    start_h = forecasting.hours(origin, _phase_start(r, origin))
    stop_h = forecasting.hours(origin, r.stop) if r.stop else None
    if stop_h is not None and stop_h > until_h:
        stop_h = None  # stops after the forecast window: irrelevant here
    return forecasting.make_regimen(r.drug, r.dose_mg, r.interval_h, start_h, stop_h)


def _changed_regimen(current, proposed, origin: datetime, until_h: float):
    """The current regimen until ``proposed`` starts, then ``proposed`` (the doses already
    taken stay in the patient's past; the fit to the observations needs them)."""
    new = _twin_regimen(proposed, origin, until_h)
    old = _twin_regimen(current, origin, until_h)
    if old.dose_mg == 0.0 or new.start_h <= old.start_h:
        return new  # nothing given before the proposed start
    if new.dose_mg > 0.0 and new.drug != old.drug:
        raise field_error("regimen.drug", f"a change of drug ({old.drug} to {new.drug}) is "
                          f"not modelled: the proposed regimen must use {old.drug}, or stop it "
                          "first (dose_mg 0)")
    return forecasting.make_regimen(old.drug, old.dose_mg, old.interval_h, old.start_h,
                                    old.stop_h, then=new)


def _scenario(p: Patient, origin: datetime, regimen) -> Any:
    onset_h = forecasting.hours(origin, p.infection_onset) if p.infection_onset else 0.0
    return forecasting.make_scenario(p.age_years, p.renal_function, p.glucose, p.infected,
                                     max(onset_h, 0.0), regimen)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def _audit_run(kind: str, patient_id: str | None, fc_version: str, engine: str | None,
               digest: str, horizon_h: float | None, coverage: float | None,
               actor: str | None, seconds: float) -> None:
    with db.get_engine().begin() as conn:
        conn.execute(insert(ForecastRun).values(
            patient_id=patient_id, kind=kind, model_version=fc_version, engine=engine,
            input_digest=digest, horizon_h=horizon_h, coverage=coverage, actor=actor,
            duration_ms=seconds * 1000, created_at=utcnow()))
    METRICS.observe_forecast(kind, seconds)


def _run_forecast(p: Patient, obs: list[Observation], origin: datetime, now: datetime,
                  regimen, horizon_h: float, coverage: float, engine: str | None,
                  kind: str, actor: str | None, proposed=None) -> dict:
    """One forecast through the twin (ScenarioError/ObservationError become 422); with
    ``proposed``, under ``regimen`` until the proposed regimen starts, then under it."""
    observation = forecasting.twin_attr("Observation", "twin.forecast.observations")
    forecaster = forecasting.get_forecaster()
    engine = engine or current_app.config.get("FORECAST_ENGINE") or None
    now_h = forecasting.hours(origin, now)
    t0 = time.perf_counter()
    try:
        twin_obs = [observation(time_h=forecasting.hours(origin, o.time), endpoint=o.code,
                                value=o.value) for o in obs]
        twin_regimen = (_twin_regimen(regimen, origin, now_h + horizon_h) if proposed is None
                        else _changed_regimen(regimen, proposed, origin, now_h + horizon_h))
        scenario = _scenario(p, origin, twin_regimen)
        fc = forecaster.forecast(scenario, twin_obs, now_h=now_h, horizon_h=horizon_h,
                                 coverage=coverage, engine=engine)
    except ValueError as exc:
        raise _twin_error(exc) from exc
    seconds = time.perf_counter() - t0
    digest = _digest(p.id, p.version, [(o.time, o.code, o.value) for o in obs], now_h,
                     repr(twin_regimen), horizon_h, coverage, engine)
    _audit_run(kind, p.id, str(fc.model_version), str(fc.engine), digest, horizon_h, coverage,
               actor, seconds)
    return forecasting.forecast_to_dict(fc, origin, horizon_h, p.id)


def _check_engine(engine: str | None) -> None:
    if engine is None:
        return
    forecaster = forecasting.get_forecaster()
    if engine not in tuple(forecaster.engines):
        raise field_error("engine", f"must be one of {list(forecaster.engines)}")


def _forecast_key(patient_id: str, horizon_h: float, coverage: float,
                  engine: str | None) -> tuple[tuple, str | None, datetime]:
    """(cache key, engine, issue hour) of a forecast; one cheap query for the data version."""
    version = patient_version(patient_id)
    forecaster = forecasting.get_forecaster()
    _check_engine(engine)
    engine = engine or current_app.config.get("FORECAST_ENGINE") or None
    hour = _hour_floor(utcnow())
    key = ("forecast", patient_id, version, forecaster.version, float(horizon_h),
           float(coverage), engine, hour)
    return key, engine, hour


def forecast(patient_id: str, horizon_h: float = 72, coverage: float = 0.9,
             engine: str | None = None, actor: str | None = None) -> dict:
    """The patient's forecast as JSON-ready dict, cached by data version and model version.

    The forecast is issued at ``max(this hour, last observation)`` so a cached result stays
    valid within the hour.
    """
    key, engine, hour = _forecast_key(patient_id, horizon_h, coverage, engine)
    result, cached = current_app.extensions["result_cache"].get_or_compute(
        key, lambda: _shared_or_compute(
            key, patient_id,
            lambda: _compute_forecast(patient_id, hour, horizon_h, coverage, engine, actor)))
    METRICS.count_cache("hit" if cached else "miss")
    return result


#: shared cache rows older than this are deleted (the key includes the issue hour)
SHARED_CACHE_TTL = timedelta(hours=3)


#: a worker computing a forecast leaves this (empty) body as its claim; the others wait for it
CLAIM = ""
#: how long a worker waits for another's claimed computation before computing it itself (s)
CLAIM_WAIT_S = 15.0
CLAIM_POLL_S = 0.02


def _shared_or_compute(key: tuple, patient_id: str, compute) -> dict:
    """The forecast from the shared (database) cache, else computed and stored there.

    Workers do not compute one forecast twice: the first to miss inserts an empty claim row,
    computes, then fills it in; the others poll for the body (up to CLAIM_WAIT_S, after which
    they compute it themselves, e.g. when the claimer died)."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()
    engine = db.get_engine()
    deadline = time.monotonic() + CLAIM_WAIT_S
    claimed = False
    while not claimed:
        with engine.connect() as conn:
            body = conn.execute(select(ForecastCache.body)
                                .where(ForecastCache.key_sha256 == digest)).scalar()
        if body:
            METRICS.count_cache("shared_hit")
            return json.loads(body)
        if body is None:
            claimed = _claim(engine, digest, patient_id)
        elif time.monotonic() > deadline:
            break  # the claimer is gone or stuck: compute it here
        else:
            time.sleep(CLAIM_POLL_S)
    try:
        result = compute()
    except BaseException:
        if claimed:  # let the waiting workers try (and fail) themselves
            with engine.begin() as conn:
                conn.execute(delete(ForecastCache).where(ForecastCache.key_sha256 == digest,
                                                         ForecastCache.body == CLAIM))
        raise
    with engine.begin() as conn:
        stored = conn.execute(update(ForecastCache).where(ForecastCache.key_sha256 == digest)
                              .values(body=json.dumps(result), created_at=utcnow())).rowcount
        if not stored:
            _insert_cache_row(conn, digest, patient_id, json.dumps(result))
    return result


def _claim(engine, digest: str, patient_id: str) -> bool:
    """Insert the claim row (pruning old rows); False if another worker was first."""
    try:
        with engine.begin() as conn:
            conn.execute(delete(ForecastCache)
                         .where(ForecastCache.created_at < utcnow() - SHARED_CACHE_TTL))
            _insert_cache_row(conn, digest, patient_id, CLAIM)
        return True
    except IntegrityError:
        return False


def _insert_cache_row(conn, digest: str, patient_id: str, body: str) -> None:
    conn.execute(insert(ForecastCache).values(key_sha256=digest, patient_id=patient_id,
                                              body=body, created_at=utcnow()))


def forecast_body(patient_id: str, horizon_h: float = 72, coverage: float = 0.9,
                  engine: str | None = None, actor: str | None = None) -> bytes:
    """The forecast as the API's JSON body (bytes), itself cached: serialising is the
    dominant cost of a cached forecast request."""
    key, _, _ = _forecast_key(patient_id, horizon_h, coverage, engine)
    cache = current_app.extensions["result_cache"]
    body = cache.get((*key, "body"))
    if body is None:
        result = forecast(patient_id, horizon_h, coverage, engine, actor)
        body = json.dumps({k: v for k, v in result.items() if k != "observations"}).encode()
        cache.put((*key, "body"), body)
    else:
        METRICS.count_cache("hit")
    return body


def load_for_forecast(patient_id: str) -> tuple[Patient, list[Observation], datetime]:
    """The patient, observations of the look-back window (time order) and the issue time."""
    p = get_patient(patient_id)
    now = utcnow()
    obs, _ = list_observations(patient_id, now - LOOKBACK, None)
    if not obs:
        raise ApiError(409, "No observations",
                       f"the forecast needs an observation from the last {LOOKBACK.days} days",
                       [{"field": "observations", "message": "none recent enough"}])
    return p, obs, max(_hour_floor(now), obs[-1].time)


def _compute_forecast(patient_id: str, hour: datetime, horizon_h: float, coverage: float,
                      engine: str | None, actor: str | None) -> dict:
    p, obs, now = load_for_forecast(patient_id)
    origin = _origin(p, obs, now, [p.regimen])
    result = _run_forecast(p, obs, origin, now, p.regimen, horizon_h, coverage, engine,
                           "forecast", actor)
    result["observations"] = [{"time": o.time.isoformat(), "code": o.code, "value": o.value}
                              for o in obs]
    return result


def _summary(fc: dict) -> dict[str, float]:
    sbp = fc["endpoints"]["sbp_mmhg"]["median"]
    dbp = fc["endpoints"]["dbp_mmhg"]["median"]
    return {"sbp_mmhg_end": float(sbp[-1]), "dbp_mmhg_end": float(dbp[-1]),
            "sbp_mmhg_mean": float(np.mean(sbp))}


def check_regimen_start(data: RegimenIn, field: str = "start") -> None:
    """A regimen may not start more than MAX_START_AHEAD from now."""
    if data.start > utcnow() + MAX_START_AHEAD:
        raise field_error(field, f"must be at most {MAX_START_AHEAD.days} days ahead")


def what_if(patient_id: str, proposed: RegimenIn, horizon_h: float = 72,
            coverage: float = 0.9, actor: str | None = None) -> dict:
    """Forecasts under the current regimen and under ``proposed``, side by side."""
    forecasting.get_forecaster()
    check_regimen_start(proposed, "regimen.start")
    p, obs, now = load_for_forecast(patient_id)
    origin = _origin(p, obs, now, [p.regimen, proposed])
    current = _run_forecast(p, obs, origin, now, p.regimen, horizon_h, coverage, None,
                            "whatif", actor)
    new = _run_forecast(p, obs, origin, now, p.regimen, horizon_h, coverage, None, "whatif",
                        actor, proposed=proposed)
    return {"current": current, "proposed": new,
            "summary": {"current": _summary(current), "proposed": _summary(new)}}


def simulate(req: SimulateRequest, actor: str | None = None) -> dict:
    """A stateless simulation of one scenario on a regular time grid (hours)."""
    twin = forecasting.twin_module()
    sc = req.scenario
    times_h = np.arange(0.0, req.horizon_h + 1e-9, req.step_h)
    if times_h.size > 2000:
        raise field_error("step_h", "at most 2000 time points (raise step_h or lower horizon_h)")
    t0 = time.perf_counter()
    try:
        reg = forecasting.make_regimen(sc.regimen.drug, sc.regimen.dose_mg,
                                       sc.regimen.interval_h, sc.regimen.start_h,
                                       sc.regimen.stop_h, sc.regimen.missed_doses)
        scenario = forecasting.make_scenario(sc.age_years, sc.renal_function, sc.glucose,
                                             sc.infected, sc.infection_onset_h, reg)
        result = twin.simulate(scenario, times_h)
    except ValueError as exc:
        raise _twin_error(exc) from exc
    seconds = time.perf_counter() - t0
    units = getattr(twin, "ENDPOINTS", {})
    endpoints = {}
    for name, tensor in result.endpoints.items():
        values = tensor.detach().cpu().numpy()[0]
        endpoints[name] = {"unit": units.get(name, ""),
                           "values": [float(v) for v in np.nan_to_num(values)]}
    _audit_run("simulate", None, getattr(twin, "__version__", "twin"), None,
               _digest(req.model_dump()), req.horizon_h, None, actor, seconds)
    return {"times_h": [float(t) for t in result.times_h], "endpoints": endpoints}


def model_info() -> dict:
    """Version, engines and evaluation metrics of the loaded model bundle."""
    f = forecasting.get_forecaster()
    return {"model_version": str(f.version), "engines": list(f.engines),
            "default_engine": str(f.default_engine),
            "metrics": json.loads(json.dumps(f.metrics, default=float)),
            "model_uri": current_app.config["MODEL_URI"]}


# --- audit ------------------------------------------------------------------------------------


class _AuditQueue:
    """Reads are appended in batches (every FLUSH_S or BATCH rows) from a per-process thread,
    so a cached forecast costs no database write; writes are audited synchronously."""

    FLUSH_S = 0.5
    BATCH = 500

    def __init__(self, engine) -> None:
        self.lock = threading.Lock()
        self.rows: list[dict] = []
        self.pid = 0
        self.engine = engine

    def add(self, row: dict) -> None:
        with self.lock:
            self.rows.append(row)
            full = len(self.rows) >= self.BATCH
            if self.pid != os.getpid():  # first use in this (forked) process
                self.pid = os.getpid()
                threading.Thread(target=self._loop, daemon=True, name="audit").start()
                atexit.register(self.flush)
        if full:
            self.flush()

    def _loop(self) -> None:
        while True:
            time.sleep(self.FLUSH_S)
            try:
                self.flush()
            except Exception:
                logging.getLogger("app.audit").exception("audit flush failed")

    def flush(self) -> None:
        with self.lock:
            rows, self.rows, engine = self.rows, [], self.engine
        if rows and engine is not None:
            with engine.begin() as conn:
                conn.execute(insert(AuditEvent), rows)


def _audit_queue() -> _AuditQueue:
    ext = current_app.extensions
    queue = ext.get("audit_queue")
    if queue is None:
        queue = ext.setdefault("audit_queue", _AuditQueue(db.get_engine()))
    return queue


def audit(actor: str | None, method: str, path: str, patient_id: str | None,
          status: int) -> None:
    """Record one request in the audit log (writes at once, reads in the next batch)."""
    action = "read" if method in {"GET", "HEAD", "OPTIONS"} else "write"
    row = {"time": datetime.now(UTC), "actor": actor, "action": action, "method": method,
           "path": path[:256], "patient_id": patient_id, "status": status}
    if action == "read":
        _audit_queue().add(row)
        return
    with db.get_engine().begin() as conn:
        conn.execute(insert(AuditEvent).values(**row))


def flush_audit() -> None:
    """Write pending audit rows of the current app now (tests, shutdown)."""
    _audit_queue().flush()
