"""Impossible combinations refused through the API (issue 14): DBP >= SBP is a 422 naming the
diastolic's field (in one request, against a stored systolic, in an observation set); an
exact duplicate of a stored reading (same patient, code, time and value) is a 409 of type
``duplicate-observation``; nothing is stored; a reading marked entered in error is no
longer a duplicate; the web form says it in clinical words with the values kept."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

PROBLEM = "application/problem+json"


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0).isoformat()


def _post(client, h, pid, readings):
    obs = [{"time": t, "code": c, "value": v, "unit": u} for t, c, v, u in readings]
    return client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=h)


def _total(client, h, pid) -> int:
    return client.get(f"/api/v1/patients/{pid}/observations", headers=h).get_json()["total"]


@pytest.fixture
def pid(client, auth_headers) -> str:
    return client.post("/api/v1/patients", json={"age": 70},
                       headers=auth_headers).get_json()["id"]


@pytest.mark.parametrize(("sbp", "dbp"), [(80, 120), (100, 100)])
def test_dbp_at_or_above_sbp_is_422_naming_the_diastolic(client, auth_headers, pid, sbp, dbp,
                                                         caplog):
    t = _iso(1)
    with caplog.at_level(logging.WARNING, logger="app.errors"):
        resp = _post(client, auth_headers, pid, [(t, "hr_bpm", 80, "/min"),
                                                 (t, "sbp_mmhg", sbp, "mm[Hg]"),
                                                 (t, "dbp_mmhg", dbp, "mm[Hg]")])
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    assert resp.get_json()["errors"] == [{"field": "observations[2].value",
                                          "message": "Diastolic BP must be lower than "
                                                     "systolic BP"}]
    assert _total(client, auth_headers, pid) == 0  # nothing stored, not even the HR
    logged = " ".join(str(getattr(r, "detail", "")) + r.getMessage() for r in caplog.records)
    assert "Diastolic" in logged and str(dbp) not in logged  # logged without values


def test_dbp_against_a_stored_systolic_of_the_same_time(client, auth_headers, pid):
    t = _iso(1)
    assert _post(client, auth_headers, pid, [(t, "sbp_mmhg", 110, "mm[Hg]")]).status_code == 201
    resp = _post(client, auth_headers, pid, [(t, "dbp_mmhg", 115, "mm[Hg]")])
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "observations[0].value"
    # ... and a systolic below a stored diastolic names the systolic
    assert _post(client, auth_headers, pid, [(_iso(2), "dbp_mmhg", 90, "mm[Hg]")]
                 ).status_code == 201
    resp = _post(client, auth_headers, pid, [(_iso(2), "sbp_mmhg", 85, "mm[Hg]")])
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "observations[0].value"
    # a different time is a different reading
    assert _post(client, auth_headers, pid, [(_iso(3), "dbp_mmhg", 115, "mm[Hg]")]
                 ).status_code == 201


def test_observation_set_with_dbp_above_sbp_is_422(client, auth_headers, pid):
    resp = client.post(f"/api/v1/patients/{pid}/observation-sets", headers=auth_headers,
                       json={"time": _iso(0.5), "sbp_mmhg": 80, "dbp_mmhg": 120,
                             "hr_bpm": 70})
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    assert {"field": "dbp_mmhg", "message": "Diastolic BP must be lower than systolic BP"
            } in resp.get_json()["errors"]
    assert _total(client, auth_headers, pid) == 0


def test_exact_duplicate_is_409_duplicate_observation(client, auth_headers, pid):
    t = _iso(1)
    first = _post(client, auth_headers, pid, [(t, "hr_bpm", 80, "/min")])
    assert first.status_code == 201
    stored_id = first.get_json()["items"][0]["id"]
    resp = _post(client, auth_headers, pid, [(_iso(2), "hr_bpm", 81, "/min"),
                                             (t, "hr_bpm", 80, "/min")])
    assert resp.status_code == 409 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == "duplicate-observation"
    assert body["errors"] == [{"field": "observations[1]",
                               "message": "duplicate of an existing reading"}]
    assert f"observation {stored_id}" in body["detail"]
    assert _total(client, auth_headers, pid) == 1
    # the same time with another value, or another code, is not a duplicate
    assert _post(client, auth_headers, pid, [(t, "hr_bpm", 82, "/min")]).status_code == 201
    assert _post(client, auth_headers, pid, [(t, "rr_per_min", 80, "/min")]).status_code == 201


def test_duplicate_within_one_request_and_after_a_unit_conversion(client, auth_headers, pid):
    t = _iso(1)
    resp = _post(client, auth_headers, pid, [(t, "temp_c", 37.2, "Cel"),
                                             (t, "temp_c", 37.2, "Cel")])
    assert resp.status_code == 409 and resp.get_json()["errors"][0]["field"] == "observations[1]"
    assert _total(client, auth_headers, pid) == 0


def test_a_reading_marked_in_error_is_no_duplicate(client, auth_headers, pid):
    t = _iso(1)
    obs_id = _post(client, auth_headers, pid, [(t, "hr_bpm", 80, "/min")]
                   ).get_json()["items"][0]["id"]
    assert client.patch(f"/api/v1/patients/{pid}/observations/{obs_id}", headers=auth_headers,
                        json={"status": "entered-in-error"}).status_code == 200
    assert _post(client, auth_headers, pid, [(t, "hr_bpm", 80, "/min")]).status_code == 201


def test_duplicate_observation_set_is_409(client, auth_headers, pid):
    body = {"time": _iso(0.5), "sbp_mmhg": 120, "dbp_mmhg": 80, "hr_bpm": 70}
    url = f"/api/v1/patients/{pid}/observation-sets"
    assert client.post(url, headers=auth_headers, json=body).status_code == 201
    resp = client.post(url, headers=auth_headers, json=body)
    assert resp.status_code == 409 and resp.get_json()["type"] == "duplicate-observation"
    assert resp.get_json()["errors"][0]["field"] == "sbp_mmhg"


def test_fhir_duplicate_is_409(client, auth_headers, pid):
    res = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "effectiveDateTime": _iso(1),
           "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                             "code": "/min"}}
    h = {**auth_headers, "Content-Type": "application/fhir+json"}
    url = f"/api/v1/patients/{pid}/observations"
    first = client.post(url, data=json.dumps(res), headers=h)
    assert first.status_code == 201, first.get_json()
    resp = client.post(url, data=json.dumps(res), headers=h)
    assert resp.status_code == 409 and resp.get_json()["type"] == "duplicate-observation"


def test_openapi_lists_409_for_observations(client, auth_headers):
    spec = client.get("/api/v1/openapi.json", headers=auth_headers).get_json()
    for path in ("/api/v1/patients/{patient_id}/observations",
                 "/api/v1/patients/{patient_id}/observation-sets"):
        assert "duplicate-observation" in spec["paths"][path]["post"]["responses"]["409"][
            "description"]
