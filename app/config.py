"""Service configuration, read from the environment (never from code or the image)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Variables the service reads, with what they mean. Documented in the README.
ENV_VARS = {
    "DATABASE_URL": "SQLAlchemy URL; default sqlite:///<instance>/twin.db",
    "MODEL_URI": "model bundle path or s3:// URI; default <instance>/model",
    "SECRET_KEY": "session signing key (required outside tests)",
    "CORS_ORIGINS": "comma-separated origins allowed by CORS; default none",
    "LOG_LEVEL": "logging level; default INFO",
    "SESSION_COOKIE_SECURE": "1 (default): session cookie only over HTTPS; 0 for plain-HTTP dev",
    "METRICS_PUBLIC": "1: /metrics needs no authentication (scraper inside the VPC); default 0",
    "CACHE_SIZE": "forecast/plot results kept per worker process; default 512",
    "FORECAST_ENGINE": "engine used when a request names none; default: the bundle's default",
    "PREWARM_FORECASTS": "1 (default): compute forecasts and plots in the background when a "
                         "patient's data change; 0 to compute them only on request",
    "METRICS_DIR": "directory where worker processes share their metrics (gunicorn sets a "
                   "fresh one per server); unset: /metrics shows one process",
    "WARD_FORECAST_BUDGET_S": "seconds the ward page may spend on uncached forecasts; default 10",
}


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment(instance_path: str) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    instance = Path(instance_path)
    origins = os.environ.get("CORS_ORIGINS", "")
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'twin.db'}"),
        "MODEL_URI": os.environ.get("MODEL_URI", str(instance / "model")),
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "CORS_ORIGINS": [o.strip() for o in origins.split(",") if o.strip()],
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").upper(),
        "SESSION_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE", True),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "METRICS_PUBLIC": _flag("METRICS_PUBLIC", False),
        "CACHE_SIZE": int(os.environ.get("CACHE_SIZE", "512")),
        "FORECAST_ENGINE": os.environ.get("FORECAST_ENGINE") or None,
        "PREWARM_FORECASTS": _flag("PREWARM_FORECASTS", True),
        "METRICS_DIR": os.environ.get("METRICS_DIR") or None,
        "WARD_FORECAST_BUDGET_S": float(os.environ.get("WARD_FORECAST_BUDGET_S", "10")),
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    }
