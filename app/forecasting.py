"""The app's only door to the twin: load the forecaster, build scenarios, convert results.

Wall-clock datetimes map to twin hours by ``hours(origin, t)``; ``origin`` is the earliest of the
patient's first observation, regimen start and infection onset (so every twin time is >= 0).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from app.codes import CODES
from app.errors import ApiError


class ModelUnavailable(ApiError):
    """The forecaster (model bundle) cannot be used: a 503."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "Model unavailable", detail)


def twin_module():
    """The ``twin`` package, or ModelUnavailable if its public API is not there."""
    try:
        import twin
    except ImportError as exc:  # pragma: no cover - twin is part of this repo
        raise ModelUnavailable(f"twin package missing: {exc}") from exc
    for name in ("Scenario", "Regimen", "simulate"):
        if not hasattr(twin, name):
            raise ModelUnavailable(f"twin.{name} is not available in this build")
    return twin


def twin_attr(name: str, fallback_module: str):
    """``twin.<name>`` (the contract), else the same name from ``fallback_module``."""
    twin = twin_module()
    if hasattr(twin, name):
        return getattr(twin, name)
    try:
        return getattr(importlib.import_module(fallback_module), name)
    except (ImportError, AttributeError):
        raise ModelUnavailable(f"twin.{name} is not available in this build") from None


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
            load = twin_attr("load_forecaster", "twin.forecast.forecaster")
            try:
                self.forecaster = load(uri)
            except Exception as exc:  # BundleError, missing file, S3 errors
                current_app.logger.warning("model bundle not loaded",
                                           extra={"model_uri": uri, "error": str(exc)})
                self._fail(f"model bundle {uri!r} could not be loaded: {exc}")
            self.error = None
            return self.forecaster

    def _fail(self, message: str):
        self.error, self.failed_at = message, time.monotonic()
        raise ModelUnavailable(message)


def get_forecaster():
    """The process-wide forecaster of the current app (503 problem if unavailable)."""
    holder: _ForecasterHolder = current_app.extensions["forecaster"]
    return holder.get(current_app.config["MODEL_URI"])


def model_loaded(app: Flask) -> bool:
    """True when this process has a forecaster in memory."""
    return app.extensions["forecaster"].forecaster is not None


class LRUCache:
    """A small thread-safe LRU of computed results (forecast dicts, rendered plots)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.data: OrderedDict[Hashable, Any] = OrderedDict()
        self.inflight: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def get_or_compute(self, key: Hashable, compute) -> tuple[Any, bool]:
        """(value, was_cached); concurrent callers of one key wait for a single computation."""
        value = self.get(key)
        if value is not None:
            return value, True
        with self.lock:
            key_lock = self.inflight.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key)
            if value is not None:
                return value, True
            try:
                value = compute()
                self.put(key, value)
            finally:
                with self.lock:
                    self.inflight.pop(key, None)
        return value, False

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


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
    twin = twin_module()
    return twin.Regimen(drug=drug, dose_mg=float(dose_mg), interval_h=float(interval_h),
                        start_h=float(start_h), stop_h=None if stop_h is None else float(stop_h),
                        missed_doses=tuple(missed_doses), then=then)


def make_scenario(age_years: float, renal_function: str, glucose: float | str,
                  infected: bool, infection_onset_h: float, regimen):
    """A ``twin.Scenario``."""
    twin = twin_module()
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
            "times": [at(origin, t).isoformat() for t in times_h],
            "times_h": times_h,
            "median": [float(v) for v in ef.median],
            "lower": [float(v) for v in ef.lower],
            "upper": [float(v) for v in ef.upper],
        }
    return {"patient_id": patient_id, "model_version": str(fc.model_version),
            "engine": str(fc.engine), "coverage": float(fc.coverage),
            "horizon_h": float(horizon_h), "origin": origin.isoformat(),
            "now": at(origin, fc.now_h).isoformat(), "endpoints": endpoints}


def init_app(app: Flask) -> None:
    """Attach the per-process forecaster holder and result caches."""
    app.extensions["forecaster"] = _ForecasterHolder()
    app.extensions["result_cache"] = LRUCache(app.config["CACHE_SIZE"])
    app.extensions["plot_cache"] = LRUCache(app.config["CACHE_SIZE"])
