"""Split (inductive) conformal prediction per endpoint and lead time.

Scores are absolute residuals on the model scale (see ``endpoints``), optionally divided by
the engine's own spread estimate, measured on held-out calibration patients against their
noise-free trajectory. Any nominal coverage can be asked for at request time: the interval
half-width is the ceil((n + 1) * coverage)-th smallest of the n calibration scores, which
gives marginal coverage >= nominal for exchangeable patients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_COVERAGE, MAX_COVERAGE = 0.5, 0.99


def check_coverage(coverage: float) -> float:
    """Validate a nominal coverage (a fraction in [0.5, 0.99])."""
    c = float(coverage)
    if not (math.isfinite(c) and MIN_COVERAGE <= c <= MAX_COVERAGE):
        raise ValueError(f"coverage: must be in [{MIN_COVERAGE}, {MAX_COVERAGE}], got {coverage}")
    return c


@dataclass(frozen=True)
class ConformalTable:
    """Sorted calibration scores ``scores[E, L, n]`` at lead times ``lead_h[L]`` (hours)."""

    lead_h: np.ndarray
    scores: np.ndarray

    @classmethod
    def fit(cls, lead_h: np.ndarray, residuals: np.ndarray) -> ConformalTable:
        """From residuals ``[n, E, L]`` (model scale, already divided by any spread)."""
        r = np.abs(np.asarray(residuals, dtype=np.float64))
        if r.ndim != 3 or r.shape[2] != len(lead_h):
            raise ValueError(f"residuals must be [n, E, {len(lead_h)}], got {r.shape}")
        if not np.isfinite(r).all():
            raise ValueError("residuals: non-finite values")
        return cls(np.asarray(lead_h, dtype=np.float64), np.sort(np.moveaxis(r, 0, -1), axis=-1))

    @property
    def n(self) -> int:
        return int(self.scores.shape[-1])

    def quantile(self, coverage: float) -> np.ndarray:
        """Half-widths ``[E, L]`` at this nominal coverage (the finite-sample conformal rank)."""
        c = check_coverage(coverage)
        k = min(math.ceil((self.n + 1) * c), self.n)
        return self.scores[..., k - 1]

    def half_width(self, lead_h: np.ndarray, coverage: float) -> np.ndarray:
        """Half-widths ``[E, K]`` at arbitrary lead times (linear in lead between grid points)."""
        q = self.quantile(coverage)
        lead = np.clip(np.asarray(lead_h, dtype=np.float64), self.lead_h[0], self.lead_h[-1])
        return np.stack([np.interp(lead, self.lead_h, row) for row in q])

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"lead_h": self.lead_h, "scores": self.scores}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ConformalTable:
        return cls(np.asarray(arrays["lead_h"]), np.asarray(arrays["scores"]))
