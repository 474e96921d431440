"""Gunicorn settings; workers and threads come from the environment (through app.config)."""

import sys
import tempfile

from gunicorn import glogging

from app import config as app_config  # not "config": gunicorn reads that name as a setting
from app.observability import JsonFormatter

workers = int(app_config.env("WEB_CONCURRENCY"))
threads = int(app_config.env("GUNICORN_THREADS"))
worker_class = "gthread"
timeout = int(app_config.env("GUNICORN_TIMEOUT"))
accesslog = "-"
# one JSON object per request, like the application's own logs
access_log_format = ('{"logger": "gunicorn.access", "time": "%(t)s", "remote": "%(h)s", '
                     '"method": "%(m)s", "path": "%(U)s", "status": %(s)s, "bytes": "%(B)s", '
                     '"duration_ms": %(M)s}')
errorlog = "-"
loglevel = app_config.env("LOG_LEVEL").lower()
# Request lines up to gunicorn's maximum (default 4094): the app itself answers an over-long
# URL (a path segment over 256 characters, a URL over 4096) with a 414 problem+json
# (app.errors); only a request line over 8190 bytes still gets gunicorn's own 414.
limit_request_line = 8190
# Load the app (and torch) once in the master, then fork.
preload_app = True

# create_app loads the model bundle once in the master (shared by the forked workers).
app_config.export_default("PRELOAD_MODEL", "1")
# workers share their metrics through this directory, one per server (see app.observability)
if not app_config.env("METRICS_DIR"):
    app_config.export_default("METRICS_DIR", tempfile.mkdtemp(prefix="twin-metrics-"))


def post_fork(server, worker):
    """One torch thread per worker: workers x threads already fill the cores."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


class JsonLogger(glogging.Logger):
    """gunicorn's logger with its error log (boot, worker, signal lines) as JSON too."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())


logger_class = JsonLogger
