"""Service configuration, read from the environment (never from code or the image).

This is the only module of ``app`` that reads ``os.environ``. ``ENV_VARS`` lists every
variable the service, its gunicorn settings, ``scripts/serve.sh`` and the tests read, with the
default (as the README shows it) and the meaning; ``tests/app/test_config.py`` checks the
README's configuration table against it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple


class EnvVar(NamedTuple):
    default: str | None  #: None: unset by default ("{instance}" is the Flask instance folder)
    meaning: str


#: Every environment variable, with its default and what it means. Documented in the README.
ENV_VARS: dict[str, EnvVar] = {
    "DATABASE_URL": EnvVar("sqlite:///{instance}/twin.db",
                           "SQLAlchemy database URL (`postgresql+psycopg://…` for PostgreSQL)"),
    "MODEL_URI": EnvVar("{instance}/model", "model bundle: a local path or an `s3://` URI"),
    "LOS_MODEL_URI": EnvVar(None, "remaining-stay model (`twin.los`): a local path or an "
                                  "`s3://` URI (unset: the one shipped in the package)"),
    "WARD_TIMEZONE": EnvVar("UTC", "IANA time zone the pages show and take times in, e.g. "
                                   "`Europe/Berlin` (the API and the database stay UTC)"),
    "SECRET_KEY": EnvVar(None, "session signing key; required, except that when it is unset "
                               "and `instance/secret_key` exists (the quick start writes a "
                               "random one there) that file's key is used, and the log says so"),
    "SESSION_IDLE_MINUTES": EnvVar("15", "a login session ends after this many minutes "
                                         "without a request"),
    "SESSION_MAX_HOURS": EnvVar("12", "a login session ends this many hours after the "
                                      "login, however active"),
    "TRUSTED_PROXY_HOPS": EnvVar("0", "reverse proxies in front of the service whose "
                                      "`X-Forwarded-For`/`-Proto` are believed (1 behind the "
                                      "AWS load balancer); 0: the socket's peer is the client "
                                      "(audit, login throttling)"),
    "CORS_ORIGINS": EnvVar(None, "comma-separated origins allowed to call the API from a "
                                 "browser"),
    "LOG_LEVEL": EnvVar("INFO", "logging level (logs are JSON lines on stdout)"),
    "SESSION_COOKIE_SECURE": EnvVar("1", "`0` to allow the session cookie over plain HTTP "
                                         "(development)"),
    "METRICS_PUBLIC": EnvVar("0", "`1` serves Prometheus `/metrics` without auth (else a "
                                  "token is needed)"),
    "METRICS_DIR": EnvVar(None, "directory where worker processes share their metrics "
                                "(gunicorn makes a fresh one per server); unset: `/metrics` "
                                "shows one process"),
    "FORECAST_ENGINE": EnvVar(None, "engine the service forecasts with (unset: the bundle's "
                                    "default)"),
    "CACHE_SIZE": EnvVar("512", "forecasts and plots kept in memory per worker"),
    "WARD_FORECAST_BUDGET_S": EnvVar("10", "seconds the ward page may spend on uncached "
                                           "forecasts"),
    "PREWARM_FORECASTS": EnvVar("1", "`1`: when a patient's data change, compute their "
                                     "forecasts and default plots in the background"),
    "PRELOAD_MODEL": EnvVar("0", "`1`: `create_app` loads the model bundle at once (the "
                                 "gunicorn settings set it, so workers share it)"),
    "TWIN_USER_PASSWORD": EnvVar(None, "password `flask create-user` sets when neither "
                                       "`--password-stdin` nor a prompt is used"),
    "WEB_CONCURRENCY": EnvVar("2", "gunicorn worker processes"),
    "GUNICORN_THREADS": EnvVar("4", "gunicorn threads per worker"),
    "GUNICORN_TIMEOUT": EnvVar("60", "gunicorn worker timeout (s)"),
    "BIND": EnvVar("127.0.0.1:8000", "address gunicorn listens on (`scripts/serve.sh`)"),
    "AWS_ENDPOINT_URL": EnvVar(None, "S3 endpoint for `s3://` bundles (read by boto3; a local "
                                     "emulator in tests)"),
    "ALERT_RULES_FILE": EnvVar(None, "alert rules file (TOML), validated at start; unset: the "
                                     "shipped `app/alerts/rules.toml`"),
    "TEST_DATABASE_URL": EnvVar("postgresql+psycopg://twin:twin@127.0.0.1:55432/twin_test",
                                "tests only: the PostgreSQL the storage tests use"),
}


def env(name: str, instance: str | Path = "instance") -> str | None:
    """The value of variable ``name`` (one of ENV_VARS), else its default; "" counts as unset."""
    value = os.environ.get(name)
    if value:
        return value
    default = ENV_VARS[name].default
    return None if default is None else default.format(instance=instance)


def export_default(name: str, value: str) -> str:
    """Set variable ``name`` for this process and its children unless it is set; its value."""
    if not os.environ.get(name):
        os.environ[name] = value
    return os.environ[name]


def flag(name: str) -> bool:
    """A boolean variable: 1/true/yes/on."""
    return (env(name) or "").strip().lower() in {"1", "true", "yes", "on"}


#: the quick start's key file in the instance folder (``scripts/serve.sh`` writes it)
SECRET_KEY_FILE = "secret_key"


def secret_key(instance: Path) -> tuple[str | None, str | None]:
    """SECRET_KEY and where it came from: the environment, else ``instance/secret_key`` when
    that file exists (the quick start's random key), else (None, None)."""
    value = env("SECRET_KEY")
    if value:
        return value, "environment"
    path = instance / SECRET_KEY_FILE
    try:
        value = path.read_text().strip()
    except OSError:
        return None, None
    return (value, str(path)) if value else (None, None)


def from_environment(instance_path: str) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    instance = Path(instance_path)
    origins = env("CORS_ORIGINS") or ""
    key, key_source = secret_key(instance)
    return {
        "DATABASE_URL": env("DATABASE_URL", instance),
        "MODEL_URI": env("MODEL_URI", instance),
        "LOS_MODEL_URI": env("LOS_MODEL_URI"),
        "WARD_TIMEZONE": env("WARD_TIMEZONE") or "UTC",
        "SECRET_KEY": key,
        "SECRET_KEY_SOURCE": key_source,
        "SESSION_IDLE_MINUTES": float(env("SESSION_IDLE_MINUTES") or 15),
        "SESSION_MAX_HOURS": float(env("SESSION_MAX_HOURS") or 12),
        "CORS_ORIGINS": [o.strip() for o in origins.split(",") if o.strip()],
        "TRUSTED_PROXY_HOPS": int(env("TRUSTED_PROXY_HOPS") or 0),
        "LOG_LEVEL": (env("LOG_LEVEL") or "INFO").upper(),
        "SESSION_COOKIE_SECURE": flag("SESSION_COOKIE_SECURE"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "METRICS_PUBLIC": flag("METRICS_PUBLIC"),
        "CACHE_SIZE": int(env("CACHE_SIZE") or 512),
        "FORECAST_ENGINE": env("FORECAST_ENGINE"),
        "PREWARM_FORECASTS": flag("PREWARM_FORECASTS"),
        "PRELOAD_MODEL": flag("PRELOAD_MODEL"),
        "METRICS_DIR": env("METRICS_DIR"),
        "WARD_FORECAST_BUDGET_S": float(env("WARD_FORECAST_BUDGET_S") or 10),
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "ALERT_RULES_FILE": env("ALERT_RULES_FILE"),
    }
