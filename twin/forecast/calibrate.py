"""Personalised twin: fit a patient's parameters to their observations.

``calibrate(observations, scenario)`` returns a MAP estimate of the twin's
``PATIENT_PARAMETERS`` under the cohort prior (independent log-normal / normal, see
``twin.forecast.cohort``), found by damped Gauss-Newton (Levenberg-Marquardt) on the negative log
posterior, with the residual Jacobian taken through the simulator (one batched simulation of
the patient and its P perturbed copies per iteration), and a Laplace approximation of the
posterior (the Gauss-Newton Hessian at the MAP; ``CalibratedPatient.samples``).

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

from twin.forecast.cohort import ParameterPrior, default_prior
from twin.forecast.endpoints import INDEX, LOG_OFFSET, OBS_NOISE, to_model_scale
from twin.forecast.features import per_endpoint
from twin.forecast.observations import Observation, validate_observations
from twin.simulate import simulate

GRID_STEP_H = 0.5
#: Parameters fitted by default: those the ward's observations (BP, HR, AngII, PRA) inform;
#: the others stay at their prior median (cohort typical value).
FIT_PARAMETERS = ("angII_baseline", "renin_baseline", "map_baseline", "pulse_pressure",
                  "hr_baseline", "bp_sensitivity", "ace_c50", "diacid_clearance")
FIT_RTOL = 3e-3  # solver tolerance during the fit; the final forecast uses 1e-3


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
        vals = (np.array([[self.parameters[n] for n in self.names]]) if n_samples == 0
                else self.samples(n_samples, seed))
        ov = {n: torch.tensor(vals[:, j], dtype=torch.float64) for j, n in enumerate(self.names)}
        ov.update({n: torch.full((len(vals),), v, dtype=torch.float64)
                   for n, v in self.info.get("fixed", {}).items()})
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


def _obs_tensors(obs_list: Sequence[Sequence[Observation]], grid: np.ndarray) -> _ObsTensors:
    b, e, i0, w, y, s = [], [], [], [], [], []
    names = list(INDEX)
    for k, obs in enumerate(obs_list):
        for idx, (t, z) in per_endpoint(obs).items():
            j = np.clip(np.searchsorted(grid, t, side="right") - 1, 0, len(grid) - 2)
            b += [k] * len(t)
            e += [idx] * len(t)
            i0 += j.tolist()
            w += np.clip((t - grid[j]) / (grid[j + 1] - grid[j]), 0.0, 1.0).tolist()
            y += z.tolist()
            s += [OBS_NOISE[names[idx]][1]] * len(t)  # CV on the log scale, SD on linear
    f64 = torch.float64
    return _ObsTensors(torch.tensor(b), e, torch.tensor(i0), torch.tensor(w, dtype=f64),
                       torch.tensor(y, dtype=f64), torch.tensor(s, dtype=f64))


def _residuals(sim: Any, ot: _ObsTensors, rep: int = 1) -> torch.Tensor:
    """Whitened residuals ``[rep, M]`` of the simulation at the observations."""
    names = list(INDEX)
    e = torch.tensor(ot.e)
    out = torch.zeros(rep, len(ot.y), dtype=torch.float64)
    for idx in sorted(set(ot.e)):
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


@dataclass
class _Problem:
    """A batch calibration problem on one shared time grid."""

    scens: list[Any]
    priors: list[ParameterPrior]
    grid: np.ndarray
    ot: _ObsTensors
    rtol: float
    fixed: dict[str, float]

    def simulate(self, u: torch.Tensor, grid: np.ndarray | None = None,
                 rtol: float | None = None) -> Any:
        rep = u.shape[0] // len(self.scens)
        theta = _natural(self.priors, u)
        ov = {n: theta[:, j] for j, n in enumerate(self.priors[0].names)}
        ov.update({n: torch.full((u.shape[0],), v, dtype=torch.float64)
                   for n, v in self.fixed.items()})
        return simulate(self.scens * rep, self.grid if grid is None else grid, overrides=ov,
                        rtol=rtol or self.rtol)

    def objective(self, r: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Negative log posterior per patient ``[B]`` from residuals ``[M]`` and ``u [B, P]``."""
        per = torch.zeros(len(self.scens), dtype=torch.float64).index_add_(0, self.ot.b, r**2)
        return 0.5 * per + 0.5 * (u**2).sum(1)


def _gauss_newton(pb: _Problem, npar: int, max_iter: int, eps: float = 1e-3
                  ) -> tuple[torch.Tensor, list[np.ndarray], int]:
    """Damped Gauss-Newton (Levenberg-Marquardt) in whitened coordinates; the Jacobian of the
    residuals comes from forward differences, all patients and parameters in one batched
    simulation per iteration (a shared step sequence, so the differences are smooth).
    Returns (u_map, Laplace covariances, simulations run)."""
    nb = len(pb.scens)
    u = torch.zeros(nb, npar, dtype=torch.float64)
    best_u, best_obj = u.clone(), torch.full((nb,), float("inf"), dtype=torch.float64)
    lam = torch.full((nb,), 1e-2, dtype=torch.float64)
    eye = torch.eye(npar, dtype=torch.float64)
    covs = [np.eye(npar)] * nb
    sims = 0
    for _ in range(max_iter):
        stacked = torch.cat([u] + [u + eps * eye[j] for j in range(npar)])
        with torch.no_grad():
            r = _residuals(pb.simulate(stacked), pb.ot, rep=npar + 1)
        sims += 1
        obj = pb.objective(r[0], u)
        better = obj < best_obj
        best_u[better], best_obj[better] = u[better], obj[better]
        lam = torch.where(better, lam / 3.0, lam * 4.0)
        jac = (r[1:] - r[0:1]) / eps  # [P, M]
        new_u = best_u.clone()
        for k in range(nb):
            sel = pb.ot.b == k
            jk, rk = jac[:, sel], r[0, sel]
            h = jk @ jk.T + eye
            if better[k]:
                covs[k] = torch.linalg.inv(h).numpy()
                g = jk @ rk + u[k]
                step = -torch.linalg.solve(h + lam[k] * torch.diag(torch.diag(h)), g)
                n = step.norm()
                new_u[k] = u[k] + (step if n <= 1.5 else step * 1.5 / n)
            else:  # step rejected: retreat halfway towards the best point
                new_u[k] = 0.5 * (best_u[k] + u[k])
        u = new_u.clamp(-4.0, 4.0)
    return best_u, covs, sims


def calibrate_many(
    items: Sequence[tuple[Sequence[Observation], Any]],
    prior: ParameterPrior | None = None,
    max_iter: int = 3,
    forecast_times_h: Sequence[np.ndarray] | None = None,
    fit: Sequence[str] = FIT_PARAMETERS,
    spread: bool = False,
) -> tuple[list[CalibratedPatient], list[np.ndarray] | None]:
    """Calibrate a batch of patients together (batched simulations).

    ``fit`` names the parameters fitted (the others stay at the prior median).
    ``forecast_times_h`` (one array per patient): also simulate the MAP patients there and
    return their trajectories (``[E, K]`` natural units per patient); with ``spread`` also
    their linearised Laplace predictive SD on the model scale (``info["forecast_sd"]``,
    ``[E, K]``), from one batched simulation of the MAP patients and their perturbed copies.
    """
    t0 = time.perf_counter()
    full = prior or default_prior()
    prior = full.subset(fit)
    fixed = {n: v for n, v in full.medians().items() if n not in prior.names}
    obs_list = [validate_observations(o) for o, _ in items]
    scens = [s for _, s in items]
    priors = [personal_prior(prior, s) for s in scens]
    t_end = max(o[-1].time_h for o in obs_list)
    grid = np.arange(0.0, t_end + 2 * GRID_STEP_H, GRID_STEP_H)
    pb = _Problem(scens, priors, grid, _obs_tensors(obs_list, grid), FIT_RTOL, fixed)
    npar = len(prior.names)
    u_map, covs, sims = _gauss_newton(pb, npar, max_iter)
    if forecast_times_h is not None:
        pieces = [grid] + [np.asarray(t, dtype=np.float64) for t in forecast_times_h]
        grid = np.unique(np.round(np.concatenate(pieces), 6))
        pb.ot = _obs_tensors(obs_list, grid)
    eps = 1e-3
    stacked = u_map
    if spread and forecast_times_h is not None:
        eye = torch.eye(npar, dtype=torch.float64)
        stacked = torch.cat([u_map] + [u_map + eps * eye[j] for j in range(npar)])
    with torch.no_grad():
        sim = pb.simulate(stacked, grid, rtol=1e-3)
        obj = pb.objective(_residuals(sim, pb.ot, rep=len(stacked) // len(items))[0], u_map)
    sims += 1
    theta = _natural(priors, u_map).numpy()
    seconds = (time.perf_counter() - t0) / len(items)
    fits = [
        CalibratedPatient(
            scenario=scens[k], prior=priors[k],
            parameters=dict(zip(prior.names, theta[k].tolist(), strict=True)),
            u_map=u_map[k].numpy(), cov_u=covs[k], objective=float(obj[k]),
            seconds=seconds, n_observations=len(obs_list[k]),
            info={"batched_simulations": sims, "batch": len(items), "fixed": fixed},
        )
        for k in range(len(items))
    ]
    if forecast_times_h is None:
        return fits, None
    nb = len(items)
    traj = np.stack([sim.endpoints[n].numpy() for n in INDEX], axis=1)  # [R * B, E, T]
    idx = [np.searchsorted(grid, np.round(np.asarray(t, dtype=np.float64), 6))
           for t in forecast_times_h]
    out = [traj[k][:, idx[k]] for k in range(nb)]
    if len(traj) > nb:
        z = to_model_scale(traj, axis=1).reshape(npar + 1, nb, traj.shape[1], -1)
        jac = (z[1:] - z[0:1]) / eps  # [P, B, E, T]
        for k in range(nb):
            jk = jac[:, k][:, :, idx[k]]  # [P, E, K]
            var = np.einsum("pek,pq,qek->ek", jk, covs[k], jk)
            fits[k].info["forecast_sd"] = np.sqrt(np.maximum(var, 0.0))
    return fits, out


def calibrate(observations: Sequence[Observation], scenario: Any,
              prior: ParameterPrior | None = None, max_iter: int = 3,
              fit: Sequence[str] = FIT_PARAMETERS) -> CalibratedPatient:
    """Fit one patient (see the module docstring); raises ObservationError on bad input."""
    return calibrate_many([(observations, scenario)], prior, max_iter, fit=fit)[0][0]
