"""Forecast latency and throughput per engine, in-process.

    .venv/bin/python scripts/bench_forecast.py [--model URI] [--patients 8] [--json out.json]
        [--history-only] [--history-repeats 20]

Single-patient latency (p50 / p99 of ``Forecaster.forecast``, 72 h horizon, hourly) per
engine, batched throughput (``predict_batch``, cases per second), and the personalised
calibration time per patient (``twin.forecast.calibrate``), and history scaling: cold forecasts
(every memo and engine cache cleared) with the default engine for one patient with 1, 7 and 30
days of 4-hourly BP/HR history, the lengths interleaved so machine load affects all alike.
Goals: graph p99 <= 20 ms; calibration <= 2 s per patient; history: p50 30 d / 1 d <= 1.5 and
cold p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from twin import Observation, Regimen, Scenario, calibrate, load_forecaster
from twin.forecast.cohort import generate_cohort
from twin.forecast.defaults import default_model_uri

REPEATS = {"persistence": 200, "graph": 200, "published_gat": 50, "population_twin": 8,
           "personalised_twin": 4, "hybrid_twin": 8}
HISTORY_DAYS = (1, 7, 30)


def history_case(days: int) -> tuple[Scenario, list[Observation], float]:
    """A treated 58-year-old with ``days`` of 4-hourly SBP/DBP/HR readings; now = the last."""
    rng = np.random.default_rng(days)
    scen = Scenario(age_years=58, regimen=Regimen("benazepril", 10.0, 24.0))
    now = 24.0 * days
    obs = []
    for t in np.arange(0.0, now + 1e-9, 4.0):
        for ep, mu, sd in (("sbp_mmhg", 135, 8), ("dbp_mmhg", 80, 5), ("hr_bpm", 80, 5)):
            obs.append(Observation(float(t), ep, float(mu + rng.normal(0, sd))))
    return scen, obs, now


def history_scaling(fc: Any, repeats: int) -> dict[str, Any]:
    """Cold default-engine forecast latency per history length, and the 30 d / 1 d ratios."""
    cases = {d: history_case(d) for d in HISTORY_DAYS}
    times: dict[int, list[float]] = {d: [] for d in HISTORY_DAYS}
    for _ in range(repeats):
        for d, (scen, obs, now) in cases.items():
            fc.clear_memo()
            t = time.perf_counter()
            fc.forecast(scen, obs, now)
            times[d].append(time.perf_counter() - t)
    out: dict[str, Any] = {"engine": fc.default_engine, "repeats": repeats}
    for d in HISTORY_DAYS:
        a = np.asarray(times[d]) * 1000.0
        out[f"{d}d"] = {"readings": len(cases[d][1]), "p50_ms": round(float(np.median(a)), 1),
                        "p95_ms": round(float(np.percentile(a, 95)), 1)}
    first, last = out[f"{HISTORY_DAYS[0]}d"], out[f"{HISTORY_DAYS[-1]}d"]
    out["ratio_p50_30d_1d"] = round(last["p50_ms"] / first["p50_ms"], 2)
    out["ratio_p95_30d_1d"] = round(last["p95_ms"] / first["p95_ms"], 2)
    out["goals"] = {"ratio_le_1.5": out["ratio_p50_30d_1d"] <= 1.5,
                    "cold_p95_le_300ms": max(out[f"{d}d"]["p95_ms"] for d in HISTORY_DAYS)
                    <= 300.0}
    return out


def _percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="bundle (default: MODEL_URI or instance/model)")
    p.add_argument("--patients", type=int, default=8, help="virtual patients to draw cases from")
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--threads", type=int, default=1, help="torch threads (a web worker's share)")
    p.add_argument("--json", type=Path)
    p.add_argument("--history-only", action="store_true", help="only the history-scaling part")
    p.add_argument("--history-repeats", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    fc = load_forecaster(args.model or default_model_uri())
    hist = history_scaling(fc, args.history_repeats)
    print("history scaling", json.dumps(hist), file=sys.stderr, flush=True)
    if args.history_only:
        print(json.dumps({"model_version": fc.version, "threads": args.threads,
                          "history_scaling": hist}, indent=1))
        return 0
    cohort = generate_cohort(args.seed, args.patients, "dev")
    cases = cohort.cases()
    out: dict[str, object] = {"model_version": fc.version, "threads": args.threads,
                              "latency": {}, "throughput_cases_per_s": {}}
    for engine in fc.engines:
        times = []
        for k in range(REPEATS.get(engine, 10)):
            c = cases[k % len(cases)]
            fc.clear_memo()  # time the engine, not the Forecaster's memo of its predictions
            t = time.perf_counter()
            fc.forecast(c.scenario, c.observations, c.now_h, engine=engine)
            times.append(time.perf_counter() - t)
        out["latency"][engine] = _percentiles(times)
        t = time.perf_counter()  # the same question again, another coverage: served from memo
        fc.forecast(c.scenario, c.observations, c.now_h, coverage=0.8, engine=engine)
        out["latency"][engine]["memo_hit_ms"] = round((time.perf_counter() - t) * 1000, 2)
        batch = cases * (32 if engine in ("persistence", "graph", "published_gat") else 1)
        t = time.perf_counter()
        fc.engine(engine).predict_batch(batch)
        out["throughput_cases_per_s"][engine] = round(len(batch) / (time.perf_counter() - t), 2)
        print(engine, out["latency"][engine], out["throughput_cases_per_s"][engine],
              file=sys.stderr, flush=True)
    cal = []
    for c in cases[: min(4, len(cases))]:
        t = time.perf_counter()
        calibrate(c.observations, c.scenario)
        cal.append(time.perf_counter() - t)
    out["calibration_s_per_patient"] = {"mean": round(float(np.mean(cal)), 2),
                                        "max": round(float(np.max(cal)), 2), "n": len(cal)}
    out["goals"] = {
        "graph_p99_le_20ms": out["latency"].get("graph", {}).get("p99_ms", 1e9) <= 20.0,
        "calibration_le_2s": out["calibration_s_per_patient"]["mean"] <= 2.0,
        **{f"history_{k}": v for k, v in hist["goals"].items()},
    }
    out["history_scaling"] = hist
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
