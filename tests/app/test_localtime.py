"""Ward time (WARD_TIMEZONE): forms take and pages show local time, the database and the API
stay UTC; now in local time is not "in the future"; a zone that does not exist stops start-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app import create_app
from app.db import init_db

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def berlin(tmp_path, log_in):
    app = create_app({"TESTING": True, "PREWARM_FORECASTS": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
                      "MODEL_URI": str(tmp_path / "model"), "WARD_TIMEZONE": "Europe/Berlin"})
    with app.app_context():
        init_db()
    client, csrf = log_in(app, "dr-t")
    from app.auth import issue_token

    with app.app_context():
        token = issue_token("integrator", "read,write")
    return app, client, csrf, {"Authorization": f"Bearer {token}"}


def test_local_time_entered_is_stored_utc_and_shown_local(berlin):
    _, client, csrf, h = berlin
    pid = client.post("/api/v1/patients", json={"age": 60}, headers=h).get_json()["id"]
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "Time (CET)" in page or "Time (CEST)" in page
    local_now = datetime.now(BERLIN).replace(second=0, microsecond=0)
    # the form's default is now in ward time (not UTC)
    assert f'value="{local_now.strftime("%Y-%m-%dT%H:")}' in page
    # the current local time is not "in the future" (it was, read as UTC, east of Greenwich)
    resp = client.post(f"/patients/{pid}/observations", data={
        "time": local_now.strftime("%Y-%m-%dT%H:%M"), "sbp_mmhg": "131", "dbp_mmhg": "80",
        "csrf_token": csrf})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    item = client.get(f"/api/v1/patients/{pid}/observations", headers=h).get_json()["items"][0]
    stored = datetime.fromisoformat(item["time"])
    assert stored == local_now.astimezone(UTC)  # the API says UTC, an hour (or two) earlier
    shown = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert local_now.strftime("%Y-%m-%d %H:%M") in shown
    assert stored.strftime("%Y-%m-%d %H:%M") not in shown


def test_an_hour_ahead_in_local_time_is_in_the_future(berlin):
    _, client, csrf, h = berlin
    pid = client.post("/api/v1/patients", json={"age": 60}, headers=h).get_json()["id"]
    ahead = datetime.now(BERLIN) + timedelta(hours=1)
    resp = client.post(f"/patients/{pid}/observations", data={
        "time": ahead.strftime("%Y-%m-%dT%H:%M"), "sbp_mmhg": "131", "dbp_mmhg": "80",
        "csrf_token": csrf})
    assert resp.status_code == 422 and "in the future" in resp.get_data(as_text=True)
    assert client.get(f"/api/v1/patients/{pid}/observations",
                      headers=h).get_json()["items"] == []


def test_unknown_zone_stops_start_up(tmp_path):
    with pytest.raises(RuntimeError, match="WARD_TIMEZONE"):
        create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                    "MODEL_URI": str(tmp_path / "m"), "WARD_TIMEZONE": "Mars/Olympus"})


def test_a_year_one_form_time_east_of_utc_is_refused_not_a_500(berlin):
    _, client, csrf, _ = berlin
    resp = client.post("/patients/new", data={
        "age": "60", "renal_function": "normal", "glucose": "normal", "infected": "on",
        "infection_onset": "0001-01-01T00:30", "csrf_token": csrf})
    assert resp.status_code == 422  # year 1 in Berlin is before UTC's year 1: no 500
