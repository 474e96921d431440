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

from twin.cohort import Cohort, default_prior, generate_cohort
from twin.forecast.conformal import ConformalTable
from twin.forecast.endpoints import NAMES, to_model_scale
from twin.forecast.engines import LEAD_H, Engine, Persistence
from twin.forecast.features import Normaliser
from twin.forecast.forecaster import Forecaster
from twin.forecast.graph import GraphConfig, train_graph
from twin.forecast.metrics import score
from twin.forecast.published import PublishedConfig, train_published
from twin.forecast.twin_engines import PersonalisedTwin, PopulationTwin

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    n_train: int = 400
    n_calibration: int = 200
    n_dev: int = 100
    origins_per_patient: int = 4
    graph: GraphConfig = field(default_factory=GraphConfig)
    published: PublishedConfig = field(default_factory=PublishedConfig)
    calibrate_iters: int = 25
    coverage: float = 0.9


def multi_origin(cohort: Cohort, k: int, seed: int) -> tuple[list[Any], np.ndarray]:
    """``k`` forecast times per patient (its own plus k - 1 random whole hours in 24-96)."""
    rng = np.random.default_rng(seed)
    cases, truth = [], []
    for j in range(k):
        nows = [p.now_h for p in cohort.patients] if j == 0 else \
            rng.integers(24, 97, size=len(cohort.patients)).astype(float).tolist()
        cases += cohort.cases(nows)
        truth.append(cohort.truth_at_leads(nows))
    return cases, np.concatenate(truth)


def normaliser_from(cohort: Cohort) -> Normaliser:
    z = to_model_scale(cohort.truth, axis=1)
    return Normaliser(z.mean(axis=(0, 2)), np.maximum(z.std(axis=(0, 2)), 1e-3))


def residual_table(engine: Engine, cases: list[Any], truth_z: np.ndarray) -> ConformalTable:
    """Split-conformal scores of one engine on calibration cases."""
    pred = engine.predict_batch(cases)
    if engine.name == "published_gat":  # the recipe: one-step residuals, same at every lead
        one = np.abs(pred[:, :, 1] - truth_z[:, :, 1])
        return ConformalTable.fit(np.array([0.0, LEAD_H[-1]]), np.stack([one, one], axis=-1))
    return ConformalTable.fit(LEAD_H, pred - truth_z)


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
                                                 "personalised_twin", "graph", "published_gat"),
                     ) -> tuple[Forecaster, dict[str, float]]:
    """Train everything; returns the Forecaster and stage timings (s)."""
    say = progress or (lambda *_: None)
    torch.manual_seed(cfg.seed)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prior = default_prior()
    train = generate_cohort(cfg.seed, cfg.n_train, "train", prior)
    cal = generate_cohort(cfg.seed, cfg.n_calibration, "calibration", prior)
    dev = generate_cohort(cfg.seed, cfg.n_dev, "dev", prior)
    timings["cohorts_s"] = time.perf_counter() - t0
    say("cohorts", 1, 1)
    norm = normaliser_from(train)
    built: dict[str, Engine] = {}
    if "persistence" in engines:
        built["persistence"] = Persistence(norm.mean)
    if "population_twin" in engines:
        built["population_twin"] = PopulationTwin(prior)
    if "personalised_twin" in engines:
        built["personalised_twin"] = PersonalisedTwin(prior, cfg.calibrate_iters)
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
    cal_cases, cal_truth = cal.cases(), cal.truth_at_leads()
    dev_cases, dev_truth = dev.cases(), dev.truth_at_leads()
    tables, results = {}, {}
    for i, (name, eng) in enumerate(built.items()):
        t = time.perf_counter()
        tables[name] = residual_table(eng, cal_cases, cal_truth)
        results[name] = score(eng.predict_batch(dev_cases), dev_truth, tables[name], cfg.coverage)
        timings[f"{name}_conformal_and_dev_s"] = time.perf_counter() - t
        say("conformal", i + 1, len(built))
    default = choose_default(results)
    timings["total_s"] = time.perf_counter() - t0
    version = f"fc-{datetime.now(UTC):%Y%m%d%H%M%S}-s{cfg.seed}"
    metrics = {"dev_cohort": {"seed": cfg.seed, "patients": cfg.n_dev, "role": "dev",
                              "coverage": cfg.coverage, "default_engine": default,
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
