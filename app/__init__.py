"""The Flask digital-twin provider: ``create_app`` builds the WSGI application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from app import config as app_config
from app import db, health


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory.

    ``config`` overrides what the environment gives (tests pass ``TESTING`` and a
    temporary ``DATABASE_URL``).
    """
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(app_config.from_environment(app.instance_path))
    if config:
        app.config.from_mapping(config)
    if not app.config.get("SECRET_KEY"):
        if not app.config.get("TESTING"):
            raise RuntimeError("SECRET_KEY is not set: export it (see README, Configuration)")
        app.config["SECRET_KEY"] = "test-only-secret"

    db.init_app(app)
    app.register_blueprint(health.bp)
    return app
