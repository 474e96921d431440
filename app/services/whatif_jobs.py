"""What-ifs computed in the background, shared by every worker (issue 14, item 8).

A what-if runs two personalised forecasts (about a second or more): the what-if form post
queues it here and answers at once; the result lands in the shared forecast cache (database)
under the what-if's key, so whichever worker serves the page's next poll finds it. Without
the background warm-up (PREWARM_FORECASTS off) it is computed on the request path instead.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC

from flask import Flask, current_app

from app import cache, threads
from app.errors import ApiError
from app.schemas import RegimenIn
from app.services.forecasts import forecast_key, load_for_forecast, what_if
from app.services.last_forecast import background, digest_of, shared_forecast
from app.services.timeline import check_regimen_start

log = logging.getLogger("app.whatif")

HORIZON_H = 72.0
COVERAGE = 0.9


def whatif_key(patient_id: str, regimen: RegimenIn) -> tuple:
    """The what-if's cache key: data and model version, issue hour, the proposed regimen."""
    times = [t.astimezone(UTC).isoformat() if t else None
             for t in (regimen.start, regimen.stop)]  # one repr whatever parsed them
    key, _ = forecast_key(patient_id, HORIZON_H, COVERAGE, None, "whatif", regimen.drug,
                          float(regimen.dose_mg), float(regimen.interval_h), *times)
    return key


class WhatIfJobs:
    """One background thread per worker process (made after gunicorn's fork); a what-if
    queued twice runs once."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.pending: set[str] = set()
        self.errors: dict[str, str] = {}
        self.pid = 0
        self.executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self.executor is None or self.pid != os.getpid():
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="whatif",
                                               initializer=threads.lower_priority)
            self.pid, self.pending = os.getpid(), set()
        return self.executor

    def submit(self, patient_id: str, regimen: RegimenIn, key: tuple,
               actor: str | None) -> Future | None:
        digest = digest_of(key)
        with self.lock:
            if digest in self.pending:
                return None
            self.pending.add(digest)
            self.errors.pop(digest, None)
            return self._pool().submit(self._run, patient_id, regimen, key, actor)

    def _run(self, patient_id: str, regimen: RegimenIn, key: tuple, actor: str | None) -> None:
        digest = digest_of(key)
        with self.app.app_context():
            try:
                cache.shared_or_compute(key, patient_id, lambda: what_if(
                    patient_id, regimen, HORIZON_H, COVERAGE, actor))
            except ApiError as exc:
                self.errors[digest] = exc.detail
            except Exception:
                log.exception("what-if failed", extra={"patient_id": patient_id})
                self.errors[digest] = "The what-if could not be computed."
            finally:
                with self.lock:
                    self.pending.discard(digest)


def _jobs() -> WhatIfJobs:
    app = current_app._get_current_object()
    jobs = app.extensions.get("whatif_jobs")
    if jobs is None:
        jobs = app.extensions.setdefault("whatif_jobs", WhatIfJobs(app))
    return jobs


def request_whatif(patient_id: str, regimen: RegimenIn,
                   actor: str | None) -> tuple[dict | None, str | None]:
    """(result, error): the stored what-if, else (None, None) with it queued; computed here
    when there is no background work. ``error`` is a failed background run's message."""
    key = whatif_key(patient_id, regimen)
    digest = digest_of(key)
    found = cache.results().get(key) or shared_forecast(patient_id, digest)
    if found is not None:
        return found, None
    check_regimen_start(regimen, "regimen.start")  # what what_if refuses, refused now
    load_for_forecast(patient_id)
    if not background():
        result = cache.shared_or_compute(key, patient_id, lambda: what_if(
            patient_id, regimen, HORIZON_H, COVERAGE, actor))
        cache.results().put(key, result)
        return result, None
    jobs = _jobs()
    error = jobs.errors.get(digest)
    if error is not None and digest not in jobs.pending:
        return None, error
    jobs.submit(patient_id, regimen, key, actor)
    return None, None


def stored_whatif(patient_id: str, regimen: RegimenIn) -> dict | None:
    """The what-if if a cache holds it (never computed)."""
    key = whatif_key(patient_id, regimen)
    return cache.results().get(key) or shared_forecast(patient_id, digest_of(key))
