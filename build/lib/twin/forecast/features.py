"""Turn (scenario, observations, now) into the arrays the learned forecasters read.

All times in hours; values on the model scale (``endpoints.to_model_scale``), standardised
with the training cohort's per-endpoint mean and SD (``Normaliser``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.forecast.endpoints import INDEX, NAMES, endpoint_to_model_scale
from twin.forecast.observations import Observation

HISTORY_H = 48.0  # hours of history summarised in bins
HISTORY_BINS = 8
EXPOSURE_TAUS_H = (1.0, 3.0, 8.0, 24.0, 72.0)  # dose-kernel time constants
FUTURE_DOSE_BINS = 12  # 6-h bins over the next 72 h
N_NODE_FEATURES = 2 * HISTORY_BINS + 7
N_COVARIATES = 13 + FUTURE_DOSE_BINS
N_EXPOSURE = 2 * len(EXPOSURE_TAUS_H) + 3


@dataclass(frozen=True)
class Case:
    """One forecasting question: a scenario, the observations before ``now_h`` and ``now_h``."""

    scenario: Any
    observations: tuple[Observation, ...]
    now_h: float


@dataclass(frozen=True)
class Normaliser:
    """Per-endpoint mean and SD on the model scale (from the training cohort)."""

    mean: np.ndarray
    std: np.ndarray

    def norm(self, z: np.ndarray, idx: int | slice = slice(None)) -> np.ndarray:
        return (z - self.mean[idx]) / self.std[idx]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Sequence[float]]) -> Normaliser:
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


def glucose_level(glucose: Any) -> tuple[float, float, float]:
    """(mean glucose mmol/L, normal-profile flag, diabetic-profile flag)."""
    if isinstance(glucose, str):
        return (6.37, 1.0, 0.0) if glucose == "normal" else (10.02, 0.0, 1.0)
    if isinstance(glucose, int | float):
        return float(glucose), 0.0, 0.0
    try:
        return float(np.mean(np.asarray(glucose, dtype=np.float64))), 0.0, 0.0
    except (TypeError, ValueError):
        return 6.0, 0.0, 0.0


def dose_schedule(scenario: Any, until_h: float) -> np.ndarray:
    """Doses ``[M, 2]`` (time h, mg) up to ``until_h``; empty when untreated."""
    regimen = getattr(scenario, "regimen", None)
    if regimen is None:
        return np.zeros((0, 2))
    doses = [(float(t), float(d)) for t, d in regimen.dose_times_h(until_h) if d > 0]
    return np.asarray(doses, dtype=np.float64).reshape(-1, 2)


def per_endpoint(observations: Sequence[Observation]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Observations grouped by endpoint index: (times h, model-scale values)."""
    groups: dict[int, tuple[list[float], list[float]]] = {}
    for o in observations:
        ts, vs = groups.setdefault(INDEX[o.endpoint], ([], []))
        ts.append(float(o.time_h))
        vs.append(float(endpoint_to_model_scale(o.endpoint, o.value)))
    return {i: (np.asarray(t), np.asarray(v)) for i, (t, v) in groups.items()}


def node_features(case: Case, normaliser: Normaliser) -> np.ndarray:
    """``[N, N_NODE_FEATURES]``: binned recent history, last value and its age, mean of all
    observations, count, personal baseline (all with masks)."""
    out = np.zeros((len(NAMES), N_NODE_FEATURES))
    edges = case.now_h - HISTORY_H + np.arange(HISTORY_BINS + 1) * (HISTORY_H / HISTORY_BINS)
    for i, (t, z) in per_endpoint(case.observations).items():
        zn = normaliser.norm(z, i)
        b = np.searchsorted(edges, t, side="right") - 1
        for k in range(HISTORY_BINS):
            sel = b == k
            if sel.any():
                out[i, 2 * k] = zn[sel].mean()
                out[i, 2 * k + 1] = 1.0
        j = 2 * HISTORY_BINS
        out[i, j] = zn[-1]
        out[i, j + 1] = min((case.now_h - t[-1]) / HISTORY_H, 3.0)
        out[i, j + 2] = zn.mean()
        out[i, j + 3] = min(len(zn) / 10.0, 3.0)
    j = 2 * HISTORY_BINS
    never = ~out[:, j + 3].astype(bool)
    out[never, j + 1] = 3.0
    baseline = getattr(case.scenario, "baseline", None) or {}
    for name, value in dict(baseline).items():
        if name in INDEX:
            i = INDEX[name]
            out[i, j + 4] = normaliser.norm(endpoint_to_model_scale(name, value), i)
            out[i, j + 5] = 1.0
    out[:, j + 6] = 1.0  # bias
    return out


def covariates(case: Case) -> np.ndarray:
    """``[N_COVARIATES]``: patient covariates, dosing so far and the planned doses ahead."""
    s, now = case.scenario, case.now_h
    g, g_normal, g_diab = glucose_level(getattr(s, "glucose", 5.0))
    infected = float(bool(getattr(s, "infected", False)))
    onset = float(getattr(s, "infection_onset_h", 0.0))
    doses = dose_schedule(s, now + 72.0)
    past = doses[doses[:, 0] <= now] if len(doses) else doses
    future = doses[doses[:, 0] > now] if len(doses) else doses
    since = (now - past[-1, 0]) / 24.0 if len(past) else 3.0
    last_mg = past[-1, 1] / 20.0 if len(past) else 0.0
    in24 = past[past[:, 0] > now - 24, 1].sum() / 20.0 if len(past) else 0.0
    in72 = past[past[:, 0] > now - 72, 1].sum() / 60.0 if len(past) else 0.0
    fut = np.zeros(FUTURE_DOSE_BINS)
    for t, d in future:
        k = int((t - now) // 6.0)
        if 0 <= k < FUTURE_DOSE_BINS:
            fut[k] += d / 20.0
    renal = 1.0 if getattr(s, "renal_function", "normal") == "impaired" else 0.0
    base = [
        float(getattr(s, "age_years", 50.0)) / 100.0,
        renal,
        g / 10.0,
        g_normal,
        g_diab,
        infected,
        infected * float(np.clip((now - onset) / 72.0, -1.0, 3.0)),
        now / 168.0,
        min(since, 3.0),
        last_mg,
        in24,
        in72,
        float(len(doses) > 0),
    ]
    return np.concatenate([np.asarray(base), fut])


def exposure(case: Case, lead_h: np.ndarray) -> np.ndarray:
    """``[K, N_EXPOSURE]`` per lead time: dose kernels sum_d mg/10 * exp(-(t - t_d)/tau) over
    all doses and over the doses still to come, hour of day, infection ramp."""
    s = case.scenario
    t = case.now_h + np.asarray(lead_h, dtype=np.float64)
    doses = dose_schedule(s, float(t[-1]))
    out = np.zeros((len(t), N_EXPOSURE))
    if len(doses):
        dt = t[:, None] - doses[None, :, 0]
        given = dt >= 0
        future = doses[None, :, 0] > case.now_h
        for j, tau in enumerate(EXPOSURE_TAUS_H):
            k = np.where(given, np.exp(-np.maximum(dt, 0.0) / tau), 0.0) * doses[None, :, 1] / 10.0
            out[:, 2 * j] = k.sum(1)
            out[:, 2 * j + 1] = (k * future).sum(1)
    j = 2 * len(EXPOSURE_TAUS_H)
    out[:, j] = np.sin(2 * np.pi * t / 24.0)
    out[:, j + 1] = np.cos(2 * np.pi * t / 24.0)
    if getattr(s, "infected", False):
        onset = float(getattr(s, "infection_onset_h", 0.0))
        out[:, j + 2] = np.clip((t - onset) / 72.0, 0.0, 3.0)
    return out


def regular_series(case: Case, normaliser: Normaliser, window: int, step_h: float = 1.0
                   ) -> np.ndarray:
    """``[N, window]`` standardised values on a regular grid ending at ``now_h``: linear
    interpolation between observations, held flat outside them; 0 (the training mean) for an
    endpoint never observed. Used by the published recipe."""
    grid = case.now_h - step_h * np.arange(window - 1, -1, -1)
    out = np.zeros((len(NAMES), window))
    for i, (t, z) in per_endpoint(case.observations).items():
        out[i] = normaliser.norm(np.interp(grid, t, z), i)
    return out
