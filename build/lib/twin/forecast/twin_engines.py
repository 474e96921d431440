"""Engines built on the mechanistic twin: the population twin (the scenario simulated with
the population parameters, personal baseline from pre-treatment observations) and the
personalised twin (parameters calibrated to the patient's observations, then simulated
forward)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from twin.forecast.calibrate import calibrate_many, personal_prior
from twin.forecast.cohort import ParameterPrior
from twin.forecast.endpoints import LOG_OFFSET, NAMES, to_model_scale
from twin.forecast.engines import LEAD_H, Engine
from twin.forecast.features import Case
from twin.simulate import simulate

CHUNK = 64
#: Added to the predictive SD (model scale): 0.02 on log scales, 0.5 mmHg, /min or %.
SCALE_FLOOR = np.array([0.02 if LOG_OFFSET[n] else 0.5 for n in NAMES])
TWIN_RTOL = 1e-3  # engine simulations: 1e-3 relative is far below observation noise


def forward_grid(cases: Sequence[Case]) -> tuple[np.ndarray, np.ndarray]:
    """A shared time grid for the batch and, per case, the grid index of now_h + LEAD_H."""
    wanted = np.stack([c.now_h + LEAD_H for c in cases])
    grid = np.unique(np.round(wanted, 6))
    idx = np.searchsorted(grid, np.round(wanted, 6))
    return grid, idx


def simulate_cases(scenarios: Sequence[Any], cases: Sequence[Case],
                   values: np.ndarray | None, names: Sequence[str]) -> np.ndarray:
    """Model-scale ``[B, E, L]`` at now_h + LEAD_H; ``values [B, P]`` parameter overrides."""
    grid, idx = forward_grid(cases)
    ov = None
    if values is not None and len(names):
        ov = {n: torch.tensor(values[:, j], dtype=torch.float64) for j, n in enumerate(names)}
    with torch.no_grad():
        res = simulate(list(scenarios), grid, overrides=ov, rtol=TWIN_RTOL)
    traj = np.stack([res.endpoints[n].numpy() for n in NAMES], axis=1)  # [B, E, T]
    out = np.take_along_axis(traj, idx[:, None, :], axis=2)
    return to_model_scale(out, axis=1)


class PopulationTwin(Engine):
    """The twin with the cohort's typical (median) parameters: only the scenario is
    patient-specific (covariates, regimen and any personal baseline it gives)."""

    name = "population_twin"

    def __init__(self, prior: ParameterPrior) -> None:
        self.prior = prior

    def predict_batch(self, cases: Sequence[Case]) -> np.ndarray:
        out = []
        for s in range(0, len(cases), CHUNK):
            part = cases[s : s + CHUNK]
            vals = np.stack([personal_prior(self.prior, c.scenario).to_natural(
                np.zeros(len(self.prior.names))) for c in part])
            out.append(simulate_cases([c.scenario for c in part], part, vals, self.prior.names))
        return np.concatenate(out)

    def state(self) -> dict[str, Any]:
        return {"prior": self.prior.to_dict()}

    @classmethod
    def from_bundle(cls, state: dict[str, Any], weights: dict[str, Any], normaliser: Any,
                    config: dict[str, Any]) -> Engine:
        """Rebuild the engine from its stored state (see ``twin.forecast.registry``)."""
        return cls(ParameterPrior.from_dict(state["prior"]))


class PersonalisedTwin(Engine):
    """``twin.forecast.calibrate`` on the observations, then the MAP patient simulated forward."""

    name = "personalised_twin"

    def __init__(self, prior: ParameterPrior, max_iter: int = 3, chunk: int = 16) -> None:
        self.prior, self.max_iter, self.chunk = prior, max_iter, chunk

    def predict_batch(self, cases: Sequence[Case]) -> np.ndarray:
        return self.predict_with_scale(cases)[0]

    def predict_with_scale(self, cases: Sequence[Case]) -> tuple[np.ndarray, np.ndarray]:
        """MAP forecast and its Laplace (linearised) predictive SD on the model scale, plus a
        floor; the SD makes the conformal intervals adapt to how well the patient is known."""
        out, sd = [], []
        for s in range(0, len(cases), self.chunk):
            part = cases[s : s + self.chunk]
            fits, traj = calibrate_many([(c.observations, c.scenario) for c in part], self.prior,
                                        self.max_iter, [c.now_h + LEAD_H for c in part],
                                        spread=True)
            out.append(to_model_scale(np.stack(traj), axis=1))
            sd.append(np.stack([f.info["forecast_sd"] for f in fits]))
        return np.concatenate(out), np.concatenate(sd) + SCALE_FLOOR[None, :, None]

    def state(self) -> dict[str, Any]:
        return {"prior": self.prior.to_dict(), "max_iter": self.max_iter}

    @classmethod
    def from_bundle(cls, state: dict[str, Any], weights: dict[str, Any], normaliser: Any,
                    config: dict[str, Any]) -> Engine:
        """Rebuild the engine from its stored state (see ``twin.forecast.registry``)."""
        return cls(ParameterPrior.from_dict(state["prior"]), int(state["max_iter"]))

