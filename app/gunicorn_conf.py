"""Gunicorn settings; workers and threads come from the environment."""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = "-"
# one JSON object per request, like the application's own logs
access_log_format = ('{"logger": "gunicorn.access", "time": "%(t)s", "remote": "%(h)s", '
                     '"method": "%(m)s", "path": "%(U)s", "status": %(s)s, "bytes": "%(B)s", '
                     '"duration_ms": %(M)s}')
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Load the app (and torch) once in the master, then fork.
preload_app = True

# create_app loads the model bundle once in the master (shared by the forked workers).
os.environ.setdefault("PRELOAD_MODEL", "1")
# workers share their metrics through this directory, one per server (see app.observability)
if not os.environ.get("METRICS_DIR"):
    import tempfile

    os.environ["METRICS_DIR"] = tempfile.mkdtemp(prefix="twin-metrics-")


def post_fork(server, worker):
    """One torch thread per worker: workers x threads already fill the cores."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _json_logger_class():
    """gunicorn's logger with its error log (boot, worker, signal lines) as JSON too."""
    from gunicorn import glogging

    from app.observability import JsonFormatter

    class JsonLogger(glogging.Logger):
        def setup(self, cfg):
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())

    return JsonLogger


logger_class = _json_logger_class()
