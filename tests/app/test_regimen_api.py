"""Dosing safety of PUT .../regimen (issue 14): labelled maximum refused (422 naming dose_mg),
contraindication warnings need a confirmation (409 confirmation-required), the confirmation is
audited with the warnings, lowering and stopping need none; the regimen and its history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import db
from app.models import AuditEvent

PROBLEM = "application/problem+json"


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def _patient(client, h, renal="normal", readings=()) -> str:
    pid = client.post("/api/v1/patients", json={"age": 70, "renal_function": renal},
                      headers=h).get_json()["id"]
    if readings:
        obs = [{"time": _iso(ago), "code": code, "value": v, "unit": unit}
               for ago, code, v, unit in readings]
        resp = client.post(f"/api/v1/patients/{pid}/observations",
                           json={"observations": obs}, headers=h)
        assert resp.status_code == 201, resp.get_json()
    return pid


def _bp(sbp, dbp, hr, ago=1.0):
    return [(ago, "sbp_mmhg", sbp, "mm[Hg]"), (ago, "dbp_mmhg", dbp, "mm[Hg]"),
            (ago, "hr_bpm", hr, "/min")]


def _put(client, h, pid, **body):
    body = {"drug": "benazepril", "interval_h": 24, "start": _iso(1), **body}
    return client.put(f"/api/v1/patients/{pid}/regimen", json=body, headers=h)


def test_above_the_maximum_daily_dose_is_422_naming_dose_mg(client, auth_headers):
    pid = _patient(client, auth_headers, "impaired")
    resp = _put(client, auth_headers, pid, dose_mg=80, interval_h=4)  # 480 mg a day
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["errors"][0]["field"] == "dose_mg"
    assert "480 mg a day" in body["errors"][0]["message"]
    assert "40 mg a day" in body["errors"][0]["message"]  # the renal maximum
    # normal renal function: 80 mg every 12 h is 160 mg a day, the maximum is 80
    normal = _patient(client, auth_headers)
    resp = _put(client, auth_headers, normal, dose_mg=80, interval_h=12)
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["message"] == (
        "Benazepril 80 mg every 12 h is 160 mg a day; the maximum is 80 mg a day.")
    assert _put(client, auth_headers, normal, dose_mg=40, interval_h=12).status_code == 200
    # cilazapril: 5 mg a day at most, 2.5 with impaired renal function
    resp = _put(client, auth_headers, pid, drug="cilazapril", dose_mg=5, confirm=True)
    assert resp.status_code == 422 and "2.5 mg a day" in resp.get_json()["detail"]
    assert client.get(f"/api/v1/patients/{pid}/regimen",
                      headers=auth_headers).get_json()["regimen"] is None  # nothing stored


def test_hypotension_needs_a_confirmation_that_is_audited(app, client, auth_headers):
    pid = _patient(client, auth_headers, readings=_bp(96, 58, 118))
    resp = _put(client, auth_headers, pid, dose_mg=10)
    assert resp.status_code == 409 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == "confirmation-required" and body["status"] == 409
    codes = [w["code"] for w in body["warnings"]]
    assert codes == ["low-sbp"]
    assert "96/58 mmHg" in body["warnings"][0]["message"]
    assert client.get(f"/api/v1/patients/{pid}/regimen",
                      headers=auth_headers).get_json()["regimen"] is None

    resp = _put(client, auth_headers, pid, dose_mg=10, confirm=True)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["regimen"]["dose_mg"] == 10
    with app.app_context(), db.new_session() as s:
        row = s.scalars(select(AuditEvent).where(AuditEvent.patient_id == pid,
                                                 AuditEvent.action == "confirm")).one()
    detail = json.loads(row.detail)
    assert row.actor == "integrator" and row.method == "PUT"
    assert [w["code"] for w in detail["warnings"]] == ["low-sbp"]
    assert detail["dose_mg"] == 10
    current = client.get(f"/api/v1/patients/{pid}/regimen", headers=auth_headers).get_json()
    assert current["active"] is True
    assert current["regimen"]["confirmed_warnings"][0]["code"] == "low-sbp"
    assert current["regimen"]["set_by"] == "integrator"


@pytest.mark.parametrize("readings, code", [
    ([(2, "potassium_mmol_per_l", 5.9, "mmol/L")], "high-potassium"),
    ([(40, "creatinine_umol_per_l", 90, "umol/L"), (2, "creatinine_umol_per_l", 125, "umol/L")],
     "rising-creatinine"),
])
def test_labs_warn_before_starting(client, auth_headers, readings, code):
    pid = _patient(client, auth_headers, readings=readings)
    resp = _put(client, auth_headers, pid, dose_mg=10)
    assert resp.status_code == 409
    assert [w["code"] for w in resp.get_json()["warnings"]] == [code]


def test_renal_start_dose_and_start_in_past_warn(client, auth_headers):
    pid = _patient(client, auth_headers, "impaired")
    resp = _put(client, auth_headers, pid, dose_mg=10, start=_iso(24 * 10))
    assert resp.status_code == 409
    assert [w["code"] for w in resp.get_json()["warnings"]] == ["start-in-past",
                                                                "renal-start-dose"]
    assert _put(client, auth_headers, pid, dose_mg=5).status_code == 200  # the renal start


def test_lowering_needs_no_confirmation_raising_does(client, auth_headers):
    pid = _patient(client, auth_headers)
    assert _put(client, auth_headers, pid, dose_mg=20).status_code == 200
    resp = client.post(f"/api/v1/patients/{pid}/observations", headers=auth_headers, json={
        "observations": [{"time": _iso(0.5), "code": c, "value": v, "unit": "mm[Hg]"}
                         for c, v in (("sbp_mmhg", 92), ("dbp_mmhg", 55))]})
    assert resp.status_code == 201
    assert _put(client, auth_headers, pid, dose_mg=10).status_code == 200  # lowering
    assert _put(client, auth_headers, pid, dose_mg=5, interval_h=12).status_code == 200  # same
    assert _put(client, auth_headers, pid, dose_mg=10, interval_h=12).status_code == 409  # up
    assert _put(client, auth_headers, pid, dose_mg=0).status_code == 200  # untreated


def test_regimen_history_newest_first_and_stop(client, auth_headers):
    pid = _patient(client, auth_headers)
    url = f"/api/v1/patients/{pid}/regimen"
    assert client.get(url, headers=auth_headers).get_json() == {"regimen": None,
                                                                "active": False}
    for dose in (5, 10, 20):
        assert _put(client, auth_headers, pid, dose_mg=dose).status_code == 200
    resp = client.post(url + "/stop", headers=auth_headers)
    assert resp.status_code == 200 and resp.get_json()["active"] is False
    assert resp.get_json()["regimen"]["stop"] is not None
    assert client.post(url + "/stop", headers=auth_headers).status_code == 409  # nothing left
    hist = client.get(url + "/history", headers=auth_headers).get_json()
    assert hist["total"] == 4
    assert [r["dose_mg"] for r in hist["items"]] == [20, 20, 10, 5]
    assert hist["items"][0]["stop"] is not None and hist["items"][1]["stop"] is None
    times = [r["set_at"] for r in hist["items"]]
    assert times == sorted(times, reverse=True)
    assert all(r["set_by"] == "integrator" for r in hist["items"])
    ids = [r["id"] for r in hist["items"]]
    assert ids == sorted(ids, reverse=True)


def test_what_if_refuses_above_the_maximum(client, auth_headers):
    pid = _patient(client, auth_headers, "impaired")
    resp = client.post(f"/api/v1/patients/{pid}/scenarios", headers=auth_headers, json={
        "regimen": {"drug": "benazepril", "dose_mg": 80, "interval_h": 4, "start": _iso(0)}})
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "regimen.dose_mg"


def test_openapi_documents_the_regimen_routes(client, auth_headers):
    spec = client.get("/api/v1/openapi.json", headers=auth_headers).get_json()
    put = spec["paths"]["/api/v1/patients/{patient_id}/regimen"]["put"]
    assert "409" in put["responses"]
    assert "confirm" in spec["components"]["schemas"]["RegimenChange"]["properties"]
    assert "get" in spec["paths"]["/api/v1/patients/{patient_id}/regimen"]
    assert "get" in spec["paths"]["/api/v1/patients/{patient_id}/regimen/history"]
    assert "post" in spec["paths"]["/api/v1/patients/{patient_id}/regimen/stop"]


def test_a_start_in_1999_simulates_at_most_72_h_before_the_first_observation(model_app):
    from app.auth import issue_token

    with model_app.app_context():
        h = {"Authorization": f"Bearer {issue_token('clin', 'read,write')}"}
    client = model_app.test_client()
    pid = _patient(client, h, readings=[(30, "sbp_mmhg", 150, "mm[Hg]"),
                                        (30, "dbp_mmhg", 90, "mm[Hg]"),
                                        (1, "sbp_mmhg", 146, "mm[Hg]")])
    resp = _put(client, h, pid, dose_mg=10, start="1999-01-01T08:00:00Z")
    assert [w["code"] for w in resp.get_json()["warnings"]] == ["start-in-past"]
    assert _put(client, h, pid, dose_mg=10, start="1999-01-01T08:00:00Z",
                confirm=True).status_code == 200
    fc = client.get(f"/api/v1/patients/{pid}/forecast", headers=h).get_json()
    first = datetime.now(UTC) - timedelta(hours=30)
    origin = datetime.fromisoformat(fc["origin"])
    assert first - timedelta(hours=73) < origin < first - timedelta(hours=47)  # not 30 days
    assert origin.hour == 8 and origin.minute == 0  # the dosing phase is kept
