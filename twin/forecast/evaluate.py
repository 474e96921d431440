"""Evaluation of every engine of a Forecaster on a fresh seeded test cohort."""

from __future__ import annotations

import time
from typing import Any

from twin.forecast.cohort import ParameterPrior, forecast_cases, generate_cohort
from twin.forecast.forecaster import Forecaster
from twin.forecast.metrics import HORIZONS_H, score


def evaluate(forecaster: Forecaster, seed: int, patients: int, horizon_h: float = 72,
             coverage: float = 0.9, log: Any = None) -> dict[str, Any]:
    """``{"default_engine": NAME, "results": {ENGINE: {ENDPOINT: {H: {mae, rmse, coverage,
    mean_width}}}}}`` against the test patients' noise-free trajectories (natural units)."""
    horizons = tuple(h for h in HORIZONS_H if h <= horizon_h)
    if not horizons:
        raise ValueError(f"horizon_h: must be >= {HORIZONS_H[0]}, got {horizon_h}")
    prior = ParameterPrior.from_dict(forecaster.config["prior"]) \
        if "prior" in forecaster.config else None
    t = time.perf_counter()
    cohort = generate_cohort(seed, patients, "test", prior)
    cases, truth = forecast_cases(cohort)  # as the calibration cases (training.py)
    if log:
        log(f"test cohort: {patients} patients (seed {seed}) in {time.perf_counter() - t:.1f} s")
    results = {}
    for name in forecaster.engines:
        t = time.perf_counter()
        pred, scale = forecaster.engine(name).predict_with_scale(cases)
        results[name] = score(pred, truth, forecaster.conformal[name], coverage, horizons, scale)
        if log:
            sbp = results[name]["sbp_mmhg"]
            h = "24" if "24" in sbp else str(horizons[0])
            log(f"{name}: {time.perf_counter() - t:.1f} s; SBP {h} h MAE "
                f"{sbp[h]['mae']:.2f} mmHg, coverage {sbp[h]['coverage']:.3f}")
    return {"default_engine": forecaster.default_engine, "results": results}
