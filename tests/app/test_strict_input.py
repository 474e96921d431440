"""Strict input (issue 15, item 6): input the API used to take or crash on is refused with a
problem+json naming the field."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

PROBLEM = "application/problem+json"
FHIR = "application/fhir+json"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
FAR = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "1899-12-31T23:59:00Z",
       "2100-01-01T00:00:00Z"]


@pytest.fixture
def pid(client, auth_headers) -> str:
    return client.post("/api/v1/patients", json={"age": 60},
                       headers=auth_headers).get_json()["id"]


def _iso(hours_ago: float = 1.0) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0).isoformat()


def _quantity(value, unit):
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _hr(**extra) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
            "effectiveDateTime": _iso(), "valueQuantity": _quantity(80, "/min"), **extra}


def _component(code: str, value: float, unit: str = "mm[Hg]") -> dict:
    return {"code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": _quantity(value, unit)}


def _panel(*components) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "effectiveDateTime": _iso(), "component": list(components)}


def _fhir(client, headers, pid, body):
    return client.post(f"/api/v1/patients/{pid}/observations", data=json.dumps(body),
                       headers={**headers, "Content-Type": FHIR})


def _total(client, headers, pid) -> int:
    return client.get(f"/api/v1/patients/{pid}/observations",
                      headers=headers).get_json()["total"]


def _problem(resp, status: int, field: str | None = None) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


# --- FHIR subject -------------------------------------------------------------------------


def test_fhir_subject_of_another_patient_is_422(client, auth_headers, pid):
    other = client.post("/api/v1/patients", json={"age": 70},
                        headers=auth_headers).get_json()["id"]
    resp = _fhir(client, auth_headers, pid, _hr(subject={"reference": f"Patient/{other}"}))
    _problem(resp, 422, "Observation.subject")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _hr(subject={"reference": f"Patient/{pid}"})},
        {"resource": _hr(subject={"identifier": {"value": pid}})}]}
    _problem(_fhir(client, auth_headers, pid, bundle), 422, "entry[1].resource.subject")
    assert _total(client, auth_headers, pid) == 0 and _total(client, auth_headers, other) == 0


@pytest.mark.parametrize("subject", [None, "Patient/{pid}",
                                     "https://ehr.example/fhir/Patient/{pid}"])
def test_fhir_subject_absent_or_the_patient_is_taken(client, auth_headers, pid, subject):
    body = _hr() if subject is None else _hr(subject={"reference": subject.format(pid=pid)})
    assert _fhir(client, auth_headers, pid, body).status_code == 201


# --- JSON depth and size ------------------------------------------------------------------


@pytest.mark.parametrize("path, mimetype", [
    ("/api/v1/patients", "application/json"),
    ("/api/v1/patients/{pid}/observations", "application/json"),
    ("/api/v1/patients/{pid}/observations", FHIR),
    ("/api/v1/patients/{pid}/observation-sets", "application/json"),
    ("/api/v1/patients/{pid}/discharge", "application/json"),
    ("/api/v1/news2", "application/json"),
])
def test_deeply_nested_json_is_400(client, auth_headers, pid, path, mimetype):
    deep = "[" * 200_000 + "]" * 200_000
    resp = client.post(path.format(pid=pid), data=deep,
                       headers={**auth_headers, "Content-Type": mimetype})
    body = _problem(resp, 400, "body")
    assert "nested" in body["detail"]


def test_nesting_up_to_the_limit_is_parsed(client, auth_headers):
    from app.errors import MAX_JSON_DEPTH, json_too_deep

    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not json_too_deep(ok.encode()) and json_too_deep(("[" + ok + "]").encode())
    # brackets inside strings do not count
    assert not json_too_deep(json.dumps({"s": "[" * 1000, "t": 'a\\"[[['}).encode())
    resp = client.post("/api/v1/patients", data=json.dumps({"age": 60, "x": ok}),
                       headers={**auth_headers, "Content-Type": "application/json"})
    _problem(resp, 422, "x")  # parsed, then refused as an unknown field


def _chunked(client, headers, path, body: bytes):
    return client.post(path, input_stream=io.BytesIO(body),
                       headers={**headers, "Content-Type": "application/json",
                                "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_chunked_body_over_the_limit_is_413(client, auth_headers, pid):
    big = b'{"observations": [' + b" " * (3 * 1024 * 1024) + b"]}"
    _problem(_chunked(client, auth_headers, f"/api/v1/patients/{pid}/observations", big), 413)
    small = json.dumps({"observations": [{"time": _iso(), "code": "hr_bpm", "value": 80,
                                          "unit": "/min"}]}).encode()
    resp = _chunked(client, auth_headers, f"/api/v1/patients/{pid}/observations", small)
    assert resp.status_code == 201, resp.get_json()


def test_body_with_a_length_over_the_limit_is_413(client, auth_headers):
    resp = client.post("/api/v1/patients", data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
                       headers={**auth_headers, "Content-Type": "application/json"})
    _problem(resp, 413)


# --- over-long URLs -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/patients/" + "x" * 5000,
                                  "/api/v1/patients/" + "x" * 257 + "/observations",
                                  "/patients/" + "x" * 300,
                                  "/api/v1/patients?q=" + "a/" * 2100])
def test_over_long_url_is_414_problem(client, auth_headers, path):
    _problem(client.get(path, headers=auth_headers), 414, "path")


def test_gunicorn_lets_long_request_lines_reach_the_app(monkeypatch):
    import os

    from gunicorn.config import Config

    # importing the settings exports PRELOAD_MODEL and METRICS_DIR: keep them to this test
    monkeypatch.setattr(os, "environ", os.environ.copy())
    from app import gunicorn_conf

    assert gunicorn_conf.limit_request_line >= 8190
    cfg = Config()
    cfg.set("limit_request_line", gunicorn_conf.limit_request_line)  # a valid setting
    assert cfg.limit_request_line == 8190


# --- timestamps outside 1900-2100 ---------------------------------------------------------


@pytest.mark.parametrize("when", FAR)
def test_far_timestamps_are_422_everywhere(client, auth_headers, pid, when):
    h = auth_headers
    cases = [
        (client.post(f"/api/v1/patients/{pid}/observations", headers=h, json={
            "observations": [{"time": when, "code": "hr_bpm", "value": 80, "unit": "/min"}]}),
         "observations[0].time"),
        (_fhir(client, h, pid, _hr(effectiveDateTime=when)), "Observation.effectiveDateTime"),
        (client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
            "drug": "benazepril", "dose_mg": 5, "start": when}), "start"),
        (client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
            "drug": "benazepril", "dose_mg": 5, "start": _iso(2), "stop": when,
            "confirm": True}), "stop"),
        (client.post("/api/v1/patients", headers=h, json={
            "age": 60, "infected": True, "infection_onset": when}), "infection_onset"),
        (client.patch(f"/api/v1/patients/{pid}", headers=h, json={"infection_onset": when}),
         "infection_onset"),
        (client.get(f"/api/v1/patients/{pid}/observations", headers=h,
                    query_string={"since": when}), "since"),
        (client.get(f"/api/v1/patients/{pid}/observations", headers=h,
                    query_string={"until": when}), "until"),
    ]
    for resp, field in cases:
        body = _problem(resp, 422, field)
        assert "must be between 1900 and 2100" in body["detail"], body


def test_the_window_is_one_shared_validator():
    from pydantic import BaseModel

    from app.schemas import AwareDatetime, aware_time

    class M(BaseModel):
        t: AwareDatetime

    assert M(t="2099-12-31T23:59:00Z").t.year == 2099
    with pytest.raises(ValueError, match="must be between 1900 and 2100"):
        M(t="2100-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="must be between 1900 and 2100"):
        aware_time(datetime.fromisoformat("9999-12-31T23:00:00-05:00"))


# --- strict types -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, "120", "1.5e2", None])
def test_observation_value_must_be_a_json_number(client, auth_headers, pid, value):
    resp = client.post(f"/api/v1/patients/{pid}/observations", headers=auth_headers, json={
        "observations": [{"time": _iso(), "code": "angII_pg_per_ml", "value": value,
                          "unit": "pg/mL"}]})
    _problem(resp, 422, "observations[0].value")
    assert _total(client, auth_headers, pid) == 0


@pytest.mark.parametrize("body, field", [
    ({"age": "60"}, "age"), ({"age": True}, "age"), ({"age": 60, "glucose": "5"}, "glucose"),
    ({"age": 60, "glucose": True}, "glucose"), ({"age": 60, "infected": 1}, "infected"),
    ({"age": 60, "infected": "true"}, "infected"), ({"age": 60, "spo2_scale": True},
                                                    "spo2_scale"),
    ({"age": 60, "spo2_scale": "2"}, "spo2_scale"),
])
def test_patient_fields_are_strict(client, auth_headers, body, field):
    _problem(client.post("/api/v1/patients", json=body, headers=auth_headers), 422, field)


def test_strict_numbers_elsewhere(client, auth_headers, pid):
    h = auth_headers
    _problem(client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
        "drug": "benazepril", "dose_mg": "5", "start": _iso(1)}), 422, "dose_mg")
    _problem(client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
        "drug": "benazepril", "dose_mg": 5, "start": _iso(1), "confirm": "yes"}), 422,
        "confirm")
    _problem(client.post("/api/v1/simulate", headers=h, json={"horizon_h": "24"}), 422,
             "horizon_h")
    _problem(client.post("/api/v1/simulate", headers=h, json={
        "scenario": {"regimen": {"dose_mg": True}}}), 422, "scenario.regimen.dose_mg")
    _problem(client.patch(f"/api/v1/patients/{pid}", headers=h, json={"age": "61"}), 422,
             "age")
    # integers and fractions stay numbers
    ok = client.post(f"/api/v1/patients/{pid}/observations", headers=h, json={
        "observations": [{"time": _iso(), "code": "sbp_mmhg", "value": 120, "unit": "mm[Hg]"},
                         {"time": _iso(), "code": "temp_c", "value": 37.2, "unit": "Cel"}]})
    assert ok.status_code == 201, ok.get_json()


def test_the_forms_still_post_strings(app, log_in):
    client, csrf = log_in(app)
    resp = client.post("/patients/new", data={"age": "64", "renal_function": "normal",
                                               "glucose": "normal", "csrf_token": csrf})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]


# --- FHIR comparator and panel components -------------------------------------------------


@pytest.mark.parametrize("comparator", ["<", ">=", "ad"])
def test_fhir_comparator_is_refused(client, auth_headers, pid, comparator):
    quantity = {**_quantity(80, "/min"), "comparator": comparator}
    resp = _fhir(client, auth_headers, pid, _hr(valueQuantity=quantity))
    body = _problem(resp, 422, "Observation.valueQuantity.comparator")
    assert "not supported" in body["detail"]
    panel = _panel(_component("8480-6", 120),
                   {**_component("8462-4", 70),
                    "valueQuantity": {**_quantity(70, "mm[Hg]"), "comparator": comparator}})
    _problem(_fhir(client, auth_headers, pid, panel), 422,
             "Observation.component[1].valueQuantity.comparator")
    assert _total(client, auth_headers, pid) == 0


@pytest.mark.parametrize("components, field", [
    ([("8480-6", 120, "mm[Hg]"), ("8867-4", 80, "/min")], "Observation.component[1].code"),
    ([("8480-6", 120, "mm[Hg]"), ("8480-6", 121, "mm[Hg]"), ("8462-4", 70, "mm[Hg]")],
     "Observation.component[1].code"),
    ([("8462-4", 70, "mm[Hg]"), ("8462-4", 70, "mm[Hg]")], "Observation.component[1].code"),
    ([("8478-0", 90, "mm[Hg]")], "Observation.component[0].code"),
])
def test_bp_panel_takes_only_sbp_and_dbp_once(client, auth_headers, pid, components, field):
    resp = _fhir(client, auth_headers, pid, _panel(*(_component(*c) for c in components)))
    _problem(resp, 422, field)
    assert _total(client, auth_headers, pid) == 0


def test_bp_panel_with_sbp_and_dbp_is_taken(client, auth_headers, pid):
    resp = _fhir(client, auth_headers, pid, _panel(_component("8480-6", 120),
                                                   _component("8462-4", 70)))
    assert resp.status_code == 201 and resp.get_json()["recorded"] == 2


# --- the OpenAPI document follows -------------------------------------------------------


def test_spec_documents_the_limits(client, auth_headers):
    spec = client.get("/api/v1/openapi.json", headers=auth_headers).get_json()
    get_obs = spec["paths"]["/api/v1/patients/{patient_id}/observations"]["get"]
    assert "422" in get_obs["responses"] and "414" in get_obs["responses"]
    assert "model_uri" not in spec["components"]["schemas"]["ModelOut"]["properties"]
    onset = spec["components"]["schemas"]["PatientIn"]["properties"]["infection_onset"]
    assert "1900" in json.dumps(onset)


@pytest.mark.parametrize("when", ["0001-01-01T00:00", "1899-12-31T10:00", "2100-06-01T10:00"])
def test_the_observation_form_refuses_far_times(app, log_in, when):
    app.config["WARD_TIMEZONE"] = "Europe/Berlin"  # east of UTC: year 1 would overflow
    client, csrf = log_in(app)
    with app.app_context():
        from app import services
        from app.schemas import PatientIn

        pid = services.admit_patient(PatientIn(age=60)).id
    resp = client.post(f"/patients/{pid}/observations",
                       data={"time": when, "hr_bpm": "80", "csrf_token": csrf})
    assert resp.status_code == 422
    assert "between 1900 and 2100" in resp.get_data(as_text=True) or \
        "Enter the time" in resp.get_data(as_text=True)
