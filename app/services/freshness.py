"""Plots that are never stale (issue 14, item 1).

A plot's bytes depend on the patient's data version, the model version, the hour the forecast
is issued in (one per hour), the plot's own arguments and the plotting code. Pages put the
first three and the code's digest in the ``<img>`` URL as ``v`` (``plot_version``): a new
reading or regimen changes the URL, so the image is new on the next page view, and a URL
whose ``v`` is current is served ``immutable`` for a year. Every plot also carries an ETag of
all the inputs (``etag``); without a current ``v`` it is ``no-cache``, so a browser
revalidates each time and gets a 304 only while nothing changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from app import cache, forecasting
from app.models import utcnow
from app.services.patients import patient_version

IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
#: the plotting code's digest: a changed drawing (a deploy) changes every URL and ETag
CODE = hashlib.sha256((Path(__file__).resolve().parents[1] / "plots.py").read_bytes()
                      ).hexdigest()[:12]


def plot_version(patient_id: str) -> str:
    """The ``v`` of the patient's plot URLs now: ``data.model.issue-hour.code``."""
    try:
        model = str(forecasting.get_forecaster().version)
    except Exception:  # no model bundle: the plot itself answers 503
        model = "none"
    hour = cache.hour_floor(utcnow())
    return f"{patient_version(patient_id)}.{model}.{hour:%Y%m%d%H}.{CODE[:6]}"


def etag(*inputs: object) -> str:
    """A strong validator of a plot made from ``inputs`` (a cache key, the arguments)."""
    return hashlib.sha256(repr((inputs, CODE)).encode()).hexdigest()[:32]


def cache_control(patient_id: str, v: str | None) -> str:
    """``immutable`` when the URL's ``v`` is the current one, else ``no-cache``."""
    return IMMUTABLE if v and v == plot_version(patient_id) else REVALIDATE
