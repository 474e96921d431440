"""Storage: migrations match the models; SQLite runs in WAL; the same on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text

from app import config, create_app, db
from app.db import Base, init_db
from app.models import Observation, Patient, Regimen
from tests.conftest import IN_CI


def test_migrations_match_models(app):
    with app.app_context(), db.get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_init_db_is_idempotent(app, runner):
    assert runner.invoke(args=["init-db"]).exit_code == 0
    with app.app_context(), db.get_engine().connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    newest = max(p.name[:4] for p in (Path(app.root_path) / "migrations" / "versions").glob(
        "[0-9][0-9][0-9][0-9]_*.py"))
    assert version == newest  # the newest migration


def test_sqlite_uses_wal(app):
    with app.app_context(), db.get_engine().connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def _roundtrip(app) -> None:
    t = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    with app.app_context(), db.new_session() as s:
        p = Patient(age_years=70, renal_function="normal", glucose_pattern="diabetic",
                    infected=False, version=1)
        s.add(p)
        s.flush()
        s.add(Regimen(patient_id=p.id, drug="benazepril", dose_mg=10, interval_h=24, start=t))
        s.add(Observation(patient_id=p.id, time=t + timedelta(hours=2), code="sbp_mmhg",
                          value=151.5, unit="mm[Hg]", source="test"))
        s.commit()
        pid = p.id
    with app.app_context(), db.new_session() as s:
        p = s.get(Patient, pid)
        assert p.glucose == "diabetic" and p.regimen.dose_mg == 10
        assert p.regimen.start == t and p.regimen.start.tzinfo is not None
        obs = s.scalars(select(Observation).where(Observation.patient_id == pid)).one()
        assert obs.time == t + timedelta(hours=2) and obs.value == 151.5
        s.delete(p)
        s.commit()
        assert s.scalars(select(Observation)).all() == []


def test_roundtrip_sqlite(app):
    _roundtrip(app)


def _pg_url() -> str | None:
    url = config.env("TEST_DATABASE_URL")
    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
        return url
    except Exception:
        return None


@pytest.fixture
def pg_app(tmp_path):
    url = _pg_url()
    if url is None:
        if IN_CI:
            pytest.fail("PostgreSQL not reachable: .ci/setup.d/30-postgres.sh should start it")
        pytest.skip("no PostgreSQL here (run .ci/setup.d/30-postgres.sh or set "
                    "TEST_DATABASE_URL)")
    schema = "t_" + uuid.uuid4().hex[:10]
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    app = create_app({"TESTING": True, "SESSION_COOKIE_SECURE": False,
                      "DATABASE_URL": url, "MODEL_URI": str(tmp_path / "model")})
    engine = app.extensions["db_engine"]

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_conn, _rec):
        cur = dbapi_conn.cursor()
        cur.execute(f"SET search_path TO {schema}")
        cur.close()
        dbapi_conn.commit()

    with app.app_context():
        init_db()
    yield app
    from app.services import flush_audit

    with app.app_context():
        flush_audit()
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.mark.postgres
def test_postgres_migrations_and_roundtrip(pg_app):
    with pg_app.app_context(), db.get_engine().connect() as conn:
        assert conn.dialect.name == "postgresql"
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    _roundtrip(pg_app)


@pytest.mark.postgres
def test_postgres_api_flow(pg_app):
    from app.auth import issue_token

    with pg_app.app_context():
        h = {"Authorization": "Bearer " + issue_token("pg", "read,write")}
    c = pg_app.test_client()
    pid = c.post("/api/v1/patients", json={"age": 55}, headers=h).get_json()["id"]
    now = datetime.now(UTC)
    resp = c.post(f"/api/v1/patients/{pid}/observations", json={"observations": [
        {"time": (now - timedelta(hours=k)).isoformat(), "code": "dbp_mmhg", "value": 90 + k,
         "unit": "mm[Hg]"} for k in range(3)]}, headers=h)
    assert resp.status_code == 201
    bad = c.post(f"/api/v1/patients/{pid}/observations", json={"observations": [
        {"time": now.isoformat(), "code": "dbp_mmhg", "value": 900, "unit": "mm[Hg]"}]},
        headers=h)
    assert bad.status_code == 422
    items = c.get(f"/api/v1/patients/{pid}/observations", headers=h).get_json()["items"]
    assert [o["value"] for o in items] == [92, 91, 90]
    assert {o["status"] for o in items} == {"final"}  # migration 0006's server default
    # issue 14 on PostgreSQL: an exact duplicate is a 409, a mark is kept and listed
    dup = c.post(f"/api/v1/patients/{pid}/observations", json={"observations": [
        {"time": items[0]["time"], "code": "dbp_mmhg", "value": 92, "unit": "mm[Hg]"}]},
        headers=h)
    assert dup.status_code == 409 and dup.get_json()["type"] == "duplicate-observation"
    mark = c.patch(f"/api/v1/patients/{pid}/observations/{items[0]['id']}", headers=h,
                   json={"status": "entered-in-error"})
    assert mark.status_code == 200 and mark.get_json()["status"] == "entered-in-error"
    assert c.patch(f"/api/v1/patients/{pid}/observations/99999999999", headers=h,
                   json={"status": "entered-in-error"}).status_code == 404
    items = c.get(f"/api/v1/patients/{pid}/observations", headers=h).get_json()["items"]
    assert [o["status"] for o in items] == ["entered-in-error", "final", "final"]


@pytest.mark.postgres
def test_postgres_concurrent_init_db_migrates_once(pg_app, tmp_path):
    """Four service tasks starting together each run init-db on one fresh schema: the
    advisory lock serialises them, so all succeed and the schema is migrated once."""
    import threading

    from sqlalchemy import event

    url = pg_app.config["DATABASE_URL"]
    schema = "t_" + uuid.uuid4().hex[:10]
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    apps = []
    for i in range(4):
        a = create_app({"TESTING": True, "DATABASE_URL": url,
                        "MODEL_URI": str(tmp_path / f"model{i}")})

        @event.listens_for(a.extensions["db_engine"], "connect")
        def _search_path(dbapi_conn, _rec):
            cur = dbapi_conn.cursor()
            cur.execute(f"SET search_path TO {schema}")
            cur.close()
            dbapi_conn.commit()

        apps.append(a)
    errors: list[Exception] = []
    start = threading.Barrier(len(apps))

    def run(a):
        try:
            start.wait()
            with a.app_context():
                init_db()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)  # without the lock the racing migrations can hang for good
    try:
        assert not any(t.is_alive() for t in threads), "init-db hung: migrations raced"
        assert errors == []
        with admin.connect() as conn:
            rows = conn.execute(text(f"SELECT version_num FROM {schema}.alembic_version")).all()
        assert len(rows) == 1
    finally:
        for a in apps:
            a.extensions["db_engine"].dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
