"""The hybrid twin (mechanistic drug effect + real-data vitals model) through a real bundle."""

from __future__ import annotations

import numpy as np
import pytest

import twin
from tests.twin.forecast.helpers import synthetic_case
from twin.forecast import hybrid_engine as he
from twin.forecast.cohort import default_prior
from twin.forecast.endpoints import INDEX, NAMES
from twin.forecast.features import Case
from twin.forecast.forecaster import Forecaster
from twin.forecast.vitals_model import VitalsModel

TIMES = (0.0, 13.0, 27.0, 40.0)
SBP, DBP, HR = (148, 138, 118, 96), (88, 80, 70, 58), (104, 110, 117, 124)


def deteriorating() -> list[twin.Observation]:
    """BP falling 148/88 -> 96/58 over 40 h, HR rising 104 -> 124."""
    obs = []
    for t, s, d, h in zip(TIMES, SBP, DBP, HR, strict=True):
        obs += [twin.Observation(t, "sbp_mmhg", s), twin.Observation(t, "dbp_mmhg", d),
                twin.Observation(t, "hr_bpm", h)]
    return obs


def infected(regimen: twin.Regimen | None = None) -> twin.Scenario:
    return twin.Scenario(age_years=58, infected=True, infection_onset_h=0.0,
                         regimen=regimen or twin.Regimen("benazepril", 10.0, 24.0))


@pytest.fixture(scope="module")
def engine() -> he.HybridTwin:
    return he.HybridTwin(default_prior(), VitalsModel.load())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, tiny_fc: Forecaster,
           engine: he.HybridTwin) -> str:
    """tiny_fc's engines plus hybrid_twin (the default), its table from 6 synthetic cases."""
    rng = np.random.default_rng(3)
    pairs = [synthetic_case(rng) for _ in range(6)]
    pred, _ = engine.predict_with_scale([c for c, _ in pairs])
    table = he.hybrid_table(engine.vitals, pred - np.stack([t for _, t in pairs]))
    fc = Forecaster({**tiny_fc._engines, "hybrid_twin": engine},
                    {**tiny_fc.conformal, "hybrid_twin": table}, "hybrid_twin", "test-hybrid",
                    {}, tiny_fc.config)
    uri = str(tmp_path_factory.mktemp("hybrid") / "bundle")
    fc.save(uri)
    return uri


def test_deteriorating_patient_is_followed(bundle: str) -> None:
    fc = twin.load_forecaster(bundle)
    assert fc.default_engine == "hybrid_twin"
    f = fc.forecast(infected(), deteriorating(), now_h=40.0, horizon_h=24, coverage=0.9)
    sbp = f.endpoints["sbp_mmhg"]
    assert f.engine == "hybrid_twin"
    assert sbp.median[1] <= 106.0
    assert sbp.lower[1] <= 96.0 <= sbp.upper[1]
    # starts near the last reading (the vitals model's 1 h forecast of a falling patient
    # reverts toward its mean: 104.5 mmHg here)
    assert abs(sbp.median[0] - 96.0) <= 9.0
    hr = f.endpoints["hr_bpm"]
    assert abs(hr.median[0] - 124.0) <= 8.0 and hr.lower[1] <= 124.0 <= hr.upper[1]
    assert f.endpoints["map_mmhg"].median[0] < 80.0  # MAP derived from the SBP/DBP readings


def test_what_if_moves_forecast_by_the_mechanistic_effect(engine: he.HybridTwin) -> None:
    base = infected()
    more = infected(twin.Regimen("benazepril", 10.0, 24.0,
                                 then=twin.Regimen("benazepril", 40.0, 24.0, start_h=40.0)))
    obs = tuple(deteriorating())
    (m0, _), (m1, _) = (engine.predict_with_scale([Case(s, obs, 40.0)]) for s in (base, more))
    e0, e1 = (engine.mechanistic([Case(s, obs, 40.0)])[0] for s in (base, more))
    i = INDEX["sbp_mmhg"]
    at = 40.0 + np.array([4.0, 12.0])
    d_mech = np.interp(at, e1[0], e1[2][i]) - np.interp(at, e0[0], e0[2][i])
    d_hyb = m1[0, i, [4, 12]] - m0[0, i, [4, 12]]
    assert (d_mech < -1.0).all()  # a higher dose lowers the pressure in the twin
    np.testing.assert_allclose(d_hyb, d_mech, atol=0.5)  # the past is unchanged: all of it


def test_window_keeps_drug_effect_of_a_long_regimen(engine: he.HybridTwin) -> None:
    scen = twin.Scenario(age_years=58, regimen=twin.Regimen("benazepril", 10.0, 24.0))
    case = Case(scen, (twin.Observation(720.0, "sbp_mmhg", 120.0),), 720.0)
    full = he.HybridTwin(engine.prior, engine.vitals, window_h=744.0)  # from t < 0
    (gw, _, ew), (gf, _, ef) = engine.mechanistic([case])[0], full.mechanistic([case])[0]
    assert gw[0] >= 720.0 - 120.0 and gf[0] < 0.0
    for ep in ("sbp_mmhg", "dbp_mmhg", "map_mmhg"):
        i = INDEX[ep]
        assert abs(np.interp(720.0, gw, ew[i]) - np.interp(720.0, gf, ef[i])) <= 1.0
        assert abs(np.interp(720.0, gf, ef[i])) >= 2.0  # and the effect is not negligible


def test_cost_does_not_grow_with_the_stay(engine: he.HybridTwin) -> None:
    hours, steps = {}, {}
    for days in (1, 7, 30):
        now = 24.0 * days
        obs = tuple(twin.Observation(t, "sbp_mmhg", 120.0) for t in np.arange(0.0, now + 1, 4.0))
        engine.clear_cache()
        he.SIMULATION_COST.clear()
        engine.predict_with_scale([Case(infected(), obs, now)])
        (hours[days], steps[days]), = he.SIMULATION_COST
    assert hours[1] == hours[7] == hours[30] <= he.WINDOW_H + 24.0 + 72.0
    assert steps[30] == steps[7] <= 1.5 * steps[1]  # solver steps: more doses in the window


def test_shifted_regimen_reproduces_the_doses() -> None:
    reg = twin.Regimen("benazepril", 10.0, 24.0, missed_doses=(5,), extra_doses_h=(130.0,),
                       then=twin.Regimen("benazepril", 20.0, 12.0, start_h=200.0))
    treated, untreated = he.shifted_scenarios(infected(reg), 96.0, 300.0)
    want = [(t - 96.0, d) for t, d in reg.dose_times_h(300.0) if t >= 96.0]
    assert list(treated.regimen.dose_times_h(300.0 - 96.0)) == want
    assert untreated.regimen.dose_times_h(1e4) == ()
    assert treated.infection_onset_h == 0.0 and treated.age_years == 58


def test_hybrid_table_uses_real_data_scores(engine: he.HybridTwin) -> None:
    n_cal = 400  # more than the real-data grid (199): the real rows are resampled to it
    res = np.random.default_rng(0).normal(size=(n_cal, len(NAMES), 73))
    table = he.hybrid_table(engine.vitals, res)
    assert table.scores.shape == (len(NAMES), 73, n_cal)
    assert table.normalised.tolist() == [n in engine.vitals.endpoints for n in NAMES]
    leads, sc = engine.vitals.scores("sbp_mmhg")
    i = INDEX["sbp_mmhg"]
    q = table.quantile(0.9)[i]
    k = int(leads[1])  # at a real-data lead the 0.9 quantile lies in [q0.9, q0.95] of the data
    assert sc[1].min() <= q[k] <= sc[1].max() + 1e-12
    j = INDEX["renin_pg_per_ml"]  # simulated rows: the sorted residuals themselves
    np.testing.assert_allclose(table.scores[j], np.sort(np.abs(res[:, j]), axis=0).T)


def test_resample_scores_reads_quantiles() -> None:
    src = np.sort(np.random.default_rng(1).exponential(size=999))
    out = he.resample_scores(src, 199)
    assert out.shape == (199,) and np.all(np.diff(out) >= 0)
    assert abs(out[180 - 1] - np.quantile(src, 0.9)) < 0.05  # rank ceil(200 * 0.9) = 180


def test_without_a_drug_the_hybrid_is_its_vitals_model(engine: he.HybridTwin) -> None:
    """What evaluate-real relies on: eICU stays carry no regimen, so the drug effect is 0 and
    the hybrid's vital-sign forecast is exactly the vitals model's (MAP charted here)."""
    scen = twin.Scenario(age_years=58, regimen=twin.Regimen("benazepril", 0.0, 24.0))
    obs, hist = [], {}
    for ep, vals in (("sbp_mmhg", SBP), ("dbp_mmhg", DBP), ("map_mmhg", (108, 99, 86, 71)),
                     ("hr_bpm", HR)):
        obs += [twin.Observation(t, ep, v) for t, v in zip(TIMES, vals, strict=True)]
        hist[ep] = (np.array(TIMES), np.array(vals, dtype=float))
    pred, scale = engine.predict_with_scale([Case(scen, tuple(obs), 40.0)])
    lead = np.array([1.0, 4.0, 24.0])
    want = engine.vitals.predict(hist, 40.0, lead, age=58)
    for ep in ("sbp_mmhg", "map_mmhg", "hr_bpm"):
        np.testing.assert_allclose(pred[0, INDEX[ep], lead.astype(int)], want[ep][0], atol=1e-6)
        np.testing.assert_allclose(scale[0, INDEX[ep], lead.astype(int)], want[ep][1], atol=1e-6)


def test_drug_gain_is_one_without_a_varying_effect() -> None:
    y = np.array([130.0, 128.0, 141.0, 125.0])
    for e in (np.zeros(4), np.full(4, -6.0)):
        assert he.drug_gain(e, y, 140.0, 0.5) == 1.0
    assert he.drug_gain(np.array([-5.0]), y[:1], 140.0, 0.5) == 1.0  # one reading
    assert he.drug_gain(np.linspace(0, -10, 4), y, 140.0, 0.0) == 1.0  # off


def test_drug_gain_recovers_the_patient_sensitivity() -> None:
    """20 readings, the effect steps 0 -> -10 mmHg, the patient responds 1.6 x as much."""
    rng = np.random.default_rng(5)
    e = np.r_[np.zeros(10), np.full(10, -10.0)]
    # noise-free: the posterior mean (1 / 0.5^2 + 1.6 sxx / 25) / (1 / 0.5^2 + sxx / 25),
    # sxx = 500: shrunk toward the prior mean 1
    assert he.drug_gain(e, 135.0 + 1.6 * e, 25.0, 0.5) == pytest.approx((4 + 32) / 24)
    g = he.drug_gain(e, 135.0 + 1.6 * e + rng.normal(0.0, 5.0, 20), 25.0, 0.5)
    assert abs(g - 1.6) <= 0.2
    assert he.drug_gain(e, 135.0 - 3.0 * e, 25.0, 0.5) == 0.0  # clipped: never reversed


def test_forecast_anchors_the_effect_at_now(engine: he.HybridTwin) -> None:
    """The vitals model sees the readings on today's effect; the forecast adds the effect's
    change from now (the default, ``anchor_now``); the gain scales that change."""
    case = Case(infected(), tuple(deteriorating()), 40.0)
    grid, _, effect = engine.mechanistic([case])[0]
    lead = np.array([1.0, 4.0, 24.0])
    for gain_sd in (0.0, 0.5):
        eng = he.HybridTwin(engine.prior, engine.vitals, gain_sd=gain_sd)
        assert eng.anchor_now
        hist, gain, ref = eng.residuals(case, grid, effect)
        i = INDEX["sbp_mmhg"]
        assert ref["sbp_mmhg"] == pytest.approx(np.interp(40.0, grid, effect[i])) != 0.0
        assert (gain["sbp_mmhg"] == 1.0) == (gain_sd == 0.0)
        t, y = he._history(case, ("sbp_mmhg",))["sbp_mmhg"]
        d = np.interp(t, grid, effect[i]) - ref["sbp_mmhg"]
        np.testing.assert_allclose(hist["sbp_mmhg"][1], y - gain["sbp_mmhg"] * d)
        g, d_at = gain["sbp_mmhg"], np.interp(40.0 + lead, grid, effect[i]) - ref["sbp_mmhg"]
        want = engine.vitals.predict(hist, 40.0, lead, age=58)["sbp_mmhg"][0] + g * d_at
        pred, _ = eng.predict_with_scale([case])
        np.testing.assert_allclose(pred[0, i, lead.astype(int)], want, atol=1e-9)


def test_gain_scales_the_what_if(engine: he.HybridTwin) -> None:
    eng = he.HybridTwin(engine.prior, engine.vitals, gain_sd=0.5)
    more = infected(twin.Regimen("benazepril", 10.0, 24.0,
                                 then=twin.Regimen("benazepril", 40.0, 24.0, start_h=40.0)))
    c0, c1 = (Case(s, tuple(deteriorating()), 40.0) for s in (infected(), more))
    (m0, _), (m1, _) = eng.predict_with_scale([c0]), eng.predict_with_scale([c1])
    (g0, _, e0), (g1, _, e1) = eng.mechanistic([c0])[0], eng.mechanistic([c1])[0]
    i, at = INDEX["sbp_mmhg"], 40.0 + np.array([4.0, 12.0])
    g = eng.residuals(c0, g0, e0)[1]["sbp_mmhg"]
    assert g != 1.0
    assert g == pytest.approx(eng.residuals(c1, g1, e1)[1]["sbp_mmhg"], abs=0.01)  # same past
    d_mech = np.interp(at, g1, e1[i]) - np.interp(at, g0, e0[i])
    np.testing.assert_allclose(m1[0, i, [4, 12]] - m0[0, i, [4, 12]], g * d_mech, atol=0.5)


def test_state_keeps_gain_and_anchor(engine: he.HybridTwin) -> None:
    eng = he.HybridTwin(engine.prior, engine.vitals, gain_sd=0.3, anchor_now=False)
    back = he.HybridTwin.from_bundle(eng.state(), {}, None, {})
    assert (back.gain_sd, back.anchor_now) == (0.3, False)
    old = {k: v for k, v in eng.state().items() if k not in ("gain_sd", "anchor_now")}
    back = he.HybridTwin.from_bundle(old, {}, None, {})  # a bundle from before: the defaults
    assert (back.gain_sd, back.anchor_now) == (he.GAIN_SD, he.ANCHOR_NOW)
