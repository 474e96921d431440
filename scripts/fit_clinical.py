"""Fit the renal-group RAS parameters of the `clinical` set to Shionoiri et al. 1992.

For each renal function, six parameters (f_ace, f_max, gamma_fb, tau_fb_h, ke0_per_h,
benazepril_c50_factor) are fitted by weighted least squares (weights 1/sigma of the digitized
error bars, as in Ford Versypt et al. 2017) on AngII, AngI and PRA (the series Ford Versypt et
al. fitted) at 0, 2, 4, 8, 24 h after a single 5 mg benazepril dose, within plausible bounds.
(Adding the active-renin series changes the AngII RMSE little, 0.13 / 0.78 pg/mL, and worsens
AngI; it is left out.) The baseline (t = 0) is not
fitted: the production terms are solved so the untreated steady state equals the measured
t = 0 values. Residual Jacobians come from one batched simulation of the base point plus one
perturbation per parameter (our batched solver). Writes the values into twin/data/clinical.json
and prints the unweighted RMSEs.

Usage: .venv/bin/python scripts/fit_clinical.py [--dry-run]
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import least_squares

from twin.parameters import load_parameters
from twin.scenario import Regimen, Scenario
from twin.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("f_ace", "f_max", "gamma_fb", "tau_fb_h", "ke0_per_h", "benazepril_c50_factor")
# Plausible ranges: ACE share of AngI->AngII conversion, maximal renin stimulation (fold),
# feedback steepness, feedback lag (h), effect-site rate (1/h), benazepril C50 factor.
LOWER = np.array([0.05, 1.05, 0.2, 0.05, 0.01, 0.2])
UPPER = np.array([0.995, 20.0, 10.0, 48.0, 20.0, 20.0])
SERIES = (("AngII", "angII_pg_per_ml"), ("AngI", "angI_pg_per_ml"),
          ("PRA", "pra_ng_per_ml_per_h"))


def study(renal: str) -> dict:
    data = json.loads(resources.files("twin.data").joinpath("shionoiri1992.json").read_text())
    return data["studies"][renal]


def to_values(z: np.ndarray) -> np.ndarray:
    """Unconstrained -> (f_ace in (0,1), f_max > 1, gamma > 0, tau > 0, ke0 > 0)."""
    return np.array([1 / (1 + np.exp(-z[0])), 1 + np.exp(z[1]), np.exp(z[2]), np.exp(z[3]),
                     np.exp(z[4]), np.exp(z[5])])


def to_z(v: np.ndarray) -> np.ndarray:
    return np.array([np.log(v[0] / (1 - v[0])), np.log(v[1] - 1), np.log(v[2]), np.log(v[3]),
                     np.log(v[4]), np.log(v[5])])


def predict(renal: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """Model AngII/AngI/PRA at the study times for each row of values [B, 5]."""
    s = study(renal)
    base = {k: s["series"][k]["values"][0] for k in ("AngII", "AngI")}
    sc = Scenario(renal_function=renal, regimen=Regimen(dose_mg=s["dose_mg"], n_doses=1),
                  baseline={"angII_pg_per_ml": base["AngII"], "angI_pg_per_ml": base["AngI"],
                            "renin_pg_per_ml": s["series"]["Renin_active_concentration"]
                            ["values"][0]})
    values = np.atleast_2d(values)
    ov = {n: torch.tensor(values[:, i]) for i, n in enumerate(NAMES)}
    r = simulate([sc] * len(values), s["times_h"], parameters="clinical", overrides=ov)
    return {k: r.endpoints[e].detach().numpy() for k, e in SERIES}


def residuals(renal: str, values: np.ndarray) -> np.ndarray:
    s = study(renal)
    pred = predict(renal, values)
    res = [(pred[k] - np.array(s["series"][k]["values"])) / np.array(s["series"][k]["errors"])
           for k, _ in SERIES]
    return np.concatenate(res, axis=-1)


def rmse(renal: str, values: np.ndarray) -> dict[str, float]:
    s = study(renal)
    pred = predict(renal, values)
    return {k: float(np.sqrt(np.mean((pred[k][0] - s["series"][k]["values"]) ** 2)))
            for k, _ in SERIES}


def fit(renal: str, start: np.ndarray) -> np.ndarray:
    def fun(z: np.ndarray) -> np.ndarray:
        return residuals(renal, to_values(z)[None])[0]

    def jac(z: np.ndarray) -> np.ndarray:
        h = 1e-6
        zs = np.vstack([z] + [z + h * np.eye(len(z))[i] for i in range(len(z))])
        r = residuals(renal, np.array([to_values(zz) for zz in zs]))
        return ((r[1:] - r[0]) / h).T

    lo, hi = to_z(LOWER), to_z(UPPER)
    best = None
    for f0 in (start, np.array([0.9, 3.0, 2.0, 3.0, 0.3, 5.0])):
        z0 = np.clip(to_z(np.clip(f0, LOWER, UPPER)), lo + 1e-6, hi - 1e-6)
        sol = least_squares(fun, z0, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac",
                            max_nfev=40)
        if best is None or sol.cost < best.cost:
            best = sol
    return to_values(best.x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true", help="print, do not write clinical.json")
    args = ap.parse_args()
    pset = load_parameters("clinical")
    path = ROOT / "twin" / "data" / "clinical.json"
    raw = json.loads(path.read_text())
    for renal in ("normal", "impaired"):
        start = np.array([pset.renal[renal][n] for n in NAMES])
        values = fit(renal, start)
        print(renal, dict(zip(NAMES, np.round(values, 6).tolist(), strict=True)))
        print("  RMSE", rmse(renal, values[None]), "published",
              study(renal)["published_rmse"]["AngII_pg_per_mL"])
        for n, v in zip(NAMES, values, strict=True):
            raw["renal"][renal][n] = float(round(v, 8))
    if not args.dry_run:
        path.write_text(json.dumps(raw, indent=1) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
