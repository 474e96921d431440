"""Patient details with history, discharge and readmission (issue 14 point 4): an edit is
recorded per field with old, new and who; a discharged patient leaves the ward and the
default patient list, is found with status=discharged and on the Discharged page, and takes
no readings or regimen (409 ``patient-discharged``; a clinical message on the page) until
readmitted; every step is audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import db
from app.models import AuditEvent, PatientChange


def _iso(hours_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0).isoformat()


def _admit(client, h, **body) -> str:
    resp = client.post("/api/v1/patients", json={"age": 70, **body}, headers=h)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def _obs(client, h, pid, value=80.0):
    return client.post(f"/api/v1/patients/{pid}/observations", headers=h, json={
        "observations": [{"time": _iso(1), "code": "hr_bpm", "value": value, "unit": "/min"}]})


def _regimen(client, h, pid):
    return client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
        "drug": "benazepril", "dose_mg": 5, "interval_h": 24, "start": _iso(1)})


def _ids(client, h, query: str = "") -> list[str]:
    resp = client.get(f"/api/v1/patients{query}", headers=h)
    assert resp.status_code == 200, resp.get_json()
    return [p["id"] for p in resp.get_json()["items"]]


def _audit_details(app, pid) -> list[dict]:
    with app.app_context(), db.new_session() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.patient_id == pid,
                                                  AuditEvent.detail.is_not(None))
                         .order_by(AuditEvent.id)).all()
        return [{**json.loads(r.detail), "actor": r.actor} for r in rows]


@pytest.fixture
def pid(client, auth_headers) -> str:
    return _admit(client, auth_headers, external_id="MRN-Ab12")


def test_edit_records_history_with_old_new_and_actor(app, client, auth_headers, pid):
    before = client.get(f"/api/v1/patients/{pid}", headers=auth_headers).get_json()
    assert before["admission_status"] == "admitted" and before["discharged_at"] is None
    resp = client.patch(f"/api/v1/patients/{pid}", headers=auth_headers,
                        json={"age": 72, "renal_function": "impaired", "glucose": "normal"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["version"] == before["version"] + 1
    client.patch(f"/api/v1/patients/{pid}", headers=auth_headers, json={"infected": True})
    hist = client.get(f"/api/v1/patients/{pid}/history", headers=auth_headers)
    assert hist.status_code == 200
    body = hist.get_json()
    assert body["total"] == 3  # glucose did not change: no row
    assert [(c["field"], c["old"], c["new"], c["actor"]) for c in body["items"]] == [
        ("infected", "no", "yes", "integrator"),
        ("renal_function", "normal", "impaired", "integrator"),
        ("age", "70", "72", "integrator")]
    times = [datetime.fromisoformat(c["time"]) for c in body["items"]]
    assert times == sorted(times, reverse=True)
    audits = _audit_details(app, pid)
    assert audits[0] == {"event": "details-changed", "fields": ["age", "renal_function"],
                         "actor": "integrator"}
    assert audits[1]["fields"] == ["infected"]


def test_history_of_unknown_patient_is_404(client, auth_headers):
    resp = client.get("/api/v1/patients/p-nobody/history", headers=auth_headers)
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


def test_discharge_list_refuse_writes_readmit(app, client, auth_headers, pid):
    other = _admit(client, auth_headers)
    assert _obs(client, auth_headers, pid).status_code == 201
    version = client.get(f"/api/v1/patients/{pid}", headers=auth_headers).get_json()["version"]
    resp = client.post(f"/api/v1/patients/{pid}/discharge", headers=auth_headers)
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert out["admission_status"] == "discharged" and out["discharged_at"]
    assert out["version"] == version + 1  # caches and live pages refresh

    assert _ids(client, auth_headers) == [other]  # default: admitted only
    assert _ids(client, auth_headers, "?status=admitted") == [other]
    assert _ids(client, auth_headers, "?status=discharged") == [pid]
    assert set(_ids(client, auth_headers, "?status=all")) == {pid, other}
    assert _ids(client, auth_headers, "?status=discharged&q=mrn-ab") == [pid]
    assert _ids(client, auth_headers, f"?status=all&q={pid[2:8].upper()}") == [pid]
    assert _ids(client, auth_headers, "?status=discharged&q=zz%25") == []
    listed = client.get("/api/v1/patients?status=all", headers=auth_headers).get_json()
    assert listed["total"] == 2

    # reads keep working
    assert client.get(f"/api/v1/patients/{pid}", headers=auth_headers).status_code == 200
    assert client.get(f"/api/v1/patients/{pid}/observations",
                      headers=auth_headers).get_json()["total"] == 1

    # writes are refused in clinical words
    for resp in (_obs(client, auth_headers, pid, 81), _regimen(client, auth_headers, pid),
                 client.patch(f"/api/v1/patients/{pid}", json={"age": 75},
                              headers=auth_headers),
                 client.post(f"/api/v1/patients/{pid}/observation-sets", headers=auth_headers,
                             json={"time": _iso(0.5), "hr_bpm": 80}),
                 client.post(f"/api/v1/patients/{pid}/discharge", headers=auth_headers)):
        assert resp.status_code == 409, resp.get_json()
        problem = resp.get_json()
        assert resp.mimetype == "application/problem+json"
        assert problem["type"] == "patient-discharged"
        assert "discharged on" in problem["detail"]
    assert "readmit them to record readings" in _obs(client, auth_headers, pid).get_json()[
        "detail"]
    assert client.get(f"/api/v1/patients/{pid}/observations",
                      headers=auth_headers).get_json()["total"] == 1  # nothing stored

    resp = client.post(f"/api/v1/patients/{pid}/readmit", headers=auth_headers)
    assert resp.status_code == 200
    assert resp.get_json()["admission_status"] == "admitted"
    assert resp.get_json()["discharged_at"] is None
    assert set(_ids(client, auth_headers)) == {pid, other}
    assert _obs(client, auth_headers, pid, 82).status_code == 201
    assert _regimen(client, auth_headers, pid).status_code == 200
    again = client.post(f"/api/v1/patients/{pid}/readmit", headers=auth_headers)
    assert again.status_code == 409 and again.get_json()["type"] == "patient-admitted"

    hist = client.get(f"/api/v1/patients/{pid}/history", headers=auth_headers).get_json()
    assert [(c["field"], c["old"], c["new"]) for c in hist["items"]] == [
        ("status", "discharged", "admitted"), ("status", "admitted", "discharged")]
    events = [a["event"] for a in _audit_details(app, pid)]
    assert events == ["discharged", "admitted"]


def test_discharge_at_a_given_time(client, auth_headers, pid):
    when = _iso(3)
    resp = client.post(f"/api/v1/patients/{pid}/discharge", headers=auth_headers,
                       json={"time": when})
    assert resp.status_code == 200, resp.get_json()
    assert datetime.fromisoformat(resp.get_json()["discharged_at"]) == datetime.fromisoformat(
        when)


@pytest.mark.parametrize("body, status", [
    ({"time": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}, 422),
    ({"time": "2026-01-01T08:00:00"}, 422),  # no timezone
    ({"when": "2026-01-01T08:00:00Z"}, 422),
    ("not json", 400),
])
def test_bad_discharge_body(client, auth_headers, pid, body, status):
    if isinstance(body, str):
        resp = client.post(f"/api/v1/patients/{pid}/discharge", data=body,
                           headers={**auth_headers, "Content-Type": "application/json"})
    else:
        resp = client.post(f"/api/v1/patients/{pid}/discharge", json=body,
                           headers=auth_headers)
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert client.get(f"/api/v1/patients/{pid}",
                      headers=auth_headers).get_json()["admission_status"] == "admitted"


@pytest.mark.parametrize("query", ["?status=gone", "?status=", "?status=ADMITTED"])
def test_bad_status_is_400(client, auth_headers, query):
    resp = client.get(f"/api/v1/patients{query}", headers=auth_headers)
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["errors"][0]["field"] == "status"


def test_read_token_cannot_discharge(app, client, pid):
    from app.auth import issue_token

    with app.app_context():
        token = issue_token("reader", "read")
    h = {"Authorization": f"Bearer {token}"}
    assert client.post(f"/api/v1/patients/{pid}/discharge", headers=h).status_code == 403
    assert client.get(f"/api/v1/patients/{pid}/history", headers=h).status_code == 200


def test_openapi_documents_admission(client, auth_headers):
    spec = client.get("/api/v1/openapi.json", headers=auth_headers).get_json()
    for path in ("history", "discharge", "readmit"):
        assert f"/api/v1/patients/{{patient_id}}/{path}" in spec["paths"]
    params = {p["name"]: p for p in spec["paths"]["/api/v1/patients"]["get"]["parameters"]}
    assert params["status"]["schema"]["enum"] == ["admitted", "discharged", "all"]
    assert "q" in params
    out = spec["components"]["schemas"]["PatientOut"]["properties"]
    assert "admission_status" in out and "discharged_at" in out


# --- pages ------------------------------------------------------------------------------------


def _page_admit(client, csrf, age="64", external_id="") -> str:
    resp = client.post("/patients/new", data={"csrf_token": csrf, "age": age,
                                              "renal_function": "normal", "glucose": "normal",
                                              "external_id": external_id})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp.headers["Location"].rsplit("/", 1)[-1]


def _details_form(csrf, **changes) -> dict[str, str]:
    return {"csrf_token": csrf, "age": "64", "renal_function": "normal", "glucose": "normal",
            "glucose_mmol_per_l": "", "infection_onset": "", "external_id": "",
            "spo2_scale": "1", **changes}


def test_page_edits_details_and_shows_the_history(app, log_in):
    client, csrf = log_in(app, "dr-edit")
    pid = _page_admit(client, csrf)
    page = client.get(f"/patients/{pid}/details")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="age"' in html and 'value="64"' in html and "No changes yet." in html
    assert f"/patients/{pid}/details" in client.get(f"/patients/{pid}").get_data(as_text=True)

    resp = client.post(f"/patients/{pid}/details",
                       data=_details_form(csrf, age="71", renal_function="impaired",
                                          external_id="BED-7"))
    assert resp.status_code == 302
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    table = html[html.index('id="history-table"'):]
    assert "Age (years)" in table and "<td>64</td>" in table and "<td>71</td>" in table
    assert "Renal function" in table and "impaired" in table and "BED-7" in table
    assert "dr-edit" in table
    with app.app_context(), db.new_session() as s:
        rows = s.scalars(select(PatientChange).where(PatientChange.patient_id == pid)).all()
    assert {(r.field, r.old_value, r.new_value, r.actor) for r in rows} == {
        ("age", "64", "71", "dr-edit"), ("renal_function", "normal", "impaired", "dr-edit"),
        ("external_id", None, "BED-7", "dr-edit")}
    assert _audit_details(app, pid)[0]["actor"] == "dr-edit"


@pytest.mark.parametrize("changes, words", [
    ({"age": "12"}, "Age must be a number of years between 18 and 110."),
    ({"age": "old"}, "Age must be a number of years between 18 and 110."),
    ({"age": ""}, "Age is required."),
    ({"glucose": "fixed", "glucose_mmol_per_l": "55"}, "A fixed glucose must be a number"),
    ({"glucose": "fixed"}, "Enter the fixed glucose in mmol/L"),
    ({"external_id": "has space"}, "The external pseudonym may have up to 64 letters"),
    ({"infection_onset": "2999-01-01T08:00"}, "Infection onset must be a date and time, "
                                              "not in the future."),
])
def test_page_refuses_bad_details_in_clinical_words_keeping_values(app, log_in, changes,
                                                                   words):
    client, csrf = log_in(app)
    pid = _page_admit(client, csrf)
    resp = client.post(f"/patients/{pid}/details",
                       data=_details_form(csrf, renal_function="impaired", **changes))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert words in html
    assert '<option value="impaired" selected>' in html  # the values are kept
    for value in changes.values():
        if value:
            assert f'value="{value}"' in html or value == "fixed"
    assert client.get(f"/api/v1/patients/{pid}").get_json()["renal_function"] == "normal"


def test_page_external_id_taken_is_a_clinical_409(app, log_in):
    client, csrf = log_in(app)
    _page_admit(client, csrf, external_id="MRN-1")
    pid = _page_admit(client, csrf)
    resp = client.post(f"/patients/{pid}/details", data=_details_form(csrf, external_id="MRN-1"))
    assert resp.status_code == 409
    assert "already used by another patient" in resp.get_data(as_text=True)


def test_page_discharge_ward_search_refusals_and_readmit(app, log_in):
    client, csrf = log_in(app, "dr-out")
    pid = _page_admit(client, csrf, external_id="MRN-Zed9")
    stay = _page_admit(client, csrf)
    assert pid in client.get("/").get_data(as_text=True)

    unconfirmed = client.post(f"/patients/{pid}/discharge", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422
    assert "Tick the box to confirm" in unconfirmed.get_data(as_text=True)
    no_csrf = client.post(f"/patients/{pid}/discharge", data={"confirm": "on"})
    assert no_csrf.status_code == 400
    future = client.post(f"/patients/{pid}/discharge", data={
        "csrf_token": csrf, "confirm": "on", "time": "2999-01-01T08:00"})
    assert future.status_code == 422 and "not in the future" in future.get_data(as_text=True)
    assert client.get(f"/api/v1/patients/{pid}").get_json()["admission_status"] == "admitted"

    resp = client.post(f"/patients/{pid}/discharge",
                       data={"csrf_token": csrf, "confirm": "on"})
    assert resp.status_code == 302
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="discharged-notice"' in html and 'id="readmit-form"' in html
    assert "<fieldset disabled>" in html

    ward = client.get("/").get_data(as_text=True)
    assert pid not in ward and stay in ward
    assert client.get(f"/ward/rows/{pid}").status_code == 404  # live.js drops the row
    assert client.get(f"/ward/rows/{stay}").status_code == 200
    assert "Discharged</a>" in ward  # the nav link
    listed = client.get("/discharged").get_data(as_text=True)
    assert pid in listed and stay not in listed and "MRN-Zed9" in listed
    assert pid in client.get("/discharged?q=zed9").get_data(as_text=True)
    assert pid in client.get(f"/discharged?q={pid[-6:].upper()}").get_data(as_text=True)
    none = client.get("/discharged?q=nobody").get_data(as_text=True)
    assert pid not in none and "No discharged patient matches" in none
    assert client.get(f"/patients/{pid}").status_code == 200  # still readable

    # writes on the patient page are refused in clinical words
    obs = client.post(f"/patients/{pid}/observations", data={
        "csrf_token": csrf, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"),
        "hr_bpm": "80"})
    assert obs.status_code == 422
    assert "This patient was discharged on" in obs.get_data(as_text=True)
    assert "readmit them to record readings" in obs.get_data(as_text=True)
    reg = client.post(f"/patients/{pid}/regimen", data={
        "csrf_token": csrf, "drug": "benazepril", "dose_mg": "5", "interval_h": "24",
        "start": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")})
    assert reg.status_code == 422 and "This patient was discharged on" in reg.get_data(
        as_text=True)
    edit = client.post(f"/patients/{pid}/details", data=_details_form(csrf, age="70"))
    assert edit.status_code == 409
    assert "This patient was discharged on" in edit.get_data(as_text=True)
    assert client.get(f"/api/v1/patients/{pid}/observations").get_json()["total"] == 0

    back = client.post(f"/patients/{pid}/readmit", data={"csrf_token": csrf, "confirm": "on"})
    assert back.status_code == 302 and back.headers["Location"].endswith(f"/patients/{pid}")
    assert pid in client.get("/").get_data(as_text=True)
    assert pid not in client.get("/discharged").get_data(as_text=True)
    events = [(a["event"], a["actor"]) for a in _audit_details(app, pid)]
    assert events == [("discharged", "dr-out"), ("admitted", "dr-out")]
    hist = client.get(f"/patients/{pid}/details").get_data(as_text=True)
    assert hist.count("<td>Admission</td>") == 2


def test_details_page_of_unknown_patient_is_404(app, log_in):
    client, _ = log_in(app)
    assert client.get("/patients/p-nobody/details").status_code == 404


def test_pages_need_login(client):
    assert client.get("/discharged").status_code == 302
    assert client.get("/patients/p-x/details").status_code == 302
