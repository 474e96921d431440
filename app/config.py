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
}


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
    }
