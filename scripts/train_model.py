"""Train the forecasting engines on a virtual cohort and write a versioned model bundle.

    .venv/bin/python scripts/train_model.py --out instance/model [--seed 0] [--train 400]
    .venv/bin/python scripts/train_model.py --out s3://bucket/models/v1

Deterministic for a given seed (same cohorts, same weights). The defaults finish in well
under 15 minutes on 2 CPU cores; ``--small`` builds the quick default bundle.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import torch
from tqdm import tqdm

from twin.forecast.defaults import SMALL
from twin.forecast.graph import GraphConfig
from twin.forecast.published import PublishedConfig
from twin.forecast.training import TrainConfig, build_forecaster


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="bundle path or s3:// URI")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=TrainConfig.n_train, help="training patients")
    p.add_argument("--calibration", type=int, default=TrainConfig.n_calibration,
                   help="conformal calibration patients")
    p.add_argument("--dev", type=int, default=TrainConfig.n_dev, help="dev-metric patients")
    p.add_argument("--epochs", type=int, default=TrainConfig().graph.epochs, help="graph epochs")
    p.add_argument("--published-epochs", type=int, default=TrainConfig().published.epochs)
    p.add_argument("--small", action="store_true", help="the quick default-bundle settings")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.small:
        cfg = replace(SMALL, seed=args.seed)
    else:
        cfg = TrainConfig(
            seed=args.seed, n_train=args.train, n_calibration=args.calibration, n_dev=args.dev,
            graph=GraphConfig(epochs=args.epochs, seed=args.seed),
            published=PublishedConfig(epochs=args.published_epochs, seed=args.seed),
        )
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="step", file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    t0 = time.perf_counter()
    fc, timings = build_forecaster(cfg, progress)
    manifest = fc.save(args.out)
    dev = fc.metrics["dev_cohort"]["results"]
    sbp = {e: round(r["sbp_mmhg"]["24"]["mae"], 2) for e, r in dev.items()}
    print(json.dumps({
        "bundle": args.out, "model_version": fc.version, "git_sha": manifest["git_sha"],
        "default_engine": fc.default_engine, "seconds": round(time.perf_counter() - t0, 1),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "dev_sbp_24h_mae_mmhg": sbp,
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
