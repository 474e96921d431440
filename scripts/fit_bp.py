"""Calibrate the blood-pressure coupling of the `clinical` set (Cardillo et al. 1994).

Virtual patient: hypertensive (155/100 mmHg), normal renal function, benazepril 10 mg once
daily for 14 days, compared with the same patient untreated (placebo). Targets on day 14:
mean placebo-adjusted fall SBP 8.7 and DBP 5.1 mmHg (Cardillo et al. 1994), and a trough
(24 h after the dose) SBP effect half the peak effect (class trough/peak ratio). Fitted:
k_pp (pulse-pressure exponent) from the SBP/DBP ratio of the falls (linearised), then a_v
(vascular exponent) and g_baro (baroreflex gain) by Newton iterations with batched finite
differences (one batched 14-day simulation per iteration). Writes twin/data/clinical.json
unless --dry-run.

Usage: .venv/bin/python scripts/fit_bp.py [--dry-run]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from twin.scenario import Regimen, Scenario
from twin.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("a_v", "g_baro", "k_pp")
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


def pulse_exponent(sbp0: float, dbp0: float) -> float:
    """k_pp so that dSBP/dDBP = 8.7/5.1 (linearised PP = PP0 (M/M0)^k)."""
    r = TARGET["sbp_mean"] / TARGET["dbp_mean"]
    q = (sbp0 - dbp0) / (dbp0 + (sbp0 - dbp0) / 3.0)
    return (r - 1.0) / (q * (2.0 / 3.0 + r / 3.0))


def solve_exponents(k_pp: float, iterations: int = 3) -> np.ndarray:
    """a_v and the baroreflex gain matching the day-14 mean SBP fall and the trough/peak ratio
    (Newton with batched forward differences)."""
    av, gb = 0.07, 0.5
    for it in range(iterations):
        ha, hg = 0.005, 0.05
        rows = bp_response(np.array([[av, gb, k_pp], [av + ha, gb, k_pp], [av, gb + hg, k_pp]]))
        f = np.array([[r["sbp_mean"], r["sbp_trough"] - 0.5 * r["sbp_peak"]] for r in rows])
        jac = np.stack([(f[1] - f[0]) / ha, (f[2] - f[0]) / hg], axis=1)
        goal = np.array([TARGET["sbp_mean"], 0.0])
        step = np.linalg.solve(jac, goal - f[0])
        av, gb = max(av + step[0], 1e-3), max(gb + step[1], 0.0)
        print(f"iteration {it}: a_v {av:.5f}, g_baro {gb:.5f}, from {rows[0]}", flush=True)
    return np.array([av, gb, k_pp])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    path = ROOT / "twin" / "data" / "clinical.json"
    raw = json.loads(path.read_text())
    k_pp = pulse_exponent(BASELINE["sbp_mmhg"], BASELINE["dbp_mmhg"])
    values = solve_exponents(k_pp)
    print(dict(zip(NAMES, values.round(5).tolist(), strict=True)))
    print(bp_response(values[None])[0])
    if not args.dry_run:
        for n, v in zip(NAMES, values, strict=True):
            raw["common"][n] = float(round(v, 6))
        path.write_text(json.dumps(raw, indent=1) + "\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
