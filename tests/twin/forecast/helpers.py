"""Small real objects for the forecasting tests (no mocks): a forecaster built from
synthetic cases in seconds, and a running moto S3 server."""

from __future__ import annotations

import numpy as np

from twin import Regimen, Scenario
from twin.forecast.conformal import ConformalTable
from twin.forecast.endpoints import NAMES, to_model_scale
from twin.forecast.engines import LEAD_H, Persistence
from twin.forecast.features import Case, Normaliser
from twin.forecast.forecaster import Forecaster
from twin.forecast.graph import GraphConfig, train_graph
from twin.forecast.observations import Observation
from twin.forecast.published import PublishedConfig, train_published

TYPICAL = np.array([400.0, 12.0, 20.0, 1.5, 150.0, 0.0, 0.0, 150.0, 90.0, 110.0, 72.0])


def scenario() -> Scenario:
    return Scenario(age_years=60, regimen=Regimen(dose_mg=10, start_h=12))


def synthetic_case(rng: np.random.Generator, now_h: float = 48.0) -> tuple[Case, np.ndarray]:
    """A case with noisy hourly BP/HR around a patient level, and its (flat) truth."""
    level = TYPICAL * np.exp(rng.normal(0, 0.05, len(NAMES)))
    level[5], level[6] = 50.0, 90.0
    obs = []
    for t in np.arange(0.0, now_h + 1e-9, 4.0):
        for i in (7, 8, 9, 10):
            obs.append(Observation(float(t), NAMES[i], float(level[i] + rng.normal(0, 4))))
    truth = np.repeat(level[:, None], len(LEAD_H), 1)
    return Case(scenario(), tuple(obs), now_h), to_model_scale(truth, axis=0)


def tiny_forecaster(seed: int = 0) -> Forecaster:
    """Persistence + graph + published GAT trained for a moment on synthetic cases."""
    rng = np.random.default_rng(seed)
    pairs = [synthetic_case(rng) for _ in range(48)]
    cases = [c for c, _ in pairs]
    truth = np.stack([t for _, t in pairs])
    norm = Normaliser(truth.mean((0, 2)), truth.std((0, 2)) + 1e-3)
    graph = train_graph(cases, truth, norm, GraphConfig(hidden=16, heads=2, layers=1, epochs=2,
                                                         seed=seed))
    pub = train_published(truth[:, :, :20], norm, PublishedConfig(epochs=1, seed=seed))
    engines = {e.name: e for e in (Persistence(norm.mean), graph, pub)}
    tables = {n: ConformalTable.fit(LEAD_H, e.predict_batch(cases) - truth)
              for n, e in engines.items()}
    config = {"normaliser": norm.to_dict(), "population_mean": norm.mean.tolist()}
    return Forecaster(engines, tables, "graph", f"test-{seed}", {"note": "synthetic"}, config)
