"""Dosing safety on the patient page (issue 14): refusals in clinical words with the values
kept, a confirmation page listing the warnings, "apply this regimen" from a what-if through
the same checks, "stop treatment", the regimen history; and the dosing rules themselves."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import db
from app.models import AuditEvent
from app.services import dosing


@pytest.fixture
def clinician(model_app):
    runner = model_app.test_cli_runner()
    runner.invoke(args=["create-user", "dr-d", "--password-stdin"], input="dose-check-9\n")
    client = model_app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    client.post("/login", data={"username": "dr-d", "password": "dose-check-9",
                                "csrf_token": csrf})
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    return client, csrf


def _when(hours_ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def _admit(client, csrf, renal="normal", sbp=None, dbp=None, hr=None) -> str:
    resp = client.post("/patients/new", data={"age": "70", "renal_function": renal,
                                              "glucose": "normal", "csrf_token": csrf})
    pid = resp.location.rsplit("/", 1)[-1]
    if sbp:
        resp = client.post(f"/patients/{pid}/observations", data={
            "time": _when(1), "sbp_mmhg": str(sbp), "dbp_mmhg": str(dbp), "hr_bpm": str(hr),
            "csrf_token": csrf})
        assert resp.status_code == 302, resp.data[:800]
    return pid


def test_480_mg_a_day_is_refused_in_clinical_words_values_kept(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, "impaired")
    start = _when()
    resp = client.post(f"/patients/{pid}/regimen", data={
        "drug": "benazepril", "dose_mg": "80", "interval_h": "4", "start": start,
        "csrf_token": csrf})
    assert resp.status_code == 422
    page = html.unescape(resp.get_data(as_text=True))
    assert ("Benazepril 80 mg every 4 h is 480 mg a day; the maximum with impaired renal "
            "function is 40 mg a day.") in page
    assert "Input should" not in page and "dose_mg:" not in page  # no developer text
    assert 'name="dose_mg" type="number" step="any" min="0" max="80" required value="80"' in page
    assert 'value="4"' in page and f'value="{start}"' in page
    assert "untreated" in page


def test_hypotension_warning_needs_the_confirm_box(model_app, clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, sbp=96, dbp=58, hr=118)
    form = {"drug": "benazepril", "dose_mg": "10", "interval_h": "24", "start": _when(),
            "csrf_token": csrf}
    resp = client.post(f"/patients/{pid}/regimen", data=form)
    assert resp.status_code == 409
    page = html.unescape(resp.get_data(as_text=True))
    assert 'id="regimen-warnings"' in page and 'data-code="low-sbp"' in page
    assert "Latest blood pressure 96/58 mmHg, heart rate 118/min" in page
    assert 'name="confirm"' in page and "Confirm and apply" in page
    # the confirmation form without the box ticked: still not applied
    resp = client.post(f"/patients/{pid}/regimen", data={**form, "confirmation": "1"})
    assert resp.status_code == 409 and b"Tick the box" in resp.data
    resp = client.post(f"/patients/{pid}/regimen", data={**form, "confirmation": "1",
                                                          "confirm": "on"})
    assert resp.status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "benazepril 10 mg every 24 h" in page
    assert 'id="regimen-history"' in page and "low-sbp" in page and "dr-d" in page
    with model_app.app_context(), db.new_session() as s:
        row = s.scalars(select(AuditEvent).where(AuditEvent.patient_id == pid,
                                                 AuditEvent.action == "confirm")).one()
    assert row.actor == "dr-d" and row.method == "POST"
    assert json.loads(row.detail)["warnings"][0]["code"] == "low-sbp"


def test_apply_this_regimen_from_the_what_if_and_stop(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, sbp=150, dbp=92, hr=72)
    resp = client.post(f"/patients/{pid}/whatif", data={
        "drug": "benazepril", "dose_mg": "20", "interval_h": "24", "start": _when(),
        "csrf_token": csrf})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    # the result comes first in the what-if section, with intervals, then the form
    assert page.index('id="whatif-result"') < page.index('id="whatif-form"')
    assert "–" in page[page.index('id="whatif-table"'):page.index('id="apply-form"')]
    assert 'id="apply-regimen"' in page
    start = page.split('id="apply-form"')[1].split('name="start" value="')[1].split('"')[0]
    resp = client.post(f"/patients/{pid}/regimen", data={
        "drug": "benazepril", "dose_mg": "20", "interval_h": "24", "start": start,
        "csrf_token": csrf})
    assert resp.status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "benazepril 20 mg every 24 h" in page and 'id="stop-form"' in page
    assert client.post(f"/patients/{pid}/regimen/stop",
                       data={"csrf_token": csrf}).status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "(stopped)" in page and 'id="stop-form"' not in page
    assert page.count("benazepril 20 mg every 24 h") >= 3  # the card and two history rows


def test_what_if_above_the_maximum_is_refused(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, sbp=150, dbp=92, hr=72)
    resp = client.post(f"/patients/{pid}/whatif", data={
        "drug": "benazepril", "dose_mg": "80", "interval_h": "4", "start": _when(),
        "csrf_token": csrf})
    assert resp.status_code == 422
    assert b"480 mg a day; the maximum is 80 mg a day." in resp.data
    assert b'value="80"' in resp.data


def test_every_drug_has_cited_limits():
    import twin.drugs

    data = dosing.limits()["drugs"]
    assert set(data) == set(twin.drugs.DRUG_NAMES)
    for name, lim in data.items():
        assert lim["source"], name
        assert lim["interval_h"][0] <= lim["interval_h"][1]
        if lim["labelled"]:
            assert lim["initial_mg_per_day"] <= lim["max_mg_per_day"], name
            if lim["renal"]:
                assert lim["renal"]["max_mg_per_day"] <= lim["max_mg_per_day"], name
    assert data["benazepril"]["max_mg_per_day"] == 80
    assert data["benazepril"]["renal"]["max_mg_per_day"] == 40
    assert data["cilazapril"]["max_mg_per_day"] == 5
    assert data["cilazapril"]["renal"]["max_mg_per_day"] == 2.5


@pytest.mark.parametrize("current, dose, interval, expected", [
    (None, 10, 24, True), ((10, 24), 20, 24, True), ((10, 24), 5, 12, False),
    ((10, 24), 5, 24, False), ((10, 24), 0, 24, False), ((10, 24), 10, 12, True),
])
def test_starting_or_raising(current, dose, interval, expected):
    class R:
        drug = "benazepril"

    r = None
    if current:
        r = R()
        r.dose_mg, r.interval_h = current
    assert dosing.starting_or_raising(r, "benazepril", dose, interval) is expected
