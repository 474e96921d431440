"""The evaluation worlds perturb truth and observations as specified, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from tests.twin.forecast.helpers import TYPICAL
from twin.forecast import worlds as W
from twin.forecast.cohort import (
    HORIZON_H,
    NOW_RANGE_H,
    Cohort,
    _regimen,
    default_prior,
    forecast_cases,
    generate_cohort,
    observe,
    sample_patient,
)
from twin.forecast.endpoints import INDEX, from_model_scale
from twin.forecast.evaluate import evaluate, mean_of_last
from twin.forecast.metrics import score

SBP, DBP, MAP, HR = (INDEX[n] for n in ("sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm"))
ANGII = INDEX["angII_pg_per_ml"]


def flat_cohort(n: int = 6, seed: int = 0) -> Cohort:
    """Real sampled patients and observations of a flat (typical-level) truth: no solver."""
    rng = np.random.default_rng(seed)
    patients = [sample_patient(rng, f"w-{i}", default_prior()) for i in range(n)]
    times = np.arange(0.0, NOW_RANGE_H[1] + HORIZON_H + 1.0)
    level = TYPICAL.copy()
    level[5], level[6] = 50.0, 90.0
    truth = np.repeat(np.repeat(level[None, :, None], n, 0), len(times), 2)
    obs = [observe(rng, times, truth[b], float(NOW_RANGE_H[1])) for b in range(n)]
    return Cohort(patients, times, truth, obs)


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return flat_cohort()


def _obs_shift(before: Cohort, after: Cohort, b: int, endpoint: int) -> tuple[np.ndarray, ...]:
    """(times, observed change, truth change interpolated at those times) of one endpoint."""
    name = next(k for k, v in INDEX.items() if v == endpoint)
    pairs = [(o.time_h, p.value - o.value) for o, p in
             zip(before.observations[b], after.observations[b], strict=True) if o.endpoint == name]
    t, d = (np.asarray(x) for x in zip(*pairs, strict=True))
    dt = np.interp(t, before.times_h, after.truth[b, endpoint] - before.truth[b, endpoint])
    return t, d, dt


def test_registry_and_default_targets():
    assert list(W.WORLDS) == ["as-built", "measured", "rhythm", "variability", "step",
                              "missed-doses"]
    assert not W.WORLDS["as-built"].readings
    assert all(w.readings for n, w in W.WORLDS.items() if n != "as-built")
    with pytest.raises(ValueError, match="world"):
        W.make_world("storm", flat_cohort(1), 0)


def test_as_built_and_measured_leave_the_cohort_alone(cohort):
    for name in ("as-built", "measured"):
        assert W.make_world(name, cohort, 3) is cohort


def test_rhythm_amplitude_period_and_consistent_observations(cohort):
    out = W.make_world("rhythm", cohort, 7)
    d = out.truth - cohort.truth
    for b in range(len(cohort.patients)):
        assert np.abs(d[b, SBP]).max() == pytest.approx(7.0, abs=0.1)
        assert np.abs(d[b, HR]).max() == pytest.approx(6.0, abs=0.1)
        assert np.allclose(d[b, SBP, 24:], d[b, SBP, :-24], atol=1e-9)  # daily
        ratio = TYPICAL[DBP] / TYPICAL[SBP]
        assert np.allclose(d[b, DBP], ratio * d[b, SBP])
        assert np.allclose(d[b, ANGII], 0.0)  # labs untouched
        _, seen, true = _obs_shift(cohort, out, b, SBP)
        assert np.allclose(seen, true, atol=0.1)  # the history carries the same rhythm
    phases = [np.argmax(d[b, SBP, :24]) for b in range(len(cohort.patients))]
    assert len(set(phases)) > 1  # random phase per patient


def test_ou_path_sd_and_memory():
    path = W._ou_path(np.random.default_rng(0), 40000.0)
    x = path(np.arange(0.0, 40000.0, 1.0))
    assert x.std() == pytest.approx(6.0, rel=0.05)
    lag2 = np.corrcoef(x[:-2], x[2:])[0, 1]
    assert lag2 == pytest.approx(np.exp(-1.0), abs=0.05)  # 2 h memory


def test_variability_is_rhythm_plus_deviation(cohort):
    out = W.make_world("variability", cohort, 7)
    d = out.truth - cohort.truth
    assert 6.0 < d[:, SBP].std() < 9.5  # sqrt(7^2/2 + 6^2) = 7.8 mmHg
    assert d[:, HR].std() == pytest.approx(d[:, SBP].std() * 6 / 7, rel=0.15)
    _, seen, true = _obs_shift(cohort, out, 0, SBP)
    # readings see the 15-min path itself, the hourly truth only interpolates it
    assert np.corrcoef(seen, true)[0, 1] > 0.8 and np.sqrt(np.mean((seen - true) ** 2)) < 3.5


def test_step_size_timing_and_persistence(cohort):
    out = W.make_world("step", cohort, 11)
    d = out.truth - cohort.truth
    signs = set()
    for b, p in enumerate(cohort.patients):
        s = d[b, SBP]
        assert set(np.round(np.abs(s), 9)) <= {0.0, 15.0}
        at = int(np.argmax(np.abs(s) > 0))
        assert p.now_h - 18 <= at <= p.now_h - 4 + 1
        assert np.all(np.abs(s[at:]) == 15.0)  # persists through the targets
        assert np.allclose(d[b, HR], 0.0)
        assert np.allclose(d[b, MAP], TYPICAL[MAP] / TYPICAL[SBP] * s)
        t, seen, _ = _obs_shift(cohort, out, b, SBP)
        after = t >= at
        assert np.allclose(seen[after], s[at]) and np.allclose(seen[t < at - 1], 0.0)
        signs.add(float(np.sign(s[at])))
    assert signs == {-1.0, 1.0}


def test_skip_doses_misses_about_30_percent():
    rng = np.random.default_rng(0)
    told = taken = 0
    for _ in range(400):
        reg = _regimen(rng)
        true = W.skip_doses(reg, rng, 145.0)
        a, b = reg.dose_times_h(145.0), true.dose_times_h(145.0)
        assert set(b) <= set(a)
        told, taken = told + len(a), taken + len(b)
    assert 1 - taken / told == pytest.approx(0.3, abs=0.03)


def test_missed_doses_world_resimulates_and_keeps_the_told_regimen():
    base = flat_cohort(3, seed=4)
    out = W.make_world("missed-doses", base, 2)
    changed = 0
    for b, (p, q) in enumerate(zip(base.patients, out.patients, strict=True)):
        assert q.scenario_seen == p.scenario_seen == p.scenario
        if q.scenario != p.scenario:
            changed += 1
            told = set(p.scenario.regimen.dose_times_h(145))
            assert set(q.scenario.regimen.dose_times_h(145)) < told
            for e in (SBP, HR):  # observation noise kept, truth under it replaced
                _, seen, true = _obs_shift(base, out, b, e)
                assert np.allclose(seen, true, atol=1e-6)
        else:
            assert np.array_equal(out.truth[b], base.truth[b])
    assert changed >= 1
    cases, _ = forecast_cases(out)
    assert [c.scenario for c in cases] == [p.scenario_seen for p in base.patients]


@pytest.mark.parametrize("name", ["rhythm", "variability", "step", "missed-doses"])
def test_worlds_are_seeded(cohort, name):
    small = Cohort(cohort.patients[:2], cohort.times_h, cohort.truth[:2],
                   cohort.observations[:2])
    a, b = W.make_world(name, small, 5), W.make_world(name, small, 5)
    assert np.array_equal(a.truth, b.truth) and a.observations == b.observations
    if name != "missed-doses":  # two patients may take every dose under another seed
        assert not np.array_equal(a.truth, W.make_world(name, small, 6).truth)


def test_measure_adds_the_observation_noise():
    truth = np.zeros((4000, 11, 3))
    truth[:, SBP] = 140.0
    truth[:, ANGII] = np.log(20.0 + 1.0)
    rng = W.world_rng("measured", 1, 1)
    m = from_model_scale(W.measure(truth, rng), axis=1)
    assert (m[:, SBP] - 140).std() == pytest.approx(5.0, rel=0.05)
    assert np.log(m[:, ANGII] / 20.0).std() == pytest.approx(0.15, rel=0.05)
    again = W.measure(truth, W.world_rng("measured", 1, 1))
    assert np.array_equal(again, W.measure(truth, W.world_rng("measured", 1, 1)))


def test_mean_of_last_averages_the_last_readings(cohort):
    cases = cohort.cases()
    pred = mean_of_last(cases, 3, np.zeros(11))
    sbp = [o.value for o in cases[0].observations if o.endpoint == "sbp_mmhg"][-3:]
    assert pred[0, SBP, 0] == pytest.approx(np.mean(sbp))
    assert np.all(pred[:, INDEX["renin_pg_per_ml"]] == 0.0)  # never observed: fallback


def test_evaluate_as_built_unchanged_and_world_output(tiny_fc):
    out = evaluate(tiny_fc, 9, 1, horizon_h=24)
    assert out["world"] == "as-built" and out["target"] == "trajectory"
    cases, truth = forecast_cases(generate_cohort(9, 1, "test"))
    for name in tiny_fc.engines:
        pred, scale = tiny_fc.engine(name).predict_with_scale(cases)
        old = score(pred, truth, tiny_fc.conformal[name], 0.9, (6, 24), scale)
        new = {e: {h: {k: v for k, v in m.items() if k != "n"} for h, m in hs.items()}
               for e, hs in out["results"][name].items()}
        assert new == old
        assert out["results"][name]["sbp_mmhg"]["24"]["n"] == 1
    assert out["baselines"]["persistence"]["sbp_mmhg"] == {
        h: {k: m[k] for k in ("n", "mae", "rmse")}
        for h, m in out["results"]["persistence"]["sbp_mmhg"].items()}
    assert set(out["baselines"]) == {"persistence", "mean3", "mean12"}
    meas = evaluate(tiny_fc, 9, 1, horizon_h=24, world="measured")
    assert meas["target"] == "readings"
    assert meas["results"]["graph"]["sbp_mmhg"]["24"] != out["results"]["graph"]["sbp_mmhg"]["24"]
    with pytest.raises(ValueError, match="target"):
        evaluate(tiny_fc, 9, 1, horizon_h=24, target="cuff")
