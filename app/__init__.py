"""The Flask digital-twin provider: ``create_app`` builds the WSGI application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from app import (
    auth,
    cache,
    commands,
    db,
    errors,
    forecasting,
    health,
    observability,
    prewarm,
)
from app import config as app_config
from app.alerts import api as alerts_api
from app.api import bp as api_bp
from app.web import bp as web_bp
from app.web import localtime


def _metrics_view() -> Response:
    """Prometheus text format: every worker's totals (METRICS_DIR), else this process's."""
    directory = current_app.config.get("METRICS_DIR")
    return Response(observability.METRICS.render_all(directory), mimetype="text/plain")


def _init_cors(app: Flask) -> None:
    origins = app.config["CORS_ORIGINS"]
    if origins:
        CORS(app, resources={r"/api/*": {"origins": origins}},
             allow_headers=["Authorization", "Content-Type"], supports_credentials=False,
             expose_headers=["Location"])


def _init_proxy(app: Flask) -> None:
    """Behind TRUSTED_PROXY_HOPS reverse proxies, the client address and scheme are the
    ones they forwarded (werkzeug's ProxyFix); a forwarded header is ignored otherwise."""
    hops = app.config.get("TRUSTED_PROXY_HOPS") or 0
    if hops < 0:
        raise RuntimeError("TRUSTED_PROXY_HOPS must be 0 or more")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory.

    ``config`` overrides what the environment gives (tests pass ``TESTING`` and a
    temporary ``DATABASE_URL``).
    """
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(app_config.from_environment(app.instance_path))
    if config:
        app.config.from_mapping(config)
    if not app.config.get("SECRET_KEY"):
        if not app.config.get("TESTING"):
            raise RuntimeError("SECRET_KEY is not set: export it (see README, Configuration)")
        app.config["SECRET_KEY"] = "test-only-secret"

    observability.init_app(app)
    errors.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    forecasting.init_app(app)
    cache.init_app(app)
    prewarm.init_app(app)
    commands.init_app(app)
    alerts_api.init_app(app)  # loads and validates the rules file: a bad one stops here
    app.register_blueprint(health.bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(web_bp)
    localtime.init_app(app)  # a WARD_TIMEZONE that is no IANA zone stops here
    app.add_url_rule("/metrics", "metrics", _metrics_view)
    _init_proxy(app)
    _init_cors(app)
    if app.config["PRELOAD_MODEL"]:
        _preload_model(app)
    return app


def _preload_model(app: Flask) -> None:
    """Load the forecaster now (gunicorn master, before forking), if it is there."""
    with app.app_context():
        try:
            forecasting.get_forecaster()
        except errors.ApiError as exc:
            app.logger.warning("model not preloaded", extra={"detail": exc.detail})
