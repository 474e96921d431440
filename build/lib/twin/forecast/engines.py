"""The engine interface and the persistence baseline.

Every engine answers a batch of ``Case`` objects with medians on the model scale at the lead
times ``LEAD_H`` (hours after ``now_h``): an array ``[B, E, L]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from twin.forecast.features import Case, per_endpoint

MAX_HORIZON_H = 72
LEAD_H = np.arange(0.0, MAX_HORIZON_H + 1.0)  # hourly lead grid 0..72 h


class Engine:
    """Base class: ``name`` and ``predict_batch``; learned engines add ``state``."""

    name = "engine"

    def predict_batch(self, cases: Sequence[Case]) -> np.ndarray:
        raise NotImplementedError

    def predict_with_scale(self, cases: Sequence[Case]) -> tuple[np.ndarray, np.ndarray | None]:
        """Medians ``[B, E, L]`` and the engine's own spread on the model scale (or None)."""
        return self.predict_batch(cases), None

    def state(self) -> dict[str, Any]:
        """What the bundle stores for this engine (tensors and JSON-able config)."""
        return {}

    @classmethod
    def from_bundle(cls, state: dict[str, Any], weights: dict[str, Any], normaliser: Any,
                    config: dict[str, Any]) -> Engine:
        """Rebuild the engine from its stored state (see ``twin.forecast.registry``)."""
        raise NotImplementedError


class Persistence(Engine):
    """Last observation carried forward; an endpoint never observed gets the training mean."""

    name = "persistence"

    def __init__(self, population_mean: np.ndarray) -> None:
        self.population_mean = np.asarray(population_mean, dtype=np.float64)

    @classmethod
    def from_bundle(cls, state: dict[str, Any], weights: dict[str, Any], normaliser: Any,
                    config: dict[str, Any]) -> Engine:
        """Rebuild the engine from its stored state (see ``twin.forecast.registry``)."""
        return cls(np.asarray(config["population_mean"]))

    def predict_batch(self, cases: Sequence[Case]) -> np.ndarray:
        out = np.repeat(self.population_mean[None, :, None], len(cases), 0)
        out = np.repeat(out, len(LEAD_H), 2)
        for b, case in enumerate(cases):
            for i, (_, z) in per_endpoint(case.observations).items():
                out[b, i, :] = z[-1]
        return out

