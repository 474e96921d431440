"""The real-data vitals model: the residual network learns medians, the per-patient forecast
equals the cohort (grid) engine the figures come from, and the deteriorating patient."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ROOT
from twin.forecast.residual import (
    N_FEATURES,
    grid_summaries,
    predict_net,
    train_net,
)
from twin.forecast.vitals_model import VitalsModel

LOS = ROOT / "data" / "eicu_demo" / "los"


def _history_until(stay, t0: float) -> dict:
    """A stay's readings at hours <= t0, as ``VitalsModel.predict`` takes them."""
    return {ep: (t[t <= t0], stay.values[ep][t <= t0]) for ep, t in stay.times.items()}


@pytest.fixture(scope="module")
def model() -> VitalsModel:
    return VitalsModel.load()


def test_shipped_model_has_residual_networks_and_score_grids(model):
    assert model.engine == "vitals_model"
    assert set(model.nets) == {"sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm"}
    lead, scores = model.scores("sbp_mmhg")
    assert list(lead) == [1, 2, 4, 8, 12, 24, 48, 72]
    assert scores.shape == (8, 199)
    assert np.all(np.diff(scores, axis=1) >= 0)
    # wider intervals further ahead (normalised scores do not have to grow, the scale does)
    assert scores[:, 179].min() > 1.0


def test_grid_summaries_use_only_the_past():
    Y = np.array([[np.nan, 100.0, np.nan, 110.0, 120.0, np.nan]])
    s = grid_summaries(Y)
    assert np.isnan(s.last[0, 0]) and s.count[0, 0] == 0
    assert s.last[0, 2] == 100.0 and s.tsl[0, 2] == 1
    assert s.mean3[0, 5] == pytest.approx(110.0) and s.count[0, 5] == 3
    assert s.last[0, 3] == 110.0 and s.mean3[0, 3] == pytest.approx(105.0)


def test_laplace_training_learns_the_median():
    """Skewed noise: the mean and the median differ; the network must find the median."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, N_FEATURES)).astype(np.float32)
    noise = rng.exponential(6.0, size=6000) - 6.0 * np.log(2)   # median 0, mean 1.84
    resid = 8.0 * X[:, 0] + noise
    net = train_net(X, resid, epochs=12, aux_dropout=0.0)
    d, b = predict_net(net, X)
    err = resid - d
    assert abs(float(np.median(err))) < 0.6
    assert abs(float(np.mean(np.abs(err))) - float(np.median(b))) < 2.0
    assert np.corrcoef(d, X[:, 0])[0, 1] > 0.95


def test_per_patient_forecast_equals_the_evaluated_grid_engine(model):
    pytest.importorskip("pyarrow")
    from twin.forecast.evaluate_real import grid
    from twin.forecast.residual_engine import residual_engine
    from twin.realdata.loader import load_cohort

    test = load_cohort(LOS).split("test")
    test.stays = test.stays[:12]
    horizons = (1, 4, 24)
    engine = residual_engine(model.doc, test, None)
    Y = grid(test, "sbp_mmhg", pad=max(horizons))
    mu, b = engine("sbp_mmhg", Y, horizons)
    checked = 0
    for i, stay in enumerate(test.stays):
        t_sbp = stay.times["sbp_mmhg"]
        if len(t_sbp) < 8:
            continue
        t0 = int(t_sbp[6])
        hist = _history_until(stay, t0)
        out = model.predict(hist, t0, np.array(horizons, float), age=stay.age, sex=stay.sex)
        np.testing.assert_allclose(out["sbp_mmhg"][0], mu[i, t0], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(out["sbp_mmhg"][1], b[i, t0], rtol=1e-5, atol=1e-3)
        checked += 1
    assert checked >= 5


def test_deteriorating_patient_is_followed(model):
    """148/88 -> 138/80 -> 118/70 -> 96/58 over 40 h, HR 104 -> 124 (issue 11)."""
    t = np.array([0.0, 12.0, 28.0, 40.0])
    hist = {"sbp_mmhg": (t, np.array([148.0, 138, 118, 96])),
            "dbp_mmhg": (t, np.array([88.0, 80, 70, 58])),
            "hr_bpm": (t, np.array([104.0, 110, 118, 124]))}
    out = model.predict(hist, 40.0, np.array([1.0, 24.0]), age=58, sex="Male")
    mu, b = out["sbp_mmhg"]
    _lead, scores = model.scores("sbp_mmhg", sparse=True)
    q90 = scores[0, 179]                 # the 0.9 level of the grid (k = 180 of 200)
    assert mu[0] <= 106
    assert mu[0] - q90 * b[0] <= 96 <= mu[0] + q90 * b[0]
    assert mu[1] < 125                   # no snap back to the population or to 148


def test_without_residual_networks_the_state_space_is_used(model):
    doc = {k: v for k, v in model.doc.items() if k != "residual"}
    ss = VitalsModel(doc)
    assert not ss.nets
    t = np.array([0.0, 4.0])
    out = ss.predict({"hr_bpm": (t, np.array([80.0, 90.0]))}, 4.0, np.array([0.0, 4.0]))
    assert 80 < out["hr_bpm"][0][0] < 90.5 and out["hr_bpm"][1][1] > out["hr_bpm"][1][0]


def test_aci_widens_for_a_patient_whose_readings_escape():
    from twin.forecast.aci import THETA_RANGE, aci_grid, aci_theta

    z = np.array([[3.0] * 40, [0.1] * 40, [np.nan] * 40])
    th = aci_grid(z, 0.05)
    assert th[0, -1] > 0.5 and th[1, -1] < 0 and th[2, -1] == 0
    assert THETA_RANGE[0] <= th.min() and th.max() <= THETA_RANGE[1]
    assert aci_theta(z[0], 0.05) == pytest.approx(th[0, -1])


def test_aci_scale_is_the_same_per_patient_and_on_the_grid(model):
    """With a step on, the per-patient forecast still equals the evaluated grid engine."""
    pytest.importorskip("pyarrow")
    from twin.forecast.evaluate_real import grid
    from twin.forecast.residual_engine import residual_engine
    from twin.realdata.loader import load_cohort

    test = load_cohort(LOS).split("test")
    test.stays = test.stays[:6]
    doc = {**model.doc, "aci_gamma": 0.05}
    engine = residual_engine(doc, test, None)
    _, b = engine("hr_bpm", grid(test, "hr_bpm", pad=4), (4,))
    m = VitalsModel(doc)
    for i, stay in enumerate(test.stays):
        t = stay.times["hr_bpm"]
        if len(t) < 12:
            continue
        t0 = int(t[10])
        hist = _history_until(stay, t0)
        out = m.predict(hist, t0, np.array([4.0]), age=stay.age, sex=stay.sex)
        np.testing.assert_allclose(out["hr_bpm"][1], b[i, t0], rtol=1e-5)
