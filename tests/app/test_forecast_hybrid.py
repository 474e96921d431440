"""The service with the default engine (hybrid_twin): the deteriorating patient of issue 11
through the REST API, and a what-if that still moves the forecast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

HOURS = (0, 12, 28, 40)
SBP, DBP, HR = (148, 138, 118, 96), (88, 80, 70, 58), (104, 110, 117, 124)


@pytest.fixture(scope="module")
def model_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Overrides conftest's bundle: default engine hybrid_twin (vital-sign intervals: the
    real-data conformal scores; other endpoints: residuals of a few population-twin cases)."""
    from tests.twin.forecast.helpers import synthetic_case
    from twin.forecast.cohort import default_prior
    from twin.forecast.conformal import ConformalTable
    from twin.forecast.endpoints import NAMES
    from twin.forecast.engines import LEAD_H, Persistence
    from twin.forecast.forecaster import Forecaster
    from twin.forecast.hybrid_engine import HybridTwin, hybrid_table
    from twin.forecast.vitals_model import VitalsModel

    engine = HybridTwin(default_prior(), VitalsModel.load())
    rng = np.random.default_rng(5)
    pairs = [synthetic_case(rng) for _ in range(6)]
    pred, _ = engine.predict_with_scale([c for c, _ in pairs])
    truth = np.stack([t for _, t in pairs])
    mean = truth.mean(axis=(0, 2))
    persistence = Persistence(mean)
    tables = {"hybrid_twin": hybrid_table(engine.vitals, pred - truth),
              "persistence": ConformalTable.fit(
                  LEAD_H, persistence.predict_batch([c for c, _ in pairs]) - truth)}
    fc = Forecaster({"persistence": persistence, "hybrid_twin": engine}, tables,
                    "hybrid_twin", "app-test-hybrid-1", {},
                    {"population_mean": mean.tolist(), "normaliser": {
                        "mean": mean.tolist(), "std": np.ones(len(NAMES)).tolist()}})
    uri = str(tmp_path_factory.mktemp("hybrid") / "model")
    fc.save(uri)
    return uri


@pytest.fixture
def api(model_app):
    """conftest's model_app, on this module's hybrid bundle (``model_bundle`` above)."""
    from app.auth import issue_token

    with model_app.app_context():
        token = issue_token("clin-sys", "read,write")
    return model_app.test_client(), {"Authorization": f"Bearer {token}"}


def _admit_deteriorating(client, h) -> str:
    pid = client.post("/api/v1/patients", json={"age": 58, "infected": True},
                      headers=h).get_json()["id"]
    first = datetime.now(UTC) - timedelta(hours=40, minutes=5)
    obs = []
    for k, s, d, r in zip(HOURS, SBP, DBP, HR, strict=True):
        t = (first + timedelta(hours=k)).isoformat()
        obs += [{"time": t, "code": "sbp_mmhg", "value": s, "unit": "mm[Hg]"},
                {"time": t, "code": "dbp_mmhg", "value": d, "unit": "mm[Hg]"},
                {"time": t, "code": "hr_bpm", "value": r, "unit": "/min"}]
    resp = client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=h)
    assert resp.status_code == 201, resp.get_json()
    return pid


def test_deteriorating_patient_through_the_api(api):
    client, h = api
    pid = _admit_deteriorating(client, h)
    resp = client.get(f"/api/v1/patients/{pid}/forecast?horizon_h=24&coverage=0.9", headers=h)
    assert resp.status_code == 200, resp.get_json()
    fc = resp.get_json()
    assert fc["engine"] == "hybrid_twin"
    sbp = fc["endpoints"]["sbp_mmhg"]
    assert sbp["median"][1] <= 106
    assert sbp["lower"][1] <= 96 <= sbp["upper"][1]
    assert max(sbp["median"]) < 125          # never back to 148 or the population


def test_what_if_moves_the_hybrid_forecast(api):
    client, h = api
    pid = _admit_deteriorating(client, h)
    start = datetime.now(UTC).isoformat()
    resp = client.post(f"/api/v1/patients/{pid}/scenarios", headers=h, json={
        "regimen": {"dose_mg": 20, "interval_h": 24, "start": start}, "horizon_h": 24})
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    cur = np.array(out["current"]["endpoints"]["sbp_mmhg"]["median"])
    new = np.array(out["proposed"]["endpoints"]["sbp_mmhg"]["median"])
    assert new[-1] < cur[-1] - 2             # an ACE inhibitor lowers BP, by the twin's effect
    assert abs(new[0] - cur[0]) < 1.0        # and changes nothing before the first dose acts
