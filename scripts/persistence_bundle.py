"""A small but real model bundle for the app tests and the API benchmark.

Building the service's default bundle takes minutes (it calibrates personalised twins); the
app tests only need *a* loadable forecaster, so this one holds the persistence engine with
split-conformal tables measured on a handful of twin simulations (seconds to build). It goes
through the real ``Forecaster.save`` / ``load_forecaster`` path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import twin
from twin.forecast.conformal import ConformalTable
from twin.forecast.endpoints import NAMES, to_model_scale
from twin.forecast.engines import LEAD_H, Persistence
from twin.forecast.features import Normaliser
from twin.forecast.forecaster import Forecaster

VERSION = "app-test-persistence-1"


def _scenarios() -> list:
    out = []
    for dose in (0.0, 5.0, 10.0, 20.0):
        for renal in ("normal", "impaired"):
            out.append(twin.Scenario(age_years=60, renal_function=renal, glucose="normal",
                                     regimen=twin.Regimen(dose_mg=dose, interval_h=24,
                                                          start_h=24.0)))
    return out


def build_persistence_bundle(uri: str | Path) -> str:
    """Write the bundle to ``uri`` (unless one is already there) and return the URI."""
    uri = str(uri)
    if (Path(uri) / "manifest.json").exists():
        return uri
    times = np.arange(0.0, 24.0 + 48.0 + LEAD_H[-1] + 1.0)
    sim = twin.simulate(_scenarios(), times)
    values = np.stack([sim.endpoints[n].detach().numpy() for n in NAMES], axis=1)  # [B, E, T]
    z = to_model_scale(values, axis=1)
    residuals = []
    for now in range(12, 72, 6):
        lead_idx = now + LEAD_H.astype(int)
        residuals.append(z[:, :, lead_idx] - z[:, :, now:now + 1])  # persistence error
    residuals = np.concatenate(residuals)  # [n, E, L]
    mean = z.mean(axis=(0, 2))
    fc = Forecaster({"persistence": Persistence(mean)},
                    {"persistence": ConformalTable.fit(LEAD_H, residuals)},
                    "persistence", VERSION, metrics={"note": "app test bundle"},
                    config={"population_mean": mean.tolist(),
                            "normaliser": Normaliser(mean, np.maximum(
                                z.std(axis=(0, 2)), 1e-3)).to_dict()})
    fc.save(uri)
    return uri

