"""No values in logs, no-store on patient data, no server paths (issue 15, item 7).

A bad-input run posts distinctive values that get refused (and provokes a 500 whose message
carries a value and SQL parameters), then greps every captured log record, formatted as the
service writes it, for those values."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from app import services
from app.observability import JsonFormatter

FHIR = "application/fhir+json"
UCUM = "http://unitsofmeasure.org"
VALUES = ("987.6", "123.45", "555.25", "4242.5", "31337")


def _iso(hours_ago: float = 1.0) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0).isoformat()


def _lines(caplog) -> list[str]:
    """Every captured record as the service's JSON log line, plus its bare message."""
    fmt = JsonFormatter()
    return [fmt.format(r) + " " + r.getMessage() for r in caplog.records]


@pytest.fixture
def pid(client, auth_headers) -> str:
    return client.post("/api/v1/patients", json={"age": 60},
                       headers=auth_headers).get_json()["id"]


def _bad_input_run(client, h, pid) -> None:
    obs = f"/api/v1/patients/{pid}/observations"
    # an implausible SBP (the 422's message quotes it), and a batch with a future time
    r = client.post(obs, headers=h, json={"observations": [
        {"time": _iso(), "code": "sbp_mmhg", "value": 987.6, "unit": "mm[Hg]"}]})
    assert r.status_code == 422 and "987.6" in r.get_data(as_text=True)
    r = client.post(obs, headers=h, json={"observations": [
        {"time": _iso(), "code": "hr_bpm", "value": 987.6, "unit": "bananas"}]})
    assert r.status_code == 422
    # an observation set with the value out of range
    r = client.post(f"/api/v1/patients/{pid}/observation-sets", headers=h, json={
        "time": _iso(), "sbp_mmhg": 987.6, "dbp_mmhg": 4242.5})
    assert r.status_code == 422
    # FHIR: a comparator, a wrong unit, an implausible temperature
    for quantity in ({"value": 123.45, "unit": "/min", "system": UCUM, "code": "/min",
                      "comparator": "<"},
                     {"value": 123.45, "unit": "kg", "system": UCUM, "code": "kg"}):
        r = client.post(obs, headers={**h, "Content-Type": FHIR}, data=json.dumps({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "effectiveDateTime": _iso(), "valueQuantity": quantity}))
        assert r.status_code == 422
    r = client.post(obs, headers={**h, "Content-Type": FHIR}, data=json.dumps({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "effectiveDateTime": _iso(), "valueQuantity": {"value": 123.45, "unit": "Cel",
                                                       "system": UCUM, "code": "Cel"}}))
    assert r.status_code == 422 and "123.45" in r.get_data(as_text=True)
    # a stateless NEWS2 with a value out of range, a string number
    r = client.post("/api/v1/news2", headers=h, json={
        "respiratory_rate_per_min": 31337, "spo2_pct": 95, "supplemental_oxygen": False,
        "sbp_mmhg": "4242.5", "hr_bpm": 80, "consciousness": "A", "temperature_c": 37})
    assert r.status_code == 422


def test_rejected_requests_log_fields_not_values(client, auth_headers, pid, caplog):
    with caplog.at_level(logging.DEBUG):
        _bad_input_run(client, auth_headers, pid)
    lines = _lines(caplog)
    rejected = [json.loads(line.rsplit(" rejected request", 1)[0]) for line in lines
                if '"rejected request"' in line]
    assert len(rejected) >= 7
    assert any("observations[0].value" in r["detail"] for r in rejected)
    assert any("Observation.valueQuantity.comparator" in r["detail"] for r in rejected)
    for line in lines:
        for value in VALUES:
            assert value not in line, line


def test_a_500_logs_the_traceback_without_the_values(client, auth_headers, pid, caplog,
                                                     monkeypatch):
    def boom(*args, **kwargs):
        try:
            raise ValueError("driver said: value 555.25 violates check")
        except ValueError as cause:
            raise IntegrityError("INSERT INTO observations (value) VALUES (?)",
                                 {"value": 555.25, "code": "sbp_mmhg"}, cause) from cause

    monkeypatch.setattr(services, "record_observations", boom)
    with caplog.at_level(logging.DEBUG):
        r = client.post(f"/api/v1/patients/{pid}/observations", headers=auth_headers, json={
            "observations": [{"time": _iso(), "code": "sbp_mmhg", "value": 555.25,
                              "unit": "mm[Hg]"}]})
    assert r.status_code == 500 and "555.25" not in r.get_data(as_text=True)
    lines = _lines(caplog)
    errors = [json.loads(line.rsplit(" unhandled error", 1)[0]) for line in lines
              if '"unhandled error"' in line]
    assert len(errors) == 1
    assert errors[0]["exc_type"] == "IntegrityError"
    assert "Traceback" in errors[0]["exc"] and "in boom" in errors[0]["exc"]
    assert "ValueError" in errors[0]["exc"]  # the cause's type is kept too
    for line in lines:
        assert "555.25" not in line, line
    unhandled = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert unhandled[0].exc_info is None  # no other handler can print the message either


def test_the_formatter_scrubs_any_logged_exception():
    try:
        raise RuntimeError("glucose 31337 mmol/L")
    except RuntimeError:
        record = logging.LogRecord("app.x", logging.ERROR, __file__, 1, "status failed",
                                   None, __import__("sys").exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["exc_type"] == "RuntimeError" and "31337" not in json.dumps(line)
    assert "test_the_formatter_scrubs_any_logged_exception" in line["exc"]


# --- no-store, no server paths ------------------------------------------------------------


def test_patient_responses_and_pages_are_no_store(app, client, auth_headers, pid, log_in):
    for path in (f"/api/v1/patients/{pid}", "/api/v1/patients",
                 f"/api/v1/patients/{pid}/observations", f"/api/v1/patients/{pid}/news2",
                 f"/api/v1/patients/{pid}/status", "/api/v1/patients/nope"):
        resp = client.get(path, headers=auth_headers)
        assert resp.headers.get("Cache-Control") == "no-store", path
    page_client, _ = log_in(app)
    for path in ("/", f"/patients/{pid}", f"/patients/{pid}/details"):
        resp = page_client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers.get("Cache-Control") == "no-store", path


def test_model_info_has_no_server_path(model_app, model_bundle):
    from app.auth import issue_token

    with model_app.app_context():
        token = issue_token("reader", "read")
    resp = model_app.test_client().get("/api/v1/model",
                                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert "model_uri" not in body and body["model_version"]
    assert model_bundle not in resp.get_data(as_text=True)
