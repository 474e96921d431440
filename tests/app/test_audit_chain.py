"""The audit log's hash chain (issue 15, item 4): ``flask audit-verify`` passes on an intact
log (erasures and purges included) and names the first row that was edited, removed or
slipped in; concurrent writers never fork the chain."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app import create_app, db
from app.db import init_db
from app.services import audit, audit_chain
from tests.app.test_storage import pg_app  # noqa: F401 - shared fixture


def _verify(app):
    return app.test_cli_runner().invoke(args=["audit-verify"])


def _ids(app) -> list[int]:
    with app.app_context(), db.get_engine().connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM audit_log ORDER BY id"))]


def _sql(app, statement: str, **params) -> None:
    with app.app_context(), db.get_engine().begin() as conn:
        conn.execute(text(statement), params)


@pytest.fixture
def logged(app):
    with app.app_context():
        for k in range(6):
            audit(f"nurse-{k}", "GET", f"/api/v1/patients/p-{k:012x}", f"p-{k:012x}", 200)
    return app


def test_an_intact_chain_verifies(logged):
    result = _verify(logged)
    assert result.exit_code == 0 and "6 rows verified" in result.output


def test_an_edited_row_is_named(logged):
    third = _ids(logged)[2]
    _sql(logged, "UPDATE audit_log SET actor = 'mallory' WHERE id = :i", i=third)
    result = _verify(logged)
    assert result.exit_code == 1
    assert f"broken at row {third}" in result.output and "edited" in result.output


def test_a_removed_or_added_row_is_named(logged):
    ids = _ids(logged)
    _sql(logged, "DELETE FROM audit_log WHERE id = :i", i=ids[3])
    result = _verify(logged)
    assert result.exit_code == 1 and f"broken at row {ids[4]}" in result.output


def test_a_row_slipped_in_without_a_hash_is_named(logged):
    _sql(logged, "INSERT INTO audit_log (time, actor, action, method, path, status) "
                 "VALUES (:t, 'mallory', 'read', 'GET', '/', 200)", t=datetime.now(UTC))
    result = _verify(logged)
    assert result.exit_code == 1 and "without a hash" in result.output


def test_a_purge_moves_the_chain_start(app):
    with app.app_context(), db.get_engine().begin() as conn:
        old = datetime.now(UTC) - timedelta(days=400)
        for k in range(3):
            audit_chain.append(conn, {"time": old + timedelta(minutes=k), "actor": "a",
                                      "action": "read", "method": "GET", "path": "/",
                                      "status": 200})
    with app.app_context():
        audit("b", "GET", "/", None, 200)
    result = app.test_cli_runner().invoke(args=["purge", "--audit-days", "365"])
    assert result.exit_code == 0, result.output
    assert len(_ids(app)) == 2  # the new row and the purge's own
    verdict = _verify(app)
    assert verdict.exit_code == 0, verdict.output


def test_concurrent_writers_from_two_workers_keep_one_chain(app):
    """Two app instances on one database (two gunicorn workers), four threads each."""
    other = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"],
                        "MODEL_URI": app.config["MODEL_URI"]})
    errors: list[BaseException] = []

    def write(a, k):
        try:
            with a.app_context():
                for i in range(15):
                    audit(f"w{k}", "GET", f"/x/{k}/{i}", None, 200)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(a, k))
               for k, a in enumerate([app, other] * 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(_ids(app)) == 120
    result = _verify(app)
    assert result.exit_code == 0 and "120 rows verified" in result.output


@pytest.mark.postgres
def test_concurrent_writers_on_postgres(pg_app):  # noqa: F811
    errors: list[BaseException] = []

    def write(k):
        try:
            with pg_app.app_context():
                for i in range(15):
                    audit(f"w{k}", "GET", f"/x/{k}/{i}", None, 200)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = _verify(pg_app)
    assert result.exit_code == 0 and "90 rows verified" in result.output
    with pg_app.app_context():
        init_db()  # idempotent on the chained log


@pytest.mark.postgres
def test_the_app_role_cannot_rewrite_the_audit_log(pg_app):  # noqa: F811
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.exc import ProgrammingError

    role = "twin_app_" + uuid.uuid4().hex[:8]
    owner = pg_app.extensions["db_engine"]
    with owner.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD 'app-pass-1'")
    try:
        with pg_app.app_context():
            audit("nurse", "GET", "/api/v1/patients", None, 200)
        result = pg_app.test_cli_runner().invoke(args=["grant-app-role", role])
        assert result.exit_code == 0, result.output
        with owner.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        url = owner.url.set(username=role, password="app-pass-1")
        app_engine = create_engine(url, connect_args={"options": f"-c search_path={schema}"})
        try:
            with app_engine.begin() as conn:  # the service's writes work ...
                audit_chain.append(conn, {"time": datetime.now(UTC), "actor": "svc",
                                          "action": "read", "method": "GET", "path": "/",
                                          "status": 200})
                conn.execute(text("UPDATE patients SET version = version"))
            for statement in ("UPDATE audit_log SET actor = 'mallory'",
                              "DELETE FROM audit_log", "TRUNCATE audit_log"):
                with (pytest.raises(ProgrammingError, match="permission denied"),
                      app_engine.begin() as conn):  # ... rewriting the log does not
                    conn.execute(text(statement))
        finally:
            app_engine.dispose()
        assert _verify(pg_app).exit_code == 0
    finally:
        with owner.begin() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
            for what in ("ALL TABLES IN SCHEMA", "ALL SEQUENCES IN SCHEMA", "SCHEMA"):
                conn.exec_driver_sql(f"REVOKE ALL ON {what} {schema} FROM {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
