"""Evaluation of every engine of a Forecaster on a fresh seeded test cohort, in one of the
evaluation worlds (``twin.forecast.worlds``), with the simple baselines beside it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from twin.forecast.cohort import ParameterPrior, forecast_cases, generate_cohort
from twin.forecast.endpoints import NAMES
from twin.forecast.engines import LEAD_H
from twin.forecast.features import Case, per_endpoint
from twin.forecast.forecaster import Forecaster
from twin.forecast.metrics import HORIZONS_H, score, score_point
from twin.forecast.worlds import WORLDS, make_world, measure, world_rng

#: baselines from the history observations the engines get: name -> readings averaged
BASELINES = {"persistence": 1, "mean3": 3, "mean12": 12}
TARGETS = ("auto", "trajectory", "readings")


def mean_of_last(cases: Sequence[Case], k: int, fallback: np.ndarray) -> np.ndarray:
    """``[B, E, L]`` model scale: the mean of each endpoint's last ``k`` observations (model
    scale) held flat; ``fallback [E]`` for an endpoint never observed."""
    out = np.repeat(np.repeat(np.asarray(fallback, dtype=np.float64)[None, :, None],
                              len(cases), 0), len(LEAD_H), 2)
    for b, case in enumerate(cases):
        for i, (_, z) in per_endpoint(case.observations).items():
            out[b, i, :] = z[-k:].mean()
    return out


def _fallback(forecaster: Forecaster, cases: Sequence[Case]) -> np.ndarray:
    """The training mean (model scale) if the bundle has it, else the cases' own mean."""
    if "population_mean" in forecaster.config:
        return np.asarray(forecaster.config["population_mean"], dtype=np.float64)
    out = np.zeros(len(NAMES))
    groups = [per_endpoint(c.observations) for c in cases]
    for i in range(len(NAMES)):
        vals = [z for g in groups if i in g for z in g[i][1]]
        out[i] = float(np.mean(vals)) if vals else 0.0
    return out


def evaluate(forecaster: Forecaster, seed: int, patients: int, horizon_h: float = 72,
             coverage: float = 0.9, log: Any = None, world: str = "as-built",
             target: str = "auto") -> dict[str, Any]:
    """``{"world", "target", "default_engine", "results": {ENGINE: {ENDPOINT: {H: {n, mae,
    rmse, coverage, mean_width}}}}, "baselines": {NAME: {ENDPOINT: {H: {n, mae, rmse}}}}}``
    (natural units; H in hours) in ``world``. ``target``: "trajectory" (noise-free truth),
    "readings" (truth + observation noise) or "auto" (the world's own, ``World.readings``).
    The as-built world with its trajectory target is the historical evaluation, unchanged."""
    horizons = tuple(h for h in HORIZONS_H if h <= horizon_h)
    if not horizons:
        raise ValueError(f"horizon_h: must be >= {HORIZONS_H[0]}, got {horizon_h}")
    if world not in WORLDS:
        raise ValueError(f"world: must be one of {list(WORLDS)}, got {world!r}")
    if target not in TARGETS:
        raise ValueError(f"target: must be one of {list(TARGETS)}, got {target!r}")
    readings = WORLDS[world].readings if target == "auto" else target == "readings"
    prior = ParameterPrior.from_dict(forecaster.config["prior"]) \
        if "prior" in forecaster.config else None
    t = time.perf_counter()
    cohort = make_world(world, generate_cohort(seed, patients, "test", prior), seed)
    cases, truth = forecast_cases(cohort)  # as the calibration cases (training.py)
    if readings:
        truth = measure(truth, world_rng(world, seed, 1))
    if log:
        log(f"test cohort: {patients} patients (seed {seed}), world {world}, target "
            f"{'readings' if readings else 'trajectory'}, in {time.perf_counter() - t:.1f} s")
    results = {}
    for name in forecaster.engines:
        t = time.perf_counter()
        pred, scale = forecaster.engine(name).predict_with_scale(cases)
        res = score(pred, truth, forecaster.conformal[name], coverage, horizons, scale)
        results[name] = {e: {h: {"n": len(cases), **m} for h, m in hs.items()}
                         for e, hs in res.items()}
        if log:
            sbp = results[name]["sbp_mmhg"]
            h = "24" if "24" in sbp else str(horizons[0])
            log(f"{name}: {time.perf_counter() - t:.1f} s; SBP {h} h MAE "
                f"{sbp[h]['mae']:.2f} mmHg, coverage {sbp[h]['coverage']:.3f}")
    fallback = _fallback(forecaster, cases)
    baselines = {name: score_point(mean_of_last(cases, k, fallback), truth, horizons)
                 for name, k in BASELINES.items()}
    if log:
        h = "24" if 24 in horizons else str(horizons[0])
        log("baselines SBP " + h + " h MAE: " + ", ".join(
            f"{n} {b['sbp_mmhg'][h]['mae']:.2f}" for n, b in baselines.items()))
    return {"world": world, "target": "readings" if readings else "trajectory",
            "default_engine": forecaster.default_engine, "results": results,
            "baselines": baselines}
