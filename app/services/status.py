"""A patient's ward status (``twin.monitoring.status.assess``) from the stored data.

``patient_status`` gathers, on one clock (hours; now = ``SERIES_WINDOW`` hours):

- the readings of the last ``SERIES_WINDOW`` (48 h) per code (``sbp_mmhg``, ``hr_bpm``, ...);
- the newest observation set (``app.services.news2``): its NEWS2 if complete, else the
  parameters it lacks, and its time;
- the forecast's 90 % interval for the next 24 h, as lead hours: the forecast passed in (it
  must have coverage 0.9), else a *cached* one (this worker's LRU, then the shared database
  cache) of the ward's (24 h) or the API's default (72 h) forecast at coverage 0.9. A
  forecast is never computed here: the ward must not run one per patient synchronously, and
  an uncached patient is assessed without the forecast rules (the warm-up fills the cache);
- the open alerts (``app.alerts.service.open_alerts``, when that package is present).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from app import cache, db
from app.alerts import service as alert_service
from app.errors import ApiError
from app.models import ForecastCache, utcnow
from app.services.forecasts import forecast_key
from app.services.news2 import latest_set
from app.services.patients import list_observations
from twin.monitoring import status as twin_status

#: readings of this window (before now) make the trend series
SERIES_WINDOW = timedelta(hours=48)
#: the forecast rules look this far ahead
FORECAST_AHEAD_H = 24.0
#: cached forecasts looked for, by horizon (the ward's 24 h, the API's default 72 h)
CACHED_HORIZONS_H = (24.0, 72.0)
COVERAGE = 0.9


def _hours(origin: datetime, t: datetime) -> float:
    return (t - origin).total_seconds() / 3600.0


def _forecast_loaded() -> bool:
    holder = current_app.extensions.get("forecaster")
    return getattr(holder, "forecaster", None) is not None


def cached_forecast(patient_id: str) -> dict | None:
    """A cached 90 % forecast of the patient (never computed here), or None."""
    if not _forecast_loaded():
        return None  # no model in this process yet: loading one is not the status' job
    for horizon in CACHED_HORIZONS_H:
        try:
            key, _ = forecast_key(patient_id, horizon, COVERAGE, None)
        except ApiError:
            return None
        found = cache.results().get(key)
        if found is None:  # the shared cache, keyed as cache.shared_or_compute keys it
            digest = cache.shared_digest(key)
            with db.get_engine().connect() as conn:
                body = conn.execute(select(ForecastCache.body)
                                    .where(ForecastCache.key_sha256 == digest)).scalar()
            found = json.loads(body) if body else None
        if found is not None:
            return found
    return None


def forecast_edges(fc: dict, now: datetime) -> dict[str, list[dict]]:
    """A forecast dict (``ForecastOut`` shape) as endpoint -> [{"h", "median", "lower",
    "upper"}], ``h`` hours ahead of ``now``, within FORECAST_AHEAD_H; {} if not 90 %."""
    if abs(float(fc.get("coverage", COVERAGE)) - COVERAGE) > 1e-6:
        return {}
    out: dict[str, list[dict]] = {}
    for name, ep in (fc.get("endpoints") or {}).items():
        rows = []
        for t, med, lo, hi in zip(ep["times"], ep["median"], ep["lower"], ep["upper"],
                                  strict=False):
            when = t if isinstance(t, datetime) else datetime.fromisoformat(
                str(t).replace("Z", "+00:00"))
            h = _hours(now, when)
            if 0 <= h <= FORECAST_AHEAD_H + 1e-9:
                rows.append({"h": h, "median": float(med), "lower": float(lo),
                             "upper": float(hi)})
        if rows:
            out[name] = rows
    return out


def _open_alerts(patient_id: str) -> list[tuple[str, str]]:
    """[(rule, level)] of the patient's open (raised or acknowledged) alerts."""
    return [(str(rule), str(level)) for rule, level in alert_service.open_alerts(patient_id)]


def patient_status(patient_id: str, *, forecast: dict | None = None) -> twin_status.Status:
    """The patient's status with its reasons (see the module docstring for the inputs)."""
    now = utcnow()
    origin = now - SERIES_WINDOW
    now_h = _hours(origin, now)
    rows, _ = list_observations(patient_id, origin, None)
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        series.setdefault(r.code, []).append((_hours(origin, r.time), float(r.value)))
    latest = latest_set(patient_id, now)
    kw: dict[str, Any] = {}
    if latest is not None:
        kw["last_set_h"] = _hours(origin, latest["time"])
        if latest["_news2"] is not None:
            kw["news2"] = latest["_news2"]
        else:
            kw["news2_missing"] = tuple(latest["missing"])
            kw["news2_partial"] = dict(latest["components"])
    fc = forecast if forecast is not None else cached_forecast(patient_id)
    edges = forecast_edges(fc, now) if fc else {}
    return twin_status.assess(now_h=now_h, series=series, forecast=edges or None,
                              open_alerts=_open_alerts(patient_id), **kw)


def status_dict(patient_id: str, *, forecast: dict | None = None) -> dict:
    """``patient_status(...).as_dict()``: ``{"level", "reasons": [...]}``."""
    return patient_status(patient_id, forecast=forecast).as_dict()
