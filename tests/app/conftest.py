"""App fixtures in the Flask tutorial's shape: ``app``, ``client``, ``runner``, plus a
real (small) model bundle built once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.db import init_db
from scripts.persistence_bundle import build_persistence_bundle


@pytest.fixture(scope="session")
def model_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URI of a loadable persistence-engine bundle (seconds to build; once per session)."""
    return build_persistence_bundle(tmp_path_factory.mktemp("app-model") / "bundle")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """A fresh application on a temporary SQLite database, without a model bundle."""
    app = create_app(
        {
            "TESTING": True,
            "PREWARM_FORECASTS": False,  # tests count forecast runs; see test_forecast
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


@pytest.fixture
def auth_headers(app: Flask) -> dict[str, str]:
    """Authorization header of a read+write bearer token on ``app``."""
    from app.auth import issue_token

    with app.app_context():
        token = issue_token("integrator", "read,write")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def model_app(tmp_path: Path, model_bundle: str) -> Iterator[Flask]:
    """An application whose MODEL_URI holds a real (small) forecaster bundle."""
    app = create_app({"TESTING": True, "SESSION_COOKIE_SECURE": False,
                      "PREWARM_FORECASTS": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'model.db'}",
                      "MODEL_URI": model_bundle})
    with app.app_context():
        init_db()
    yield app


@pytest.fixture
def log_in():
    """``log_in(app, name)``: a test client logged in as a new clinician NAME on ``app``, and
    the session's CSRF token after login."""
    def log_in(app: Flask, name: str = "dr-test") -> tuple[FlaskClient, str]:
        app.test_cli_runner().invoke(args=["create-user", name, "--password-stdin"],
                                     input="ward-round-7\n")
        client = app.test_client()
        client.get("/login")
        with client.session_transaction() as sess:
            csrf = sess["csrf"]
        resp = client.post("/login", data={"username": name, "password": "ward-round-7",
                                           "csrf_token": csrf})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
        with client.session_transaction() as sess:
            return client, sess["csrf"]
    return log_in
