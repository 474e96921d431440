"""The forecast rule after a write, with a real (small) model bundle: the background thread
computes the 24 h 90 % forecast (shared with the warm-up) and raises forecast_sbp_low."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app import create_app, db
from app.auth import issue_token
from app.db import init_db
from app.models import ForecastRun


def test_forecast_sbp_low_is_raised_in_the_background(tmp_path, model_bundle):
    app = create_app({"TESTING": True, "PREWARM_FORECASTS": True,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'fc.db'}",
                      "MODEL_URI": model_bundle})
    with app.app_context():
        init_db()
        headers = {"Authorization": f"Bearer {issue_token('nurse', 'read,write')}"}
    client = app.test_client()
    pid = client.post("/api/v1/patients", json={"age": 70}, headers=headers).get_json()["id"]
    now = datetime.now(UTC)
    obs = [{"time": (now - timedelta(hours=h)).isoformat(), "code": "sbp_mmhg", "value": v,
            "unit": "mm[Hg]"} for h, v in ((30, 84), (20, 80), (10, 78), (1, 76))]
    resp = client.post(f"/api/v1/patients/{pid}/observations", json={"observations": obs},
                       headers=headers)
    assert resp.status_code == 201
    found = []
    deadline = time.monotonic() + 60
    while not found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = [a for a in client.get("/api/v1/alerts", query_string={"patient_id": pid},
                                       headers=headers).get_json()["alerts"]
                 if a["rule"] == "forecast_sbp_low"]
    assert found, "forecast_sbp_low not raised within 60 s"
    (alert,) = found
    assert alert["level"] == "watch" and alert["values"]["lower"] < 90
    assert alert["values"]["horizon_h"] == 24
    with app.app_context(), db.new_session() as s:  # computed once for the warm-up and us
        runs = s.scalar(select(func.count()).select_from(ForecastRun)
                        .where(ForecastRun.horizon_h == 24.0))
    assert runs == 1
