"""NEWS2 through the API: the stateless POST /news2 at a few chart points (the band-edge table
is twin's test), 422 naming each missing parameter, and GET /patients/{id}/news2 marking
incomplete and stale sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

KEYS = {"score", "components", "risk", "single_parameter_3", "clinical_response",
        "monitoring_interval_h"}
NORMAL = {"respiratory_rate_per_min": 16, "spo2_pct": 97, "spo2_scale": 1,
          "supplemental_oxygen": False, "sbp_mmhg": 125, "hr_bpm": 70, "consciousness": "A",
          "temperature_c": 37.0}


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


@pytest.fixture
def patient(client, auth_headers) -> str:
    return client.post("/api/v1/patients", json={"age": 80},
                       headers=auth_headers).get_json()["id"]


@pytest.mark.parametrize("change, score, risk, interval", [
    ({}, 0, "low", 12),
    ({"respiratory_rate_per_min": 21}, 2, "low", 4),              # 21-24: 2
    ({"hr_bpm": 131}, 3, "low-medium", 1),                         # >= 131: 3 (single)
    ({"sbp_mmhg": 100, "temperature_c": 38.1, "hr_bpm": 91}, 4, "low", 4),  # 2 + 1 + 1
    ({"supplemental_oxygen": True, "spo2_pct": 93, "consciousness": "C"}, 7, "high", 0),
    ({"spo2_scale": 2, "spo2_pct": 88}, 0, "low", 12),             # scale 2 target range
    ({"spo2_scale": 2, "spo2_pct": 97, "supplemental_oxygen": True}, 5, "medium", 1),
])
def test_stateless_news2_at_chart_points(client, auth_headers, change, score, risk, interval):
    resp = client.post("/api/v1/news2", json={**NORMAL, **change}, headers=auth_headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) == KEYS
    assert body["score"] == score and body["risk"] == risk
    assert body["monitoring_interval_h"] == interval
    assert sum(body["components"].values()) == score
    assert body["clinical_response"]


@pytest.mark.parametrize("missing", ["respiratory_rate_per_min", "spo2_pct",
                                     "supplemental_oxygen", "sbp_mmhg", "hr_bpm",
                                     "consciousness", "temperature_c"])
def test_stateless_news2_names_a_missing_parameter(client, auth_headers, missing):
    body = {k: v for k, v in NORMAL.items() if k != missing}
    resp = client.post("/api/v1/news2", json=body, headers=auth_headers)
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    assert [e["field"] for e in resp.get_json()["errors"]] == [missing]


def test_stateless_news2_names_every_invalid_parameter(client, auth_headers):
    resp = client.post("/api/v1/news2", json={**NORMAL, "spo2_pct": 130, "spo2_scale": 3,
                                              "consciousness": "drowsy", "hr_bpm": None,
                                              "colour": "pale"}, headers=auth_headers)
    assert resp.status_code == 422
    fields = {e["field"] for e in resp.get_json()["errors"]}
    assert fields == {"spo2_pct", "spo2_scale", "consciousness", "hr_bpm", "colour"}


def test_stateless_news2_needs_auth(client, app):
    from app.auth import issue_token

    assert client.post("/api/v1/news2", json=NORMAL).status_code == 401
    with app.app_context():
        reader = issue_token("reader", "read")
    resp = client.post("/api/v1/news2", json=NORMAL,
                       headers={"Authorization": f"Bearer {reader}"})
    assert resp.status_code == 403  # a POST is a write, as everywhere in the API


def _set(client, headers, patient, hours_ago, **values):
    resp = client.post(f"/api/v1/patients/{patient}/observation-sets",
                       json={"time": _iso(hours_ago), **values}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


SET = {k: v for k, v in NORMAL.items() if k != "spo2_scale"}


def test_patient_news2_latest_and_history(client, auth_headers, patient):
    _set(client, auth_headers, patient, 30, **SET)
    _set(client, auth_headers, patient, 2, **{**SET, "respiratory_rate_per_min": 23,
                                               "hr_bpm": 115})
    body = client.get(f"/api/v1/patients/{patient}/news2", headers=auth_headers).get_json()
    assert [s["score"] for s in body["history"]] == [0, 4]
    latest = body["latest"]
    assert latest["score"] == 4 and latest["complete"] is True and latest["missing"] == []
    assert latest["risk"] == "low" and latest["monitoring_interval_h"] == 4
    assert latest["stale"] is False and latest["age_h"] == pytest.approx(2, abs=0.01)
    assert latest["respiratory_rate_per_min"] == 23 and latest["consciousness"] == "A"
    assert body["history"][0]["stale"] is True  # 30 h old, interval 12 h
    short = client.get(f"/api/v1/patients/{patient}/news2?hours=10",
                       headers=auth_headers).get_json()
    assert len(short["history"]) == 1


def test_incomplete_set_is_never_a_normal_score(client, auth_headers, patient):
    _set(client, auth_headers, patient, 1, hr_bpm=72, sbp_mmhg=125, temperature_c=37)
    latest = client.get(f"/api/v1/patients/{patient}/news2",
                        headers=auth_headers).get_json()["latest"]
    assert latest["complete"] is False
    assert latest["missing"] == ["respiratory_rate_per_min", "spo2_pct",
                                 "supplemental_oxygen", "consciousness"]
    assert latest["score"] == 0  # the points present ...
    assert latest["risk"] is None and latest["clinical_response"] is None  # ... not a NEWS2
    assert latest["monitoring_interval_h"] is None


def test_nothing_is_carried_forward_between_sets(client, auth_headers, patient):
    _set(client, auth_headers, patient, 3, **SET)
    _set(client, auth_headers, patient, 1, hr_bpm=80)
    latest = client.get(f"/api/v1/patients/{patient}/news2",
                        headers=auth_headers).get_json()["latest"]
    assert latest["complete"] is False and latest["hr_bpm"] == 80
    assert latest["respiratory_rate_per_min"] is None


def test_readings_within_the_window_form_one_set(client, auth_headers, patient):
    """Readings posted one by one (FHIR, monitors) within 15 min make one set."""
    now = datetime.now(UTC)
    units = {"rr_per_min": "/min", "spo2_pct": "%", "on_oxygen": "{bool}", "sbp_mmhg":
             "mm[Hg]", "hr_bpm": "/min", "acvpu": "{ACVPU}", "temp_c": "Cel"}
    values = {"rr_per_min": 26, "spo2_pct": 95, "on_oxygen": 1, "sbp_mmhg": 95,
              "hr_bpm": 100, "acvpu": 0, "temp_c": 37.5}
    obs = [{"time": (now - timedelta(minutes=14 - 2 * i)).isoformat(), "code": code,
            "value": v, "unit": units[code]} for i, (code, v) in enumerate(values.items())]
    resp = client.post(f"/api/v1/patients/{patient}/observations",
                       json={"observations": obs}, headers=auth_headers)
    assert resp.status_code == 201
    body = client.get(f"/api/v1/patients/{patient}/news2", headers=auth_headers).get_json()
    assert len(body["history"]) == 1
    latest = body["latest"]
    # RR 26: 3, SpO2 95 on scale 1: 1, oxygen: 2, SBP 95: 2, HR 100: 1 -> 9
    assert latest["complete"] and latest["score"] == 9 and latest["risk"] == "high"
    assert latest["monitoring_interval_h"] == 0


def test_old_set_is_stale_and_spo2_scale_is_the_patients(client, auth_headers, patient):
    resp = client.patch(f"/api/v1/patients/{patient}", json={"spo2_scale": 2},
                        headers=auth_headers)
    assert resp.status_code == 200 and resp.get_json()["spo2_scale"] == 2
    _set(client, auth_headers, patient, 24 * 60, **{**SET, "spo2_pct": 89})
    latest = client.get(f"/api/v1/patients/{patient}/news2",
                        headers=auth_headers).get_json()["latest"]
    assert latest["spo2_scale"] == 2 and latest["components"]["spo2_pct"] == 0
    assert latest["score"] == 0 and latest["stale"] is True  # two months old
    assert latest["age_h"] == pytest.approx(1440, abs=0.1)


def test_flow_or_fio2_means_on_oxygen(client, auth_headers, patient):
    no_flag = {k: v for k, v in SET.items() if k != "supplemental_oxygen"}
    _set(client, auth_headers, patient, 1, **no_flag, o2_flow_l_per_min=2)
    latest = client.get(f"/api/v1/patients/{patient}/news2",
                        headers=auth_headers).get_json()["latest"]
    assert latest["supplemental_oxygen"] is True
    assert latest["components"]["supplemental_oxygen"] == 2


def test_patient_news2_errors(client, auth_headers, patient):
    assert client.get("/api/v1/patients/p-none/news2", headers=auth_headers).status_code == 404
    resp = client.get(f"/api/v1/patients/{patient}/news2?hours=0", headers=auth_headers)
    assert resp.status_code == 400 and resp.get_json()["errors"][0]["field"] == "hours"
    empty = client.get(f"/api/v1/patients/{patient}/news2", headers=auth_headers).get_json()
    assert empty == {"patient_id": patient, "latest": None, "history": []}
    assert client.get(f"/api/v1/patients/{patient}/news2").status_code == 401


def test_news2_reads_are_audited(app, client, auth_headers, patient):
    from sqlalchemy import select

    from app import db, services
    from app.models import AuditEvent

    client.get(f"/api/v1/patients/{patient}/news2", headers=auth_headers)
    client.post("/api/v1/news2", json=NORMAL, headers=auth_headers)
    with app.app_context():
        services.flush_audit()
        with db.new_session() as s:
            rows = s.execute(select(AuditEvent.method, AuditEvent.path,
                                    AuditEvent.patient_id)).all()
    assert ("GET", f"/api/v1/patients/{patient}/news2", patient) in rows
    assert ("POST", "/api/v1/news2", None) in rows
