"""Print the `clinical` set's validation figures (the numbers quoted in docs/model.md).

Steady-state drift over 5 days without drug, Shionoiri 1992 RMSEs (AngII, AngI, PRA), diacid PK
summary errors, and the 2-week BP response of a 155/100 mmHg patient on benazepril 10 mg daily.
Usage: .venv/bin/python scripts/clinical_report.py
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import torch

from twin import Regimen, Scenario, simulate
from twin.drugs import drug_pk
from twin.pk import pk_summary

SERIES = {"AngII": "angII_pg_per_ml", "AngI": "angI_pg_per_ml", "PRA": "pra_ng_per_ml_per_h"}


def steady_state() -> None:
    scen = [Scenario(renal_function=r, glucose=g) for r in ("normal", "impaired")
            for g in (5.0, 9.0)]
    res = simulate(scen, np.linspace(0.0, 120.0, 121))
    y = res.states
    drift = ((y - y[:, :1]).abs() / y[:, :1].abs().clamp(min=1e-12)).amax()
    print(f"steady state: max relative drift of any state over 5 days, no drug: {drift:.1e}")


def shionoiri() -> None:
    data = json.loads(resources.files("twin.data").joinpath("shionoiri1992.json").read_text())
    for renal, st in data["studies"].items():
        s = st["series"]
        sc = Scenario(renal_function=renal, regimen=Regimen(dose_mg=5.0, n_doses=1),
                      baseline={"angII_pg_per_ml": s["AngII"]["values"][0],
                                "angI_pg_per_ml": s["AngI"]["values"][0],
                                "renin_pg_per_ml": s["Renin_active_concentration"]["values"][0]})
        r = simulate(sc, st["times_h"])
        rmse = {k: float(np.sqrt(np.mean((r.endpoints[e][0].numpy()
                                          - np.array(s[k]["values"])) ** 2)))
                for k, e in SERIES.items()}
        pub = st["published_rmse"]
        print(f"Shionoiri {renal}: RMSE AngII {rmse['AngII']:.3f} pg/mL "
              f"(published {pub['AngII_pg_per_mL']:.3f}), AngI {rmse['AngI']:.1f} "
              f"({pub['AngI_pg_per_mL']:.1f}), PRA {rmse['PRA']:.3f} "
              f"({pub['PRA_ng_per_mL_per_h']:.3f})")
        times = np.concatenate([np.arange(0.0, 6.0, 0.01), np.arange(6.0, 400.0, 0.25)])
        rr = simulate(Scenario(renal_function=renal, regimen=Regimen(dose_mg=5.0, n_doses=1)),
                      times)
        got = pk_summary(torch.as_tensor(times), rr.endpoints["diacid_ng_per_ml"][0],
                         drug_pk("benazepril", renal).ke_per_h)
        want = st["pk_summary"]
        errs = {k: got[k] / want[k.replace("ng_h_per_ml", "ng_h_per_mL").replace(
            "auc", "AUC")] - 1 for k in got}
        print("  diacid PK: " + ", ".join(f"{k} {got[k]:.3g} ({100 * e:+.2f} %)"
                                             for k, e in errs.items()))


def blood_pressure() -> None:
    base = {"sbp_mmhg": 155.0, "dbp_mmhg": 100.0}
    times = np.arange(0.0, 24.0 * 14 + 1e-9, 0.25)
    r = simulate([Scenario(baseline=base, regimen=Regimen(dose_mg=10.0)),
                  Scenario(baseline=base)], times)
    day = times >= 24.0 * 13
    for k in ("sbp_mmhg", "dbp_mmhg"):
        d = (r.endpoints[k][0] - r.endpoints[k][1]).numpy()[day]
        print(f"BP day 14 placebo-adjusted {k}: mean {d.mean():+.2f}, peak {d.min():+.2f}, "
              f"trough {d[-1]:+.2f}, trough/peak {d[-1] / d.min():.2f}")


if __name__ == "__main__":
    steady_state()
    shionoiri()
    blood_pressure()
