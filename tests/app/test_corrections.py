"""Corrections through the API (issue 14): a reading marked entered in error is kept and
listed (JSON and FHIR) with its status, audited, and left out of the forecast, NEWS2 and the
status; unknown ids are 404, a bad status 422, marking twice changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import db
from app.models import AuditEvent, Observation


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0).isoformat()


def _post(client, h, pid, readings) -> list[dict]:
    obs = [{"time": t, "code": c, "value": v, "unit": u} for t, c, v, u in readings]
    resp = client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=h)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["items"]


def _mark(client, h, pid, obs_id, body=None):
    return client.patch(f"/api/v1/patients/{pid}/observations/{obs_id}",
                        json={"status": "entered-in-error"} if body is None else body,
                        headers=h)


@pytest.fixture
def pid(client, auth_headers) -> str:
    return client.post("/api/v1/patients", json={"age": 70},
                       headers=auth_headers).get_json()["id"]


def test_listed_observations_carry_id_and_status(client, auth_headers, pid):
    items = _post(client, auth_headers, pid, [(_iso(1), "hr_bpm", 80, "/min")])
    assert items[0]["status"] == "final" and isinstance(items[0]["id"], int)
    listed = client.get(f"/api/v1/patients/{pid}/observations",
                        headers=auth_headers).get_json()["items"]
    assert [(o["id"], o["status"]) for o in listed] == [(items[0]["id"], "final")]


def test_mark_entered_in_error_keeps_lists_and_audits(app, client, auth_headers, pid):
    items = _post(client, auth_headers, pid, [(_iso(2), "hr_bpm", 80, "/min"),
                                              (_iso(1), "hr_bpm", 190, "/min")])
    wrong = items[1]["id"]
    version = client.get(f"/api/v1/patients/{pid}", headers=auth_headers).get_json()["version"]
    resp = _mark(client, auth_headers, pid, wrong)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "entered-in-error" and resp.get_json()["id"] == wrong
    assert client.get(f"/api/v1/patients/{pid}",
                      headers=auth_headers).get_json()["version"] == version + 1
    listed = client.get(f"/api/v1/patients/{pid}/observations",
                        headers=auth_headers).get_json()
    assert listed["total"] == 2
    assert {o["id"]: o["status"] for o in listed["items"]} == {
        items[0]["id"]: "final", wrong: "entered-in-error"}
    fhir = client.get(f"/api/v1/patients/{pid}/observations",
                      headers={**auth_headers, "Accept": "application/fhir+json"}).get_json()
    assert {e["resource"]["id"]: e["resource"]["status"] for e in fhir["entry"]} == {
        str(items[0]["id"]): "final", str(wrong): "entered-in-error"}

    again = _mark(client, auth_headers, pid, wrong)  # idempotent: no new version, no new row
    assert again.status_code == 200 and again.get_json()["status"] == "entered-in-error"
    assert client.get(f"/api/v1/patients/{pid}",
                      headers=auth_headers).get_json()["version"] == version + 1
    with app.app_context(), db.new_session() as s:
        assert s.get(Observation, wrong).value == 190  # kept
        rows = s.scalars(select(AuditEvent).where(AuditEvent.patient_id == pid,
                                                  AuditEvent.detail.is_not(None))).all()
    assert len(rows) == 1
    detail = json.loads(rows[0].detail)
    assert detail == {"event": "entered-in-error", "observation_id": wrong, "code": "hr_bpm",
                      "time": detail["time"]}
    assert rows[0].actor == "integrator" and rows[0].method == "PATCH"
    assert "190" not in rows[0].detail  # ids and codes, never values


@pytest.mark.parametrize("obs_id", ["999999", "abc", "0", "-1", "1e3", "99999999999999999999"])
def test_unknown_observation_is_404_problem(client, auth_headers, pid, obs_id):
    resp = _mark(client, auth_headers, pid, obs_id)
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["errors"][0]["field"] == "observation_id"


def test_another_patients_observation_is_404(client, auth_headers, pid):
    other = client.post("/api/v1/patients", json={"age": 50},
                        headers=auth_headers).get_json()["id"]
    obs_id = _post(client, auth_headers, other, [(_iso(1), "hr_bpm", 80, "/min")])[0]["id"]
    assert _mark(client, auth_headers, pid, obs_id).status_code == 404
    assert _mark(client, auth_headers, "p-nobody", obs_id).status_code == 404


@pytest.mark.parametrize("body", [{"status": "final"}, {"status": "deleted"}, {"status": 1},
                                  {}, {"status": "entered-in-error", "value": 3}, []])
def test_bad_status_is_422_problem(client, auth_headers, pid, body):
    obs_id = _post(client, auth_headers, pid, [(_iso(1), "hr_bpm", 80, "/min")])[0]["id"]
    resp = _mark(client, auth_headers, pid, obs_id, body)
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    listed = client.get(f"/api/v1/patients/{pid}/observations",
                        headers=auth_headers).get_json()["items"]
    assert listed[0]["status"] == "final"


def test_read_token_cannot_mark(app, client, pid, auth_headers):
    from app.auth import issue_token

    with app.app_context():
        token = issue_token("reader", "read")
    obs_id = _post(client, auth_headers, pid, [(_iso(1), "hr_bpm", 80, "/min")])[0]["id"]
    resp = _mark(client, {"Authorization": f"Bearer {token}"}, pid, obs_id)
    assert resp.status_code == 403


def test_marked_set_reading_leaves_news2_and_status(client, auth_headers, pid):
    base = {"respiratory_rate_per_min": 16, "spo2_pct": 97, "supplemental_oxygen": False,
            "sbp_mmhg": 125, "dbp_mmhg": 75, "consciousness": "A", "temperature_c": 37.0}
    ok = client.post(f"/api/v1/patients/{pid}/observation-sets", headers=auth_headers,
                     json={"time": _iso(1), **base, "hr_bpm": 80})
    assert ok.status_code == 201, ok.get_json()
    wild = client.post(f"/api/v1/patients/{pid}/observation-sets", headers=auth_headers,
                       json={"time": _iso(0.5), **base, "hr_bpm": 150})
    assert wild.status_code == 201
    news2 = client.get(f"/api/v1/patients/{pid}/news2", headers=auth_headers).get_json()
    assert news2["latest"]["hr_bpm"] == 150 and news2["latest"]["components"]["hr_bpm"] == 3
    # mark every reading of the wild set: the earlier set is the latest again
    for item in wild.get_json()["items"]:
        assert _mark(client, auth_headers, pid, item["id"]).status_code == 200
    news2 = client.get(f"/api/v1/patients/{pid}/news2", headers=auth_headers).get_json()
    assert news2["latest"]["hr_bpm"] == 80 and news2["latest"]["score"] == 0
    assert len(news2["history"]) == 1
    status = client.get(f"/api/v1/patients/{pid}/status", headers=auth_headers).get_json()
    assert all("150" not in r["message"] for r in status["reasons"])


def test_a_wild_reading_marked_in_error_no_longer_moves_the_forecast(model_app):
    from app.auth import issue_token

    with model_app.app_context():
        h = {"Authorization": f"Bearer {issue_token('clin', 'read,write')}"}
    client = model_app.test_client()
    pid = client.post("/api/v1/patients", json={"age": 66}, headers=h).get_json()["id"]
    _post(client, h, pid, [(_iso(k), code, v, "mm[Hg]") for k in (12, 6, 3)
                           for code, v in (("sbp_mmhg", 130), ("dbp_mmhg", 80))])
    wild = _post(client, h, pid, [(_iso(1), "sbp_mmhg", 240, "mm[Hg]"),
                                  (_iso(1), "dbp_mmhg", 80, "mm[Hg]")])
    sbp = client.get(f"/api/v1/patients/{pid}/forecast",
                     headers=h).get_json()["endpoints"]["sbp_mmhg"]
    assert sbp["median"][0] == pytest.approx(240, abs=1)  # persistence carries the last SBP
    assert _mark(client, h, pid, wild[0]["id"]).status_code == 200
    fc = client.get(f"/api/v1/patients/{pid}/forecast", headers=h).get_json()
    assert fc["endpoints"]["sbp_mmhg"]["median"][0] == pytest.approx(130, abs=1)


def test_openapi_documents_the_correction(client, auth_headers):
    spec = client.get("/api/v1/openapi.json", headers=auth_headers).get_json()
    op = spec["paths"]["/api/v1/patients/{patient_id}/observations/{observation_id}"]["patch"]
    assert {"200", "404", "422"} <= set(op["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["ObservationStatusIn"]["properties"]["status"]["const"] == "entered-in-error"
    assert set(schemas["ObservationOut"]["properties"]["status"]["enum"]) == {
        "final", "entered-in-error"}


def test_page_marks_a_reading_struck_through_and_audited(model_app):
    runner = model_app.test_cli_runner()
    runner.invoke(args=["create-user", "dr-c", "--password-stdin"], input="wrong-bed-3\n")
    client = model_app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    client.post("/login", data={"username": "dr-c", "password": "wrong-bed-3",
                                "csrf_token": csrf})
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    pid = client.post("/patients/new", data={"age": "60", "csrf_token": csrf}
                      ).location.rsplit("/", 1)[-1]
    when = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert client.post(f"/patients/{pid}/observations", data={
        "time": when, "sbp_mmhg": "212", "dbp_mmhg": "90", "csrf_token": csrf}
    ).status_code == 302
    with model_app.app_context(), db.new_session() as s:
        sbp = s.scalars(select(Observation).where(Observation.patient_id == pid,
                                                  Observation.code == "sbp_mmhg")).one()
    url = f"/patients/{pid}/observations/{sbp.id}/entered-in-error"
    assert client.post(url).status_code in (400, 403)  # no CSRF token: refused
    resp = client.post(url, data={"csrf_token": csrf})
    assert resp.status_code == 302 and resp.location.endswith(f"/patients/{pid}#observations")
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    row = page[page.index(f'id="obs-{sbp.id}"'):]
    row = row[:row.index("</tr>")]
    assert 'class="entered-in-error"' in row and "<del>212</del>" in row
    assert "entered in error" in row and "Mark entered in error" not in row
    assert client.post(f"/patients/{pid}/observations/424242/entered-in-error",
                       data={"csrf_token": csrf}).status_code == 404
    with model_app.app_context(), db.new_session() as s:
        audit = s.scalars(select(AuditEvent).where(AuditEvent.patient_id == pid,
                                                   AuditEvent.detail.is_not(None))).one()
    assert audit.actor == "dr-c" and json.loads(audit.detail)["observation_id"] == sbp.id
