"""Calibrate the blood-pressure coupling of the `clinical` set (Cardillo et al. 1994).

Virtual patient: hypertensive (155/100 mmHg), normal renal function, benazepril 10 mg once
daily for 14 days, compared with the same patient untreated (placebo). Targets on day 14:
mean placebo-adjusted fall SBP 8.7 and DBP 5.1 mmHg (Cardillo et al. 1994), and a trough
(24 h after the dose) SBP effect half the peak effect (class trough/peak ratio). Fitted:
a_v (vascular exponent), a_n (volume exponent), k_pp (pulse-pressure exponent), by scipy least
squares with batched finite differences. Writes twin/data/clinical.json unless --dry-run.

Usage: .venv/bin/python scripts/fit_bp.py [--dry-run]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import least_squares

from twin.scenario import Regimen, Scenario
from twin.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("a_v", "a_n", "k_pp")
TARGET = {"sbp_mean": -8.7, "dbp_mean": -5.1, "trough_over_peak": 0.5}
BASELINE = {"sbp_mmhg": 155.0, "dbp_mmhg": 100.0}


def bp_response(values: np.ndarray, dose_mg: float = 10.0, days: int = 14) -> list[dict]:
    """Day-`days` placebo-adjusted SBP/DBP falls (mean, peak, trough) for rows of values."""
    values = np.atleast_2d(values)
    n = len(values)
    treated = Scenario(baseline=BASELINE, regimen=Regimen(dose_mg=dose_mg, interval_h=24.0))
    placebo = Scenario(baseline=BASELINE)
    times = np.arange(0.0, 24.0 * days + 1e-9, 0.25)
    ov = {k: torch.tensor(np.concatenate([values[:, i], values[:, i]]))
          for i, k in enumerate(NAMES)}
    r = simulate([treated] * n + [placebo] * n, times, overrides=ov)
    last = times >= 24.0 * (days - 1)
    out = []
    for j in range(n):
        row = {}
        for e in ("sbp", "dbp"):
            d = (r.endpoints[f"{e}_mmhg"][j] - r.endpoints[f"{e}_mmhg"][n + j]).detach().numpy()
            d = d[last]
            row[f"{e}_mean"] = float(d.mean())
            row[f"{e}_peak"] = float(d.min())
            row[f"{e}_trough"] = float(d[-1])
        row["trough_over_peak"] = row["sbp_trough"] / row["sbp_peak"]
        out.append(row)
    return out


def residual_rows(values: np.ndarray) -> np.ndarray:
    rows = bp_response(values)
    return np.array([[(r["sbp_mean"] - TARGET["sbp_mean"]) / 1.0,
                      (r["dbp_mean"] - TARGET["dbp_mean"]) / 1.0,
                      (r["trough_over_peak"] - TARGET["trough_over_peak"]) / 0.05]
                     for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    path = ROOT / "twin" / "data" / "clinical.json"
    raw = json.loads(path.read_text())
    z0 = np.log([raw["common"][n] for n in NAMES])

    def fun(z: np.ndarray) -> np.ndarray:
        return residual_rows(np.exp(z)[None])[0]

    def jac(z: np.ndarray) -> np.ndarray:
        h = 1e-5
        zs = np.vstack([z] + [z + h * np.eye(len(z))[i] for i in range(len(z))])
        r = residual_rows(np.exp(zs))
        return ((r[1:] - r[0]) / h).T

    sol = least_squares(fun, z0, jac=jac, method="trf", max_nfev=25)
    values = np.exp(sol.x)
    print(dict(zip(NAMES, values.round(5).tolist(), strict=True)))
    print(bp_response(values[None])[0])
    if not args.dry_run:
        for n, v in zip(NAMES, values, strict=True):
            raw["common"][n] = float(round(v, 6))
        path.write_text(json.dumps(raw, indent=1) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
