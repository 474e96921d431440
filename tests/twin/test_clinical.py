"""The `clinical` set: steady state, Shionoiri 1992 fit, PK summary, personal baseline, BP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from twin import ENDPOINTS, Regimen, Scenario, simulate
from twin.drugs import drug_pk
from twin.pk import pk_summary

SERIES = {"AngII": "angII_pg_per_ml", "AngI": "angI_pg_per_ml", "PRA": "pra_ng_per_ml_per_h"}


@pytest.fixture(scope="module")
def shionoiri(shared_dir):
    doc = json.loads((shared_dir / "clinical" / "ace_inhibitors.json").read_text())
    return {s["renal_function"]: s for s in doc["studies"]}


@pytest.mark.parametrize("glucose", [5.0, 8.5])
def test_untreated_steady_state_drifts_less_than_1pct_over_5_days(glucose):
    scen = [Scenario(renal_function=r, glucose=glucose, age_years=a) for r, a in
            (("normal", 40), ("impaired", 70))]
    scen.append(Scenario(baseline={"angII_pg_per_ml": 30.0, "renin_pg_per_ml": 25.0,
                                   "sbp_mmhg": 160, "dbp_mmhg": 95}, glucose=glucose))
    res = simulate(scen, np.linspace(0.0, 120.0, 61))
    y = res.states
    drift = ((y - y[:, :1]).abs() / y[:, :1].abs().clamp(min=1e-12)).amax()
    assert float(drift) < 0.01
    for name in ENDPOINTS:
        v = res.endpoints[name]
        assert torch.all(v >= 0), name


@pytest.mark.parametrize("renal", ["normal", "impaired"])
def test_shionoiri_single_dose_angII_rmse_at_most_published(shionoiri, renal):
    study = shionoiri[renal]
    series = study["measured_series"]
    scen = Scenario(renal_function=renal, regimen=Regimen(dose_mg=5.0, n_doses=1),
                    baseline={"angII_pg_per_ml": series["AngII"]["values"][0],
                              "angI_pg_per_ml": series["AngI"]["values"][0],
                              "renin_pg_per_ml":
                                  series["Renin_active_concentration"]["values"][0]})
    res = simulate(scen, study["sampling_times_h"])
    rmse = {k: float(np.sqrt(np.mean((res.endpoints[e][0].numpy()
                                       - np.array(series[k]["values"])) ** 2)))
            for k, e in SERIES.items()}
    published = study["published_best_fit"]["RMSE_best_published"]
    assert rmse["AngII"] <= round(published["AngII_pg_per_mL"], 2), rmse
    # AngI and PRA are fitted too (weighted, AngII dominates): AngI within 20 % of its level,
    # PRA within 3x of the published fit.
    assert rmse["AngI"] <= 0.2 * series["AngI"]["values"][0], rmse
    assert rmse["PRA"] <= 3 * published["PRA_ng_per_mL_per_h"], rmse
    # ACE inhibition lowers AngII and (through the feedback) raises renin.
    assert float(res.endpoints["angII_pg_per_ml"][0, 2]) < series["AngII"]["values"][0]
    assert float(res.endpoints["renin_pg_per_ml"][0, 2]) > float(
        res.endpoints["renin_pg_per_ml"][0, 0])


@pytest.mark.parametrize("renal", ["normal", "impaired"])
def test_diacid_pk_summary_within_10pct(shionoiri, renal):
    pk = shionoiri[renal]["PK"]["active_diacid"]
    times = np.concatenate([np.arange(0.0, 6.0, 0.01), np.arange(6.0, 400.0, 0.25)])
    res = simulate(Scenario(renal_function=renal, regimen=Regimen(dose_mg=5.0, n_doses=1)),
                   times)
    conc = res.endpoints["diacid_ng_per_ml"][0]
    got = pk_summary(torch.as_tensor(times), conc, drug_pk("benazepril", renal).ke_per_h)
    assert got["auc_ng_h_per_ml"] == pytest.approx(pk["AUC_ng_h_per_mL"], rel=0.10)
    assert got["tmax_h"] == pytest.approx(pk["tmax_h"], rel=0.10)
    assert got["t_half_h"] == pytest.approx(pk["t_half_h"], rel=0.10)


def test_personal_baseline_sets_the_untreated_steady_state():
    base = {"angII_pg_per_ml": 11.8, "angI_pg_per_ml": 350.0, "renin_pg_per_ml": 20.0,
            "sbp_mmhg": 155.0, "dbp_mmhg": 100.0, "hr_bpm": 64.0}
    via_pra = {"pra_ng_per_ml_per_h": 2.5}
    res = simulate([Scenario(baseline=base), Scenario(baseline=via_pra, glucose="diabetic")],
                   [0.0, 72.0])
    e = res.endpoints
    for k, v in base.items():
        assert float(e[k][0, 0]) == pytest.approx(v, rel=1e-9), k
        assert float(e[k][0, 1]) == pytest.approx(v, rel=1e-3), k
    assert float(e["pra_ng_per_ml_per_h"][1, 0]) == pytest.approx(2.5, rel=1e-9)
    assert float(e["map_mmhg"][0, 0]) == pytest.approx(100 + 55 / 3, rel=1e-9)
    # A different baseline gives a different treated response (personalisation matters).
    treated = simulate([Scenario(baseline={"angII_pg_per_ml": v},
                                 regimen=Regimen(dose_mg=10)) for v in (8.0, 30.0)], [0, 4.0])
    a2 = treated.endpoints["angII_pg_per_ml"]
    assert float(a2[1, 1]) > float(a2[0, 1])


def test_hypertensive_patient_bp_falls_as_published():
    """Cardillo et al. 1994: benazepril 10 mg daily, 2 weeks, placebo-adjusted resting BP."""
    base = {"sbp_mmhg": 155.0, "dbp_mmhg": 100.0}
    times = np.arange(0.0, 24.0 * 14 + 1e-9, 0.5)
    res = simulate([Scenario(baseline=base, regimen=Regimen(dose_mg=10.0)),
                    Scenario(baseline=base)], times)
    day14 = times >= 24.0 * 13
    fall = {k: (res.endpoints[k][0] - res.endpoints[k][1]).numpy()[day14]
            for k in ("sbp_mmhg", "dbp_mmhg")}
    sbp_mean, dbp_mean = fall["sbp_mmhg"].mean(), fall["dbp_mmhg"].mean()
    assert -15.2 <= sbp_mean <= -2.1 and -8.7 <= dbp_mean <= -1.4
    assert sbp_mean == pytest.approx(-8.7, abs=1.5)
    assert dbp_mean == pytest.approx(-5.1, abs=1.0)
    peak, trough = fall["sbp_mmhg"].min(), fall["sbp_mmhg"][-1]
    assert 0.3 <= trough / peak <= 0.75
    assert np.all(fall["sbp_mmhg"] < 0)
    assert float(res.endpoints["hr_bpm"][0, day14].max()) < 90.0
    for name in ("angI_pg_per_ml", "angII_pg_per_ml", "renin_pg_per_ml", "ang17_pg_per_ml",
                 "pra_ng_per_ml_per_h", "diacid_ng_per_ml", "agt_pg_per_ml"):
        assert torch.all(res.endpoints[name] >= 0), name
