"""A per-patient state-space forecaster for vital signs, learnt on real ICU data.

Per endpoint the reading is ``y(t) = m + s(t) + f(t) + e``:

* ``m``  the patient's own mean, prior N(mu0, V_m) (the population mean and spread),
* ``s``  a slow mean-reverting deviation (Ornstein-Uhlenbeck, time constant tau_s hours,
  stationary variance V_s): the patient's current "level" relative to his mean,
* ``f``  a fast deviation (OU, tau_f, V_f): short-term variability,
* ``e``  measurement noise N(0, R).

A Kalman filter updates the state as each reading arrives; a gap of ``dt`` hours uses the exact
transition ``a = exp(-dt / tau)``, ``q = V (1 - a^2)``. The forecast at horizon h from the filter
state is O(1): mean ``m + a_s(h) s + a_f(h) f``, variance of the latent value plus R (the
interval is for the next *measured* reading). The forecast thus starts where the patient is
now and relaxes toward his own (filtered) mean, then toward the population mean only as far as
his own mean is uncertain. The 7 parameters per endpoint are learnt by maximum likelihood
(prediction-error decomposition) on the train split; see ``fit_endpoint``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass
class SSParams:
    mu0: float
    v_m: float
    v_s: float
    tau_s: float
    v_f: float
    tau_f: float
    r: float

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


def _transition(p: SSParams, dt: float):
    a = np.array([1.0, math.exp(-dt / p.tau_s), math.exp(-dt / p.tau_f)])
    q = np.array([0.0, p.v_s * (1 - a[1] ** 2), p.v_f * (1 - a[2] ** 2)])
    return a, q


class PatientFilter:
    """The filter state of one patient and one endpoint, carried forward reading by reading."""

    def __init__(self, p: SSParams, t0: float = 0.0):
        self.p = p
        self.t = t0
        self.x = np.array([p.mu0, 0.0, 0.0])
        self.P = np.diag([p.v_m, p.v_s, p.v_f])
        self.n = 0

    def _advance(self, dt: float):
        if dt <= 0:
            return self.x, self.P
        a, q = _transition(self.p, dt)
        x = a * self.x
        x[0] = self.x[0]
        P = self.P * np.outer(a, a) + np.diag(q)
        return x, P

    def update(self, t: float, y: float) -> tuple[float, float]:
        """Assimilate reading y at time t (hours, non-decreasing); returns the normalised
        one-step innovation ``(y - mu) / sigma`` and sigma, with sigma including R."""
        x, P = self._advance(t - self.t)
        s = P.sum() + self.p.r
        mu = x.sum()
        k = P.sum(axis=1) / s
        self.x = x + k * (y - mu)
        self.P = P - np.outer(k, P.sum(axis=0))
        self.t, self.n = t, self.n + 1
        return (y - mu) / math.sqrt(s), math.sqrt(s)

    def forecast(self, h: float, *, measured: bool = True) -> tuple[float, float]:
        """Mean and SD at ``t + h``; ``measured`` adds the measurement noise (next reading)."""
        x, P = self._advance(h)
        var = P.sum() + (self.p.r if measured else 0.0)
        return float(x.sum()), math.sqrt(max(var, 1e-12))


# ---------------------------------------------------------------- grid (vectorised) version
def filter_grid(y: np.ndarray, p: SSParams, horizons, innovations: bool = False):
    """Run the filter on an hourly grid ``y`` (stays x hours, NaN = not measured) for all
    stays at once. Returns ``mu, sd`` of shape (stays, hours, len(horizons)): the forecast made
    at hour t (after the reading at t, if any) for hour t + h, sd including R; with
    ``innovations`` also ``z`` (stays x hours): the normalised one-step innovation of each
    reading (as ``PatientFilter.update`` returns it), NaN where none."""
    S, T = y.shape
    hs = np.asarray(horizons, float)
    a1, q1 = _transition(p, 1.0)
    x = np.tile([p.mu0, 0.0, 0.0], (S, 1))
    P = np.tile(np.diag([p.v_m, p.v_s, p.v_f]), (S, 1, 1))
    A = np.outer(a1, a1)
    ah = np.stack([np.ones_like(hs), np.exp(-hs / p.tau_s), np.exp(-hs / p.tau_f)], 1)  # H,3
    qh = np.stack([np.zeros_like(hs), p.v_s * (1 - ah[:, 1] ** 2), p.v_f * (1 - ah[:, 2] ** 2)], 1)
    mu = np.empty((S, T, len(hs)))
    sd = np.empty((S, T, len(hs)))
    z = np.full((S, T), np.nan)
    for t in range(T):
        if t > 0:
            x = x * a1
            P = P * A + np.diag(q1)
        obs = np.isfinite(y[:, t])
        if obs.any():
            Po, xo = P[obs], x[obs]
            ps = Po.sum(axis=2)                       # S,3 = P H'
            s = ps.sum(axis=1) + p.r
            k = ps / s[:, None]
            innov = y[obs, t] - xo.sum(axis=1)
            z[obs, t] = innov / np.sqrt(s)
            x[obs] = xo + k * innov[:, None]
            P[obs] = Po - k[:, :, None] * ps[:, None, :]
        mu[:, t, :] = x @ ah.T
        # var of a_h . x  =  sum_ij a_i a_j P_ij
        sd[:, t, :] = np.sqrt(np.einsum("hi,sij,hj->sh", ah, P, ah) + qh.sum(1)[None] + p.r)
    return (mu, sd, z) if innovations else (mu, sd)


def _nll_torch(y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian NLL of the readings' one-step predictions (prediction-error decomposition)."""
    mu0, lvm, lvs, lts, lvf, ltf, lr = theta
    v_m, v_s, v_f, r = lvm.exp(), lvs.exp(), lvf.exp(), lr.exp()
    tau_s, tau_f = lts.exp(), ltf.exp()
    a = torch.stack([torch.ones((), dtype=y.dtype), torch.exp(-1 / tau_s), torch.exp(-1 / tau_f)])
    q = torch.stack([torch.zeros((), dtype=y.dtype), v_s * (1 - a[1] ** 2), v_f * (1 - a[2] ** 2)])
    S, T = y.shape
    zero = torch.zeros((), dtype=y.dtype)
    x = torch.stack([mu0, zero, zero]).expand(S, 3)
    P = torch.diag(torch.stack([v_m, v_s, v_f])).expand(S, 3, 3)
    A = torch.outer(a, a)
    total, n = torch.zeros((), dtype=y.dtype), 0
    obs_all = torch.isfinite(y)
    y0 = torch.nan_to_num(y)
    for t in range(T):
        if t > 0:
            x = x * a
            P = P * A + torch.diag(q)
        obs = obs_all[:, t]
        if not bool(obs.any()):
            continue
        ps = P.sum(dim=2)
        s = ps.sum(dim=1) + r
        innov = y0[:, t] - x.sum(dim=1)
        w = obs.to(y.dtype)
        total = total + (w * (torch.log(2 * math.pi * s) + innov**2 / s)).sum() * 0.5
        n += int(obs.sum())
        k = ps / s[:, None] * w[:, None]
        x = x + k * innov[:, None]
        P = P - k[:, :, None] * ps[:, None, :]
    return total / max(n, 1)


def fit_endpoint(y: np.ndarray, *, iters: int = 150, lr: float = 0.05) -> SSParams:
    """Maximum-likelihood fit of the 7 parameters on an hourly grid (stays x hours, NaN)."""
    yt = torch.tensor(y, dtype=torch.float64)
    finite = y[np.isfinite(y)]
    m, v = float(np.mean(finite)), float(np.var(finite))
    theta = torch.tensor([m, math.log(v * 0.4), math.log(v * 0.3), math.log(12.0),
                          math.log(v * 0.2), math.log(1.5), math.log(v * 0.1)],
                         dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    scale = torch.tensor([math.sqrt(v) * 0.02, 1, 1, 1, 1, 1, 1], dtype=torch.float64)
    for _ in range(iters):
        opt.zero_grad()
        loss = _nll_torch(yt, theta)
        loss.backward()
        theta.grad *= scale          # the mean moves in mmHg, the rest on log scales
        opt.step()
        with torch.no_grad():        # keep the slow component slower than the fast one
            theta[3].clamp_(math.log(2.0), math.log(2000.0))
            theta[5].clamp_(math.log(0.05), math.log(24.0))
    t = theta.detach().numpy()
    return SSParams(mu0=float(t[0]), v_m=float(np.exp(t[1])), v_s=float(np.exp(t[2])),
                    tau_s=float(np.exp(t[3])), v_f=float(np.exp(t[4])), tau_f=float(np.exp(t[5])),
                    r=float(np.exp(t[6])))
