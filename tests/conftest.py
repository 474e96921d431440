"""Shared pytest fixtures in the Flask tutorial's shape: ``app``, ``client``, ``runner``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.db import init_db

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """A fresh application on a temporary SQLite database."""
    app = create_app(
        {
            "TESTING": True,
            "PREWARM_FORECASTS": False,  # tests count forecast runs; see test_app_forecast
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "MODEL_URI": str(tmp_path / "model"),
        }
    )
    with app.app_context():
        init_db()
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the project root (tests only; the service never reads it)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: tests need the shared reference material")
    return SHARED


@pytest.fixture
def auth_headers(app: Flask) -> dict[str, str]:
    """Authorization header of a read+write bearer token on ``app``."""
    from app.auth import issue_token

    with app.app_context():
        token = issue_token("integrator", "read,write")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def model_app(tmp_path: Path) -> Iterator[Flask]:
    """An application whose MODEL_URI holds a real (small) forecaster bundle."""
    from tests.app_model import shared_bundle

    app = create_app({"TESTING": True, "SESSION_COOKIE_SECURE": False,
                      "PREWARM_FORECASTS": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'model.db'}",
                      "MODEL_URI": shared_bundle()})
    with app.app_context():
        init_db()
    yield app
