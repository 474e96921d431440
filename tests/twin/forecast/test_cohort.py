"""Virtual cohort determinism, role separation, and conformal coverage on a small cohort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import twin.forecast.evaluate as evaluate_mod
import twin.forecast.training as training_mod
from twin.forecast.cohort import NOW_RANGE_H, forecast_cases, generate_cohort
from twin.forecast.conformal import ConformalTable
from twin.forecast.endpoints import NAMES
from twin.forecast.engines import LEAD_H, Persistence
from twin.forecast.graph import GraphConfig, train_graph
from twin.forecast.metrics import score
from twin.forecast.training import multi_origin, normaliser_from

pytestmark = pytest.mark.slow  # simulates ~36 virtual patients (about a minute on 2 cores)


@pytest.fixture(scope="module")
def cohorts():
    return generate_cohort(11, 16, "calibration"), generate_cohort(11, 16, "test")


def test_same_seed_same_cohort():
    a, b = generate_cohort(5, 2, "dev"), generate_cohort(5, 2, "dev")
    assert [p.pid for p in a.patients] == [p.pid for p in b.patients]
    assert [p.parameters for p in a.patients] == [p.parameters for p in b.patients]
    assert a.observations == b.observations
    np.testing.assert_array_equal(a.truth, b.truth)
    c = generate_cohort(6, 2, "dev")
    assert a.observations != c.observations


def test_roles_never_share_patients(cohorts):
    cal, test = cohorts
    assert not {p.pid for p in cal.patients} & {p.pid for p in test.patients}
    cal_params = {tuple(p.parameters.values()) for p in cal.patients}
    assert not cal_params & {tuple(p.parameters.values()) for p in test.patients}


def test_observation_model(cohorts):
    _, test = cohorts
    for obs in test.observations:
        times = [o.time_h for o in obs]
        assert times == sorted(times)
        names = {o.endpoint for o in obs}
        assert {"sbp_mmhg", "dbp_mmhg", "hr_bpm"} <= names
        sbp = [o for o in obs if o.endpoint == "sbp_mmhg"]
        gaps = np.diff([o.time_h for o in sbp])
        assert gaps.min() > 0.4 and gaps.max() < 8.6  # BP every 1-8 h (+- 15 min)
    # cuff noise: residuals of SBP against the noise-free truth have SD near 5 mmHg
    res = []
    for b, obs in enumerate(test.observations):
        for o in obs:
            if o.endpoint == "sbp_mmhg":
                res.append(o.value - np.interp(o.time_h, test.times_h, test.truth[b, 7]))
    assert 3.5 < np.std(res) < 6.5 and abs(np.mean(res)) < 1.5


def test_calibration_and_evaluation_cases_are_made_alike(cohorts):
    """Conformal scores are only exchangeable with the evaluation's if calibration cases are
    made exactly like test cases: same function, forecast times drawn like the patients'
    now_h, observation history = the patient's observations up to that time, truth there."""
    cal, test = cohorts
    assert evaluate_mod.forecast_cases is forecast_cases
    assert training_mod.forecast_cases is forecast_cases
    one_cases, one_truth = training_mod.multi_origin(test, 1, seed=4)
    ev_cases, ev_truth = forecast_cases(test)  # what evaluate() forecasts and scores
    assert one_cases == ev_cases
    np.testing.assert_array_equal(one_truth, ev_truth)
    cases, truth = training_mod.multi_origin(cal, 3, seed=4)
    n = len(cal.patients)
    assert len(cases) == 3 * n and truth.shape[0] == 3 * n
    for j, case in enumerate(cases):
        b = j % n
        now = case.now_h
        assert now == int(now) and NOW_RANGE_H[0] <= now <= NOW_RANGE_H[1]
        if j < n:
            assert now == cal.patients[b].now_h
        assert case.scenario is cal.patients[b].scenario_seen
        assert case.observations == tuple(o for o in cal.observations[b] if o.time_h <= now)
        np.testing.assert_array_equal(truth[j], cal.truth_at_leads([now] * n)[b])
    extra = [c.now_h for c in cases[n:]]
    assert len(set(extra)) > 1  # further forecast times really are drawn


def test_conformal_coverage_holds_on_a_small_cohort(cohorts):
    """Persistence intervals calibrated on one cohort cover the other's truth at about the
    nominal rate (pooled over endpoints and horizons; small cohorts, so loose bounds)."""
    cal, test = cohorts
    eng = Persistence(normaliser_from(cal).mean)
    cal_cases, cal_truth = multi_origin(cal, 3, seed=1)
    test_cases, test_truth = multi_origin(test, 3, seed=2)
    table = ConformalTable.fit(LEAD_H, eng.predict_batch(cal_cases) - cal_truth)
    pred = eng.predict_batch(test_cases)
    for nominal, lo, hi in ((0.9, 0.8, 0.97), (0.5, 0.35, 0.65)):
        res = score(pred, test_truth, table, nominal)
        cov = np.mean([res[e][h]["coverage"] for e in NAMES for h in res[e]])
        assert lo <= cov <= hi, (nominal, cov)
    narrow = score(pred, test_truth, table, 0.5)["sbp_mmhg"]["24"]["mean_width"]
    wide = score(pred, test_truth, table, 0.9)["sbp_mmhg"]["24"]["mean_width"]
    assert wide > narrow > 0


def test_graph_training_is_deterministic(cohorts):
    cal, _ = cohorts
    cases, truth = multi_origin(cal, 1, seed=0)
    norm = normaliser_from(cal)
    cfg = GraphConfig(hidden=16, heads=2, layers=1, epochs=2, seed=3)
    a = train_graph(cases, truth, norm, cfg)
    b = train_graph(cases, truth, norm, cfg)
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items(),
                                  strict=True):
        assert ka == kb and torch.equal(va, vb)
    np.testing.assert_array_equal(a.predict_batch(cases[:3]), b.predict_batch(cases[:3]))
