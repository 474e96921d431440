"""The deteriorating patient of issues 11 and 13, walked through the API as an integrator's
system and a nurse would: readings posted -> status urgent or worse naming the falling SBP ->
an open alert -> acknowledged by a named user with a note -> every step in the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app import db
from app.models import AlertEvent, AuditEvent
from app.services import flush_audit

#: (hours ago, SBP, DBP, HR): 148/88 -> 96/58 over 40 h, HR 104 -> 124 (issue 11)
READINGS = [(40, 148, 88, 104), (26, 138, 80, 110), (12, 118, 70, 116), (0.5, 96, 58, 124)]


def test_deteriorating_patient_walk(app, client, auth_headers):
    h = auth_headers
    pid = client.post("/api/v1/patients", json={"age": 58, "infected": True},
                      headers=h).get_json()["id"]
    for hours_ago, sbp, dbp, hr in READINGS:
        t = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
        resp = client.post(f"/api/v1/patients/{pid}/observation-sets", headers=h,
                           json={"time": t, "sbp_mmhg": sbp, "dbp_mmhg": dbp, "hr_bpm": hr})
        assert resp.status_code == 201, resp.get_json()

    status = client.get(f"/api/v1/patients/{pid}", headers=h).get_json()["status"]
    assert status["level"] in ("urgent", "critical"), status
    falling = [r for r in status["reasons"] if r["rule"] == "sbp_falling"]
    assert falling and "96" in falling[0]["message"], status["reasons"]

    alerts = client.get(f"/api/v1/alerts?status=open&patient_id={pid}",
                        headers=h).get_json()["alerts"]
    assert alerts, "the deteriorating patient raised no alert"
    alert = next((a for a in alerts if a["rule"] == "sbp_falling"), alerts[0])
    assert alert["status"] == "raised" and alert["level"] in ("urgent", "critical")

    note = "reviewed, fluid bolus given, registrar informed"
    ack = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": note},
                      headers=h)
    assert ack.status_code == 200, ack.get_json()
    assert ack.get_json()["acknowledged_by"] == "integrator"
    assert ack.get_json()["status"] == "acknowledged" and ack.get_json()["note"] == note
    again = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "x"},
                        headers=h)
    assert again.status_code == 409

    # the acknowledged alert still counts: the status does not hide the deterioration
    status = client.get(f"/api/v1/patients/{pid}", headers=h).get_json()["status"]
    assert status["level"] in ("urgent", "critical")

    with app.app_context():
        flush_audit()  # reads are audited in batches
    with app.app_context(), db.new_session() as s:
        events = s.execute(select(AlertEvent.event, AlertEvent.actor, AlertEvent.note)
                           .where(AlertEvent.alert_id == alert["id"])
                           .order_by(AlertEvent.id)).all()
        requests = s.execute(select(AuditEvent.action, AuditEvent.path, AuditEvent.actor)
                             .where(AuditEvent.patient_id == pid)).all()
    assert [e.event for e in events][:2] == ["raised", "acknowledged"]
    assert events[1].actor == "integrator" and events[1].note == note
    writes = [r for r in requests if r.action == "write"]
    assert len([r for r in writes if r.path.endswith("/observation-sets")]) == len(READINGS)
    assert any(r.action == "read" and r.path == f"/api/v1/patients/{pid}" for r in requests)
    assert all(r.actor == "integrator" for r in requests)
