"""Print, per published Barbiero et al. 2020 file, the worst column error of the reference set.

Error = max |ours - published| / (published column range), over every common column.
Also runs a tight scipy Radau (rtol 1e-10) on the same equations and reports our engine's max
relative error against it. Usage: .venv/bin/python scripts/reference_errors.py [--rtol 1e-5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.integrate import solve_ivp

from twin.models import ReferenceModel
from twin.parameters import load_parameters
from twin.scenario import Regimen, Scenario
from twin.simulate import simulate

BASE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "barbiero2020"
GRID_H = 0.048 * np.arange(2500)


def radau(model: ReferenceModel, i: int) -> np.ndarray:
    """States [T, 9] of patient i by scipy Radau rtol 1e-10 on the model's own rhs."""
    def f(t: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            full = model.y0.detach().clone()
            full[i] = torch.as_tensor(y)
            return model.rhs(t, full)[i].numpy()

    edges = [0.0, *[b for b in model.inputs.breakpoints], GRID_H[-1]]
    y = model.y0[i].detach().numpy()
    out = np.empty((len(GRID_H), 9))
    out[0] = y
    for a, b in itertools.pairwise(edges):
        sel = (a < GRID_H) & (b >= GRID_H)
        te = np.append(GRID_H[sel], b) if GRID_H[sel][-1] != b else GRID_H[sel]
        sol = solve_ivp(f, (a, b), y, method="Radau", rtol=1e-10,
                        atol=np.abs(y) * 1e-12 + 1e-300, t_eval=te)
        out[sel] = sol.y.T[: int(sel.sum())]
        y = sol.y[:, -1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--radau", action="store_true", help="also compare with scipy Radau")
    args = ap.parse_args()
    cases = json.loads((BASE / "scenarios.json").read_text())["scenarios"]
    scen = [Scenario(age_years=c["age_years"], renal_function=c["renal_function"],
                     glucose=c["glucose_mmol_per_l"], infected=c["infected"],
                     regimen=Regimen(dose_mg=c["dose_mg"], interval_h=24 / c["doses_per_day"]))
            for c in cases]
    t0 = time.perf_counter()
    res = simulate(scen, GRID_H, parameters="reference", rtol=args.rtol)
    print(f"7 scenarios x 2500 points in {time.perf_counter() - t0:.2f} s, {res.stats}")
    model = ReferenceModel(load_parameters("reference"), scen, float(GRID_H[-1]))
    for i, c in enumerate(cases):
        ours, pub = res.to_reference_frame(i), pd.read_csv(BASE / c["file"])
        errs = {col: float(np.max(np.abs(ours[col] - pub[col]))
                           / max(float(pub[col].max() - pub[col].min()), 1e-300))
                for col in pub.columns if float(pub[col].max() - pub[col].min()) > 0}
        worst = max(errs, key=errs.get)
        line = f"{c['file']}: max |diff|/range {errs[worst]:.1e} ({worst})"
        if args.radau:
            y = radau(model, i)
            st = res.states[i].detach().numpy()
            rel = np.abs(st - y) / np.maximum(np.abs(y), 1e-12 * np.abs(y).max(0))
            line += f"; engine vs Radau max rel {rel.max():.1e}"
        print(line)


if __name__ == "__main__":
    main()
