"""Accuracy and interval metrics against noise-free ground truth."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin.forecast.conformal import ConformalTable
from twin.forecast.endpoints import NAMES, from_model_scale
from twin.forecast.engines import LEAD_H

HORIZONS_H = (6, 24, 48, 72)


def interval_natural(pred_z: np.ndarray, table: ConformalTable, coverage: float,
                     scale: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, lower, upper) in natural units for predictions ``[B, E, L]`` on LEAD_H."""
    half = table.interval_half_width(LEAD_H, coverage, scale)  # [E, L] or [B, E, L]
    return (
        from_model_scale(pred_z, axis=1),
        from_model_scale(pred_z - half, axis=1),
        from_model_scale(pred_z + half, axis=1),
    )


def point_metrics(err: np.ndarray) -> dict[str, float]:
    """MAE and RMSE of errors (natural units)."""
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}


def score_point(pred_z: np.ndarray, truth_z: np.ndarray, horizons: tuple[int, ...]
                ) -> dict[str, dict[str, dict[str, float]]]:
    """``{endpoint: {horizon: {n, mae, rmse}}}`` (natural units) of point forecasts
    ``[B, E, L]`` on the model scale at LEAD_H (baselines without intervals)."""
    med, truth = from_model_scale(pred_z, axis=1), from_model_scale(truth_z, axis=1)
    k = {h: int(np.searchsorted(LEAD_H, h)) for h in horizons}
    return {name: {str(h): {"n": len(med), **point_metrics(med[:, i, k[h]] - truth[:, i, k[h]])}
                   for h in horizons} for i, name in enumerate(NAMES)}


def score(pred_z: np.ndarray, truth_z: np.ndarray, table: ConformalTable, coverage: float,
          horizons: tuple[int, ...] = HORIZONS_H, scale: np.ndarray | None = None
          ) -> dict[str, dict[str, dict[str, float]]]:
    """``{endpoint: {horizon: {mae, rmse, coverage, mean_width}}}`` in natural units.

    ``pred_z`` and ``truth_z`` are ``[B, E, L]`` on the model scale at LEAD_H.
    """
    med, lo, hi = interval_natural(pred_z, table, coverage, scale)
    truth = from_model_scale(truth_z, axis=1)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for i, name in enumerate(NAMES):
        out[name] = {}
        for h in horizons:
            k = int(np.searchsorted(LEAD_H, h))
            err = med[:, i, k] - truth[:, i, k]
            inside = (truth[:, i, k] >= lo[:, i, k]) & (truth[:, i, k] <= hi[:, i, k])
            out[name][str(h)] = {
                **point_metrics(err),
                "coverage": float(np.mean(inside)),
                "mean_width": float(np.mean(hi[:, i, k] - lo[:, i, k])),
            }
    return out


def summary(results: dict[str, Any], endpoint: str = "sbp_mmhg", horizon: str = "24"
            ) -> dict[str, float]:
    """MAE per engine at one endpoint and horizon (for logs and reports)."""
    return {eng: r[endpoint][horizon]["mae"] for eng, r in results.items()}
