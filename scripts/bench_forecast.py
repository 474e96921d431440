"""Forecast latency and throughput per engine, in-process.

    .venv/bin/python scripts/bench_forecast.py [--model URI] [--patients 8] [--json out.json]

Single-patient latency (p50 / p99 of ``Forecaster.forecast``, 72 h horizon, hourly) per
engine, batched throughput (``predict_batch``, cases per second), and the personalised
calibration time per patient (``twin.forecast.calibrate``). Goals: graph p99 <= 20 ms; calibration
<= 2 s per patient.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from twin import calibrate, load_forecaster
from twin.forecast.cohort import generate_cohort
from twin.forecast.defaults import default_model_uri

REPEATS = {"persistence": 200, "graph": 200, "published_gat": 50, "population_twin": 8,
           "personalised_twin": 4}


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
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    fc = load_forecaster(args.model or default_model_uri())
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
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
