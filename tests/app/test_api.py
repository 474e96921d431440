"""API v1 on the test client: patients, observations (JSON and FHIR), regimen, bad input."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import db
from app.models import Observation, Patient

PROBLEM = "application/problem+json"


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def _count(app, model) -> int:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def patient(client, auth_headers) -> str:
    resp = client.post("/api/v1/patients", json={"age": 64, "renal_function": "impaired",
                                                 "glucose": 7.5, "external_id": "ward3-bed7"},
                       headers=auth_headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def test_create_and_get_patient(client, auth_headers, patient):
    body = client.get(f"/api/v1/patients/{patient}", headers=auth_headers).get_json()
    assert body["id"] == patient
    assert body["age"] == 64 and body["renal_function"] == "impaired"
    assert body["glucose"] == 7.5 and body["external_id"] == "ward3-bed7"
    assert body["regimen"] is None
    assert "name" not in body and "birth_date" not in body


def test_patient_paging(client, auth_headers):
    for age in range(30, 37):
        client.post("/api/v1/patients", json={"age": age}, headers=auth_headers)
    page = client.get("/api/v1/patients?limit=3", headers=auth_headers).get_json()
    assert page["total"] == 7 and len(page["items"]) == 3
    assert "offset=3" in page["next"]
    last = client.get("/api/v1/patients?limit=3&offset=6", headers=auth_headers).get_json()
    assert len(last["items"]) == 1 and last["next"] is None
    assert [p["age"] for p in page["items"]] == [30, 31, 32]


def test_patch_patient_bumps_version(client, auth_headers, patient):
    before = client.get(f"/api/v1/patients/{patient}", headers=auth_headers).get_json()
    resp = client.patch(f"/api/v1/patients/{patient}", json={"infected": True,
                        "infection_onset": _iso(48)}, headers=auth_headers)
    assert resp.status_code == 200
    after = resp.get_json()
    assert after["infected"] is True and after["infection_onset"]
    assert after["version"] == before["version"] + 1
    assert after["age"] == 64


def test_duplicate_external_id_conflicts(client, auth_headers, patient):
    resp = client.post("/api/v1/patients", json={"age": 50, "external_id": "ward3-bed7"},
                       headers=auth_headers)
    assert resp.status_code == 409
    assert resp.get_json()["errors"][0]["field"] == "external_id"


def test_observations_roundtrip_with_since_until(client, auth_headers, patient):
    obs = [{"time": _iso(h), "code": "sbp_mmhg", "value": 150 - h, "unit": "mm[Hg]"}
           for h in (30, 20, 10)]
    obs.append({"time": _iso(10), "code": "hr_bpm", "value": 72, "unit": "/min",
                "source": "monitor"})
    resp = client.post(f"/api/v1/patients/{patient}/observations",
                       json={"observations": obs}, headers=auth_headers)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["recorded"] == 4
    url = f"/api/v1/patients/{patient}/observations"
    everything = client.get(url, headers=auth_headers).get_json()
    assert everything["total"] == 4
    times = [o["time"] for o in everything["items"]]
    assert times == sorted(times)
    window = client.get(url, query_string={"since": _iso(25), "until": _iso(15)},
                        headers=auth_headers).get_json()
    assert [o["value"] for o in window["items"]] == [130]
    hr = client.get(url, query_string={"code": "hr_bpm"}, headers=auth_headers).get_json()
    assert hr["items"][0]["source"] == "monitor"


def test_unit_aliases_are_normalised(client, auth_headers, patient):
    resp = client.post(f"/api/v1/patients/{patient}/observations", json={"observations": [
        {"time": _iso(1), "code": "sbp_mmhg", "value": 140, "unit": "mmHg"}]},
        headers=auth_headers)
    assert resp.status_code == 201
    assert resp.get_json()["items"][0]["unit"] == "mm[Hg]"


BP_PANEL = {
    "resourceType": "Observation", "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                              "observation-category", "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                         "display": "Blood pressure panel"}]},
    "effectiveDateTime": None,
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 148, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                           "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
         "valueQuantity": {"value": 92, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                           "code": "mm[Hg]"}},
    ],
}


def _fhir(client, patient, body, headers):
    return client.post(f"/api/v1/patients/{patient}/observations", json=body,
                       headers={**headers, "Content-Type": "application/fhir+json"})


def test_fhir_bp_panel_and_bundle(client, auth_headers, patient):
    panel = {**BP_PANEL, "effectiveDateTime": _iso(5)}
    resp = _fhir(client, patient, panel, auth_headers)
    assert resp.status_code == 201, resp.get_json()
    codes = sorted(o["code"] for o in resp.get_json()["items"])
    assert codes == ["dbp_mmhg", "sbp_mmhg"]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                      "effectiveDateTime": _iso(4),
                      "valueQuantity": {"value": 70, "system": "http://unitsofmeasure.org",
                                        "code": "/min"}}},
        {"resource": {"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "2915-7"}]},
                      "effectiveDateTime": _iso(4),
                      "valueQuantity": {"value": 2.1, "system": "http://unitsofmeasure.org",
                                        "code": "ng/mL/h"}}},
    ]}
    resp = _fhir(client, patient, bundle, auth_headers)
    assert resp.status_code == 201, resp.get_json()
    out = client.get(f"/api/v1/patients/{patient}/observations",
                     headers={**auth_headers, "Accept": "application/fhir+json"})
    assert out.mimetype == "application/fhir+json"
    fb = out.get_json()
    assert fb["resourceType"] == "Bundle" and fb["total"] == 4
    loinc = {e["resource"]["code"]["coding"][0]["code"] for e in fb["entry"]}
    assert {"8480-6", "8462-4", "8867-4", "2915-7"} <= loinc


@pytest.mark.parametrize("body,field", [
    ({"resourceType": "Patient", "id": "x"}, "resourceType"),
    ({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Condition"}}]},
     "entry[0].resource.resourceType"),
    ({**BP_PANEL, "effectiveDateTime": "2026-01-01T00:00:00Z",
      "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                     "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org",
                                       "code": "kPa"}}]},
     "Observation.component[0].unit"),
    ({**BP_PANEL, "effectiveDateTime": None}, "Observation.effectiveDateTime"),
])
def test_fhir_bad_input_names_field_and_writes_nothing(app, client, auth_headers, patient,
                                                       body, field):
    resp = _fhir(client, patient, body, auth_headers)
    assert resp.status_code == 422
    assert resp.mimetype == PROBLEM
    assert resp.get_json()["errors"][0]["field"] == field
    assert _count(app, Observation) == 0


def _post_obs(client, patient, headers, **override):
    item = {"time": _iso(1), "code": "sbp_mmhg", "value": 140, "unit": "mm[Hg]", **override}
    return client.post(f"/api/v1/patients/{patient}/observations",
                       json={"observations": [item]}, headers=headers)


@pytest.mark.parametrize("override,status,field", [
    ({"value": 900}, 422, "observations[0].value"),
    ({"unit": "kPa"}, 422, "observations[0].unit"),
    ({"time": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, 422, "observations[0].time"),
    ({"code": "cholesterol"}, 422, "observations[0].code"),
    ({"colour": "red"}, 422, "observations[0].colour"),
    ({"time": "2026-01-01T08:00:00"}, 422, "observations[0].time"),
])
def test_bad_observation_is_rejected_logged_and_not_written(app, client, auth_headers, patient,
                                                            caplog, override, status, field):
    resp = _post_obs(client, patient, auth_headers, **override)
    assert resp.status_code == status
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["errors"][0]["field"] == field, body
    assert field in body["detail"]
    assert _count(app, Observation) == 0
    assert any(r.message == "rejected request" for r in caplog.records)


def test_one_bad_item_rejects_the_whole_batch(app, client, auth_headers, patient):
    good = {"time": _iso(2), "code": "sbp_mmhg", "value": 140, "unit": "mm[Hg]"}
    bad = {**good, "value": 900}
    resp = client.post(f"/api/v1/patients/{patient}/observations",
                       json={"observations": [good, bad]}, headers=auth_headers)
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "observations[1].value"
    assert _count(app, Observation) == 0


def test_malformed_json_is_400(app, client, auth_headers, patient):
    resp = client.post("/api/v1/patients", data="{not json",
                       headers={**auth_headers, "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.mimetype == PROBLEM
    assert resp.get_json()["errors"][0]["field"] == "body"
    assert _count(app, Patient) == 1


def test_wrong_content_type_is_415(client, auth_headers):
    resp = client.post("/api/v1/patients", data="age=4",
                       headers={**auth_headers, "Content-Type": "text/plain"})
    assert resp.status_code == 415


@pytest.mark.parametrize("body,field", [
    ({"age": 64, "nickname": "Bob"}, "nickname"),
    ({"age": 5}, "age"),
    ({"age": 64, "renal_function": "great"}, "renal_function"),
    ({"age": 64, "glucose": 80}, "glucose"),
    ({"age": 64, "infection_onset": (datetime.now(UTC) + timedelta(days=3)).isoformat()},
     "infection_onset"),
])
def test_bad_patient_is_rejected(app, client, auth_headers, body, field):
    resp = client.post("/api/v1/patients", json=body, headers=auth_headers)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["errors"][0]["field"] == field
    assert _count(app, Patient) == 0


def test_unknown_patient_is_404(client, auth_headers):
    for method, path, kw in [
        ("GET", "/api/v1/patients/p-nobody", {}),
        ("PATCH", "/api/v1/patients/p-nobody", {"json": {"age": 50}}),
        ("POST", "/api/v1/patients/p-nobody/observations", {"json": {"observations": []}}),
        ("PUT", "/api/v1/patients/p-nobody/regimen", {"json": {}}),
        ("GET", "/api/v1/patients/p-nobody/forecast", {}),
    ]:
        resp = client.open(path, method=method, headers=auth_headers, **kw)
        assert resp.status_code == 404, (method, path, resp.status_code)
        assert resp.get_json()["errors"][0]["field"] == "patient_id"


def test_regimen_put_and_validation(client, auth_headers, patient):
    url = f"/api/v1/patients/{patient}/regimen"
    # the patient's renal function is impaired: 10 mg is above the renal starting dose (5 mg),
    # a warning to confirm (issue 14)
    resp = client.put(url, json={"drug": "benazepril", "dose_mg": 10, "interval_h": 24,
                                 "start": _iso(24), "confirm": True}, headers=auth_headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["regimen"]["dose_mg"] == 10 and body["regimen"]["drug"] == "benazepril"
    bad = client.put(url, json={"drug": "benazepril", "dose_mg": 10, "start": _iso(1),
                                "stop": _iso(5)}, headers=auth_headers)
    assert bad.status_code == 422 and "stop" in bad.get_json()["detail"]
    bad = client.put(url, json={"drug": "aspirin", "dose_mg": 10, "start": _iso(1)},
                     headers=auth_headers)
    assert bad.get_json()["errors"][0]["field"] == "drug"


def test_bad_query_parameters_are_400(client, auth_headers, patient):
    for qs in ({"limit": "0"}, {"limit": "abc"}, {"offset": "-1"}):
        assert client.get("/api/v1/patients", query_string=qs,
                          headers=auth_headers).status_code == 400
    resp = client.get(f"/api/v1/patients/{patient}/observations",
                      query_string={"since": "yesterday"}, headers=auth_headers)
    assert resp.status_code == 400 and resp.get_json()["errors"][0]["field"] == "since"
    resp = client.get(f"/api/v1/patients/{patient}/forecast",
                      query_string={"coverage": "1.5"}, headers=auth_headers)
    assert resp.status_code == 400 and resp.get_json()["errors"][0]["field"] == "coverage"


def test_audit_log_records_reads_and_writes(app, client, auth_headers, patient):
    client.get(f"/api/v1/patients/{patient}", headers=auth_headers)
    from app.models import AuditEvent
    from app.services import flush_audit

    with app.app_context():
        flush_audit()
    with app.app_context(), db.new_session() as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(r.action, r.status) for r in rows] == [("write", 201), ("read", 200)]
    assert rows[1].patient_id == patient and rows[1].actor == "integrator"


def test_openapi_document(client, auth_headers, app):
    spec = client.get("/api/v1/openapi.json", headers=auth_headers).get_json()
    assert spec["openapi"].startswith("3.1")
    api_rules = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule)  # <int:alert_id> -> {alert_id}
                 for r in app.url_map.iter_rules() if r.rule.startswith("/api/")}
    assert api_rules <= set(spec["paths"]), api_rules - set(spec["paths"])
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
    docs = client.get("/api/v1/docs", headers=auth_headers)
    assert docs.status_code == 200 and b"/api/v1/patients/{patient_id}/forecast" in docs.data


@pytest.mark.parametrize("url", ["/api/v1/patients/a%00b", "/api/v1/alerts?patient_id=a%00b",
                                 "/api/v1/patients?include=st%00atus"])
def test_nul_in_the_url_is_a_400_problem(client, auth_headers, url):
    resp = client.get(url, headers=auth_headers)
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json" and "NUL" in resp.get_json()["detail"]
