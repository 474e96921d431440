"""Liveness and readiness probes (the only routes that need no authentication)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify

from app import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process serves requests."""
    return jsonify(status="ok")


def _model_ready() -> bool:
    """The bundle is there and, if this process tried to load it, it loaded."""
    holder = current_app.extensions.get("forecaster")
    if holder is not None and holder.forecaster is not None:
        return True
    if holder is not None and holder.error:
        return False
    uri = current_app.config["MODEL_URI"]
    return uri.startswith("s3://") or Path(uri).exists()


@bp.get("/readyz")
def readyz():
    """Readiness: lists each check and what is not ready yet (503 until all pass)."""
    checks = {"database": db.ping(), "model_bundle": _model_ready()}
    not_ready = sorted(name for name, ok in checks.items() if not ok)
    body = {"status": "ok" if not not_ready else "not ready", "checks": checks,
            "not_ready": not_ready}
    return jsonify(body), 200 if not not_ready else 503
