"""Pages never run a personalised fit on the request path (issue 14, item 8): with the
background warm-up on, the patient page and the ward show the last forecast with its age, or
"computing", and the warm-up's result replaces it."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import create_app, db
from app.auth import issue_token
from app.db import init_db
from app.models import ForecastRun


@pytest.fixture
def warm(tmp_path, model_bundle, log_in):
    """An app with PREWARM_FORECASTS on, a clinician's client and an API header."""
    app = create_app({"TESTING": True, "PREWARM_FORECASTS": True,
                      "SESSION_COOKIE_SECURE": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'warm.db'}",
                      "MODEL_URI": model_bundle})
    with app.app_context():
        init_db()
        headers = {"Authorization": f"Bearer {issue_token('nurse', 'read,write')}"}
    client, _ = log_in(app, "dr-wait")
    return app, client, headers


def _readings(client, headers, pid, hours_ago, sbp):
    t = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
    obs = [{"time": t, "code": "sbp_mmhg", "value": sbp, "unit": "mm[Hg]"},
           {"time": t, "code": "dbp_mmhg", "value": sbp - 50, "unit": "mm[Hg]"},
           {"time": t, "code": "hr_bpm", "value": 80, "unit": "/min"}]
    r = client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                    headers=headers)
    assert r.status_code == 201, r.get_data(as_text=True)


def _request_path_runs(app, pid) -> list[str]:
    """Actors of forecast runs not made by the warm-up (a page or API request's)."""
    with app.app_context(), db.new_session() as s:
        actors = s.scalars(select(ForecastRun.actor)
                           .where(ForecastRun.patient_id == pid)).all()
    return [a for a in actors if a != "prewarm"]


def _settle(app):
    """Wait for the queued warm-ups (a fresh pool afterwards: schedule makes one lazily)."""
    warmer = app.extensions["prewarm"]
    if warmer.executor is not None:
        warmer.executor.shutdown(wait=True)
        warmer.executor = None


def test_the_patient_page_shows_the_last_forecast_while_the_new_one_is_computed(warm,
                                                                              monkeypatch):
    app, client, h = warm
    pid = client.post("/api/v1/patients", json={"age": 64}, headers=h).get_json()["id"]
    warmer = app.extensions["prewarm"]
    queued: list[str] = []
    real_schedule = warmer.schedule
    monkeypatch.setattr(warmer, "schedule", queued.append)  # hold the warm-up back

    _readings(client, h, pid, 3, 140)
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    section = page.split('<section id="forecast"', 1)[1].split("</section>", 1)[0]
    assert 'data-pending="1"' in section and "Computing the forecast" in section
    assert "forecast-summary" not in section and pid in queued
    assert _request_path_runs(app, pid) == []  # the page computed nothing

    monkeypatch.setattr(warmer, "schedule", real_schedule)
    real_schedule(pid)
    _settle(app)
    fresh = client.get(f"/patients/{pid}/forecast-section").get_data(as_text=True)
    assert 'data-pending="1"' not in fresh and 'id="forecast-summary"' in fresh
    assert "/forecast.png?panel=bp" in fresh  # the current forecast's versioned plots

    monkeypatch.setattr(warmer, "schedule", queued.append)
    _readings(client, h, pid, 1, 100)  # a new reading: the forecast is out of date
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    section = page.split('<section id="forecast"', 1)[1].split("</section>", 1)[0]
    assert 'data-pending="1"' in section and "Updating the forecast" in section
    assert 'id="forecast-summary"' in section  # the older forecast, shown with its age
    src = re.search(r'id="bp-plot"[^>]*src="([^"]+)"', section).group(1)
    assert re.fullmatch(rf"/patients/{pid}/forecasts/[0-9a-f]{{64}}/bp\.png", src)
    digest = src.split("/")[-2]
    with app.app_context():
        from app.services import freshness, last_forecast

        stored = last_forecast.stored_plot(pid, digest, "bp", freshness.CODE)
    assert stored is not None  # the warm-up kept its PNG for any worker
    img = client.get(src)
    assert img.status_code == 200 and img.data == stored
    assert "immutable" in img.headers["Cache-Control"]
    assert client.get(src.replace("/bp.png", "/nope.png")).status_code == 404
    other = client.post("/api/v1/patients", json={"age": 50}, headers=h).get_json()["id"]
    assert client.get(src.replace(pid, other)).status_code == 404  # not another patient's
    assert _request_path_runs(app, pid) == []


def test_the_waveform_is_drawn_for_the_last_measured_values(warm):
    app, client, h = warm
    pid = client.post("/api/v1/patients", json={"age": 64}, headers=h).get_json()["id"]
    assert client.get(f"/patients/{pid}/waveform.png").status_code == 404  # nothing measured
    _readings(client, h, pid, 2, 150)
    _readings(client, h, pid, 1, 118)
    resp = client.get(f"/patients/{pid}/waveform.png")
    assert resp.status_code == 200 and resp.data[:4] == b"\x89PNG"
    with app.test_request_context():
        from app.web import forecast_view

        assert forecast_view.last_measured(pid)["sbp"] == 118
    assert _request_path_runs(app, pid) == []
    _settle(app)


def test_the_ward_never_computes_a_forecast(warm, monkeypatch):
    app, client, h = warm
    pid = client.post("/api/v1/patients", json={"age": 64}, headers=h).get_json()["id"]
    warmer = app.extensions["prewarm"]
    queued: list[str] = []
    monkeypatch.setattr(warmer, "schedule", queued.append)
    _readings(client, h, pid, 1, 120)
    queued.clear()
    t0 = time.perf_counter()
    page = client.get("/").get_data(as_text=True)
    assert time.perf_counter() - t0 < 5
    row = page.split(f'id="row-{pid}"', 1)[1].split("</tr>", 1)[0]
    assert "forecast computing" in row and 'data-pending="1"' in row
    assert queued == [pid] and _request_path_runs(app, pid) == []


def test_a_whatif_post_answers_at_once_and_the_result_follows(warm, monkeypatch, log_in):
    from app.services.whatif_jobs import WhatIfJobs

    app, _, h = warm
    client, csrf = log_in(app, "dr-whatif")
    pid = client.post("/api/v1/patients", json={"age": 64}, headers=h).get_json()["id"]
    _readings(client, h, pid, 2, 150)
    held: list[tuple] = []
    real_submit = WhatIfJobs.submit
    monkeypatch.setattr(WhatIfJobs, "submit", lambda self, *a: held.append((self, a)))
    start = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"drug": "benazepril", "dose_mg": "10", "interval_h": "24", "start": start,
            "csrf_token": csrf}
    resp = client.post(f"/patients/{pid}/whatif", data=form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and len(held) == 1  # queued, not computed
    result = page.split('<section id="whatif-result"', 1)[1].split("</section>", 1)[0]
    assert 'data-pending="1"' in result and "Computing the what-if" in result
    assert 'id="apply-regimen"' in result and "whatif-table" not in result
    url = re.search(r'data-section-url="([^"]+)"', result).group(1).replace("&amp;", "&")
    assert 'data-pending="1"' in client.get(url).get_data(as_text=True)
    png = url.replace("/whatif-section", "/whatif.png")
    assert client.get(png).status_code == 404  # nothing to draw yet

    self, args = held[0]
    real_submit(self, *args).result(timeout=120)  # the background run
    assert not self.errors, self.errors
    done = client.get(url).get_data(as_text=True)
    assert 'data-pending="1"' not in done and 'id="whatif-table"' in done
    assert "proposed" in done and 'id="whatif-plot"' in done
    img = client.get(png)
    assert img.status_code == 200 and img.data[:4] == b"\x89PNG"
    queued = len(held)
    again = client.post(f"/patients/{pid}/whatif", data=form).get_data(as_text=True)
    assert 'id="whatif-table"' in again and len(held) == queued  # stored: shown at once

    bad = client.get(url.replace("dose_mg=10", "dose_mg=abc"))
    assert bad.status_code == 422
    _settle(app)
