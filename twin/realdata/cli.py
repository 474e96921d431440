"""Real-data CLI verbs: ``fit`` (learn the state-space parameters + conformal tables on the
train / calibration splits) and ``evaluate-real`` (score on the test split of a cohort).

    python -m twin.realdata.cli fit --data data/eicu_demo/los --out twin/realdata/params.json
    python -m twin.realdata.cli evaluate-real --data data/eicu_demo/los [--thin-h 4] [--json OUT]

``register_cli(subparsers)`` adds both verbs to an existing argparse parser.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from twin.forecast.evaluate_real import (
    BASELINES,
    EVAL_ENDPOINTS,
    conformal_table,
    evaluate_real,
    grid,
    state_space_engine,
)
from twin.forecast.residual import TRAIN_HORIZONS
from twin.forecast.residual_engine import fit_residual, residual_engine
from twin.forecast.state_space import fit_endpoint
from twin.realdata.loader import CohortError, load_cohort
from twin.verbs import run_verbs

PARAMS_PATH = Path(__file__).with_name("params.json")
MODEL_VERSION = "vitals-2"
ENGINE = "vitals_model"   # state space + residual networks
ACI_GAMMA = 0.03  # per-patient adaptive scale step (twin.forecast.aci), chosen on calibration


def load_params(uri=None) -> dict:
    path = Path(uri) if uri else PARAMS_PATH
    return json.loads(path.read_text())


def fit(data, out, iters=100, horizons=TRAIN_HORIZONS, params_from=None, epochs=8,
        aci_gamma=ACI_GAMMA, log=print) -> dict:
    """Fit on ``data``: state-space parameters and residual networks on the train split,
    conformal tables (complete and 4-hourly history) on the calibration split. With
    ``params_from`` the state-space parameters (and residual networks, if it has them) of
    that file are kept and only the conformal tables are refitted."""
    cohort = load_cohort(data)
    train, cal = cohort.split("train"), cohort.split("calibration")
    old = load_params(params_from) if params_from else {}
    params = old.get("params") or {ep: fit_endpoint(grid(train, ep), iters=iters).to_dict()
                                   for ep in EVAL_ENDPOINTS}
    residual = old.get("residual")
    if residual is None:
        log("state space fitted; training the residual networks")
        residual = fit_residual(train, params, epochs=epochs, log=log)
    doc = {"model_version": MODEL_VERSION, "engine": ENGINE, "params": params,
           "residual": residual, "aci_gamma": aci_gamma}
    tables = {}
    for key, thin_h in (("none", None), ("4", 4)):
        engines = {ENGINE: residual_engine(doc, cal, thin_h),
                   "state_space": state_space_engine(params), **BASELINES}
        tables[key] = conformal_table(cal, engines, horizons, thin_h=thin_h,
                                      grid_engines=(ENGINE,))
    doc = {"model_version": MODEL_VERSION, "engine": ENGINE, "data": str(data),
           "fitted_on": {"params": "train", "residual": "train", "conformal": "calibration",
                         "stays": {"train": len(train), "calibration": len(cal)}},
           "params": params, "residual": residual, "aci_gamma": aci_gamma,
           "conformal": tables}
    Path(out).write_text(json.dumps(doc))
    return doc


def _horizons(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split(",") if x.strip())


def cmd_fit(args) -> int:
    doc = fit(args.data, args.out, iters=args.iters, params_from=args.params_from,
              epochs=args.epochs, aci_gamma=args.aci_gamma)
    print(json.dumps(doc["params"], indent=1))
    return 0


def model_doc(uri: str | None) -> tuple[dict, str, str]:
    """(vitals-model document, engine name, model version) for ``--model``: a params JSON
    file as written by ``fit``, or a model bundle (default: the default bundle, built if
    missing as the quick start does) whose default engine carries a real-data vitals model.
    The eICU stays carry no ACE-inhibitor regimen, so the hybrid engine's drug effect is
    zero there and its forecast is exactly its vitals model's."""
    if uri and str(uri).endswith(".json"):
        doc = load_params(uri)
        return doc, doc.get("engine", "state_space"), doc["model_version"]
    from twin.forecast.defaults import default_model_uri, ensure_bundle
    from twin.forecast.forecaster import load_forecaster

    uri = uri or default_model_uri()
    ensure_bundle(uri, log=lambda m: print(m, file=sys.stderr))
    fc = load_forecaster(uri)
    vitals = getattr(fc.engine(None), "vitals", None)
    if vitals is None:
        raise SystemExit(f"--model {uri}: the default engine {fc.default_engine!r} has no "
                         "real-data vitals model; rebuild the bundle")
    return vitals.doc, fc.default_engine, f"{fc.version} (vitals {vitals.version})"


def cmd_evaluate_real(args) -> int:
    doc, engine, version = model_doc(args.model)
    cohort = load_cohort(args.data)
    test = cohort if args.all_stays else cohort.split("test")
    table = dict(doc["conformal"].get(str(int(args.thin_h)) if args.thin_h else "none"))
    table[engine] = table.get(doc.get("engine", "state_space"))
    extra = {"state_space": state_space_engine(doc["params"])}
    main = (residual_engine(doc, test, args.thin_h) if "residual" in doc
            else extra.pop("state_space"))
    out = evaluate_real(test, main, _horizons(args.horizons),
                        args.every_h, args.min_history_h, args.thin_h, table=table,
                        engines=extra, default_engine=engine,
                        model_version=version, mondrian=args.mondrian)
    out["split"] = "all" if args.all_stays else "test"
    text = json.dumps(out, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    _summary(out)
    return 0


def _summary(out):
    res = out["results"]
    for ep in EVAL_ENDPOINTS:
        for h in map(str, out["horizons"]):
            best = min(res[b][ep][h]["mae"] for b in BASELINES)
            r = res[out["default_engine"]][ep][h]
            c = r["coverage"]
            print(f"{ep:9s} {h:>3s}h n={r['n']:5d} MAE {r['mae']:6.2f} best-baseline {best:6.2f} "
                  f"ratio {r['mae'] / best:5.3f} cov80 {c['0.8']:.3f} cov90 {c['0.9']:.3f} "
                  f"cov95 {c['0.95']:.3f} width90 {r['width']['0.9']:.1f}")


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("evaluate-real", help="score the forecaster on a real cohort")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=None,
                   help="model bundle or params JSON (default: the default bundle)")
    p.add_argument("--horizons", default="1,4,12,24")
    p.add_argument("--every-h", type=int, default=6)
    p.add_argument("--min-history-h", type=int, default=6)
    p.add_argument("--thin-h", type=float, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--mondrian", action="store_true",
                   help="conformal quantile per age band (default: one pooled quantile)")
    p.add_argument("--all-stays", action="store_true",
                   help="score every stay (default: the test split only)")
    p.set_defaults(func=cmd_evaluate_real)
    f = subparsers.add_parser("fit", help="fit state-space params + conformal tables")
    f.add_argument("--data", required=True)
    f.add_argument("--out", default=str(PARAMS_PATH))
    f.add_argument("--iters", type=int, default=100)
    f.add_argument("--epochs", type=int, default=8, help="residual network epochs (at most)")
    f.add_argument("--aci-gamma", type=float, default=ACI_GAMMA,
                   help="per-patient adaptive interval step (0: off)")
    f.add_argument("--params-from", default=None,
                   help="reuse the state-space params (and networks) of this JSON; refit the rest")
    f.set_defaults(func=cmd_fit)


def main(argv=None) -> int:
    return run_verbs("python -m twin.realdata.cli", register_cli, argv, errors=(CohortError,))


if __name__ == "__main__":
    sys.exit(main())
