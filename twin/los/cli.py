"""Remaining-stay CLI verbs (``python -m twin fit-los`` / ``evaluate-los``):

    python -m twin fit-los --data data/eicu_demo/los [--out twin/los/model.json.gz]
    python -m twin evaluate-los --data DIR [--model URI] [--json OUT] [--all-stays]

``fit-los`` learns the quantile trees on the train split and the conformal correction on the
calibration split of DIR; ``evaluate-los`` scores the model, the random-forest recipe and the
median baseline (both fitted on DIR's train split) on DIR's test split (every stay with
``--all-stays``, e.g. for another hospital's cohort the model never saw).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from twin.los.data import design, load_los
from twin.los.evaluate import HOURS, MedianBaseline, RandomForestRecipe, evaluate
from twin.los.model import DEFAULT_PATH, load_model, save_model
from twin.realdata.loader import CohortError
from twin.verbs import run_verbs


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _split(stays, name):
    return design([s for s in stays if s.split == name])


def cmd_fit(args) -> int:
    from twin.los.fit import fit_los

    stays = load_los(args.data)
    train, cal = _split(stays, "train"), _split(stays, "calibration")
    n = {k: len({s.stay_id for s in stays if s.split == k}) for k in ("train", "calibration")}
    trained_on = {"cohort": "eICU-CRD demo ICU stays (YAIB los), an ICU population",
                  "data": str(args.data), "stays": n,
                  "rows": {"train": len(train.y), "calibration": len(cal.y)},
                  "split": "twin.realdata.split (SHA-256 of the stay id: 60/20/20)"}
    model = fit_los(train, cal, trained_on, n_trees=args.trees, log=_log)
    save_model(model, args.out)
    _log(f"wrote {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    t0 = time.perf_counter()
    model = load_model(args.model)
    stays = load_los(args.data)
    test = design(stays) if args.all_stays else _split(stays, "test")
    train = _split(stays, "train")
    predictors = {"default": model, "median": MedianBaseline(train)}
    if not args.no_forest:
        _log("fitting the random-forest recipe on the train split")
        predictors["random_forest"] = RandomForestRecipe(train, _split(stays, "calibration"))
    out = evaluate(test, predictors)
    out.update({"split": "all" if args.all_stays else "test", "model_version": model.version,
                "stays": len({int(s) for s in test.stay}), "data": str(args.data),
                "seconds": round(time.perf_counter() - t0, 1)})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    _summary(out)
    return 0


def _summary(out: dict) -> None:
    med = out["results"]["median"]
    for name, res in out["results"].items():
        for key in (*map(str, HOURS), "all"):
            r, b = res[key], med[key]
            if not r["n"]:
                continue
            print(f"{name:13s} {key:>3s} n={r['n']:6d} MAE {r['mae_h']:6.2f} h "
                  f"medAE {r['medae_h']:6.2f} h ratio-to-median {r['mae_h'] / b['mae_h']:5.3f} "
                  f"cov80 {r['coverage_80']:.3f}")


def register_cli(subparsers) -> None:
    f = subparsers.add_parser("fit-los", help="fit the remaining-stay model")
    f.add_argument("--data", required=True, help="a YAIB-layout los directory")
    f.add_argument("--out", default=str(DEFAULT_PATH))
    f.add_argument("--trees", type=int, default=600)
    f.set_defaults(func=cmd_fit)
    e = subparsers.add_parser("evaluate-los", help="score the remaining-stay model")
    e.add_argument("--data", required=True, help="a YAIB-layout los directory")
    e.add_argument("--model", default=None, help="model file or s3:// URI (default: shipped)")
    e.add_argument("--json", default=None)
    e.add_argument("--all-stays", action="store_true",
                   help="score every stay (default: the test split only)")
    e.add_argument("--no-forest", action="store_true", help="skip the random-forest recipe")
    e.set_defaults(func=cmd_evaluate)


def main(argv=None) -> int:
    return run_verbs("python -m twin", register_cli, argv, errors=(CohortError,))


if __name__ == "__main__":
    sys.exit(main())
