"""The forecast result objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EndpointForecast:
    """One endpoint's forecast: times (h), median and the interval bounds, in ``unit``."""

    times_h: np.ndarray
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "times_h": [round(float(t), 6) for t in self.times_h],
            "median": [float(v) for v in self.median],
            "lower": [float(v) for v in self.lower],
            "upper": [float(v) for v in self.upper],
        }


@dataclass(frozen=True)
class Forecast:
    """A forecast from ``now_h``: per endpoint median and ``coverage`` prediction interval."""

    engine: str
    model_version: str
    coverage: float
    now_h: float
    endpoints: dict[str, EndpointForecast] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists of floats)."""
        return {
            "engine": self.engine,
            "model_version": self.model_version,
            "coverage": float(self.coverage),
            "now_h": float(self.now_h),
            "endpoints": {name: ef.to_dict() for name, ef in self.endpoints.items()},
        }
