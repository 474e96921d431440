"""Forecasts, what-ifs and stateless simulations through the twin, cached and logged."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from typing import Any

import numpy as np
from flask import current_app

from app import cache, codes, forecasting
from app.errors import ApiError, field_error
from app.models import Observation, Patient, utcnow
from app.observability import METRICS
from app.schemas import RegimenIn, SimulateRequest
from app.services.audit import record_run
from app.services.patients import get_patient, list_observations, patient_version
from app.services.timeline import (
    LOOKBACK,
    changed_regimen,
    check_regimen_start,
    origin,
    scenario,
    twin_regimen,
)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def _run_forecast(p: Patient, obs: list[Observation], origin: datetime, now: datetime,
                  regimen, horizon_h: float, coverage: float, engine: str | None,
                  kind: str, actor: str | None, proposed=None) -> dict:
    """One forecast through the twin (its typed errors become 422); with ``proposed``, under
    ``regimen`` until the proposed regimen starts, then under it."""
    forecaster = forecasting.get_forecaster()
    engine = engine or current_app.config.get("FORECAST_ENGINE") or None
    now_h = forecasting.hours(origin, now)
    t0 = time.perf_counter()
    with forecasting.twin_errors():
        twin_obs = [forecasting.make_observation(forecasting.hours(origin, o.time), o.code,
                                                 o.value) for o in obs]
        reg = (twin_regimen(regimen, origin, now_h + horizon_h) if proposed is None
               else changed_regimen(regimen, proposed, origin, now_h + horizon_h))
        fc = forecaster.forecast(scenario(p, origin, reg), twin_obs, now_h=now_h,
                                 horizon_h=horizon_h, coverage=coverage, engine=engine)
    seconds = time.perf_counter() - t0
    digest = _digest(p.id, p.version, [(o.time, o.code, o.value) for o in obs], now_h,
                     repr(reg), horizon_h, coverage, engine)
    record_run(kind, p.id, str(fc.model_version), str(fc.engine), digest, horizon_h, coverage,
               actor, seconds)
    return forecasting.forecast_to_dict(fc, origin, horizon_h, p.id)


def _check_engine(engine: str | None) -> None:
    if engine is None:
        return
    forecaster = forecasting.get_forecaster()
    if engine not in tuple(forecaster.engines):
        raise field_error("engine", f"must be one of {list(forecaster.engines)}")


def forecast_key(patient_id: str, horizon_h: float, coverage: float, engine: str | None,
                 kind: str = "forecast", *extra) -> tuple[tuple, str | None]:
    """(cache key, engine) of a forecast-derived result; one cheap query for the data
    version. The engine is checked and defaults to FORECAST_ENGINE."""
    version = patient_version(patient_id)
    forecaster = forecasting.get_forecaster()
    _check_engine(engine)
    engine = engine or current_app.config.get("FORECAST_ENGINE") or None
    key = cache.key(kind, patient_id, version, forecaster.version, horizon_h, coverage, engine,
                    cache.hour_floor(utcnow()), *extra)
    return key, engine


def forecast(patient_id: str, horizon_h: float = 72, coverage: float = 0.9,
             engine: str | None = None, actor: str | None = None) -> dict:
    """The patient's forecast as JSON-ready dict, cached by data version and model version.

    The forecast is issued at ``max(this hour, last observation)`` so a cached result stays
    valid within the hour.
    """
    key, engine = forecast_key(patient_id, horizon_h, coverage, engine)
    result, cached = cache.results().get_or_compute(
        key, lambda: cache.shared_or_compute(
            key, patient_id,
            lambda: _compute_forecast(patient_id, horizon_h, coverage, engine, actor)))
    METRICS.count_cache("hit" if cached else "miss")
    return result


def forecast_body(patient_id: str, horizon_h: float = 72, coverage: float = 0.9,
                  engine: str | None = None, actor: str | None = None) -> bytes:
    """The forecast as the API's JSON body (bytes), itself cached: serialising is the
    dominant cost of a cached forecast request."""
    key, _ = forecast_key(patient_id, horizon_h, coverage, engine)
    results = cache.results()
    body = results.get((*key, "body"))
    if body is None:
        result = forecast(patient_id, horizon_h, coverage, engine, actor)
        body = json.dumps({k: v for k, v in result.items() if k != "observations"}).encode()
        results.put((*key, "body"), body)
    else:
        METRICS.count_cache("hit")
    return body


def load_for_forecast(patient_id: str) -> tuple[Patient, list[Observation], datetime]:
    """The patient, observations of the look-back window (time order) and the issue time."""
    p = get_patient(patient_id)
    now = utcnow()
    obs, _ = list_observations(patient_id, now - LOOKBACK, None, code_in=codes.TWIN_CODES)
    if not obs:
        raise ApiError(409, "No observations",
                       f"the forecast needs an observation from the last {LOOKBACK.days} days",
                       [{"field": "observations", "message": "none recent enough"}])
    return p, obs, max(cache.hour_floor(now), obs[-1].time)


def _compute_forecast(patient_id: str, horizon_h: float, coverage: float,
                      engine: str | None, actor: str | None) -> dict:
    p, obs, now = load_for_forecast(patient_id)
    t0 = origin(p, obs, now, [p.regimen])
    result = _run_forecast(p, obs, t0, now, p.regimen, horizon_h, coverage, engine,
                           "forecast", actor)
    result["observations"] = [{"time": o.time.isoformat(), "code": o.code, "value": o.value}
                              for o in obs]
    return result


def _summary(fc: dict) -> dict[str, float]:
    sbp = fc["endpoints"]["sbp_mmhg"]["median"]
    dbp = fc["endpoints"]["dbp_mmhg"]["median"]
    return {"sbp_mmhg_end": float(sbp[-1]), "dbp_mmhg_end": float(dbp[-1]),
            "sbp_mmhg_mean": float(np.mean(sbp))}


def what_if(patient_id: str, proposed: RegimenIn, horizon_h: float = 72,
            coverage: float = 0.9, actor: str | None = None) -> dict:
    """Forecasts under the current regimen and under ``proposed``, side by side."""
    forecasting.get_forecaster()
    check_regimen_start(proposed, "regimen.start")
    p, obs, now = load_for_forecast(patient_id)
    t0 = origin(p, obs, now, [p.regimen, proposed])
    current = _run_forecast(p, obs, t0, now, p.regimen, horizon_h, coverage, None,
                            "whatif", actor)
    new = _run_forecast(p, obs, t0, now, p.regimen, horizon_h, coverage, None, "whatif",
                        actor, proposed=proposed)
    return {"current": current, "proposed": new,
            "summary": {"current": _summary(current), "proposed": _summary(new)}}


def simulate(req: SimulateRequest, actor: str | None = None) -> dict:
    """A stateless simulation of one scenario on a regular time grid (hours)."""
    sc = req.scenario
    times_h = np.arange(0.0, req.horizon_h + 1e-9, req.step_h)
    if times_h.size > 2000:
        raise field_error("step_h", "at most 2000 time points (raise step_h or lower horizon_h)")
    t0 = time.perf_counter()
    with forecasting.twin_errors():
        reg = forecasting.make_regimen(sc.regimen.drug, sc.regimen.dose_mg,
                                       sc.regimen.interval_h, sc.regimen.start_h,
                                       sc.regimen.stop_h, sc.regimen.missed_doses)
        twin_scenario = forecasting.make_scenario(sc.age_years, sc.renal_function, sc.glucose,
                                                  sc.infected, sc.infection_onset_h, reg)
        result = forecasting.simulate(twin_scenario, times_h)
    seconds = time.perf_counter() - t0
    record_run("simulate", None, forecasting.twin_version(), None, _digest(req.model_dump()),
               req.horizon_h, None, actor, seconds)
    return result


def model_info() -> dict:
    """Version, engines and evaluation metrics of the loaded model bundle."""
    f = forecasting.get_forecaster()
    return {"model_version": str(f.version), "engines": list(f.engines),
            "default_engine": str(f.default_engine),
            "metrics": json.loads(json.dumps(f.metrics, default=float)),
            "model_uri": current_app.config["MODEL_URI"]}
