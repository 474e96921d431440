"""The personalised twin recovers the parameters of synthetic patients from noisy data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twin import Observation, Regimen, Scenario, simulate
from twin.forecast.calibrate import FIT_PARAMETERS, calibrate, calibrate_many
from twin.forecast.cohort import default_prior
from twin.forecast.endpoints import OBS_NOISE

TRUE = [
    {"angII_baseline": 1.4, "renin_baseline": 0.7, "map_baseline": 1.15, "pulse_pressure": 1.1,
     "hr_baseline": 0.9, "bp_sensitivity": 1.6, "ace_c50": 1.0, "diacid_clearance": 1.0},
    {"angII_baseline": 0.7, "renin_baseline": 1.5, "map_baseline": 0.95, "pulse_pressure": 0.85,
     "hr_baseline": 1.1, "bp_sensitivity": 0.7, "ace_c50": 1.0, "diacid_clearance": 1.0},
]
SCENARIOS = [
    Scenario(age_years=62, glucose="normal", regimen=Regimen(dose_mg=20, start_h=12)),
    Scenario(age_years=45, renal_function="impaired", regimen=Regimen(dose_mg=10, start_h=8)),
]
#: Parameters two days of ward data always pin down (BP level, pulse pressure, HR, AngII).
ALWAYS_IDENTIFIED = ("angII_baseline", "map_baseline", "pulse_pressure", "hr_baseline")


def _observe(seed: int, scenario: Scenario, params: dict[str, float]) -> list[Observation]:
    rng = np.random.default_rng(seed)
    bp_t = np.arange(0.0, 48.01, 2.0)
    lab_t = np.arange(0.0, 48.01, 6.0)
    times = np.union1d(bp_t, lab_t)
    ov = {n: torch.tensor([v], dtype=torch.float64) for n, v in params.items()}
    with torch.no_grad():
        res = simulate([scenario], times, overrides=ov, rtol=1e-5)
    obs = []
    for k, t in enumerate(times):
        names = (["sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm"] if t in bp_t else []) + \
                (["angII_pg_per_ml", "pra_ng_per_ml_per_h"] if t in lab_t else [])
        for name in names:
            true = float(res.endpoints[name][0, k])
            kind, size = OBS_NOISE[name]
            eps = rng.normal()
            noisy = true + size * eps if kind == "sd" else true * np.exp(size * eps)
            obs.append(Observation(float(t), name, noisy))
    return obs


@pytest.fixture(scope="module")
def fits():
    items = [(_observe(i, s, p), s) for i, (s, p) in enumerate(zip(SCENARIOS, TRUE, strict=True))]
    return calibrate_many(items, default_prior())[0]


@pytest.mark.parametrize("k", [0, 1])
def test_calibration_recovers_known_parameters(fits, k):
    """Every parameter the data identify (Laplace SD(log) < 0.1) is within 15 % of the
    truth; the BP level, pulse pressure, HR and AngII baselines are always among them; and
    every fitted parameter is within 3 posterior SDs (honest uncertainty)."""
    fit = fits[k]
    sd = fit.sd()
    identified = [n for n in FIT_PARAMETERS if sd[n] < 0.1]
    assert set(ALWAYS_IDENTIFIED) <= set(identified), sd
    for name in identified:
        est, true = fit.parameters[name], TRUE[k][name]
        assert abs(est / true - 1) < 0.15, (name, est, true)
    for name in FIT_PARAMETERS:
        z = abs(np.log(fit.parameters[name] / TRUE[k][name])) / sd[name]
        assert z < 3.0, (name, fit.parameters[name], TRUE[k][name], sd[name])


def test_laplace_uncertainty_is_sane(fits):
    fit = fits[0]
    sd = fit.sd()
    assert set(sd) == set(FIT_PARAMETERS)
    assert all(v > 0 for v in sd.values())
    # well-observed BP level is much better determined than the prior spread (0.10)
    assert sd["map_baseline"] < 0.03
    draws = fit.samples(64, seed=1)
    assert draws.shape == (64, len(FIT_PARAMETERS))
    j = fit.names.index("map_baseline")
    assert abs(np.median(draws[:, j]) / fit.parameters["map_baseline"] - 1) < 0.02


def test_single_patient_api_and_forward_simulation():
    s = Scenario(age_years=50, regimen=Regimen(dose_mg=10, start_h=6))
    obs = [Observation(float(t), "sbp_mmhg", 165.0) for t in range(0, 6)]
    fit = calibrate(obs, s)
    assert fit.n_observations == 6 and fit.seconds > 0
    assert fit.parameters["map_baseline"] > 1.05  # 165 mmHg is well above the age default
    res = fit.simulate(np.array([0.0, 2.0, 30.0]))
    assert abs(float(res.endpoints["sbp_mmhg"][0, 0]) - 165.0) < 5.0
    assert float(res.endpoints["sbp_mmhg"][0, 2]) < float(res.endpoints["sbp_mmhg"][0, 0])
