"""Measurement checks through the API: a damped BP and an implausible jump come back as
"check this reading" flags with the new readings; ordinary readings carry none; a transposed
BP (DBP >= SBP) is refused (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


def _iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


@pytest.fixture
def patient(client, auth_headers) -> str:
    return client.post("/api/v1/patients", json={"age": 70},
                       headers=auth_headers).get_json()["id"]


def _bp(client, h, pid, sbp, dbp, hours_ago):
    t = _iso(hours_ago)  # one time: the two values are one reading
    obs = [{"time": t, "code": c, "value": v, "unit": "mm[Hg]"}
           for c, v in (("sbp_mmhg", sbp), ("dbp_mmhg", dbp))]
    resp = client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=h)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["checks"]


def test_ordinary_readings_carry_no_flag(client, auth_headers, patient):
    assert _bp(client, auth_headers, patient, 132, 78, 2) == []
    assert _bp(client, auth_headers, patient, 128, 76, 1) == []


def test_transposed_bp_is_refused_not_stored(client, auth_headers, patient):
    """Issue 14: DBP >= SBP at one time cannot be true, so it is refused (422 naming the
    diastolic), no longer stored with a "check this reading" flag."""
    t = _iso(1)
    obs = [{"time": t, "code": c, "value": v, "unit": "mm[Hg]"}
           for c, v in (("sbp_mmhg", 70), ("dbp_mmhg", 120))]
    resp = client.post(f"/api/v1/patients/{patient}/observations",
                       json={"observations": obs}, headers=auth_headers)
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == [{"field": "observations[1].value",
                                          "message": "Diastolic BP must be lower than "
                                                     "systolic BP"}]
    assert client.get(f"/api/v1/patients/{patient}/observations",
                      headers=auth_headers).get_json()["total"] == 0


def test_damped_trace_and_jump(client, auth_headers, patient):
    _bp(client, auth_headers, patient, 130, 75, 3)
    _bp(client, auth_headers, patient, 128, 74, 2)
    assert {c["rule"] for c in _bp(client, auth_headers, patient, 86, 80, 1.5)} == {
        "narrow_pulse_pressure"}
    jump = _bp(client, auth_headers, patient, 205, 78, 1)   # +77 within 30 min
    assert [c["rule"] for c in jump] == ["implausible_jump"]
    assert jump[0]["endpoint"] == "sbp_mmhg" and jump[0]["values"]["reference"] > 100


def test_observation_set_response_carries_the_checks(client, auth_headers, patient):
    body = {"time": _iso(0.5), "sbp_mmhg": 86, "dbp_mmhg": 80, "hr_bpm": 80}
    resp = client.post(f"/api/v1/patients/{patient}/observation-sets", json=body,
                       headers=auth_headers)
    assert resp.status_code == 201, resp.get_json()
    assert "narrow_pulse_pressure" in {c["rule"] for c in resp.get_json()["checks"]}
