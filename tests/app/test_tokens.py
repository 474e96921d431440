"""Token lifecycle (issue 15, item 5): expiry (default 90 days), last use (written at most
once a minute), ``list-tokens`` (never the token), ``revoke-token ID`` / ``--name NAME``
refused on the next request on every worker (no per-worker cache of good tokens)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app import create_app, db
from app.auth import hash_token
from app.models import ApiToken, utcnow


def _create(runner, name: str = "lab", *extra: str) -> str:
    result = runner.invoke(args=["create-token", name, "--scopes", "read,write", *extra])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("twn_")
    return token


def _row(app, token: str) -> ApiToken:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token)))


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def worker2(app):
    """A second application on the same database: another gunicorn worker."""
    return create_app({"TESTING": True, "PREWARM_FORECASTS": False,
                       "DATABASE_URL": app.config["DATABASE_URL"],
                       "MODEL_URI": app.config["MODEL_URI"]})


def test_tokens_expire_after_90_days_by_default(app, runner):
    row = _row(app, _create(runner))
    assert abs(row.expires_at - (row.created_at + timedelta(days=90))) < timedelta(seconds=5)
    row = _row(app, _create(runner, "lab2", "--expires-days", "7"))
    assert abs(row.expires_at - (utcnow() + timedelta(days=7))) < timedelta(seconds=5)


def test_expires_days_must_be_positive(runner):
    result = runner.invoke(args=["create-token", "lab", "--expires-days", "0"])
    assert result.exit_code != 0


def test_expired_token_is_401(app, runner, client):
    token = _create(runner)
    assert client.get("/api/v1/patients", headers=_h(token)).status_code == 200
    with app.app_context(), db.get_engine().begin() as conn:
        conn.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    resp = client.get("/api/v1/patients", headers=_h(token))
    assert resp.status_code == 401 and resp.mimetype == "application/problem+json"
    assert "expired" in resp.get_json()["detail"]


def test_revoked_token_is_refused_on_the_next_request_on_every_worker(app, runner, worker2):
    token = _create(runner)
    w1, w2 = app.test_client(), worker2.test_client()
    for w in (w1, w2):  # both workers have seen (and, before, cached) the token
        assert w.get("/api/v1/patients", headers=_h(token)).status_code == 200
    token_id = _row(app, token).id
    result = runner.invoke(args=["revoke-token", str(token_id)])
    assert result.exit_code == 0 and "Revoked 1" in result.output
    for w in (w1, w2):
        resp = w.get("/api/v1/patients", headers=_h(token))
        assert resp.status_code == 401, resp.get_data(as_text=True)
        assert "revoked" in resp.get_json()["detail"]


def test_revoke_by_name_revokes_every_token_of_that_user(app, runner, client, worker2):
    a, b, other = _create(runner, "lab"), _create(runner, "lab"), _create(runner, "ehr")
    for t in (a, b, other):
        assert worker2.test_client().get("/api/v1/patients", headers=_h(t)).status_code == 200
    result = runner.invoke(args=["revoke-token", "--name", "lab"])
    assert result.exit_code == 0 and "Revoked 2" in result.output
    for w in (client, worker2.test_client()):
        assert w.get("/api/v1/patients", headers=_h(a)).status_code == 401
        assert w.get("/api/v1/patients", headers=_h(b)).status_code == 401
        assert w.get("/api/v1/patients", headers=_h(other)).status_code == 200


def test_revoke_token_needs_exactly_one_target(runner):
    assert runner.invoke(args=["revoke-token"]).exit_code != 0
    assert runner.invoke(args=["revoke-token", "1", "--name", "x"]).exit_code != 0
    result = runner.invoke(args=["revoke-token", "999"])
    assert result.exit_code != 0 and "no such token" in result.output


def test_deactivated_user_token_refused_at_once(app, runner, worker2):
    token = _create(runner, "lab")
    w2 = worker2.test_client()
    assert w2.get("/api/v1/patients", headers=_h(token)).status_code == 200
    assert runner.invoke(args=["deactivate-user", "lab"]).exit_code == 0
    assert w2.get("/api/v1/patients", headers=_h(token)).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(app, runner, client):
    token = _create(runner)
    assert _row(app, token).last_used_at is None
    client.get("/api/v1/patients", headers=_h(token))
    first = _row(app, token).last_used_at
    assert first is not None and utcnow() - first < timedelta(seconds=10)
    client.get("/api/v1/patients", headers=_h(token))
    assert _row(app, token).last_used_at == first  # no write per request
    with app.app_context(), db.get_engine().begin() as conn:
        conn.execute(update(ApiToken).values(last_used_at=first - timedelta(seconds=61)))
    client.get("/api/v1/patients", headers=_h(token))
    assert _row(app, token).last_used_at > first


def test_list_tokens_never_shows_the_token(app, runner, client):
    token = _create(runner, "lab")
    other = _create(runner, "ehr", "--expires-days", "3")
    client.get("/api/v1/patients", headers=_h(token))
    runner.invoke(args=["revoke-token", "--name", "ehr"])
    result = runner.invoke(args=["list-tokens"])
    assert result.exit_code == 0, result.output
    out = result.output
    for secret in (token, other):
        assert secret not in out and secret[4:] not in out and hash_token(secret) not in out
    lines = out.strip().splitlines()
    assert lines[0].split() == ["id", "user", "scopes", "created", "expires", "last", "used",
                                "revoked"]
    lab, ehr = lines[1].split(), lines[2].split()
    assert lab[:3] == [str(_row(app, token).id), "lab", "read,write"] and lab[-1] == "no"
    assert ehr[1] == "ehr" and ehr[-1] == "yes" and "-" in ehr  # never used
    assert len(lab) == 10  # id user scopes created(2) expires(2) last-used(2) revoked
