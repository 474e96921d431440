"""Erasure and retention (issue 15, item 8): ``flask erase-patient ID`` leaves no row that
mentions the id except the erasure's own audit row; ``flask purge`` deletes by age."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, Text, func, or_, select

from app import db
from app.auth import issue_token
from app.db import Base
from app.models import AuditEvent, Observation


@pytest.fixture
def api(model_app):
    with model_app.app_context():
        token = issue_token("nurse-e", "read,write")
    return model_app.test_client(), {"Authorization": f"Bearer {token}"}


def _patient_with_everything(client, h) -> str:
    """A patient with readings, a regimen, a details change, a forecast (run + shared
    cache), an alert and read audits."""
    pid = client.post("/api/v1/patients", json={"age": 71}, headers=h).get_json()["id"]
    now = datetime.now(UTC)
    obs = [{"time": (now - timedelta(hours=k)).isoformat(), "code": code, "value": v,
            "unit": "mm[Hg]"} for k in (30, 20, 10, 1)
           for code, v in (("sbp_mmhg", 70 + k), ("dbp_mmhg", 45))]
    assert client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=h).status_code == 201
    assert client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
        "dose_mg": 5, "interval_h": 24, "start": now.isoformat(), "confirm": True}
    ).status_code == 200
    assert client.patch(f"/api/v1/patients/{pid}", json={"age": 72},
                        headers=h).status_code == 200
    assert client.get(f"/api/v1/patients/{pid}/forecast", headers=h).status_code == 200
    assert client.get(f"/api/v1/patients/{pid}", headers=h).status_code == 200
    return pid


def _rows_mentioning(app, needle: str) -> dict[str, int]:
    """Rows of every table with the id in any text column."""
    out = {}
    with app.app_context(), db.new_session() as s:
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.columns if isinstance(c.type, String | Text)]
            if cols:
                n = s.scalar(select(func.count()).select_from(table).where(
                    or_(*[c.like(f"%{needle}%") for c in cols])))
                if n:
                    out[table.name] = n
    return out


def test_erase_patient_leaves_only_the_erasure_audit(model_app, api):
    client, h = api
    pid = _patient_with_everything(client, h)
    other = _patient_with_everything(client, h)
    with model_app.app_context():
        from app.services.audit import flush_audit

        flush_audit()
    before = _rows_mentioning(model_app, pid)
    for table in ("patients", "observations", "regimens", "patient_changes", "forecast_runs",
                  "forecast_cache", "audit_log"):
        assert before.get(table), (table, before)  # the check can fail: the id is there
    other_before = _rows_mentioning(model_app, other)

    result = model_app.test_cli_runner().invoke(args=["erase-patient", pid, "--yes"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["erased"] == pid and report["rows"]["observations"] == 8

    assert _rows_mentioning(model_app, pid) == {"audit_log": 1}
    with model_app.app_context(), db.new_session() as s:
        (row,) = s.scalars(select(AuditEvent).where(AuditEvent.patient_id == pid)).all()
    assert row.action == "erase" and row.actor.startswith("cli")
    detail = json.loads(row.detail)
    assert detail["erased_rows"]["patients"] == 1
    # what was erased: row counts, and the erased audit rows' ids and hashes; no values
    assert set(detail) == {"erased_rows", "erased_audit"}
    assert all(isinstance(n, int) for n in detail["erased_rows"].values())
    assert detail["erased_audit"] and all(
        isinstance(i, int) and len(a) == len(b) == 64 for i, a, b in detail["erased_audit"])
    verify = model_app.test_cli_runner().invoke(args=["audit-verify"])
    assert verify.exit_code == 0, verify.output  # the erasure is a recorded gap
    after_other = _rows_mentioning(model_app, other)
    assert after_other == other_before  # the other patient is untouched
    assert client.get(f"/api/v1/patients/{pid}", headers=h).status_code == 404
    assert client.get(f"/api/v1/patients/{pid}/forecast.png?panel=bp",
                      headers=h).status_code == 404


def test_erase_unknown_patient_is_an_error(model_app):
    result = model_app.test_cli_runner().invoke(args=["erase-patient", "p-nobody", "--yes"])
    assert result.exit_code != 0 and "no patient p-nobody" in result.output


def test_purge_deletes_by_age_and_is_audited(model_app, api):
    client, h = api
    pid = client.post("/api/v1/patients", json={"age": 50}, headers=h).get_json()["id"]
    now = datetime.now(UTC)
    obs = [{"time": (now - timedelta(days=d)).isoformat(), "code": "hr_bpm", "value": 80,
            "unit": "/min"} for d in (40, 20, 1)]
    assert client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=h).status_code == 201
    runner = model_app.test_cli_runner()
    assert runner.invoke(args=["purge"]).exit_code != 0  # nothing asked: refused
    result = runner.invoke(args=["purge", "--observation-days", "30"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"]["observations"] == 1
    with model_app.app_context(), db.new_session() as s:
        left = s.scalars(select(Observation.time).where(Observation.patient_id == pid)).all()
        purges = s.scalars(select(AuditEvent).where(AuditEvent.action == "purge")).all()
    assert len(left) == 2 and len(purges) == 1
