"""The app's only door to the twin: load the forecaster, build scenarios, convert results.

Wall-clock datetimes map to twin hours by ``hours(origin, t)``; ``origin`` is the earliest of the
patient's first observation, regimen start and infection onset (so every twin time is >= 0).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np
from flask import Flask, current_app

import twin
from app.codes import CODES
from app.errors import ApiError, field_error
from app.schemas import ForecastOut
from twin.errors import TwinError


class ModelUnavailable(ApiError):
    """The forecaster (model bundle) cannot be used: a 503."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "Model unavailable", detail)


def twin_problem(exc: TwinError) -> ApiError:
    """A twin error (ScenarioError, ObservationError, ...) as a 422 naming its field."""
    return field_error(exc.field, exc.message)


@contextmanager
def twin_errors() -> Iterator[None]:
    """Turn the twin's typed errors raised inside the block into 422 problems."""
    try:
        yield
    except TwinError as exc:
        raise twin_problem(exc) from exc


class _ForecasterHolder:
    """Loads the forecaster once per process; a failure is remembered for 30 s."""

    RETRY_S = 30.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forecaster = None
        self.error: str | None = None
        self.failed_at = 0.0

    def get(self, uri: str):
        if self.forecaster is not None:
            return self.forecaster
        with self.lock:
            if self.forecaster is not None:
                return self.forecaster
            if self.error and time.monotonic() - self.failed_at < self.RETRY_S:
                raise ModelUnavailable(self.error)
            try:
                self.forecaster = twin.load_forecaster(uri)
            except Exception as exc:  # BundleError, missing file, S3 errors
                current_app.logger.warning("model bundle not loaded",
                                           extra={"model_uri": uri, "error": str(exc)})
                # the client sees no server path and no exception text (they are logged)
                self._fail("the model bundle could not be loaded; an operator must check "
                           "MODEL_URI (see the service log)")
            self.error = None
            return self.forecaster

    def _fail(self, message: str):
        self.error, self.failed_at = message, time.monotonic()
        raise ModelUnavailable(message)


def get_forecaster():
    """The process-wide forecaster of the current app (503 problem if unavailable)."""
    holder: _ForecasterHolder = current_app.extensions["forecaster"]
    return holder.get(current_app.config["MODEL_URI"])


def hours(origin: datetime, t: datetime) -> float:
    """Twin hours from ``origin`` to ``t``."""
    return (t - origin).total_seconds() / 3600.0


def at(origin: datetime, h: float) -> datetime:
    """Wall-clock time of twin hour ``h``."""
    return origin + timedelta(hours=float(h))


def make_regimen(drug: str, dose_mg: float, interval_h: float, start_h: float,
                 stop_h: float | None, missed_doses: Sequence[int] = (), then=None):
    """A ``twin.Regimen`` (ScenarioError becomes a 422 naming the field); ``then`` a change
    of regimen taking over at its own start."""
    return twin.Regimen(drug=drug, dose_mg=float(dose_mg), interval_h=float(interval_h),
                        start_h=float(start_h), stop_h=None if stop_h is None else float(stop_h),
                        missed_doses=tuple(missed_doses), then=then)


def make_scenario(age_years: float, renal_function: str, glucose: float | str,
                  infected: bool, infection_onset_h: float, regimen):
    """A ``twin.Scenario``."""
    return twin.Scenario(age_years=float(age_years), renal_function=renal_function,
                         glucose=glucose, infected=bool(infected),
                         infection_onset_h=float(infection_onset_h), regimen=regimen)


def forecast_to_dict(fc, origin: datetime, horizon_h: float, patient_id: str | None) -> dict:
    """A twin ``Forecast`` as our JSON (times as ISO 8601 and as twin hours)."""
    endpoints = {}
    for name, ef in fc.endpoints.items():
        times_h = [float(t) for t in ef.times_h]
        endpoints[name] = {
            "unit": CODES[name].unit if name in CODES else ef.unit,  # UCUM, as observations
            "times": [at(origin, t) for t in times_h],
            "times_h": times_h,
            "median": [float(v) for v in ef.median],
            "lower": [float(v) for v in ef.lower],
            "upper": [float(v) for v in ef.upper],
        }
    return ForecastOut.model_validate({
        "patient_id": patient_id, "model_version": str(fc.model_version),
        "engine": str(fc.engine), "coverage": float(fc.coverage),
        "horizon_h": float(horizon_h), "origin": origin, "now": at(origin, fc.now_h),
        "endpoints": endpoints}).model_dump(mode="json")


def make_observation(time_h: float, code: str, value: float):
    """A ``twin.Observation`` at twin hour ``time_h``."""
    return twin.Observation(time_h=time_h, endpoint=code, value=value)


def twin_version() -> str:
    """The version of the twin library (stateless simulations are logged with it)."""
    return str(twin.__version__)


def simulate(scenario, times_h) -> dict:
    """``twin.simulate`` on ``times_h`` as JSON-ready ``{times_h, endpoints: {unit, values}}``."""
    result = twin.simulate(scenario, times_h)
    endpoints = {}
    for name, tensor in result.endpoints.items():
        values = tensor.detach().cpu().numpy()[0]
        endpoints[name] = {"unit": twin.ENDPOINTS.get(name, ""),
                           "values": [float(v) for v in np.nan_to_num(values)]}
    return {"times_h": [float(t) for t in result.times_h], "endpoints": endpoints}


def pressure_waveform(sbp_mmhg: float, dbp_mmhg: float, hr_bpm: float) -> dict:
    """A few beats of arterial pressure with these systolic/diastolic pressures and rate."""
    with twin_errors():
        return twin.pressure_waveform(sbp_mmhg, dbp_mmhg, hr_bpm)


def init_app(app: Flask) -> None:
    """Attach the per-process forecaster holder."""
    app.extensions["forecaster"] = _ForecasterHolder()
