"""Login protection (issue 15, item 2): failures per account and per client address are
counted in the database (every worker sees them) and lock logins out with a clear message
and 429; an unknown user costs exactly one password hash, as a wrong password does; failures
and lockouts are audited and logged, never with the password."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app import create_app, db
from app.auth import logins
from app.models import AuditEvent, LoginFailure, LoginLockout

RIGHT = "ward-round-7"
WRONG = "not-the-password-5"
MESSAGE = "Too many failed attempts; try again in 15 minutes or ask an administrator."


@pytest.fixture
def user(app):
    app.test_cli_runner().invoke(args=["create-user", "dr-l", "--password-stdin"],
                                 input=RIGHT + "\n")
    return "dr-l"


def _post(client, name: str, password: str, addr: str = "127.0.0.1"):
    client.get("/login", environ_base={"REMOTE_ADDR": addr})
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": csrf},
                       environ_base={"REMOTE_ADDR": addr})


def _age_lockouts(app, minutes: float) -> None:
    """The clock moves on: every lockout and failure happened ``minutes`` earlier."""
    with app.app_context(), db.get_engine().begin() as conn:
        for table, cols in ((LoginLockout, ("created_at", "until")), (LoginFailure, ("time",))):
            for row in conn.execute(select(table)).mappings().all():
                conn.execute(update(table).where(table.id == row["id"]).values(
                    {c: row[c] - timedelta(minutes=minutes) for c in cols}))


def test_lockout_after_five_failures_then_right_password_refused(app, client, user):
    for _ in range(4):
        resp = _post(client, user, WRONG)
        assert resp.status_code == 401
        assert "Unknown user or wrong password." in resp.get_data(as_text=True)
    fifth = _post(client, user, WRONG)
    assert fifth.status_code == 429
    assert MESSAGE in fifth.get_data(as_text=True)
    right = _post(client, user, RIGHT)
    assert right.status_code == 429  # locked: even the right password
    assert MESSAGE in right.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in
    _age_lockouts(app, 1)
    later = _post(client, user, RIGHT)
    assert later.status_code == 429
    assert "try again in 14 minutes" in later.get_data(as_text=True)


def test_unlocked_after_the_window(app, client, user):
    for _ in range(5):
        _post(client, user, WRONG)
    assert _post(client, user, RIGHT).status_code == 429
    _age_lockouts(app, 16)
    assert _post(client, user, RIGHT).status_code == 302
    assert client.get("/").status_code == 200


def test_failures_before_the_lockout_ended_do_not_count_again(app, client, user):
    for _ in range(5):
        _post(client, user, WRONG)
    _age_lockouts(app, 16)
    assert _post(client, user, WRONG).status_code == 401  # a fresh count after the lockout


def test_success_resets_the_account_count(app, client, user):
    for _ in range(4):
        _post(client, user, WRONG)
    assert _post(client, user, RIGHT).status_code == 302
    for _ in range(4):
        assert _post(app.test_client(), user, WRONG).status_code == 401


def test_lockout_is_shared_by_every_worker(app, user, tmp_path):
    other = create_app({"TESTING": True, "PREWARM_FORECASTS": False,
                        "DATABASE_URL": app.config["DATABASE_URL"],
                        "MODEL_URI": app.config["MODEL_URI"]})
    for i in range(5):
        _post((app if i % 2 else other).test_client(), user, WRONG)
    assert _post(other.test_client(), user, RIGHT).status_code == 429
    assert _post(app.test_client(), user, RIGHT).status_code == 429


def test_unknown_accounts_lock_the_same_way(app, client):
    codes = [_post(client, "no-such-user", WRONG).status_code for _ in range(6)]
    assert codes == [401] * 4 + [429, 429]


def test_one_client_address_is_locked_after_twenty_failures(app, client, user):
    for i in range(19):
        assert _post(client, f"guess-{i}", WRONG, addr="10.0.0.9").status_code == 401
    assert _post(client, "guess-19", WRONG, addr="10.0.0.9").status_code == 429
    assert _post(client, user, RIGHT, addr="10.0.0.9").status_code == 429
    assert _post(client, user, RIGHT, addr="10.0.0.10").status_code == 302


def _scrypt_runs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def test_unknown_user_costs_exactly_one_hash_like_a_wrong_password(app, user, monkeypatch):
    calls = _scrypt_runs(monkeypatch)
    with app.test_request_context():
        assert not logins.check_login(user, WRONG, "10.1.1.1").ok
        known = len(calls)
        calls.clear()
        assert not logins.check_login("no-such-user", WRONG, "10.1.1.2").ok
        unknown = len(calls)
        calls.clear()
        assert logins.check_login(user, RIGHT, "10.1.1.3").ok
        right = len(calls)
    assert known == unknown == right == 1


def test_dummy_hash_uses_the_parameters_of_real_hashes():
    from werkzeug.security import generate_password_hash

    method = generate_password_hash("x").split("$", 1)[0]
    assert logins.DUMMY_HASH.split("$", 1)[0] == method


def test_failures_and_lockouts_are_audited_and_logged_without_the_password(
        app, client, user, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(5):
        _post(client, user, WRONG)
    _post(client, "someone-else", "my-secret-typed-as-name")
    with app.app_context(), db.new_session() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.path == "/login",
                                                  AuditEvent.detail.is_not(None))).all()
    events = [json.loads(r.detail) for r in rows]
    failed = [e for e, r in zip(events, rows, strict=True)
              if e["event"] == "login-failed" and r.status == 401]
    locks = [e for e in events if e["event"] == "login-lockout-account"]
    assert len(failed) == 6 and len(locks) == 1
    assert locks[0]["account"] == user and locks[0]["client"] == "127.0.0.1"
    assert failed[-1]["account"] is None  # unknown names are not kept
    assert all(r.actor is None for r in rows)
    _post(client, user, RIGHT)  # locked: the refusal is audited too
    with app.app_context(), db.new_session() as s:
        last = s.scalars(select(AuditEvent).where(AuditEvent.detail.is_not(None))
                         .order_by(AuditEvent.id.desc())).first()
    assert last.status == 429 and json.loads(last.detail)["event"] == "login-refused-locked"
    text = " ".join(f"{r.detail} {r.actor}" for r in rows) + caplog.text
    assert WRONG not in text and "my-secret-typed-as-name" not in text
    assert "login failed" in caplog.text and "login lockout" in caplog.text
    records = [r for r in caplog.records if r.name == "app.auth"]
    assert all(WRONG not in json.dumps(vars(r), default=str) for r in records)


def test_old_rows_are_pruned(app, client, user):
    _post(client, user, WRONG)
    _age_lockouts(app, 60 * 25)
    _post(client, "someone", WRONG)
    with app.app_context(), db.new_session() as s:
        assert [f.account for f in s.scalars(select(LoginFailure))] == ["someone"]
