#!/usr/bin/env python3
"""Build a small smoke-test model bundle quickly: for container checks, never for patients.

Only the engines that need no training (persistence, population and hybrid twins), on a small
virtual cohort: about 2 CPU-minutes instead of the default bundle's many. The bundle has the
same format as scripts/train_model.py's, so the service loads and serves it the same way.

Usage: ``python scripts/smoke_bundle.py --out PATH [--patients 8] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from twin.forecast.training import TrainConfig, build_forecaster

ENGINES = ("persistence", "population_twin", "hybrid_twin")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="bundle path or s3:// URI")
    p.add_argument("--patients", type=int, default=8, help="patients per cohort")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(seed=args.seed, n_train=args.patients, n_calibration=args.patients,
                      n_dev=max(2, args.patients // 2))
    t0 = time.perf_counter()
    fc, timings = build_forecaster(cfg, engines=ENGINES)
    fc.save(args.out)
    print(json.dumps({"bundle": args.out, "model_version": fc.version, "engines": list(ENGINES),
                      "seconds": round(time.perf_counter() - t0, 1),
                      "timings_s": {k: round(v, 1) for k, v in timings.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
