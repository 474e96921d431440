"""Pages on the test client: ward sorting and budget, intake errors, forms write nothing bad."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture
def clinician(model_app):
    runner = model_app.test_cli_runner()
    runner.invoke(args=["create-user", "dr-b", "--password-stdin"], input="ward-round-7\n")
    client = model_app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post("/login", data={"username": "dr-b", "password": "ward-round-7",
                                       "csrf_token": csrf})
    assert resp.status_code == 302
    with client.session_transaction() as sess:
        assert sess["csrf"] != csrf  # a new session (and token) after login
        csrf = sess["csrf"]
    return client, csrf


def _admit(client, csrf, age, sbp=None) -> str:
    resp = client.post("/patients/new", data={"age": str(age), "renal_function": "normal",
                                              "glucose": "normal", "csrf_token": csrf})
    assert resp.status_code == 302, resp.data[:500]
    pid = resp.location.rsplit("/", 1)[-1]
    if sbp is not None:
        when = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        r = client.post(f"/patients/{pid}/observations", data={
            "time": when, "sbp_mmhg": str(sbp), "dbp_mmhg": "90", "csrf_token": csrf})
        assert r.status_code == 302, r.data[:800]
    return pid


def test_ward_lists_and_sorts(clinician):
    client, csrf = clinician
    a = _admit(client, csrf, 50, 171)
    b = _admit(client, csrf, 60, 128)
    c = _admit(client, csrf, 70)
    page = client.get("/?sort=sbp&order=desc").get_data(as_text=True)
    assert page.index(a) < page.index(b) < page.index(c)
    assert "high" in page and "in range" in page and "no data" in page
    page = client.get("/?sort=sbp").get_data(as_text=True)
    assert page.index(b) < page.index(a)


def test_ward_budget_defers_forecasts(model_app, clinician):
    client, csrf = clinician
    _admit(client, csrf, 55, 150)
    model_app.config["WARD_FORECAST_BUDGET_S"] = 0
    assert "forecast pending" in client.get("/").get_data(as_text=True)


def test_intake_error_is_shown(clinician):
    client, csrf = clinician
    resp = client.post("/patients/new", data={"age": "7", "csrf_token": csrf})
    assert resp.status_code == 422
    assert b"age" in resp.data and b'class="error"' in resp.data


def test_patient_page_and_regimen_form(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, 64, 155)
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    resp = client.post(f"/patients/{pid}/regimen", data={
        "drug": "benazepril", "dose_mg": "10", "interval_h": "24", "start": start,
        "csrf_token": csrf})
    assert resp.status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "benazepril 10 mg every 24 h" in page
    assert 'id="bp-plot"' in page and "In 24 h: SBP" in page
    bad = client.post(f"/patients/{pid}/regimen", data={
        "drug": "benazepril", "dose_mg": "500", "start": start, "csrf_token": csrf})
    assert bad.status_code == 422 and b"dose_mg" in bad.data
    wave = client.get(f"/patients/{pid}/waveform.png")
    assert wave.status_code == 200 and wave.data.startswith(b"\x89PNG")
