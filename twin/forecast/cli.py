"""``python -m twin evaluate --seed S --patients N --horizon-h 72 [--world W] --json out.json``
(worlds: ``twin.forecast.worlds.WORLDS``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twin.bundle import BundleError
from twin.forecast.defaults import default_model_uri, ensure_bundle
from twin.forecast.evaluate import TARGETS, evaluate
from twin.forecast.forecaster import load_forecaster
from twin.forecast.worlds import WORLDS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m twin evaluate",
        description="Evaluate every forecasting engine on a seeded virtual test cohort, "
                    "in the as-built world against its noise-free trajectories or in a "
                    "perturbed world against the next readings.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="worlds:\n" + "\n".join(f"  {n:13s} {w.doc}" for n, w in WORLDS.items()),
    )
    p.add_argument("--seed", type=int, required=True, help="test cohort seed")
    p.add_argument("--patients", type=int, default=200, help="test patients (>= 1)")
    p.add_argument("--horizon-h", type=float, default=72.0, help="longest horizon, h (6-72)")
    p.add_argument("--coverage", type=float, default=0.9, help="nominal coverage (0.5-0.99)")
    p.add_argument("--world", choices=list(WORLDS), default="as-built",
                   help="evaluation world (default as-built)")
    p.add_argument("--target", choices=list(TARGETS), default="auto",
                   help="score against the noise-free trajectory or the readings "
                        "(default auto: trajectory in as-built, readings elsewhere)")
    p.add_argument("--json", type=Path, help="write the results here (JSON)")
    p.add_argument("--model", help="bundle path or s3:// URI (default: MODEL_URI or "
                                   "<repo>/instance/model; a small one is built if missing)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["evaluate"]:
        argv = argv[1:]
    args = parser().parse_args(argv)
    if args.patients < 1:
        parser().error(f"--patients: must be >= 1, got {args.patients}")
    if not 6 <= args.horizon_h <= 72:
        parser().error(f"--horizon-h: must be in [6, 72], got {args.horizon_h}")
    if not 0.5 <= args.coverage <= 0.99:
        parser().error(f"--coverage: must be in [0.5, 0.99], got {args.coverage}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    uri = args.model or default_model_uri()
    try:
        if args.model is None:
            ensure_bundle(uri, log=log)
        fc = load_forecaster(uri)
    except BundleError as exc:
        log(f"error: {exc}")
        return 1
    log(f"model {fc.version} from {uri}; engines {', '.join(fc.engines)}")
    out = evaluate(fc, args.seed, args.patients, args.horizon_h, args.coverage, log,
                   world=args.world, target=args.target)
    text = json.dumps(out, indent=1, sort_keys=False)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
        log(f"wrote {args.json}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
