"""Liveness, readiness and the database CLI."""

from pathlib import Path

import pytest

from app import create_app


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_missing_model(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"]["database"] is True
    assert body["not_ready"] == ["model_bundle"]


def test_readyz_ok_when_everything_is_there(app, client):
    Path(app.config["MODEL_URI"]).mkdir()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_readyz_reports_unreachable_database(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/x.db",
                      "MODEL_URI": str(tmp_path)})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["not_ready"] == ["database"]


def test_init_db_command(runner):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0
    assert "Initialized" in result.output


def test_secret_key_required_outside_tests(monkeypatch, tmp_path):
    from app import config as app_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    # no quick-start key file either (a local quick start in this checkout writes one)
    monkeypatch.setattr(app_config, "SECRET_KEY_FILE", str(tmp_path / "absent-key"))
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"DATABASE_URL": "sqlite://"})
