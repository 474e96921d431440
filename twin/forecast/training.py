"""Build a Forecaster from virtual cohorts: train the learned engines, fit conformal
tables on held-out calibration patients, pick the default engine, measure metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from twin.forecast.cohort import Cohort, default_prior, forecast_cases, generate_cohort
from twin.forecast.conformal import ConformalTable
from twin.forecast.endpoints import NAMES, to_model_scale
from twin.forecast.engines import LEAD_H, Engine, Persistence
from twin.forecast.features import Normaliser
from twin.forecast.forecaster import Forecaster
from twin.forecast.graph import GraphConfig, train_graph
from twin.forecast.hybrid_engine import HybridTwin, hybrid_table
from twin.forecast.metrics import score
from twin.forecast.published import PublishedConfig, train_published
from twin.forecast.twin_engines import PersonalisedTwin, PopulationTwin
from twin.forecast.vitals_model import VitalsModel

Progress = Callable[[str, int, int], None]  # (stage, done, total)
TWIN_ENGINES = ("population_twin", "personalised_twin", "hybrid_twin")
#: the default engine when built: the one measured on real patients (docs/realdata.md)
REAL_DATA_DEFAULT = "hybrid_twin"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    n_train: int = 300
    # 1000 independent calibration patients, one forecast time each for the (costlier)
    # simulator-based engines: more forecast times of the same patient add little, because a
    # patient's errors at different times are strongly correlated; the conformal quantile's
    # own sampling error (SD ~ sqrt(c (1 - c) / n): 0.95 points at n = 1000, c = 0.9) is what
    # keeps every endpoint and horizon within 3 points of nominal (docs/forecasting.md)
    n_calibration: int = 1000
    n_dev: int = 0  # 0: the default engine is chosen on the calibration cohort's errors
    origins_per_patient: int = 4
    conformal_origins: int = 4  # forecast times per calibration patient (learned engines)
    twin_conformal_origins: int = 1  # the same for the simulator-based engines
    graph: GraphConfig = field(default_factory=lambda: GraphConfig(epochs=40))
    published: PublishedConfig = field(default_factory=lambda: PublishedConfig(epochs=3))
    calibrate_iters: int = 3
    coverage: float = 0.9


def multi_origin(cohort: Cohort, k: int, seed: int) -> tuple[list[Any], np.ndarray]:
    """``k`` forecast times per patient (``twin.forecast.cohort.forecast_cases``, as evaluation)."""
    return forecast_cases(cohort, k, seed)


def normaliser_from(cohort: Cohort) -> Normaliser:
    z = to_model_scale(cohort.truth, axis=1)
    return Normaliser(z.mean(axis=(0, 2)), np.maximum(z.std(axis=(0, 2)), 1e-3))


def residual_table(name: str, pred: np.ndarray, truth_z: np.ndarray,
                   scale: np.ndarray | None = None) -> ConformalTable:
    """Split-conformal scores of one engine from its predictions on calibration cases."""
    if name == "published_gat":  # the recipe: one-step residuals, same at every lead
        one = np.abs(pred[:, :, 1] - truth_z[:, :, 1])
        return ConformalTable.fit(np.array([0.0, LEAD_H[-1]]), np.stack([one, one], axis=-1))
    return ConformalTable.fit(LEAD_H, pred - truth_z, scale, normalise="auto")


def predict_in_steps(engine: Engine, cases: list[Any], progress: Progress | Any,
                     step: int = 16) -> tuple[np.ndarray, np.ndarray | None]:
    """``engine.predict_with_scale`` in slices (to report progress)."""
    preds, scales = [], []
    for s in range(0, len(cases), step):
        p, sc = engine.predict_with_scale(cases[s : s + step])
        preds.append(p)
        scales.append(sc)
        progress(min(s + step, len(cases)), len(cases))
    scale = None if any(sc is None for sc in scales) else np.concatenate(scales)
    return np.concatenate(preds), scale


def choose_default(results: dict[str, Any]) -> str:
    """The engine with the lowest mean MAE relative to persistence over endpoints/horizons."""
    ref = results["persistence"]
    best, best_score = "persistence", 1.0
    for eng, res in results.items():
        ratios = [res[e][h]["mae"] / max(ref[e][h]["mae"], 1e-9) for e in NAMES for h in res[e]]
        s = float(np.mean(ratios))
        if s < best_score:
            best, best_score = eng, s
    return best


def build_forecaster(cfg: TrainConfig, progress: Progress | None = None,
                     engines: tuple[str, ...] = ("persistence", "population_twin",
                                                 "personalised_twin", "hybrid_twin", "graph",
                                                 "published_gat"),
                     ) -> tuple[Forecaster, dict[str, float]]:
    """Train everything; returns the Forecaster and stage timings (s). The default engine is
    ``hybrid_twin`` when built, else the best on the simulated cohort (``choose_default``)."""
    say = progress or (lambda *_: None)
    torch.manual_seed(cfg.seed)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prior = default_prior()
    train = generate_cohort(cfg.seed, cfg.n_train, "train", prior,
                            lambda d, n: say("train cohort", d, n))
    cal = generate_cohort(cfg.seed, cfg.n_calibration, "calibration", prior,
                          lambda d, n: say("calibration cohort", d, n))
    dev = generate_cohort(cfg.seed, cfg.n_dev, "dev", prior) if cfg.n_dev else None
    timings["cohorts_s"] = time.perf_counter() - t0
    norm = normaliser_from(train)
    built: dict[str, Engine] = {}
    if "persistence" in engines:
        built["persistence"] = Persistence(norm.mean)
    if "population_twin" in engines:
        built["population_twin"] = PopulationTwin(prior)
    if "personalised_twin" in engines:
        built["personalised_twin"] = PersonalisedTwin(prior, cfg.calibrate_iters)
    if "hybrid_twin" in engines:
        built["hybrid_twin"] = HybridTwin(prior, VitalsModel.load())
    if "graph" in engines:
        t = time.perf_counter()
        cases, truth = multi_origin(train, cfg.origins_per_patient, cfg.seed)
        built["graph"] = train_graph(cases, truth, norm, cfg.graph,
                                     lambda e, _l: say("graph", e + 1, cfg.graph.epochs))
        timings["graph_train_s"] = time.perf_counter() - t
    if "published_gat" in engines:
        t = time.perf_counter()
        series = to_model_scale(train.truth, axis=1)
        built["published_gat"] = train_published(
            series, norm, cfg.published, lambda e, _l: say("published_gat", e + 1,
                                                            cfg.published.epochs))
        timings["published_train_s"] = time.perf_counter() - t
    # several forecast times per calibration patient (the first is the patient's own now_h);
    # fewer for the simulator-based engines, which cost a simulation (or a fit) per case
    origins = max(cfg.conformal_origins, cfg.twin_conformal_origins)
    many_cases, many_truth = multi_origin(cal, origins, cfg.seed + 1)
    n_cal = len(cal.patients)
    tables, results = {}, {}
    for name, eng in built.items():
        t = time.perf_counter()
        k = n_cal * (cfg.twin_conformal_origins if name in TWIN_ENGINES
                     else cfg.conformal_origins)
        pred, scale = predict_in_steps(eng, many_cases[:k],
                                       lambda d, n, e=name: say(f"conformal {e}", d, n))
        if isinstance(eng, HybridTwin):  # vitals: the real-data scores; others: simulated
            tables[name] = hybrid_table(eng.vitals, pred - many_truth[:k])
        else:
            tables[name] = residual_table(name, pred, many_truth[:k], scale)
        if dev is None:  # point errors on the calibration cohort (coverage there is in-sample)
            sc = None if scale is None else scale[:n_cal]
            results[name] = score(pred[:n_cal], many_truth[:n_cal], tables[name], cfg.coverage,
                                  scale=sc)
        else:
            p, sc = eng.predict_with_scale(dev.cases())
            results[name] = score(p, dev.truth_at_leads(), tables[name], cfg.coverage, scale=sc)
        timings[f"{name}_conformal_and_dev_s"] = time.perf_counter() - t
    simulated_best = choose_default(results)
    default = REAL_DATA_DEFAULT if REAL_DATA_DEFAULT in built else simulated_best
    timings["total_s"] = time.perf_counter() - t0
    version = f"fc-{datetime.now(UTC):%Y%m%d%H%M%S}-s{cfg.seed}"
    metrics = {"dev_cohort": {"seed": cfg.seed, "patients": cfg.n_dev or cfg.n_calibration,
                              "role": "dev" if cfg.n_dev else "calibration",
                              "coverage": cfg.coverage, "default_engine": default,
                              "best_on_simulated": simulated_best,
                              "results": results},
               "timings_s": timings}
    config = {"train": _jsonable(asdict(cfg)), "normaliser": norm.to_dict(),
              "population_mean": norm.mean.tolist(), "prior": prior.to_dict()}
    return Forecaster(built, tables, default, version, metrics, config), timings


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, list | tuple):
        return [_jsonable(v) for v in d]
    return d
