"""Alerts through the REST API: raised by observations posted as an integrator would, one per
condition, hysteresis, auto-resolve, acknowledge (named user, note, audited), 409/403/404,
escalation, per-patient overrides, NEWS2 and forecast rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import db
from app.alerts import conditions, service
from app.auth import issue_token
from app.models import AlertEvent, AuditEvent

PROBLEM = "application/problem+json"


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


@pytest.fixture
def patient(client, auth_headers) -> str:
    resp = client.post("/api/v1/patients", json={"age": 71}, headers=auth_headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def _post(client, headers, patient, hours_ago, **values):
    units = {"sbp_mmhg": "mm[Hg]", "hr_bpm": "/min", "rr_per_min": "/min", "spo2_pct": "%",
             "temp_c": "Cel", "acvpu": "{ACVPU}", "on_oxygen": "{bool}"}
    obs = [{"time": _iso(hours_ago), "code": code, "value": v, "unit": units[code]}
           for code, v in values.items()]
    resp = client.post(f"/api/v1/patients/{patient}/observations",
                       json={"observations": obs}, headers=headers)
    assert resp.status_code == 201, resp.get_json()


def _alerts(client, headers, **query):
    resp = client.get("/api/v1/alerts", query_string=query, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["alerts"]


def _rule(client, headers, patient, rule, **query):
    return [a for a in _alerts(client, headers, patient_id=patient, **query)
            if a["rule"] == rule]


def test_low_sbp_raises_one_alert_and_a_second_low_reading_adds_none(client, auth_headers,
                                                                      patient):
    _post(client, auth_headers, patient, 2, sbp_mmhg=84)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low", status="open")
    assert alert["status"] == "raised" and alert["level"] == "urgent"
    assert alert["values"]["sbp_mmhg"] == 84 and alert["values"]["threshold"] == 90
    assert "84" in alert["message"]
    assert set(alert) >= {"id", "patient_id", "rule", "level", "status", "raised_at",
                          "acknowledged_at", "acknowledged_by", "note", "resolved_at",
                          "resolved_by", "escalated_at", "message", "values"}
    _post(client, auth_headers, patient, 1, sbp_mmhg=82)
    assert [a["id"] for a in _rule(client, auth_headers, patient, "sbp_low")] == [alert["id"]]


def test_a_value_hovering_at_the_threshold_does_not_flap_and_clears_beyond_the_band(
        client, auth_headers, patient):
    for i, v in enumerate((89, 91, 89, 93, 89.5)):
        _post(client, auth_headers, patient, 5 - i, sbp_mmhg=v)
        (alert,) = _rule(client, auth_headers, patient, "sbp_low")
        assert alert["status"] == "raised", (v, alert)
    _post(client, auth_headers, patient, 0.1, sbp_mmhg=100)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low")
    assert alert["status"] == "resolved" and alert["resolved_by"] == "system"
    assert _rule(client, auth_headers, patient, "sbp_low", status="open") == []
    # a new low reading afterwards is a new alert
    _post(client, auth_headers, patient, 0.05, sbp_mmhg=85)
    assert len(_rule(client, auth_headers, patient, "sbp_low")) == 2


def test_acknowledge_by_a_named_user_with_a_note_is_audited(app, client, patient):
    with app.app_context():
        token = issue_token("nurse.jones", "read,write")
    headers = {"Authorization": f"Bearer {token}"}
    _post(client, headers, patient, 1, sbp_mmhg=80)
    (alert,) = _rule(client, headers, patient, "sbp_low")
    resp = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge",
                       json={"note": "fluids started, repeat BP in 15 min"}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == "nurse.jones"
    assert body["note"] == "fluids started, repeat BP in 15 min" and body["acknowledged_at"]
    detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=headers).get_json()
    assert [(e["event"], e["actor"]) for e in detail["events"]] == [
        ("raised", "system"), ("acknowledged", "nurse.jones")]
    with app.app_context(), db.new_session() as s:
        ev = s.scalars(select(AlertEvent).where(AlertEvent.event == "acknowledged")).one()
        assert ev.actor == "nurse.jones" and ev.note.startswith("fluids")
        rows = s.scalars(select(AuditEvent).where(
            AuditEvent.path == f"/api/v1/alerts/{alert['id']}/acknowledge")).all()
        assert [(r.actor, r.action, r.status, r.patient_id) for r in rows] == [
            ("nurse.jones", "write", 200, patient)]
    # acknowledged alerts still resolve by themselves when the condition clears
    _post(client, headers, patient, 0.5, sbp_mmhg=120)
    (alert,) = _rule(client, headers, patient, "sbp_low")
    assert alert["status"] == "resolved" and alert["acknowledged_by"] == "nurse.jones"


def test_acknowledging_twice_is_a_409_problem(client, auth_headers, patient):
    _post(client, auth_headers, patient, 1, sbp_mmhg=80)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low")
    url = f"/api/v1/alerts/{alert['id']}/acknowledge"
    assert client.post(url, json={"note": "seen"}, headers=auth_headers).status_code == 200
    resp = client.post(url, json={"note": "seen again"}, headers=auth_headers)
    assert resp.status_code == 409 and resp.mimetype == PROBLEM
    assert "already acknowledged by integrator" in resp.get_json()["detail"]


def test_read_only_token_cannot_acknowledge_and_unknown_alert_is_404(app, client,
                                                                     auth_headers, patient):
    _post(client, auth_headers, patient, 1, sbp_mmhg=80)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low")
    with app.app_context():
        reader = {"Authorization": f"Bearer {issue_token('viewer', 'read')}"}
    assert len(_alerts(client, reader)) >= 1  # reading is allowed
    resp = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "x"},
                       headers=reader)
    assert resp.status_code == 403 and resp.mimetype == PROBLEM
    assert _rule(client, auth_headers, patient, "sbp_low")[0]["status"] == "raised"
    for url in ("/api/v1/alerts/999999/acknowledge", "/api/v1/alerts/999999/resolve"):
        resp = client.post(url, json={}, headers=auth_headers)
        assert resp.status_code == 404 and resp.mimetype == PROBLEM
    assert client.get("/api/v1/alerts/999999", headers=auth_headers).status_code == 404
    with app.app_context(), db.new_session() as s:  # the 404s are audited (no lock held)
        assert s.scalars(select(AuditEvent.status).where(
            AuditEvent.path == "/api/v1/alerts/999999/acknowledge")).all() == [404]


def test_resolve_by_hand_then_twice_is_409(client, auth_headers, patient):
    _post(client, auth_headers, patient, 1, sbp_mmhg=80)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low")
    url = f"/api/v1/alerts/{alert['id']}/resolve"
    resp = client.post(url, json={"note": "cuff artefact"}, headers=auth_headers)
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "resolved"
    assert resp.get_json()["resolved_by"] == "integrator"
    assert client.post(url, headers=auth_headers).status_code == 409
    ack = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=auth_headers)
    assert ack.status_code == 409


def test_bad_queries_and_bodies_are_4xx_problems(client, auth_headers, patient):
    for query in ({"status": "nope"}, {"limit": "x"}, {"limit": 0}):
        resp = client.get("/api/v1/alerts", query_string=query, headers=auth_headers)
        assert resp.status_code == 400 and resp.mimetype == PROBLEM, query
    _post(client, auth_headers, patient, 1, sbp_mmhg=80)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low")
    url = f"/api/v1/alerts/{alert['id']}/acknowledge"
    assert client.post(url, data="{", content_type="application/json",
                       headers=auth_headers).status_code == 400
    assert client.post(url, data="note", content_type="text/plain",
                       headers=auth_headers).status_code == 415
    resp = client.post(url, json={"note": 5}, headers=auth_headers)
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "note"
    assert client.post(url, json={"nope": 1}, headers=auth_headers).status_code == 422
    # NUL characters never reach the database (PostgreSQL refuses them in text)
    assert client.post(url, json={"note": "a\x00b"}, headers=auth_headers).status_code == 422
    assert client.get("/api/v1/alerts?patient_id=a%00b",
                      headers=auth_headers).status_code == 400
    assert client.get("/api/v1/patients/a%00b/alert-overrides",
                      headers=auth_headers).status_code == 400  # a NUL in any URL


def test_escalation_after_the_configured_time_unless_acknowledged(app, client, auth_headers,
                                                                  patient):
    _post(client, auth_headers, patient, 1, sbp_mmhg=80, hr_bpm=140)
    low, = _rule(client, auth_headers, patient, "sbp_low")
    high, = _rule(client, auth_headers, patient, "hr_high")
    client.post(f"/api/v1/alerts/{high['id']}/acknowledge", json={"note": "on it"},
                headers=auth_headers)
    raised = datetime.fromisoformat(low["raised_at"])
    with app.app_context():
        assert service.ruleset().escalate_after_min["urgent"] == 30
        assert service.escalate_due(raised + timedelta(minutes=29)) == []
        done = {a["rule"]: a for a in service.escalate_due(raised + timedelta(minutes=31))}
        assert "hr_high" not in done  # acknowledged
        assert done["sbp_low"]["id"] == low["id"] and done["sbp_low"]["level"] == "critical"
        assert service.escalate_due(raised + timedelta(hours=5)) == []  # critical is the top
    low, = _rule(client, auth_headers, patient, "sbp_low")
    high, = _rule(client, auth_headers, patient, "hr_high")
    assert low["level"] == "critical" and low["escalated_at"]
    assert high["level"] == "urgent" and high["escalated_at"] is None
    events = client.get(f"/api/v1/alerts/{low['id']}", headers=auth_headers).get_json()
    assert [e["event"] for e in events["events"]] == ["raised", "escalated"]
    assert "30 min" in events["events"][1]["note"]


def test_flask_alerts_escalate_command(app, client, auth_headers, patient, runner):
    _post(client, auth_headers, patient, 1, sbp_mmhg=80)
    result = runner.invoke(args=["alerts", "escalate"])
    assert result.exit_code == 0 and "0 alert(s) escalated" in result.output
    assert runner.invoke(args=["alerts", "check-rules"]).exit_code == 0
    result = runner.invoke(args=["alerts", "evaluate"])
    assert result.exit_code == 0 and "1 patient(s) evaluated, 0 alert(s)" in result.output
    result = runner.invoke(args=["alerts", "evaluate", "--forecast", patient])
    assert result.exit_code == 0 and "no forecast" in result.output  # no model bundle here


def test_per_patient_override_changes_the_threshold(client, auth_headers, patient):
    url = f"/api/v1/patients/{patient}/alert-overrides"
    resp = client.put(url, json={"overrides": [{"rule": "sbp_low", "threshold": 80}]},
                      headers=auth_headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["overrides"][0]["rule"] == "sbp_low"
    assert body["overrides"][0]["updated_by"] == "integrator"
    effective = {r["name"]: r for r in body["rules"]}["sbp_low"]
    assert effective["threshold"] == 80 and effective["clear"] == 85  # band moves along
    _post(client, auth_headers, patient, 2, sbp_mmhg=84)
    assert _rule(client, auth_headers, patient, "sbp_low") == []
    _post(client, auth_headers, patient, 1, sbp_mmhg=79)
    assert len(_rule(client, auth_headers, patient, "sbp_low", status="open")) == 1
    # another patient keeps the file's threshold
    other = client.post("/api/v1/patients", json={"age": 50},
                        headers=auth_headers).get_json()["id"]
    _post(client, auth_headers, other, 1, sbp_mmhg=84)
    assert len(_rule(client, auth_headers, other, "sbp_low")) == 1
    # disabling the rule resolves the open alert
    client.put(url, json={"overrides": [{"rule": "sbp_low", "enabled": False}]},
               headers=auth_headers)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low")
    assert alert["status"] == "resolved"


def test_overrides_are_validated_against_the_rules(client, auth_headers, patient):
    url = f"/api/v1/patients/{patient}/alert-overrides"
    cases = [({"overrides": [{"rule": "no_such_rule", "threshold": 1}]}, "overrides[0].rule"),
             ({"overrides": [{"rule": "sbp_low", "threshold": 90, "clear": 80}]},
              "overrides[0].clear"),
             ({"overrides": [{"rule": "news2_single_parameter_3", "threshold": 2}]},
              "overrides[0].threshold"),
             ({"overrides": [{"rule": "sbp_low"}, {"rule": "sbp_low"}]}, "overrides[1].rule"),
             ({"overrides": [{"rule": "sbp_low", "threshold": "low"}]},
              "overrides[0].threshold")]
    for body, field in cases:
        resp = client.put(url, json=body, headers=auth_headers)
        assert resp.status_code == 422, (body, resp.get_json())
        assert resp.get_json()["errors"][0]["field"] == field
    assert client.put("/api/v1/patients/p-nobody/alert-overrides", json={"overrides": []},
                      headers=auth_headers).status_code == 404
    assert client.get(url, headers=auth_headers).get_json()["overrides"] == []


def test_news2_rules_on_the_latest_set(client, auth_headers, patient):
    # RR 25 (3), SpO2 93 (2), air (0), SBP 105 (1), HR 115 (2), A (0), 38.5 (1): NEWS2 9
    _post(client, auth_headers, patient, 3, rr_per_min=25, spo2_pct=93, on_oxygen=0,
          sbp_mmhg=105, hr_bpm=115, acvpu=0, temp_c=38.5)
    high, = _rule(client, auth_headers, patient, "news2_high")
    assert high["level"] == "critical" and high["values"]["score"] == 9
    assert high["values"]["complete"] is True
    # one NEWS2 alert: news2_high replaces news2_medium and the single-parameter trigger
    assert _rule(client, auth_headers, patient, "news2_medium") == []
    assert _rule(client, auth_headers, patient, "news2_single_parameter_3") == []
    # a partial set cannot clear it ...
    _post(client, auth_headers, patient, 2, hr_bpm=80)
    assert _rule(client, auth_headers, patient, "news2_high")[0]["status"] == "raised"
    # ... a complete normal one does
    _post(client, auth_headers, patient, 1, rr_per_min=16, spo2_pct=97, on_oxygen=0,
          sbp_mmhg=125, hr_bpm=75, acvpu=0, temp_c=37.0)
    for rule in ("news2_high", "news2_medium", "news2_single_parameter_3", "rr_high"):
        assert all(a["status"] == "resolved" for a in
                   _rule(client, auth_headers, patient, rule)), rule


def test_open_alerts_for_the_status_service(app, client, auth_headers, patient):
    _post(client, auth_headers, patient, 1, sbp_mmhg=80, hr_bpm=140)
    with app.test_request_context():
        pairs = service.open_alerts(patient)
    assert ("sbp_low", "urgent") in pairs and ("hr_high", "urgent") in pairs
    # SBP 80 and HR 140 score 3 each: the partial NEWS2 is already 6 (news2_medium, which
    # replaces the single-parameter trigger)
    assert {r for r, _lv in pairs} == {"sbp_low", "hr_high", "news2_medium"}


def test_forecast_rule_on_the_interval_edge(app):
    with app.app_context():
        rule = service.ruleset().rules["forecast_sbp_low"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    times = [(now + timedelta(hours=h)).isoformat() for h in (0, 12, 24, 48)]

    def fc(lower):
        return {"endpoints": {"sbp_mmhg": {"times": times, "lower": lower,
                                           "median": [100.0] * 4, "upper": [130.0] * 4}}}

    assert conditions.forecast_edge(rule, fc([95, 88, 93, 70]), now).state == "met"
    assert conditions.forecast_edge(rule, fc([95, 92, 93, 70]), now).state == "unknown"
    assert conditions.forecast_edge(rule, fc([97, 96, 99, 70]), now).state == "cleared"
    assert conditions.forecast_edge(rule, None, now).state == "unknown"


def test_the_deteriorating_patient_raises_sbp_falling_then_acknowledged_and_audited(
        app, client, auth_headers, patient):
    """96/58, HR 124, falling for 40 h: no single threshold is crossed (NEWS2 so far 4), the
    trend rules raise; acknowledging is in the event trail and the audit log."""
    for h, sbp, hr in ((40, 148, 104), (26, 138, None), (12, 118, None), (0.5, 96, 124)):
        _post(client, auth_headers, patient, h, sbp_mmhg=sbp,
              **({} if hr is None else {"hr_bpm": hr}))
    assert _rule(client, auth_headers, patient, "sbp_low") == []
    (fall,) = _rule(client, auth_headers, patient, "sbp_falling", status="open")
    assert fall["level"] == "urgent" and fall["values"]["robust_change"] >= 20
    assert "sbp_mmhg falling" in fall["message"]
    assert _rule(client, auth_headers, patient, "news2_medium") == []  # NEWS2 so far 4
    resp = client.post(f"/api/v1/alerts/{fall['id']}/acknowledge",
                       json={"note": "registrar informed"}, headers=auth_headers)
    assert resp.status_code == 200
    with app.app_context(), db.new_session() as s:
        events = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == fall["id"])
                           .order_by(AlertEvent.id)).all()
        assert [(e.event, e.actor) for e in events] == [("raised", "system"),
                                                        ("acknowledged", "integrator")]
        assert s.scalars(select(AuditEvent).where(
            AuditEvent.path == f"/api/v1/alerts/{fall['id']}/acknowledge",
            AuditEvent.patient_id == patient)).one().actor == "integrator"
    # a steady SBP afterwards clears the trend
    for h in (0.4, 0.3, 0.2, 0.1, 0.05, 0.02):
        _post(client, auth_headers, patient, h, sbp_mmhg=120, hr_bpm=80)
    assert _rule(client, auth_headers, patient, "sbp_falling")[0]["status"] == "resolved"


def test_concurrent_acknowledgements_one_wins_the_others_409(app, client, auth_headers,
                                                              patient):
    import threading

    _post(client, auth_headers, patient, 1, sbp_mmhg=80)
    (alert,) = _rule(client, auth_headers, patient, "sbp_low")
    codes: list[int] = []
    barrier = threading.Barrier(4)

    def ack(i: int) -> None:
        c = app.test_client()
        barrier.wait()
        codes.append(c.post(f"/api/v1/alerts/{alert['id']}/acknowledge",
                            json={"note": f"nurse {i}"}, headers=auth_headers).status_code)

    threads = [threading.Thread(target=ack, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409, 409, 409]
    events = client.get(f"/api/v1/alerts/{alert['id']}", headers=auth_headers).get_json()
    assert [e["event"] for e in events["events"]] == ["raised", "acknowledged"]
