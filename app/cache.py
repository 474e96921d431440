"""Result caches: the per-process LRU and the forecast cache shared by workers (database).

Every cached result (forecast dict, its JSON body, a rendered plot) is keyed by ``key``:
(kind, patient, data version, model version, horizon, coverage, engine, issue hour, extras).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from app import db
from app.models import ForecastCache, utcnow
from app.observability import METRICS


def hour_floor(t: datetime) -> datetime:
    """``t`` rounded down to the hour (a forecast is issued, and cached, per hour)."""
    return t.replace(minute=0, second=0, microsecond=0)


def key(kind: str, patient_id: str, version: int, model_version: Any, horizon_h: float,
        coverage: float, engine: str | None, hour: datetime, *extra: Hashable) -> tuple:
    """The one cache key of a patient's forecast-derived result."""
    return (kind, patient_id, version, model_version, float(horizon_h), float(coverage),
            engine, hour, *extra)


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

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, bool]:
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


def results() -> LRUCache:
    """This process's cache of forecasts and forecast bodies."""
    return current_app.extensions["result_cache"]


def plots() -> LRUCache:
    """This process's cache of rendered plots."""
    return current_app.extensions["plot_cache"]


# --- the shared (database) forecast cache -----------------------------------------------------

#: shared cache rows older than this are deleted (the key includes the issue hour)
SHARED_CACHE_TTL = timedelta(hours=3)
#: a worker computing a forecast leaves this (empty) body as its claim; the others wait for it
CLAIM = ""
#: how long a worker waits for another's claimed computation before computing it itself (s)
CLAIM_WAIT_S = 15.0
CLAIM_POLL_S = 0.02


def shared_digest(key: tuple) -> str:
    """The shared (database) cache's row key of a result-cache key."""
    return hashlib.sha256(repr(key).encode()).hexdigest()


def shared_or_compute(key: tuple, patient_id: str, compute: Callable[[], dict]) -> dict:
    """The forecast from the shared (database) cache, else computed and stored there.

    Workers do not compute one forecast twice: the first to miss inserts an empty claim row,
    computes, then fills it in; the others poll for the body (up to CLAIM_WAIT_S, after which
    they compute it themselves, e.g. when the claimer died)."""
    digest = shared_digest(key)
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
            _insert_row(conn, digest, patient_id, json.dumps(result))
    return result


def _claim(engine, digest: str, patient_id: str) -> bool:
    """Insert the claim row (pruning old rows); False if another worker was first."""
    try:
        with engine.begin() as conn:
            conn.execute(delete(ForecastCache)
                         .where(ForecastCache.created_at < utcnow() - SHARED_CACHE_TTL))
            _insert_row(conn, digest, patient_id, CLAIM)
        return True
    except IntegrityError:
        return False


def _insert_row(conn, digest: str, patient_id: str, body: str) -> None:
    conn.execute(insert(ForecastCache).values(key_sha256=digest, patient_id=patient_id,
                                              body=body, created_at=utcnow()))


def init_app(app: Flask) -> None:
    """Attach this process's result caches (CACHE_SIZE entries each)."""
    app.extensions["result_cache"] = LRUCache(app.config["CACHE_SIZE"])
    app.extensions["plot_cache"] = LRUCache(app.config["CACHE_SIZE"])
