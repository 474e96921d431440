"""The ward status through the API: GET /patients/{id} (and the list, and /status) carry
``{"level", "reasons"}``; the deteriorating patient is urgent or worse with a falling-SBP reason;
stale data are never stable; forecasts are used only from the cache, never computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import db
from app.models import ForecastRun


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def _bp(hours_ago: float, sbp: float, dbp: float, hr: float | None = None) -> list[dict]:
    out = [{"time": _iso(hours_ago), "code": "sbp_mmhg", "value": sbp, "unit": "mm[Hg]"},
           {"time": _iso(hours_ago), "code": "dbp_mmhg", "value": dbp, "unit": "mm[Hg]"}]
    if hr is not None:
        out.append({"time": _iso(hours_ago), "code": "hr_bpm", "value": hr, "unit": "/min"})
    return out


DETERIORATING = [*_bp(40, 148, 88, 104), *_bp(26, 138, 80), *_bp(12, 118, 70),
                 *_bp(0.5, 96, 58, 124)]


def _patient(client, headers, observations=()) -> str:
    pid = client.post("/api/v1/patients", json={"age": 68}, headers=headers).get_json()["id"]
    if observations:
        resp = client.post(f"/api/v1/patients/{pid}/observations",
                           json={"observations": list(observations)}, headers=headers)
        assert resp.status_code == 201, resp.get_json()
    return pid


def test_deteriorating_patient_is_urgent_with_falling_sbp(client, auth_headers):
    pid = _patient(client, auth_headers, DETERIORATING)
    body = client.get(f"/api/v1/patients/{pid}", headers=auth_headers).get_json()
    status = body["status"]
    assert status["level"] in ("urgent", "critical"), status
    falling = [r for r in status["reasons"] if "sbp" in r["rule"] and "fall" in r["rule"]]
    assert falling, status["reasons"]
    assert falling[0]["level"] in ("urgent", "critical")
    assert falling[0]["values"]  # every reason names its values
    assert all(r["rule"] and r["message"] for r in status["reasons"])
    same = client.get(f"/api/v1/patients/{pid}/status", headers=auth_headers).get_json()
    assert same["level"] == status["level"]


def test_status_in_the_patient_list(client, auth_headers):
    sick = _patient(client, auth_headers, DETERIORATING)
    empty = _patient(client, auth_headers)
    items = {p["id"]: p for p in client.get("/api/v1/patients?include=status",
                                            headers=auth_headers).get_json()["items"]}
    assert items[sick]["status"]["level"] in ("urgent", "critical")
    assert items[empty]["status"]["level"] == "no-data"
    plain = client.get("/api/v1/patients", headers=auth_headers).get_json()["items"]
    assert {p["status"] for p in plain} == {None}  # the status only when asked for
    bad = client.get("/api/v1/patients?include=alerts", headers=auth_headers)
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "include"


def test_two_month_old_reading_is_not_stable(client, auth_headers):
    pid = _patient(client, auth_headers, _bp(24 * 60, 150, 95))
    status = client.get(f"/api/v1/patients/{pid}/status", headers=auth_headers).get_json()
    assert status["level"] not in ("stable", "no-data")
    assert "overdue" in {r["rule"] for r in status["reasons"]}


def test_incomplete_latest_set_is_not_stable(client, auth_headers):
    pid = _patient(client, auth_headers, _bp(0.2, 125, 80, 70))
    status = client.get(f"/api/v1/patients/{pid}/status", headers=auth_headers).get_json()
    assert status["level"] != "stable"
    assert "news2_incomplete" in {r["rule"] for r in status["reasons"]}


def test_complete_normal_set_is_stable(client, auth_headers):
    pid = _patient(client, auth_headers)
    resp = client.post(f"/api/v1/patients/{pid}/observation-sets", json={
        "time": _iso(0.5), "respiratory_rate_per_min": 16, "spo2_pct": 97,
        "supplemental_oxygen": False, "sbp_mmhg": 125, "dbp_mmhg": 78, "hr_bpm": 70,
        "consciousness": "A", "temperature_c": 37.0}, headers=auth_headers)
    assert resp.status_code == 201
    status = client.get(f"/api/v1/patients/{pid}/status", headers=auth_headers).get_json()
    assert status["level"] == "stable", status


def test_high_news2_set_is_critical(client, auth_headers):
    pid = _patient(client, auth_headers)
    client.post(f"/api/v1/patients/{pid}/observation-sets", json={
        "time": _iso(0.1), "respiratory_rate_per_min": 27, "spo2_pct": 90,
        "supplemental_oxygen": True, "sbp_mmhg": 88, "dbp_mmhg": 50, "hr_bpm": 128,
        "consciousness": "V", "temperature_c": 38.9}, headers=auth_headers)
    status = client.get(f"/api/v1/patients/{pid}/status", headers=auth_headers).get_json()
    assert status["level"] == "critical"
    assert "news2_high" in {r["rule"] for r in status["reasons"]}


def test_open_alerts_feed_the_status(app, client, auth_headers):
    pid = _patient(client, auth_headers, _bp(0.5, 86, 60))   # raises the real sbp_low alert
    alerts = client.get(f"/api/v1/alerts?status=open&patient_id={pid}",
                        headers=auth_headers).get_json()["alerts"]
    assert "sbp_low" in {a["rule"] for a in alerts}
    status = client.get(f"/api/v1/patients/{pid}/status", headers=auth_headers).get_json()
    assert status["level"] in ("urgent", "critical")
    assert "alert:sbp_low" in {r["rule"] for r in status["reasons"]}


def test_forecast_passed_in_adds_its_reason(app, client, auth_headers):
    from app.services.status import patient_status

    pid = _patient(client, auth_headers, _bp(0.5, 120, 80))
    now = datetime.now(UTC)
    times = [(now + timedelta(hours=h)).isoformat() for h in (0, 6, 12, 24, 48)]
    fc = {"coverage": 0.9, "endpoints": {"sbp_mmhg": {
        "times": times, "median": [118, 110, 100, 95, 80], "lower": [108, 98, 88, 84, 60],
        "upper": [128, 122, 112, 106, 100]}}}
    with app.test_request_context():
        status = patient_status(pid, forecast=fc)
    low = [r for r in status.reasons if r.rule == "forecast_sbp_low"]
    assert low and low[0].values["lower"] == 84  # the lowest edge within 24 h, not at 48 h
    with app.test_request_context():
        other = patient_status(pid, forecast={**fc, "coverage": 0.5})
    assert "forecast_sbp_low" not in other.rules()  # only a 90 % interval counts


def test_status_errors(client, auth_headers):
    assert client.get("/api/v1/patients/p-none/status", headers=auth_headers).status_code == 404
    assert client.get("/api/v1/patients/p-none/status").status_code == 401


def _runs(app) -> int:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(func.count()).select_from(ForecastRun))


@pytest.mark.slow
def test_status_uses_only_a_cached_forecast(model_app, auth_headers):
    from app.auth import issue_token
    from app.services.status import cached_forecast

    client = model_app.test_client()
    with model_app.app_context():
        headers = {"Authorization": f"Bearer {issue_token('st', 'read,write')}"}
    pid = _patient(client, headers, [*_bp(30, 150, 92), *_bp(10, 146, 90), *_bp(1, 144, 88)])
    client.get(f"/api/v1/patients/{pid}", headers=headers)
    assert _runs(model_app) == 0  # the status never computes a forecast
    resp = client.get(f"/api/v1/patients/{pid}/forecast", headers=headers)
    assert resp.status_code == 200
    assert _runs(model_app) == 1
    with model_app.test_request_context():
        assert cached_forecast(pid) is not None
    resp = client.get(f"/api/v1/patients/{pid}", headers=headers)
    assert resp.status_code == 200 and resp.get_json()["status"]["level"] != "no-data"
    assert _runs(model_app) == 1
