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

from twin.errors import ForecastError

MIN_COVERAGE, MAX_COVERAGE = 0.5, 0.99


def check_coverage(coverage: float) -> float:
    """Validate a nominal coverage (a fraction in [0.5, 0.99])."""
    c = float(coverage)
    if not (math.isfinite(c) and MIN_COVERAGE <= c <= MAX_COVERAGE):
        raise ForecastError("coverage",
            f"must be in [{MIN_COVERAGE}, {MAX_COVERAGE}], got {coverage}")
    return c


def _quantile_rank(n: int, coverage: float) -> int:
    """The 1-based conformal rank ceil((n + 1) * coverage), capped at n."""
    return min(math.ceil((n + 1) * coverage), n)


def _cross_fit_width(r: np.ndarray, scale: np.ndarray | None, coverage: float) -> np.ndarray:
    """Mean half-width ``[E]`` of intervals whose quantile comes from one half of the cases
    and is applied to the other (both ways): the width a table built on these cases would
    give new ones. ``r`` and ``scale`` are ``[n, E, L]``."""
    n = r.shape[0]
    halves = (np.arange(n) % 2 == 0, np.arange(n) % 2 == 1)
    widths = []
    for fit_on, apply_to in (halves, halves[::-1]):
        s_fit = 1.0 if scale is None else scale[fit_on]
        s_new = 1.0 if scale is None else scale[apply_to]
        scores = np.sort(r[fit_on] / s_fit, axis=0)
        q = scores[_quantile_rank(len(scores), coverage) - 1]  # [E, L]
        widths.append(np.broadcast_to(q[None] * s_new, r[apply_to].shape).mean(axis=(0, 2)))
    return np.mean(widths, axis=0)


@dataclass(frozen=True)
class ConformalTable:
    """Sorted calibration scores ``scores[E, L, n]`` at lead times ``lead_h[L]`` (hours).

    ``normalised[E]``: for those endpoints the scores are residuals divided by the engine's
    own spread estimate, so a half-width is the table's quantile times that spread (locally
    adaptive intervals); for the others it is the quantile itself."""

    lead_h: np.ndarray
    scores: np.ndarray
    normalised: np.ndarray | bool = False

    def __post_init__(self) -> None:  # one flag per endpoint (a single flag applies to all)
        norm = np.broadcast_to(np.asarray(self.normalised, dtype=bool), self.scores.shape[:1])
        object.__setattr__(self, "normalised", norm.copy())

    @classmethod
    def fit(cls, lead_h: np.ndarray, residuals: np.ndarray, scale: np.ndarray | None = None,
            normalise: bool | str = True, choose_at: float = 0.9) -> ConformalTable:
        """From residuals ``[n, E, L]`` (model scale) and optionally the engine's spread
        ``scale`` (same shape). ``normalise``: True divides every endpoint's residuals by the
        spread, False none, ``"auto"`` per endpoint whichever gives the narrower intervals
        (at ``choose_at`` coverage, cross-fitted on two halves of the cases); any choice
        keeps the split-conformal coverage guarantee."""
        r = np.abs(np.asarray(residuals, dtype=np.float64))
        if r.ndim != 3 or r.shape[2] != len(lead_h):
            raise ValueError(f"residuals must be [n, E, {len(lead_h)}], got {r.shape}")
        n_end = r.shape[1]
        if scale is None:
            mask = np.zeros(n_end, dtype=bool)
        else:
            scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), r.shape)
            if normalise == "auto":
                mask = (_cross_fit_width(r, scale, choose_at)
                        < _cross_fit_width(r, None, choose_at))
            elif isinstance(normalise, bool):
                mask = np.full(n_end, normalise)
            else:
                raise ValueError(f"normalise: must be True, False or 'auto', got {normalise!r}")
            r = np.where(mask[None, :, None], r / scale, r)
        if not np.isfinite(r).all():
            raise ValueError("residuals: non-finite values")
        return cls(np.asarray(lead_h, dtype=np.float64), np.sort(np.moveaxis(r, 0, -1), axis=-1),
                   mask)

    @property
    def n(self) -> int:
        return int(self.scores.shape[-1])

    def quantile(self, coverage: float) -> np.ndarray:
        """Score quantiles ``[E, L]`` at this nominal coverage (the finite-sample rank)."""
        return self.scores[..., _quantile_rank(self.n, check_coverage(coverage)) - 1]

    def half_width(self, lead_h: np.ndarray, coverage: float) -> np.ndarray:
        """Score quantiles ``[E, K]`` at arbitrary lead times (linear between grid points);
        the half-widths themselves for endpoints that are not normalised."""
        q = self.quantile(coverage)
        lead = np.clip(np.asarray(lead_h, dtype=np.float64), self.lead_h[0], self.lead_h[-1])
        return np.stack([np.interp(lead, self.lead_h, row) for row in q])

    def interval_half_width(self, lead_h: np.ndarray, coverage: float,
                            scale: np.ndarray | None) -> np.ndarray:
        """Half-widths ``[..., E, K]``: the quantile, times the engine's spread ``scale``
        ``[..., E, K]`` (at the same lead times) on the normalised endpoints."""
        half = self.half_width(lead_h, coverage)
        if not self.normalised.any():
            return half
        if scale is None:
            raise ValueError("this conformal table needs the engine's spread estimate")
        return np.where(self.normalised[:, None], half * scale, half)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"lead_h": self.lead_h, "scores": self.scores,
                "normalised": self.normalised.astype(np.int8)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ConformalTable:
        """From ``to_arrays`` (a scalar ``normalised`` flag of older bundles applies to all)."""
        norm = np.asarray(arrays.get("normalised", 0)).astype(bool)
        return cls(np.asarray(arrays["lead_h"]), np.asarray(arrays["scores"]), norm)
