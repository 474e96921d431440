"""JSON logs to stdout, Prometheus-format metrics and security headers.

Logs never carry request values (docs/maintenance.md): a traceback is logged as the
exception types and frames only, never ``str(exc)`` (which may quote an observation value or
the parameters of an SQL statement); rejected requests are logged by ``app.errors`` with
field names and kinds of error only. Responses carry ``Cache-Control: no-store`` unless the
view chose its own caching (the versioned, private plot images)."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from collections import defaultdict
from pathlib import Path

from flask import Flask, Response, g, request

_STD_ATTRS = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message"}


def scrubbed_traceback(exc: BaseException) -> str:
    """``exc``'s traceback (and its causes') with the frames (file, line, function) and
    exception types but without the messages, which may embed values (an observation, SQL
    parameters), and without source lines."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    parts = []
    for e in reversed(chain):
        frames = "".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                         for f in traceback.extract_tb(e.__traceback__, limit=None))
        name = f"{type(e).__module__}.{type(e).__qualname__}".removeprefix("builtins.")
        parts.append(f"Traceback (most recent call last):\n{frames}{name}: "
                     "(message not logged)\n")
    return "\nDuring handling, or as a cause of it:\n\n".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields; an
    exception as its type and scrubbed traceback (``scrubbed_traceback``)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
               "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
        if record.exc_info and record.exc_info[1] is not None:
            out["exc_type"] = type(record.exc_info[1]).__name__
            out["exc"] = scrubbed_traceback(record.exc_info[1])
        return json.dumps(out)


def setup_logging(level: str) -> None:
    """Route the root logger to stdout as JSON (idempotent)."""
    root = logging.getLogger()
    if not any(getattr(h, "_twin_json", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._twin_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # migrations log every step at INFO; keep them for DEBUG
    logging.getLogger("alembic").setLevel(level if level == "DEBUG" else "WARNING")


BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """A Prometheus histogram with fixed buckets (seconds), keyed by a label tuple."""

    def __init__(self) -> None:
        self.counts: dict[tuple, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS_S) + 1))
        self.sums: dict[tuple, float] = defaultdict(float)

    def observe(self, labels: tuple, seconds: float) -> None:
        row = self.counts[labels]
        for i, bound in enumerate(BUCKETS_S):
            if seconds <= bound:
                row[i] += 1
        row[-1] += 1
        self.sums[labels] += seconds

    def to_dict(self) -> dict:
        return {"\x1f".join(k): [row, self.sums[k]] for k, row in self.counts.items()}

    def add(self, data: dict) -> None:
        """Add another process's ``to_dict`` to this one."""
        for key, (row, total) in data.items():
            labels = tuple(key.split("\x1f"))
            mine = self.counts[labels]
            for i, n in enumerate(row):
                mine[i] += n
            self.sums[labels] += total

    def render(self, name: str, label_names: tuple[str, ...]) -> list[str]:
        lines = [f"# TYPE {name} histogram"]
        for labels, row in sorted(self.counts.items()):
            base = ",".join(f'{k}="{v}"' for k, v in zip(label_names, labels, strict=True))
            sep = "," if base else ""
            for bound, count in zip(BUCKETS_S, row, strict=False):
                lines.append(f'{name}_bucket{{{base}{sep}le="{bound}"}} {count}')
            lines.append(f'{name}_bucket{{{base}{sep}le="+Inf"}} {row[-1]}')
            lines.append(f"{name}_sum{{{base}}} {self.sums[labels]:.6f}")
            lines.append(f"{name}_count{{{base}}} {row[-1]}")
        return lines


class Metrics:
    """Request and forecast latency/counts of this worker process.

    With ``METRICS_DIR`` set (gunicorn_conf sets it in the master), each worker also keeps a
    snapshot of its totals there (``<pid>.json``, at most every SNAPSHOT_EVERY_S seconds and
    at every scrape), and ``render_all`` serves the sum over every worker that ever ran, so a
    scrape that lands on any worker sees the whole server's counters."""

    SNAPSHOT_EVERY_S = 1.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = Histogram()
        self.forecasts = Histogram()
        self.cache = defaultdict(int)
        self.saved_at = 0.0
        self.trailing_pid = 0  # the process with a trailing snapshot pending

    def to_dict(self) -> dict:
        with self.lock:
            return {"requests": self.requests.to_dict(), "forecasts": self.forecasts.to_dict(),
                    "cache": dict(self.cache)}

    def add(self, data: dict) -> None:
        with self.lock:
            self.requests.add(data["requests"])
            self.forecasts.add(data["forecasts"])
            for outcome, n in data["cache"].items():
                self.cache[outcome] += n

    def save(self, directory: str | None, force: bool = False) -> None:
        """Write this process's snapshot (atomically) if due, else make sure one follows
        within SNAPSHOT_EVERY_S (so the last requests before a quiet spell are counted)."""
        if not directory:
            return
        now = time.monotonic()
        if not force and now - self.saved_at < self.SNAPSHOT_EVERY_S:
            with self.lock:  # (a timer inherited through fork does not run: pid check)
                if self.trailing_pid != os.getpid():
                    timer = threading.Timer(self.SNAPSHOT_EVERY_S, self._trailing_save,
                                            (directory,))
                    timer.daemon = True
                    self.trailing_pid = os.getpid()
                    timer.start()
            return
        self.saved_at = now
        path = Path(directory) / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict()))
            tmp.replace(path)
        except OSError:
            logging.getLogger("app.metrics").warning("metrics snapshot not written",
                                                     extra={"path": str(path)})

    def _trailing_save(self, directory: str) -> None:
        with self.lock:
            self.trailing_pid = 0
        self.save(directory, force=True)

    def render_all(self, directory: str | None) -> str:
        """Prometheus text of every worker's snapshot in ``directory`` (else this process)."""
        if not directory:
            return self.render()
        self.save(directory, force=True)
        total = Metrics()
        for path in sorted(Path(directory).glob("*.json")):
            try:
                total.add(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError):
                continue  # a snapshot being replaced or damaged: skip this scrape
        return total.render()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests.observe((endpoint, method, str(status)), seconds)

    def observe_forecast(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.forecasts.observe((kind,), seconds)

    def count_cache(self, outcome: str) -> None:
        with self.lock:
            self.cache[outcome] += 1

    def render(self) -> str:
        with self.lock:
            lines = self.requests.render("twin_http_request_duration_seconds",
                                         ("endpoint", "method", "status"))
            lines += self.forecasts.render("twin_forecast_duration_seconds", ("kind",))
            lines.append("# TYPE twin_cache_total counter")
            for outcome, n in sorted(self.cache.items()):
                lines.append(f'twin_cache_total{{outcome="{outcome}"}} {n}')
        return "\n".join(lines) + "\n"


METRICS = Metrics()

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def init_app(app: Flask) -> None:
    """Logging, request timing and security headers."""
    setup_logging(app.config["LOG_LEVEL"])

    @app.before_request
    def _start_timer() -> None:
        g.t0 = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        t0 = g.get("t0")
        if t0 is not None:
            METRICS.observe_request(request.endpoint or "none", request.method,
                                    resp.status_code, time.perf_counter() - t0)
            METRICS.save(app.config.get("METRICS_DIR"))
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        if app.config.get("SESSION_COOKIE_SECURE"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        # patient data must not stay in a browser's or proxy's cache; a view that chose its
        # caching (plots: private, versioned, revalidated; static files) keeps it
        if "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return resp
