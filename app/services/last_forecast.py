"""The patient's last forecast, found without computing one (pages never wait for a fit).

A page asks :func:`last_forecast`: the current forecast (this data version, model version and
issue hour) when a cache holds it, else the newest one the shared cache still holds for the
same horizon and coverage (an older data version or hour, shown with its age and marked
"updating"), else None. A forecast that is not current is queued for the background warm-up
(``app.prewarm``) so the live update can replace it shortly.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app import cache, db
from app.errors import ApiError
from app.models import ForecastCache, utcnow
from app.services.forecasts import forecast_key

#: newest shared rows of the patient looked at for an older forecast
SCAN_ROWS = 24
#: how a stored plot's row body begins (``store_plot``); such rows are no forecast
PLOT_PREFIX = '{"png_base64"'


@dataclass(frozen=True)
class LastForecast:
    """A forecast dict, whether it is current, and the shared-cache row that holds it."""

    forecast: dict
    current: bool
    digest: str | None
    computed_at: datetime | None

    @property
    def issued(self) -> datetime:
        """The forecast's issue time (UTC)."""
        return datetime.fromisoformat(self.forecast["now"])


#: the shared-cache row key of a result-cache key
digest_of = cache.shared_digest


def _row(digest: str) -> tuple[dict, datetime] | None:
    with db.get_engine().connect() as conn:
        row = conn.execute(select(ForecastCache.body, ForecastCache.created_at)
                           .where(ForecastCache.key_sha256 == digest)).first()
    return (json.loads(row.body), row.created_at) if row and row.body else None


def _matches(fc: dict, horizon_h: float, coverage: float) -> bool:
    return (abs(float(fc.get("horizon_h", -1)) - horizon_h) < 1e-9
            and abs(float(fc.get("coverage", -1)) - coverage) < 1e-9
            and "endpoints" in fc)


def _older(patient_id: str, horizon_h: float, coverage: float) -> LastForecast | None:
    """The newest complete shared row of the patient with this horizon and coverage."""
    with db.get_engine().connect() as conn:
        rows = conn.execute(select(ForecastCache.key_sha256, ForecastCache.body,
                                   ForecastCache.created_at)
                            .where(ForecastCache.patient_id == patient_id,
                                   ForecastCache.body != cache.CLAIM,
                                   ~ForecastCache.body.startswith(PLOT_PREFIX))
                            .order_by(ForecastCache.created_at.desc()).limit(SCAN_ROWS)).all()
    for row in rows:
        try:
            fc = json.loads(row.body)
        except ValueError:
            continue
        if isinstance(fc, dict) and _matches(fc, horizon_h, coverage):
            return LastForecast(fc, False, row.key_sha256, row.created_at)
    return None


def last_forecast(patient_id: str, horizon_h: float = 72.0,
                  coverage: float = 0.9) -> LastForecast | None:
    """The current forecast if cached, else the newest older one, else None; never computes.
    A forecast that is not current is queued for the warm-up."""
    try:
        key, _ = forecast_key(patient_id, horizon_h, coverage, None)
    except ApiError:
        return None
    digest = digest_of(key)
    found = cache.results().get(key)
    if found is not None:
        return LastForecast(found, True, digest, None)
    row = _row(digest)
    if row is not None:
        cache.results().put(key, row[0])
        return LastForecast(row[0], True, digest, row[1])
    schedule_warmup(patient_id)
    return _older(patient_id, horizon_h, coverage)


def shared_forecast(patient_id: str, digest: str) -> dict | None:
    """The forecast the shared cache holds under ``digest`` for this patient, or None."""
    with db.get_engine().connect() as conn:
        body = conn.execute(select(ForecastCache.body)
                            .where(ForecastCache.key_sha256 == digest,
                                   ForecastCache.patient_id == patient_id)).scalar()
    return json.loads(body) if body else None


def _plot_digest(digest: str, panel: str, code: str) -> str:
    return hashlib.sha256(f"plot:{digest}:{panel}:{code}".encode()).hexdigest()


def store_plot(patient_id: str, digest: str, panel: str, code: str, png: bytes) -> None:
    """Keep a rendered PNG of the forecast stored under ``digest`` in the shared cache, so
    any worker can serve it once the forecast is no longer current (``code``: the plotting
    code's digest). A row that is there already is left alone."""
    body = json.dumps({"png_base64": base64.b64encode(png).decode()})
    try:
        with db.get_engine().begin() as conn:
            conn.execute(insert(ForecastCache).values(
                key_sha256=_plot_digest(digest, panel, code), patient_id=patient_id,
                body=body, created_at=utcnow()))
    except IntegrityError:
        pass


def stored_plot(patient_id: str, digest: str, panel: str, code: str) -> bytes | None:
    """The PNG ``store_plot`` kept, or None."""
    with db.get_engine().connect() as conn:
        body = conn.execute(select(ForecastCache.body).where(
            ForecastCache.key_sha256 == _plot_digest(digest, panel, code),
            ForecastCache.patient_id == patient_id)).scalar()
    return base64.b64decode(json.loads(body)["png_base64"]) if body else None


def schedule_warmup(patient_id: str) -> bool:
    """Queue the patient's forecasts for the background warm-up; False without one."""
    warmer = current_app.extensions.get("prewarm")
    if warmer is None:
        return False
    warmer.schedule(patient_id)
    return True


def background() -> bool:
    """Whether forecasts are computed in the background (PREWARM_FORECASTS): if not, the
    pages compute them on the request path, as they must then."""
    return current_app.extensions.get("prewarm") is not None
