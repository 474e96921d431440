"""Server-side sessions (issue 15, item 1): the cookie carries only a random session id; the
server ends a session on logout, password change, deactivation, idle time and absolute
lifetime, and refuses a cookie whose session or user it does not know."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app import db
from app.auth import SESSION_ENDED, hash_token
from app.models import AuditEvent, LoginSession

PASSWORD = "ward-round-7\n"


def _sessions(app) -> list[LoginSession]:
    with app.app_context(), db.new_session() as s:
        return list(s.scalars(select(LoginSession)))


def _shift(app, **columns: timedelta) -> None:
    """Move every session's stored times back (the clock moves on)."""
    with app.app_context(), db.get_engine().begin() as conn:
        for name, delta in columns.items():
            col = getattr(LoginSession, name)
            for sid, value in conn.execute(select(LoginSession.id_sha256, col)).all():
                conn.execute(update(LoginSession).where(LoginSession.id_sha256 == sid)
                             .values({name: value - delta}))


def _refused(client) -> None:
    page = client.get("/")
    assert page.status_code == 302 and page.location.startswith("/login")
    assert "ended=1" in page.location
    assert SESSION_ENDED in client.get(page.location).get_data(as_text=True)
    api = client.get("/api/v1/patients")
    assert api.status_code == 401 and api.mimetype == "application/problem+json"


def _ended(client) -> None:
    """The session is refused: a page redirects to login saying so; the API says 401."""
    api = client.get("/api/v1/patients")
    assert api.status_code == 401 and api.mimetype == "application/problem+json"
    assert "ended" in api.get_json()["detail"]


def _replay(app, client):
    """A second client holding a copy of ``client``'s cookie (a captured cookie)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_cookie_carries_only_the_session_id_and_csrf(app, log_in):
    client, _ = log_in(app)
    with client.session_transaction() as sess:
        assert set(sess) == {"sid", "csrf"}
        sid = sess["sid"]
    rows = _sessions(app)
    assert [r.id_sha256 for r in rows] == [hash_token(sid)]  # only the hash is stored
    assert rows[0].client_addr and rows[0].revoked_at is None
    assert rows[0].expires_at - rows[0].created_at == timedelta(hours=12)


def test_replayed_cookie_after_logout_is_refused(app, log_in):
    client, csrf = log_in(app)
    captured = _replay(app, client)
    assert captured.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    page = captured.get("/")
    assert page.status_code == 302 and page.location.startswith("/login")
    assert "ended=1" in page.location
    assert SESSION_ENDED in captured.get(page.location).get_data(as_text=True)
    assert _sessions(app)[0].revoked_at is not None


def test_replayed_cookie_after_logout_api_401(app, log_in):
    client, csrf = log_in(app)
    captured = _replay(app, client)
    assert captured.get("/api/v1/patients").status_code == 200
    client.post("/logout", data={"csrf_token": csrf})
    _ended(captured)


def test_deactivated_user_is_refused_at_once(app, log_in):
    client, _ = log_in(app, "dr-gone")
    assert client.get("/api/v1/patients").status_code == 200
    result = app.test_cli_runner().invoke(args=["deactivate-user", "dr-gone"])
    assert result.exit_code == 0, result.output
    _refused(client)


def test_deactivated_user_cannot_log_in(app, log_in):
    log_in(app, "dr-gone")
    app.test_cli_runner().invoke(args=["deactivate-user", "dr-gone"])
    fresh = app.test_client()
    fresh.get("/login")
    with fresh.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = fresh.post("/login", data={"username": "dr-gone", "password": "ward-round-7",
                                      "csrf_token": csrf})
    assert resp.status_code == 401


def test_deactivate_unknown_user_fails(app):
    result = app.test_cli_runner().invoke(args=["deactivate-user", "nobody"])
    assert result.exit_code != 0 and "nobody" in result.output


def test_password_change_ends_sessions(app, log_in):
    client, _ = log_in(app, "dr-pw")
    assert client.get("/").status_code == 200
    result = app.test_cli_runner().invoke(args=["create-user", "dr-pw", "--password-stdin"],
                                          input="a-new-password\n")
    assert result.exit_code == 0 and "1 open session(s) ended" in result.output
    _refused(client)


def test_idle_session_expires(app, log_in):
    client, _ = log_in(app)
    _shift(app, last_seen_at=timedelta(minutes=14))
    assert client.get("/").status_code == 200  # 14 min idle: still open (and touched)
    _shift(app, last_seen_at=timedelta(minutes=16))
    _refused(client)


def test_idle_timeout_is_configurable(app, log_in):
    app.config["SESSION_IDLE_MINUTES"] = 60
    client, _ = log_in(app)
    _shift(app, last_seen_at=timedelta(minutes=50))
    assert client.get("/").status_code == 200


def test_absolute_lifetime_expires_however_active(app, log_in):
    client, _ = log_in(app)
    _shift(app, created_at=timedelta(hours=12, minutes=1),
           expires_at=timedelta(hours=12, minutes=1))
    _refused(client)


def test_last_seen_is_written_at_most_once_a_minute(app, log_in):
    client, _ = log_in(app)
    _shift(app, last_seen_at=timedelta(seconds=30))
    before = _sessions(app)[0].last_seen_at
    for _ in range(3):
        assert client.get("/api/v1/patients").status_code == 200
    assert _sessions(app)[0].last_seen_at == before  # no write per request
    _shift(app, last_seen_at=timedelta(seconds=40))  # now 70 s ago
    client.get("/api/v1/patients")
    assert _sessions(app)[0].last_seen_at > before


def test_cookie_for_an_unknown_user_is_refused_and_not_audited(app, client):
    with client.session_transaction() as sess:  # a cookie signed with the right key
        sess["user"] = "ghost-user"
        sess["csrf"] = "x"
    _refused(client)
    with client.session_transaction() as sess:
        sess["sid"] = "invented-session-id"
    _refused(client)
    with client.session_transaction() as sess:
        sess["sid"] = "invented-session-id"
        sess["csrf"] = "x"
    resp = client.post("/api/v1/patients", json={"age": 60}, headers={"X-CSRF-Token": "x"})
    assert resp.status_code == 401
    with app.app_context(), db.new_session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.actor == "ghost-user")).all() == []


def test_login_after_an_ended_session_works(app, log_in):
    client, _ = log_in(app)
    _shift(app, last_seen_at=timedelta(hours=1))
    page = client.get("/")
    assert "ended=1" in page.location
    client.get(page.location)
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post("/login", data={"username": "dr-test", "password": "ward-round-7",
                                       "csrf_token": csrf})
    assert resp.status_code == 302
    assert client.get("/").status_code == 200


def test_a_new_login_ends_the_session_it_replaces(app, log_in):
    client, _ = log_in(app)
    captured = _replay(app, client)
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post("/login", data={"username": "dr-test", "password": "ward-round-7",
                                       "csrf_token": csrf})
    assert resp.status_code == 302 and client.get("/").status_code == 200
    _ended(captured)


def test_a_page_left_open_still_times_out(app, log_in):
    """The live updates a page makes by itself do not reset the idle clock."""
    client, _ = log_in(app)
    _shift(app, last_seen_at=timedelta(minutes=14))
    before = _sessions(app)[0].last_seen_at
    assert client.get("/ward/rows").status_code == 200  # live.js resync: passive
    assert _sessions(app)[0].last_seen_at == before
    _shift(app, last_seen_at=timedelta(minutes=2))  # 16 min since the clinician acted
    _refused(client)
