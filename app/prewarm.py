"""Forecasts computed when a patient's data change, not when a clinician first looks.

A personalised forecast fits the patient's parameters (about half a second); doing that on
the write path's heels, in a background thread of the worker that took the write, means the
patient page and the API usually find the forecast (shared database cache) and the default
plots (this worker's cache) ready. A failed warm-up only logs: the request path computes the
same thing itself when it needs it.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask

from app import plots, services, signals, threads
from app.errors import ApiError
from app.services import freshness, last_forecast

log = logging.getLogger("app.prewarm")

#: (horizon_h, coverage) forecasts and plot panels the pages ask for by default
FORECASTS = ((72.0, 0.9), (24.0, 0.9))
PANELS = ("bp", "ras", "drug")


class Prewarmer:
    """One background thread per worker process (made lazily: threads do not survive the
    fork of gunicorn's preloading master); a patient queued twice is warmed once."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.pending: set[str] = set()
        self.pid = 0
        self.executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self.executor is None or self.pid != os.getpid():
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="prewarm",
                                               initializer=threads.lower_priority)
            self.pid, self.pending = os.getpid(), set()
        return self.executor

    def schedule(self, patient_id: str) -> Future | None:
        """Queue a warm-up of ``patient_id``'s forecasts and plots; None if already queued."""
        with self.lock:
            if patient_id in self.pending:
                return None
            self.pending.add(patient_id)
            return self._pool().submit(self._run, patient_id)

    def _run(self, patient_id: str) -> None:
        with self.lock:
            self.pending.discard(patient_id)
        with self.app.app_context():
            try:
                for horizon_h, coverage in FORECASTS:
                    fc = services.forecast(patient_id, horizon_h, coverage, None, "prewarm")
                    if horizon_h == FORECASTS[0][0]:  # the longest: any rule's horizon
                        signals.forecast_ready.send(self.app, patient_id=patient_id,
                                                    forecast=fc)
                key, _ = services.forecast_key(patient_id, 72.0, 0.9, None)
                for panel in PANELS:
                    png, _ = plots.forecast_plot(patient_id, "png", panel, 72.0, 0.9, None,
                                                 "prewarm")
                    # shared, for the page that shows this forecast once it is superseded
                    last_forecast.store_plot(patient_id, last_forecast.digest_of(key), panel,
                                             freshness.CODE, png)
            except ApiError as exc:  # no recent observation, no model: nothing to warm
                log.info("prewarm skipped", extra={"patient_id": patient_id,
                                                   "detail": exc.detail})
            except Exception:  # the app context's teardown still closes the session
                log.exception("prewarm failed", extra={"patient_id": patient_id})


def _on_patient_changed(app: Flask, patient_id: str, **_extra) -> None:
    """``signals.patient_changed`` receiver: warm the patient if the app enables it."""
    warmer: Prewarmer | None = app.extensions.get("prewarm")
    if warmer is not None:
        warmer.schedule(patient_id)


def init_app(app: Flask) -> None:
    """Warm forecasts after writes (PREWARM_FORECASTS) of this app."""
    if app.config.get("PREWARM_FORECASTS", True):
        app.extensions["prewarm"] = Prewarmer(app)
        signals.patient_changed.connect(_on_patient_changed, sender=app, weak=False)
