"""Personalised twin: fit a patient's parameters to their observations.

``calibrate(observations, scenario)`` returns a MAP estimate of the twin's
``PATIENT_PARAMETERS`` under the cohort prior (independent log-normal / normal, see
``twin.cohort``), found by L-BFGS on the negative log posterior with gradients through the
differentiable simulator, plus a Laplace approximation of the posterior (Gauss-Newton
Hessian from a finite-difference Jacobian, one batched simulation).

Likelihood: each observation on the model scale (log for concentrations) with the ward's
noise (``OBS_NOISE``: SD 5 mmHg cuff, 15 % CV labs). The personal baselines are among the
parameters (``map_baseline``, ``angII_baseline``, ...); when the scenario already gives a
measured baseline, that multiplier's prior is centred on the given value instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from twin.cohort import ParameterPrior, default_prior
from twin.forecast.endpoints import INDEX, LOG_OFFSET, OBS_NOISE
from twin.forecast.features import per_endpoint
from twin.forecast.observations import Observation, validate_observations

GRID_STEP_H = 0.5


@dataclass
class CalibratedPatient:
    """A fitted patient: scenario (with the baseline used), MAP parameter values and the
    Laplace posterior in the prior's whitened coordinates (``u_map``, ``cov_u``)."""

    scenario: Any
    prior: ParameterPrior
    parameters: dict[str, float]
    u_map: np.ndarray
    cov_u: np.ndarray
    objective: float
    seconds: float
    n_observations: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return self.prior.names

    def sd(self) -> dict[str, float]:
        """Posterior SD of each parameter on the prior's scale (log scale for log-normal)."""
        return dict(zip(self.names, (np.sqrt(np.diag(self.cov_u)) * self.prior.sd).tolist(),
                        strict=True))

    def samples(self, n: int, seed: int = 0) -> np.ndarray:
        """``[n, P]`` parameter values drawn from the Laplace posterior."""
        rng = np.random.default_rng(seed)
        chol = np.linalg.cholesky(self.cov_u + 1e-12 * np.eye(len(self.u_map)))
        u = self.u_map + rng.normal(size=(n, len(self.u_map))) @ chol.T
        return self.prior.to_natural(u)

    def simulate(self, times_h: Any, n_samples: int = 0, seed: int = 0) -> Any:
        """Simulate at the MAP (``n_samples`` = 0) or at posterior samples (batch of n)."""
        from twin import simulate

        vals = (np.array([[self.parameters[n] for n in self.names]]) if n_samples == 0
                else self.samples(n_samples, seed))
        ov = {n: torch.tensor(vals[:, j], dtype=torch.float64) for j, n in enumerate(self.names)}
        with torch.no_grad():
            return simulate([self.scenario] * len(vals), times_h, overrides=ov)


#: Which multiplier a measured personal baseline in the scenario pins down.
BASELINE_PARAMETER = {
    "sbp_mmhg": "map_baseline", "dbp_mmhg": "map_baseline", "hr_bpm": "hr_baseline",
    "angII_pg_per_ml": "angII_baseline", "angI_pg_per_ml": "angI_baseline",
    "renin_pg_per_ml": "renin_baseline", "pra_ng_per_ml_per_h": "renin_baseline",
}
GIVEN_BASELINE_SD = 0.05  # SD(log) of a multiplier whose baseline the scenario gives


def personal_prior(prior: ParameterPrior, scenario: Any) -> ParameterPrior:
    """The prior for this scenario: a multiplier whose personal baseline the scenario already
    gives is centred on 1 (the given value) with SD(log) 0.05 instead of the cohort spread."""
    base = dict(getattr(scenario, "baseline", {}) or {})
    pinned = {BASELINE_PARAMETER[k] for k in base if k in BASELINE_PARAMETER}
    if "sbp_mmhg" in base and "dbp_mmhg" in base:
        pinned.add("pulse_pressure")
    if not pinned:
        return prior
    center, sd = prior.center.copy(), prior.sd.copy()
    for j, n in enumerate(prior.names):
        if n in pinned:
            center[j], sd[j] = 0.0, GIVEN_BASELINE_SD
    return replace(prior, center=center, sd=sd)


@dataclass
class _ObsTensors:
    """Observations of a batch flattened: patient, endpoint, grid index/weight, value, SD."""

    b: torch.Tensor
    e: list[int]
    i0: torch.Tensor
    w: torch.Tensor
    y: torch.Tensor
    s: torch.Tensor


def _obs_tensors(obs_list: Sequence[Sequence[Observation]], n_grid: int) -> _ObsTensors:
    b, e, i0, w, y, s = [], [], [], [], [], []
    for k, obs in enumerate(obs_list):
        for idx, (t, z) in per_endpoint(obs).items():
            name = list(INDEX)[idx]
            size = OBS_NOISE[name][1]
            pos = np.clip(t / GRID_STEP_H, 0, n_grid - 1 - 1e-9)
            b += [k] * len(t)
            e += [idx] * len(t)
            i0 += np.floor(pos).astype(int).tolist()
            w += (pos - np.floor(pos)).tolist()
            y += z.tolist()
            s += [size] * len(t)  # cv on the log scale, sd on the linear scale
    f64 = torch.float64
    return _ObsTensors(torch.tensor(b), e, torch.tensor(i0), torch.tensor(w, dtype=f64),
                       torch.tensor(y, dtype=f64), torch.tensor(s, dtype=f64))


def _residuals(sim: Any, ot: _ObsTensors, rep: int = 1) -> torch.Tensor:
    """Whitened residuals ``[rep * B_obs]`` of the simulation at the observations."""
    names = list(INDEX)
    used = sorted(set(ot.e))
    e = torch.tensor(ot.e)
    out = torch.zeros(rep, len(ot.y), dtype=torch.float64)
    for idx in used:
        name = names[idx]
        traj = sim.endpoints[name]  # [rep * B, T]
        off = LOG_OFFSET[name]
        z = torch.log(traj.clamp(min=0.0) + off) if off else traj
        z = z.reshape(rep, -1, z.shape[-1])
        sel = e == idx
        bi, i0, w = ot.b[sel], ot.i0[sel], ot.w[sel]
        val = z[:, bi, i0] * (1 - w) + z[:, bi, i0 + 1] * w
        out[:, sel] = (val - ot.y[sel]) / ot.s[sel]
    return out


def _natural(priors: Sequence[ParameterPrior], u: torch.Tensor) -> torch.Tensor:
    """Whitened ``u [R * B, P]`` -> parameter values with each patient's prior (tiled R times)."""
    rep = u.shape[0] // len(priors)
    c = torch.as_tensor(np.stack([p.center for p in priors])).repeat(rep, 1)
    sd = torch.as_tensor(np.stack([p.sd for p in priors])).repeat(rep, 1)
    x = c + sd * u
    x = torch.where(torch.as_tensor(priors[0].log.astype(bool)), torch.exp(x), x)
    lo, hi = torch.as_tensor(priors[0].lower), torch.as_tensor(priors[0].upper)
    return torch.minimum(torch.maximum(x, lo), hi)


def calibrate_many(
    items: Sequence[tuple[Sequence[Observation], Any]],
    prior: ParameterPrior | None = None,
    max_iter: int = 25,
    laplace: bool = True,
) -> list[CalibratedPatient]:
    """Calibrate a batch of patients at once (one batched simulation per iteration)."""
    from twin import simulate

    t0 = time.perf_counter()
    prior = prior or default_prior()
    obs_list = [validate_observations(o) for o, _ in items]
    scens = [s for _, s in items]
    priors = [personal_prior(prior, s) for s in scens]
    t_end = max(o[-1].time_h for o in obs_list)
    grid = np.arange(0.0, t_end + 2 * GRID_STEP_H, GRID_STEP_H)
    ot = _obs_tensors(obs_list, len(grid))
    nb, npar = len(items), len(prior.names)
    u = torch.zeros(nb, npar, dtype=torch.float64, requires_grad=True)

    def sim_at(uu: torch.Tensor, scenarios: list[Any]) -> Any:
        theta = _natural(priors, uu)
        ov = {n: theta[:, j] for j, n in enumerate(prior.names)}
        return simulate(scenarios, grid, overrides=ov)

    def objective() -> torch.Tensor:
        r = _residuals(sim_at(u, scens), ot)[0]
        return 0.5 * (r**2).sum() + 0.5 * (u**2).sum()

    opt = torch.optim.LBFGS([u], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9)
    evals = [0]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective()
        loss.backward()
        evals[0] += 1
        return loss

    if npar:
        opt.step(closure)
    u_map = u.detach().clone()
    with torch.no_grad():
        r_map = _residuals(sim_at(u_map, scens), ot)[0]
    per_patient = torch.zeros(nb, dtype=torch.float64).index_add_(0, ot.b, r_map**2)
    per_patient = 0.5 * per_patient + 0.5 * (u_map**2).sum(1)
    covs = _laplace(u_map, scens, ot, sim_at) if laplace and npar else \
        [np.eye(npar) for _ in range(nb)]
    seconds = (time.perf_counter() - t0) / nb
    theta = _natural(priors, u_map).numpy()
    return [
        CalibratedPatient(
            scenario=scens[k], prior=priors[k],
            parameters=dict(zip(prior.names, theta[k].tolist(), strict=True)),
            u_map=u_map[k].numpy(), cov_u=covs[k], objective=float(per_patient[k]),
            seconds=seconds, n_observations=len(obs_list[k]),
            info={"function_evaluations": evals[0], "batch": nb},
        )
        for k in range(nb)
    ]


def _laplace(u_map: torch.Tensor, scens: list[Any], ot: _ObsTensors, sim_at: Any,
             eps: float = 1e-4) -> list[np.ndarray]:
    """Gauss-Newton Laplace covariance per patient: inv(J^T J + I) in whitened coordinates,
    J by forward differences (all patients and parameters in one batched simulation)."""
    nb, npar = u_map.shape
    reps = [u_map] + [u_map + eps * torch.eye(npar, dtype=torch.float64)[j] for j in range(npar)]
    with torch.no_grad():
        r = _residuals(sim_at(torch.cat(reps), scens * (npar + 1)), ot, rep=npar + 1)
    jac = (r[1:] - r[0:1]) / eps  # [P, M]
    covs = []
    for k in range(nb):
        jk = jac[:, ot.b == k].numpy()  # [P, M_k]
        h = jk @ jk.T + np.eye(npar)
        covs.append(np.linalg.inv(h))
    return covs


def calibrate(observations: Sequence[Observation], scenario: Any,
              prior: ParameterPrior | None = None, max_iter: int = 25) -> CalibratedPatient:
    """Fit one patient (see the module docstring); raises ObservationError on bad input."""
    return calibrate_many([(observations, scenario)], prior, max_iter)[0]
