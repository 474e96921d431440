"""Authentication: every route needs an identity except the public ones; scopes; CSRF; CLI."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.auth import PUBLIC_ENDPOINTS, hash_token, issue_token
from app.models import ApiToken, User


def _example_path(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "x" if m.group(1) != "filename"
                  else "style.css", rule.rule)


def test_every_route_requires_auth_except_public(app, client):
    """Walk app.url_map: anonymous requests get 401 (API) or a redirect to login (pages)."""
    checked = 0
    for rule in app.url_map.iter_rules():
        path = _example_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(path, method=method)
            if rule.endpoint in PUBLIC_ENDPOINTS:
                assert resp.status_code not in (401, 403), (rule.rule, method)
                continue
            checked += 1
            if path.startswith("/api/") or path == "/metrics":
                assert resp.status_code == 401, (rule.rule, method, resp.status_code)
                assert resp.mimetype == "application/problem+json"
                assert "Bearer" in resp.headers["WWW-Authenticate"]
            else:
                assert resp.status_code == 302, (rule.rule, method, resp.status_code)
                assert resp.location.startswith("/login")
    assert checked >= 20


def test_public_endpoints_answer_without_auth(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/static/web/style.css").status_code == 200


def test_bad_token_is_rejected(client):
    resp = client.get("/api/v1/patients", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401


def test_read_scope_cannot_write(app, client):
    with app.app_context():
        token = issue_token("reader", "read")
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/patients", headers=h).status_code == 200
    resp = client.post("/api/v1/patients", json={"age": 60}, headers=h)
    assert resp.status_code == 403
    assert "write" in resp.get_json()["detail"]


def test_cli_create_token_prints_token_last_and_stores_hash(app, runner, client):
    result = runner.invoke(args=["create-token", "lab-system", "--scopes", "read,write"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("twn_")
    with app.app_context():
        from app import db

        with db.new_session() as s:
            row = s.scalar(select(ApiToken))
            assert row.token_sha256 == hash_token(token)
            assert token not in (row.token_sha256, row.scopes)
            assert row.scopes == "read,write"
    assert client.get("/api/v1/patients",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_cli_create_token_rejects_unknown_scope(runner):
    result = runner.invoke(args=["create-token", "x", "--scopes", "read,admin"])
    assert result.exit_code != 0
    assert "scopes" in result.output


def _login(client, name="dr-a", password="correct horse"):
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": csrf})


def test_cli_create_user_and_login(app, runner, client):
    result = runner.invoke(args=["create-user", "dr-a", "--password-stdin"],
                           input="correct horse\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        from app import db

        with db.new_session() as s:
            user = s.scalar(select(User).where(User.name == "dr-a"))
            assert user.password_hash and "correct horse" not in user.password_hash
    assert _login(client, password="wrong pass").status_code == 401
    resp = _login(client)
    assert resp.status_code == 302
    assert client.get("/").status_code == 200


def test_login_without_csrf_is_refused(app, runner, client):
    runner.invoke(args=["create-user", "dr-a", "--password-stdin"], input="correct horse\n")
    resp = client.post("/login", data={"username": "dr-a", "password": "correct horse"})
    assert resp.status_code == 400
    assert client.get("/").status_code == 302


def test_session_writes_need_csrf(app, runner, client):
    runner.invoke(args=["create-user", "dr-a", "--password-stdin"], input="correct horse\n")
    _login(client)
    resp = client.post("/patients/new", data={"age": "60"})
    assert resp.status_code == 400
    resp = client.post("/api/v1/patients", json={"age": 60})
    assert resp.status_code == 403
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post("/api/v1/patients", json={"age": 60}, headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 201


def test_short_password_refused(runner):
    result = runner.invoke(args=["create-user", "dr-b", "--password-stdin"], input="short\n")
    assert result.exit_code != 0


def test_security_headers(client):
    resp = client.get("/login")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_session_cookie_flags(app, runner, client):
    app.config["SESSION_COOKIE_SECURE"] = True
    runner.invoke(args=["create-user", "dr-a", "--password-stdin"], input="correct horse\n")
    resp = _login(client)
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("origin,allowed", [("https://ehr.example.org", True),
                                            ("https://evil.example.com", False)])
def test_cors_only_for_configured_origins(tmp_path, origin, allowed):
    from app import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
                      "CORS_ORIGINS": ["https://ehr.example.org"]})
    resp = app.test_client().get("/healthz", headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in resp.headers  # only /api/*
    resp = app.test_client().options("/api/v1/patients", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET"})
    assert (resp.headers.get("Access-Control-Allow-Origin") == origin) is allowed


def test_no_cors_by_default(client):
    resp = client.options("/api/v1/patients", headers={
        "Origin": "https://ehr.example.org", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_metrics_behind_auth(client, auth_headers):
    assert client.get("/metrics").status_code == 401
    client.get("/api/v1/patients", headers=auth_headers)
    body = client.get("/metrics", headers=auth_headers).get_data(as_text=True)
    assert "twin_http_request_duration_seconds_bucket" in body
    assert 'endpoint="api.list_patients"' in body
