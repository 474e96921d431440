"""Expected remaining stay (app.services.los) through the API: the shipped twin.los model on
the patient's own readings, null without any, readings in error left out, the forecast and
OpenAPI carry it, a missing model is no 5xx."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app import create_app
from app.db import init_db
from app.services import los as los_service
from twin.los import load_model


def _obs(hours_ago: float, code: str, value: float, unit: str) -> dict:
    t = datetime.now(UTC) - timedelta(hours=hours_ago)
    return {"time": t.isoformat(), "code": code, "value": value, "unit": unit}


STABLE = [("sbp_mmhg", 128, "mm[Hg]"), ("dbp_mmhg", 74, "mm[Hg]"), ("hr_bpm", 72, "/min"),
          ("rr_per_min", 15, "/min"), ("spo2_pct", 97, "%"), ("temp_c", 36.8, "Cel")]
SICK = [("sbp_mmhg", 84, "mm[Hg]"), ("dbp_mmhg", 46, "mm[Hg]"), ("hr_bpm", 128, "/min"),
        ("rr_per_min", 29, "/min"), ("spo2_pct", 88, "%"), ("temp_c", 39.2, "Cel"),
        ("creatinine_umol_per_l", 310, "umol/L"), ("potassium_mmol_per_l", 5.9, "mmol/L")]


def _admit(client, headers, readings, hours=(30, 20, 10, 2), age=70) -> str:
    pid = client.post("/api/v1/patients", json={"age": age}, headers=headers).get_json()["id"]
    batch = [_obs(h, c, v, u) for h in hours for c, v, u in readings]
    resp = client.post(f"/api/v1/patients/{pid}/observations", json={"observations": batch},
                       headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return pid


def _stay(client, headers, pid) -> dict | None:
    resp = client.get(f"/api/v1/patients/{pid}", headers=headers)
    assert resp.status_code == 200
    return resp.get_json()["remaining_stay"]


def test_no_readings_no_estimate(client, auth_headers):
    pid = client.post("/api/v1/patients", json={"age": 60}, headers=auth_headers).get_json()["id"]
    assert _stay(client, auth_headers, pid) is None


def test_estimate_shape_interval_and_trend(client, auth_headers):
    stay = _stay(client, auth_headers, _admit(client, auth_headers, STABLE))
    assert stay["model_version"] == load_model().version
    assert stay["coverage"] == 0.8 and "ICU population" in stay["trained_on"]
    assert 0 <= stay["low_h"] <= stay["median_h"] <= stay["high_h"] <= 168
    assert stay["median_days"] == pytest.approx(stay["median_h"] / 24, abs=0.05)
    assert re.fullmatch(r"\d+(\.\d)? [dh] \(\d+-\d+\)", stay["text"])
    # admitted in the clock hour of the first reading, 30 h ago: estimated at hour 30 or 31
    n = stay["hours_since_admission"]
    assert n in (30, 31)
    hours = [p["hours_since_admission"] for p in stay["trend"]]
    assert hours == [n - 30, n - 24, n - 18, n - 12, n - 6, n]
    assert stay["trend"][-1]["median_h"] == stay["median_h"]


def test_a_sicker_patient_is_expected_to_stay_longer(client, auth_headers):
    stable = _stay(client, auth_headers, _admit(client, auth_headers, STABLE))
    sick = _stay(client, auth_headers, _admit(client, auth_headers, SICK))
    assert sick["median_h"] > stable["median_h"] + 12, (sick["text"], stable["text"])


def test_service_is_the_model_on_the_hourly_grid_in_ricu_units(app, client, auth_headers):
    now = datetime.now(UTC)
    top = now.replace(minute=0, second=0, microsecond=0)
    ago = (now - top).total_seconds() / 3600  # readings at the top of this hour and 5 h before
    pid = _admit(client, auth_headers, SICK, hours=(5 + ago, ago))
    stay = _stay(client, auth_headers, pid)
    grid = {c: np.full(6, np.nan) for c in ("sbp", "dbp", "hr", "resp", "o2sat", "temp",
                                               "crea", "k")}
    for (concept, value) in zip(grid, [84, 46, 128, 29, 88, 39.2, 310 / 88.42, 5.9],
                                strict=True):
        grid[concept][[0, 5]] = value
    est = load_model().estimate(grid, {"age": 70.0})
    assert est.hours_since_admission == stay["hours_since_admission"] == 5
    assert stay["median_h"] == pytest.approx(est.median_h, abs=0.06)
    assert stay["high_h"] == pytest.approx(est.high_h, abs=0.06)


def test_readings_entered_in_error_are_left_out(client, auth_headers):
    pid = _admit(client, auth_headers, STABLE)
    before = _stay(client, auth_headers, pid)
    resp = client.post(f"/api/v1/patients/{pid}/observations", headers=auth_headers,
                       json={"observations": [_obs(0.5, "sbp_mmhg", 70, "mm[Hg]"),
                                              _obs(0.5, "hr_bpm", 150, "/min")]})
    ids = [o["id"] for o in resp.get_json()["items"]]
    changed = _stay(client, auth_headers, pid)
    assert changed["median_h"] != before["median_h"]
    for oid in ids:
        assert client.patch(f"/api/v1/patients/{pid}/observations/{oid}", headers=auth_headers,
                            json={"status": "entered-in-error"}).status_code == 200
    assert _stay(client, auth_headers, pid)["median_h"] == before["median_h"]


def test_forecast_carries_the_remaining_stay(model_app):
    from app.auth import issue_token

    with model_app.app_context():
        h = {"Authorization": f"Bearer {issue_token('integrator', 'read,write')}"}
    client = model_app.test_client()
    pid = _admit(client, h, STABLE)
    body = client.get(f"/api/v1/patients/{pid}/forecast?horizon_h=24", headers=h).get_json()
    assert body["endpoints"] and body["remaining_stay"]["median_h"] == pytest.approx(
        _stay(client, h, pid)["median_h"])


def test_openapi_describes_it(client, auth_headers):
    spec = client.get("/api/v1/openapi.json", headers=auth_headers).get_json()
    schemas = spec["components"]["schemas"]
    assert {"median_h", "low_h", "high_h", "trend", "model_version", "trained_on"} <= set(
        schemas["RemainingStayOut"]["properties"])
    text = str(schemas["PatientOut"]["properties"]["remaining_stay"])
    assert "RemainingStayOut" in text


def test_a_missing_model_is_no_error(tmp_path):
    app = create_app({"TESTING": True, "PREWARM_FORECASTS": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                      "MODEL_URI": str(tmp_path / "model"),
                      "LOS_MODEL_URI": str(tmp_path / "no-such-model.json.gz")})
    from app.auth import issue_token

    with app.app_context():
        init_db()
        h = {"Authorization": f"Bearer {issue_token('integrator', 'read,write')}"}
    client = app.test_client()
    pid = _admit(client, h, STABLE)
    assert _stay(client, h, pid) is None
    los_service._model.cache_clear()


def test_ward_and_patient_page_show_it(app, client, auth_headers, log_in):
    pid = _admit(client, auth_headers, SICK)
    empty = client.post("/api/v1/patients", json={"age": 50},
                        headers=auth_headers).get_json()["id"]
    stay = _stay(client, auth_headers, pid)
    page, _ = log_in(app, "dr-l")
    ward = page.get("/").get_data(as_text=True)
    assert "Expected remaining stay" in ward
    row = ward[ward.index(f'id="row-{pid}"'):]
    row = row[:row.index("</tr>")]
    assert f'<td class="stay"><span title="expected remaining ICU stay, 80% interval; ' \
           f'{stay["model_version"]}' in row and stay["text"] in row
    empty_row = ward[ward.index(f'id="row-{empty}"'):]
    assert '<td class="stay">–</td>' in empty_row[:empty_row.index("</tr>")]
    # sortable by it: the patient with an estimate first ascending, the one without last
    order = page.get("/?sort=stay&order=asc").get_data(as_text=True)
    assert order.index(f'id="row-{pid}"') < order.index(f'id="row-{empty}"')
    html = page.get(f"/patients/{pid}").get_data(as_text=True)
    section = html[html.index('id="remaining-stay"'):]
    section = section[:section.index("</section>")]
    assert stay["text"] in section and "ICU population" in section
    assert "<svg class=\"stay-trend\"" in section and section.count("<tr>") == 1 + len(
        stay["trend"])
    none = page.get(f"/patients/{empty}").get_data(as_text=True)
    assert "No estimate yet" in none
