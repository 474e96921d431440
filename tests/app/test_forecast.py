"""Forecasts through the API with a real (small) model bundle: JSON, cache, plots, what-if."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import db
from app.models import ForecastRun
from scripts.persistence_bundle import VERSION


@pytest.fixture
def api(model_app):
    from app.auth import issue_token

    with model_app.app_context():
        token = issue_token("clin-sys", "read,write")
    return model_app.test_client(), {"Authorization": f"Bearer {token}"}


def _admit_with_data(client, h, regimen=True) -> tuple[str, datetime]:
    pid = client.post("/api/v1/patients", json={"age": 66, "glucose": "diabetic"},
                      headers=h).get_json()["id"]
    now = datetime.now(UTC)
    first = now - timedelta(hours=30)
    obs = [{"time": (first + timedelta(hours=k)).isoformat(), "code": code, "value": v,
            "unit": "mm[Hg]"} for k in (0, 12, 24) for code, v in (("sbp_mmhg", 158 - k / 3),
                                                                   ("dbp_mmhg", 95))]
    assert client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=h).status_code == 201
    if regimen:
        client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
            "dose_mg": 10, "interval_h": 24, "start": (first + timedelta(hours=6)).isoformat()})
    return pid, first


def _runs(app) -> int:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(func.count()).select_from(ForecastRun))


def test_forecast_json(model_app, api):
    client, h = api
    pid, first = _admit_with_data(client, h)
    resp = client.get(f"/api/v1/patients/{pid}/forecast?horizon_h=48&coverage=0.8", headers=h)
    assert resp.status_code == 200, resp.get_json()
    fc = resp.get_json()
    assert fc["model_version"] == VERSION and fc["coverage"] == 0.8
    assert datetime.fromisoformat(fc["origin"]) == first  # t = 0 at the first observation
    sbp = fc["endpoints"]["sbp_mmhg"]
    assert len(sbp["times"]) == len(sbp["median"]) == 49
    assert datetime.fromisoformat(sbp["times"][0]) == datetime.fromisoformat(fc["now"])
    assert all(lo <= m <= hi for lo, m, hi in zip(sbp["lower"], sbp["median"], sbp["upper"],
                                                  strict=True))
    # persistence carries the last SBP (150 mmHg) forward
    assert sbp["median"][0] == pytest.approx(150, abs=0.5)
    assert set(fc["endpoints"]) >= {"angII_pg_per_ml", "ace_inhibition_pct", "hr_bpm"}


def test_ward_observations_do_not_break_the_forecast(api):
    """A bedside set (RR, SpO2, temperature, ACVPU...) is monitoring data: the forecast still
    runs on the twin's endpoints, and the set's BP is one of its readings."""
    client, h = api
    pid, _ = _admit_with_data(client, h)
    obs_set = {"time": datetime.now(UTC).isoformat(), "respiratory_rate_per_min": 18,
               "spo2_pct": 96, "supplemental_oxygen": False, "sbp_mmhg": 131, "dbp_mmhg": 80,
               "hr_bpm": 84, "consciousness": "A", "temperature_c": 37.2}
    resp = client.post(f"/api/v1/patients/{pid}/observation-sets", json=obs_set, headers=h)
    assert resp.status_code == 201, resp.get_json()
    fc = client.get(f"/api/v1/patients/{pid}/forecast?horizon_h=6", headers=h)
    assert fc.status_code == 200, fc.get_json()
    assert "rr_per_min" not in fc.get_json()["endpoints"]
    assert fc.get_json()["endpoints"]["sbp_mmhg"]["median"][0] == pytest.approx(131, abs=0.5)


def test_forecast_is_cached_until_data_changes(model_app, api):
    client, h = api
    pid, _ = _admit_with_data(client, h)
    url = f"/api/v1/patients/{pid}/forecast"
    first = client.get(url, headers=h).get_json()
    assert client.get(url, headers=h).get_json() == first
    assert _runs(model_app) == 1  # the second came from the cache
    client.post(f"/api/v1/patients/{pid}/observations", headers=h, json={"observations": [
        {"time": datetime.now(UTC).isoformat(), "code": "sbp_mmhg", "value": 140,
         "unit": "mm[Hg]"}]})
    again = client.get(url, headers=h).get_json()
    assert _runs(model_app) == 2
    assert again["endpoints"]["sbp_mmhg"]["median"][0] == pytest.approx(140, abs=0.5)


def test_forecast_without_observations_is_409(api):
    client, h = api
    pid = client.post("/api/v1/patients", json={"age": 50}, headers=h).get_json()["id"]
    resp = client.get(f"/api/v1/patients/{pid}/forecast", headers=h)
    assert resp.status_code == 409 and resp.mimetype == "application/problem+json"


def test_unknown_engine_is_422(api):
    client, h = api
    pid, _ = _admit_with_data(client, h)
    resp = client.get(f"/api/v1/patients/{pid}/forecast?engine=crystal-ball", headers=h)
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "engine"


@pytest.mark.parametrize("fmt,magic,mimetype", [("png", b"\x89PNG", "image/png"),
                                                ("svg", b"<?xml", "image/svg+xml")])
def test_forecast_plots(api, fmt, magic, mimetype):
    client, h = api
    pid, _ = _admit_with_data(client, h)
    for panel in ("bp", "ras", "drug"):
        resp = client.get(f"/api/v1/patients/{pid}/forecast.{fmt}?panel={panel}", headers=h)
        assert resp.status_code == 200 and resp.mimetype == mimetype
        assert resp.data.startswith(magic) and len(resp.data) > 2000
    again = client.get(f"/api/v1/patients/{pid}/forecast.{fmt}?panel=drug", headers=h)
    assert again.data == resp.data
    assert client.get(f"/api/v1/patients/{pid}/forecast.{fmt}?panel=x",
                      headers=h).status_code == 400


def test_what_if(api):
    client, h = api
    pid, _ = _admit_with_data(client, h)
    resp = client.post(f"/api/v1/patients/{pid}/scenarios", headers=h, json={
        "regimen": {"drug": "benazepril", "dose_mg": 20, "interval_h": 12,
                    "start": datetime.now(UTC).isoformat()}, "horizon_h": 24})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"current", "proposed", "summary"}
    assert len(body["proposed"]["endpoints"]["sbp_mmhg"]["median"]) == 25
    assert set(body["summary"]["current"]) == {"sbp_mmhg_end", "dbp_mmhg_end", "sbp_mmhg_mean"}
    bad = client.post(f"/api/v1/patients/{pid}/scenarios", headers=h, json={
        "regimen": {"dose_mg": 900, "start": datetime.now(UTC).isoformat()}})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "regimen.dose_mg"
    other = client.post(f"/api/v1/patients/{pid}/scenarios", headers=h, json={
        "regimen": {"drug": "lisinopril", "dose_mg": 10,
                    "start": datetime.now(UTC).isoformat()}})
    assert other.status_code == 422
    assert other.get_json()["errors"][0]["field"] == "regimen.drug"


def test_what_if_keeps_the_doses_already_taken(model_app, api):
    """The proposed regimen takes over at its start; the current one's past doses stay in
    the scenario the patient is fitted and simulated with."""
    from app import services
    from app.schemas import RegimenIn
    from app.services.timeline import changed_regimen

    client, h = api
    pid, first = _admit_with_data(client, h)
    start = datetime.now(UTC) + timedelta(hours=1)
    proposed = RegimenIn(dose_mg=20, interval_h=12, start=start)
    switch_h = (start - first).total_seconds() / 3600  # 31 h after the first observation
    with model_app.test_request_context():
        p = services.get_patient(pid)
        reg = changed_regimen(p.regimen, proposed, first, switch_h + 24)
    doses = reg.dose_times_h(switch_h + 24)
    past = [d for t, d in doses if t < switch_h]
    future = [d for t, d in doses if t >= switch_h]
    assert past == [10.0, 10.0] and future == [20.0, 20.0]  # 6 h, 30 h; 31 h, 43 h


def test_simulate_is_stateless(model_app, api):
    client, h = api
    resp = client.post("/api/v1/simulate", headers=h, json={
        "scenario": {"age_years": 60, "regimen": {"dose_mg": 20, "start_h": 0}},
        "horizon_h": 24, "step_h": 2})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["times_h"] == [float(t) for t in range(0, 25, 2)]
    ace = body["endpoints"]["ace_inhibition_pct"]
    assert ace["unit"] == "%" and len(ace["values"]) == 13
    assert max(ace["values"]) > 50  # 20 mg benazepril inhibits ACE substantially
    bad = client.post("/api/v1/simulate", headers=h, json={"scenario": {"age_years": 500}})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == \
        "scenario.age_years"


def test_model_info(api):
    client, h = api
    body = client.get("/api/v1/model", headers=h).get_json()
    assert body["model_version"] == VERSION and body["engines"] == ["persistence"]
    assert body["metrics"]["note"] == "app test bundle"


def test_forecast_without_bundle_is_503(client, auth_headers):
    pid = client.post("/api/v1/patients", json={"age": 50},
                      headers=auth_headers).get_json()["id"]
    resp = client.get(f"/api/v1/patients/{pid}/forecast", headers=auth_headers)
    assert resp.status_code == 503 and resp.mimetype == "application/problem+json"
    detail = resp.get_json()["detail"]
    assert "could not be loaded" in detail
    assert "/" not in detail and "model" in detail  # no server path reaches the client


def test_concurrent_requests_compute_a_forecast_once(model_app, api):
    from concurrent.futures import ThreadPoolExecutor

    client, h = api
    pid, _ = _admit_with_data(client, h)

    def get(_):
        return model_app.test_client().get(f"/api/v1/patients/{pid}/forecast.png", headers=h)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(get, range(6)))
    assert all(r.status_code == 200 for r in responses)
    assert len({r.data for r in responses}) == 1
    assert _runs(model_app) == 1


def test_second_worker_reads_the_shared_cache(model_app, api):
    """A second process (another app on the same database) reuses the stored forecast."""
    from app import create_app

    client, h = api
    pid, _ = _admit_with_data(client, h)
    first = client.get(f"/api/v1/patients/{pid}/forecast", headers=h).get_json()
    other = create_app({"TESTING": True, "DATABASE_URL": model_app.config["DATABASE_URL"],
                        "MODEL_URI": model_app.config["MODEL_URI"]})
    again = other.test_client().get(f"/api/v1/patients/{pid}/forecast", headers=h).get_json()
    assert again == first
    assert _runs(model_app) == 1


def test_readyz_reports_a_bundle_that_does_not_load(tmp_path, client, app, auth_headers):
    (tmp_path / "model").mkdir(exist_ok=True)  # present but empty: not a bundle
    assert client.get("/readyz").status_code == 200  # nothing tried yet
    pid = client.post("/api/v1/patients", json={"age": 50},
                      headers=auth_headers).get_json()["id"]
    assert client.get(f"/api/v1/patients/{pid}/forecast",
                      headers=auth_headers).status_code == 503
    body = client.get("/readyz").get_json()
    assert body["not_ready"] == ["model_bundle"]


def test_readyz_ok_with_a_loaded_bundle(model_app):
    from app import forecasting

    with model_app.app_context():
        forecasting.get_forecaster()
    assert model_app.test_client().get("/readyz").status_code == 200


def test_writes_prewarm_the_forecast_and_plots(model_app, api):
    """With PREWARM_FORECASTS on (the default), a write queues the patient's forecasts and
    default plots in the background: the next reads compute nothing."""
    from app import create_app

    _, h = api
    warm = create_app({"TESTING": True, "DATABASE_URL": model_app.config["DATABASE_URL"],
                       "MODEL_URI": model_app.config["MODEL_URI"]})
    client = warm.test_client()
    pid, _ = _admit_with_data(client, h)
    warm.extensions["prewarm"].executor.shutdown(wait=True)  # let the warm-up finish
    runs = _runs(model_app)
    assert runs >= 1
    with model_app.app_context(), db.new_session() as s:
        actors = set(s.scalars(select(ForecastRun.actor)
                               .where(ForecastRun.patient_id == pid)).all())
    assert actors == {"prewarm"}
    plots_before = len(warm.extensions["plot_cache"].data)
    assert client.get(f"/api/v1/patients/{pid}/forecast", headers=h).status_code == 200
    assert client.get(f"/api/v1/patients/{pid}/forecast?horizon_h=24",
                      headers=h).status_code == 200
    for panel in ("bp", "ras", "drug"):
        resp = client.get(f"/api/v1/patients/{pid}/forecast.png?panel={panel}", headers=h)
        assert resp.status_code == 200 and resp.data[:4] == b"\x89PNG"
    assert _runs(model_app) == runs  # every read came from what the warm-up computed
    assert len(warm.extensions["plot_cache"].data) == plots_before


def test_prewarm_of_a_patient_without_observations_changes_nothing(model_app, api):
    from app import create_app

    _, h = api
    warm = create_app({"TESTING": True, "DATABASE_URL": model_app.config["DATABASE_URL"],
                       "MODEL_URI": model_app.config["MODEL_URI"]})
    client = warm.test_client()
    pid = client.post("/api/v1/patients", json={"age": 50}, headers=h).get_json()["id"]
    assert client.put(f"/api/v1/patients/{pid}/regimen", headers=h, json={
        "dose_mg": 10, "interval_h": 24, "start": datetime.now(UTC).isoformat()}
    ).status_code == 200
    warm.extensions["prewarm"].executor.shutdown(wait=True)
    assert _runs(model_app) == 0  # no observation: the warm-up had nothing to forecast


def _claim_row(app, pid, body):
    """Insert the shared-cache row of the patient's default forecast, as a worker would."""
    import hashlib

    from app import services
    from app.models import ForecastCache

    with app.test_request_context():
        key, _ = services.forecast_key(pid, 72.0, 0.9, None)
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        with db.get_engine().begin() as conn:
            conn.execute(ForecastCache.__table__.insert().values(
                key_sha256=digest, patient_id=pid, body=body, created_at=datetime.now(UTC)))
    return digest


def test_a_worker_waits_for_the_forecast_another_has_claimed(model_app, api):
    """A claimed (in-progress) forecast is not computed again: the reader polls until the
    claimer stores it, and returns that."""
    import threading

    from app.models import ForecastCache

    client, h = api
    pid, _ = _admit_with_data(client, h)
    digest = _claim_row(model_app, pid, "")
    got = {}
    reader = threading.Thread(target=lambda: got.update(
        resp=client.get(f"/api/v1/patients/{pid}/forecast", headers=h)))
    reader.start()
    reader.join(timeout=0.5)
    assert reader.is_alive()  # waiting for the claimer
    stored = {"patient_id": pid, "engine": "claimer", "endpoints": {}}
    with model_app.app_context(), db.get_engine().begin() as conn:
        conn.execute(ForecastCache.__table__.update()
                     .where(ForecastCache.key_sha256 == digest)
                     .values(body=json.dumps(stored)))
    reader.join(timeout=10)
    assert got["resp"].status_code == 200 and got["resp"].get_json()["engine"] == "claimer"
    assert _runs(model_app) == 0  # nothing computed by the reader


def test_a_stale_claim_is_computed_after_the_wait(model_app, api, monkeypatch):
    from app import cache

    monkeypatch.setattr(cache, "CLAIM_WAIT_S", 0.3)
    client, h = api
    pid, _ = _admit_with_data(client, h)
    _claim_row(model_app, pid, "")  # a claimer that died
    resp = client.get(f"/api/v1/patients/{pid}/forecast", headers=h)
    assert resp.status_code == 200 and resp.get_json()["engine"] == "persistence"
    assert _runs(model_app) == 1


def test_a_twin_scenario_error_is_a_422_naming_its_field(model_app, api):
    """The request passes the schema; the twin rejects it with a typed error whose field the
    problem names (stop_h before start_h)."""
    client, h = api
    resp = client.post("/api/v1/simulate", headers=h, json={
        "scenario": {"regimen": {"dose_mg": 5, "start_h": 10, "stop_h": 5}}, "horizon_h": 24})
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    (error,) = resp.get_json()["errors"]
    assert error["field"] == "stop_h" and "start_h" in error["message"]
