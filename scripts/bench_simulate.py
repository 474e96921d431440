"""Benchmark: our batched engine vs scipy LSODA (rtol 1e-6), one patient at a time.

1,000 virtual patients (random patient-level parameters, benazepril 10 mg once daily, 5 days,
clinical set) are simulated in one batched call of `twin.simulate`. A sample of them is solved
with scipy LSODA (rtol 1e-6, atol 1e-12 x scale, piecewise between doses) on a plain-numpy port
of the same right-hand side, and with a tight Radau run (rtol 1e-10) as the truth. Prints
seconds per patient for both engines, their ratio, the max relative error of both against
Radau (over the standard RAS endpoints and MAP, hourly output), and the time of one backward
pass through the batched simulation.

Usage: .venv/bin/python scripts/bench_simulate.py [--patients 1000] [--sample 20] [--hours 120]
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

from twin.models import ClinicalModel
from twin.parameters import PATIENT_PARAMETERS, load_parameters
from twin.scenario import Regimen, Scenario
from twin.simulate import simulate

LN2 = math.log(2.0)
COMPARED = ("angI_pg_per_ml", "angII_pg_per_ml", "renin_pg_per_ml", "ang17_pg_per_ml",
            "map_mmhg", "hr_bpm")
RANDOM = ("angII_baseline", "angI_baseline", "renin_baseline", "ace_c50", "diacid_clearance",
          "diacid_volume", "renin_feedback", "map_baseline", "bp_sensitivity")


def patients(n: int, seed: int = 0) -> tuple[list[Scenario], dict[str, torch.Tensor]]:
    """n scenarios (benazepril 10 mg daily) and lognormal patient-level multipliers."""
    rng = np.random.default_rng(seed)
    scen = [Scenario(age_years=float(rng.uniform(30, 80)), glucose=float(rng.uniform(4.5, 9)),
                     renal_function="normal", regimen=Regimen(dose_mg=10.0))
            for _ in range(n)]
    ov = {}
    for name in RANDOM:
        spec = PATIENT_PARAMETERS[name]
        v = np.exp(rng.normal(0.0, 0.25, n))
        ov[name] = torch.tensor(np.clip(v, spec.lower, spec.upper))
    return scen, ov


def numpy_rhs(model: ClinicalModel, i: int):
    """Plain-numpy right-hand side of patient i (same equations as twin.ras/hemodynamics)."""
    p = {k: float(v[i]) for k, v in model.p.items()}
    pk = {k: float(v[i]) for k, v in model.pk.items()}
    dt_, dm_ = model.inputs.dose_t[i].numpy(), model.inputs.dose_mg[i].numpy()
    g = float(model.inputs.g_const[i])
    amp = dm_ * 1e6 * pk["ka"] / (pk["vf"] * (pk["ka"] - pk["ke"]))
    k_atr = LN2 / p["h_ATR"]

    def f(t: float, y: np.ndarray) -> np.ndarray:
        d = t - dt_
        c = float(np.sum(np.where(d > 0, amp * (np.exp(-pk["ke"] * np.maximum(d, 0))
                                                - np.exp(-pk["ka"] * np.maximum(d, 0))), 0)))
        agt, ren, a1, a2, a17, b1, b2, sig, k2, ir, ce, vol, pref = y
        r = (ce / pk["c50"]) ** pk["n"] if ce > 0 else 0.0
        inh = r / (1 + r)
        prod1 = p["k_renin"] * ren * agt / p["agt0"]
        conv = p["k_conv"] * (p["f_ace"] * (1 - inh) + 1 - p["f_ace"]) * a1
        s = max(sig, 1e-9)
        fb = p["f_max"] / (1 + (p["f_max"] - 1) * s ** p["gamma_fb"])
        x = max(b1 / p["b1_0"], 1e-6)
        m_open = p["map0"] * x ** p["a_v"] * max(vol, 1e-6)
        m = pref * (m_open / pref) ** (1 / (1 + p["g_baro"]))
        return np.array([
            p["k_agt"] - prod1 - p["k_degr_AGT"] * agt,
            p["k_degr_Renin"] * (p["renin0"] * fb - ren),
            prod1 - conv - (p["k_other1"] + k2) * a1,
            conv - (p["k_at1"] + p["k_other2"] + k2) * a2,
            p["k_NEP"] * a1 + k2 * a2 - LN2 / p["h_A17"] * a17,
            p["k_at1"] * a2 - k_atr * b1,
            p["k_at2"] * a2 - k_atr * b2,
            (a2 / p["ang2_0"] - sig) / p["tau_fb_h"],
            0.0,
            p["IR_gain_ACE2"] * (k2 - p["k_ACE2"]) + p["IR_gain_diacid"] * c
            + p["IR_gain_glu"] * g - LN2 * p["k_out_not_infected"] * ir,
            p["ke0_per_h"] * (c - ce),
            (x ** p["a_n"] - vol) / p["tau_n_h"],
            (m - pref) / p["tau_reset_h"],
        ])

    return f


def scipy_solve(model: ClinicalModel, i: int, times: np.ndarray, method: str, rtol: float
                ) -> tuple[np.ndarray, float]:
    """States [T, n] of patient i solved piecewise between dose times; returns (y, seconds)."""
    f = numpy_rhs(model, i)
    y = model.y0[i].detach().numpy().copy()
    atol = model.atol().numpy() * (1e-2 if rtol < 1e-8 else 1e3)
    edges = [0.0] + [b for b in model.inputs.breakpoints if b < times[-1]] + [times[-1]]
    out = np.empty((len(times), len(y)))
    out[0] = y
    t0 = time.perf_counter()
    for a, b in itertools.pairwise(edges):
        sel = (times > a) & (times <= b)
        te = times[sel]
        if not sel.any() or te[-1] != b:
            te = np.append(te, b)
        sol = solve_ivp(f, (a, b), y, method=method, rtol=rtol, atol=atol, t_eval=te)
        out[sel] = sol.y.T[: int(sel.sum())]
        y = sol.y[:, -1]
    return out, time.perf_counter() - t0


def endpoints_np(model: ClinicalModel, times: np.ndarray, y: np.ndarray, i: int
                 ) -> dict[str, np.ndarray]:
    """Endpoints of patient i from numpy states, through the model's own output map."""
    sub = ClinicalModel.__new__(ClinicalModel)
    sub.__dict__.update(model.__dict__)
    sub.p = {k: v[i:i + 1] for k, v in model.p.items()}
    sub.pk = {k: v[i:i + 1] for k, v in model.pk.items()}
    sub.inputs = type(model.inputs)(**{k: (v[i:i + 1] if torch.is_tensor(v) else v)
                                       for k, v in model.inputs.__dict__.items()})
    e = sub.endpoints(times, torch.tensor(y)[None])
    return {k: e[k][0].detach().numpy() for k in COMPARED}


def rel_err(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(b[k]), 1e-12)))
               for k in COMPARED)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--hours", type=float, default=120.0)
    ap.add_argument("--rtol", type=float, default=1e-6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    times = np.arange(0.0, args.hours + 1e-9, 1.0)
    scen, ov = patients(args.patients)
    t0 = time.perf_counter()
    res = simulate(scen, times, parameters="clinical", overrides=ov, rtol=args.rtol)
    t_engine = time.perf_counter() - t0
    print(f"engine: {args.patients} patients x {args.hours:g} h in {t_engine:.2f} s "
          f"({res.stats.steps} steps, {res.stats.rejected} rejected) -> "
          f"{t_engine / args.patients * 1e3:.3f} ms/patient")
    model = ClinicalModel(load_parameters("clinical"), scen, float(times[-1]), ov)
    idx = np.linspace(0, args.patients - 1, args.sample).round().astype(int)
    t_lsoda, err_eng, err_lsoda = [], [], []
    for i in idx:
        y_l, dt_l = scipy_solve(model, int(i), times, "LSODA", 1e-6)
        y_r, _ = scipy_solve(model, int(i), times, "Radau", 1e-10)
        truth = endpoints_np(model, times, y_r, int(i))
        lsoda = endpoints_np(model, times, y_l, int(i))
        ours = {k: res.endpoints[k][i].detach().numpy() for k in COMPARED}
        t_lsoda.append(dt_l)
        err_eng.append(rel_err(ours, truth))
        err_lsoda.append(rel_err(lsoda, truth))
    per_l = float(np.mean(t_lsoda))
    per_e = t_engine / args.patients
    print(f"scipy LSODA rtol 1e-6: {per_l * 1e3:.3f} ms/patient (mean of {len(idx)})")
    print(f"speed-up (LSODA / engine per patient): {per_l / per_e:.1f}x")
    print(f"max relative error vs Radau rtol 1e-10: engine {max(err_eng):.2e}, "
          f"LSODA {max(err_lsoda):.2e} (endpoints {', '.join(COMPARED)}, hourly)")
    ov_g = {k: v.clone().requires_grad_(True) for k, v in ov.items()}
    t0 = time.perf_counter()
    res_g = simulate(scen, times, parameters="clinical", overrides=ov_g, rtol=args.rtol)
    t_fwd = time.perf_counter() - t0
    loss = res_g.endpoints["angII_pg_per_ml"].mean() + res_g.endpoints["sbp_mmhg"].mean()
    t0 = time.perf_counter()
    loss.backward()
    t_bwd = time.perf_counter() - t0
    print(f"backward pass through all {args.patients} patients: {t_bwd:.2f} s "
          f"(forward with graph {t_fwd:.2f} s)")


if __name__ == "__main__":
    main()
