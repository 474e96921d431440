"""Batched stiff ODE solver: RODAS4 (Hairer & Wanner 1996), linearly implicit, order 4(3).

States have shape [B, n] (B patients share one adaptive step sequence; the step is accepted
when every patient's error norm is <= 1). Each step inverts W = I/(h gamma) - J once (batched
[B, n, n]; the six stage solves are then batched mat-vecs), where J is a forward-difference
Jacobian evaluated in one batched call on [n, B, n] stacked states; J and
the step-size control are detached from autograd, the stage values are not, so gradients flow
through the accepted steps (the discrete solution is differentiable with respect to the
initial state and any parameter tensor the right-hand side closes over).

Integration is piecewise between breakpoints (dose times, infection onset): no step straddles a
kink, and the time derivative used by the method is the right-sided one. Output at requested
times uses cubic Hermite interpolation between accepted steps (local error O(h^4), matching the
method). L-stability of RODAS4 makes the fast AngI/AngII modes (rates up to ~4000/h) harmless:
steps follow the slow dynamics only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

Rhs = Callable[[float, Tensor], Tensor]

# RODAS4 in the "K-form": W K_i = f(t + alpha_i h, y + sum_j A_ij K_j) + sum_j C_ij/h K_j
#                                 + gamma_i h df/dt,  with W = I/(h g) - J.
_G = 0.25
_ALPHA = (0.0, 0.386, 0.21, 0.63, 1.0, 1.0)
_GAMMA = (0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0)
_A = (
    (),
    (1.544,),
    (0.9466785280815826, 0.2557011698983284),
    (3.314825187068521, 2.896124015972201, 0.9986419139977817),
    (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895),
    (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1.0),
)
_C = (
    (),
    (-5.6688,),
    (-2.430093356833875, -0.2063599157091915),
    (-0.1073529058151375, -9.594562251023355, -20.47028614809616),
    (7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616),
    (8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
     -6.058818238834054),
)
_M = (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1.0, 1.0)


@dataclass
class SolverStats:
    """Counters of one integration."""

    steps: int = 0
    rejected: int = 0
    rhs_calls: int = 0


def _jacobian(rhs: Rhs, t: float, y: Tensor, f0: Tensor, scale: Tensor) -> Tensor:
    """Forward-difference Jacobian [B, n, n] from one batched call on [n, B, n] states."""
    n = y.shape[-1]
    d = 1e-7 * torch.maximum(y.abs(), scale)  # [B, n]
    eye = torch.eye(n, dtype=y.dtype)
    ys = y.unsqueeze(0) + eye[:, None, :] * d.T[:, :, None]  # [n(j), B, n]
    fs = rhs(t, ys)
    return ((fs - f0.unsqueeze(0)) / d.T[:, :, None]).permute(1, 2, 0)


def _hermite(y0: Tensor, f0: Tensor, y1: Tensor, f1: Tensor, h: float, s: Tensor) -> Tensor:
    """Cubic Hermite interpolant at fractions s [K] of the step; returns [B, K, n]."""
    s = s[None, :, None]
    s2, s3 = s * s, s * s * s
    h00, h10, h01, h11 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2
    return (h00 * y0[:, None] + h10 * h * f0[:, None] + h01 * y1[:, None]
            + h11 * h * f1[:, None])


def integrate(rhs: Rhs, y0: Tensor, times_h: np.ndarray, breakpoints: Sequence[float] = (),
              rtol: float = 1e-6, atol: Tensor | float = 1e-12, h0: float | None = None,
              max_steps: int = 200_000, stats: SolverStats | None = None) -> Tensor:
    """Integrate y' = rhs(t, y) from t = 0 and return y at `times_h` as [B, T, n].

    rhs(t, y) must accept y of shape [..., B, n] and return the same shape. `times_h` is sorted,
    >= 0; `breakpoints` are times where the right-hand side has a kink.
    """
    stats = stats if stats is not None else SolverStats()
    times = np.asarray(times_h, dtype=float)
    b_count, n = y0.shape
    t_end = float(times[-1]) if len(times) else 0.0
    atol_t = torch.as_tensor(atol, dtype=y0.dtype).expand(n) if not torch.is_tensor(atol) \
        else atol.to(y0.dtype)
    scale = (atol_t / rtol).expand(b_count, n)
    out: list[Tensor | None] = [None] * len(times)
    idx = 0
    while idx < len(times) and times[idx] <= 0.0:
        out[idx] = y0
        idx += 1
    edges = [0.0, *sorted({float(b) for b in breakpoints if 0.0 < b < t_end}), t_end]
    y, t, h = y0, 0.0, h0
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        t, derivs = a, None
        f0 = rhs(t, y)
        stats.rhs_calls += 1
        if h is None:
            w = (f0.detach() / (atol_t + rtol * y.detach().abs())).pow(2).mean(-1).sqrt().max()
            h = float(min(0.5, 0.01 / max(float(w), 1e-12)))
        while t < b:
            if stats.steps + stats.rejected >= max_steps:
                raise RuntimeError(f"solver: more than {max_steps} steps (t = {t:g} h)")
            h = min(h, b - t)
            if b - t - h < 1e-9 * max(1.0, b):
                h = b - t
            if derivs is None:  # reused after a rejected step (same t, y)
                derivs = _derivatives(rhs, t, y, f0, scale, stats)
            y_new, err = _step(rhs, t, y, f0, h, derivs, stats)
            sc = atol_t + rtol * torch.maximum(y.detach().abs(), y_new.detach().abs())
            enorm = float((err.detach() / sc).pow(2).mean(-1).sqrt().max())
            if not math.isfinite(enorm):
                enorm = 1e10
            if enorm <= 1.0:
                t_new = b if h == b - t else t + h
                f1 = rhs(t_new, y_new)
                stats.rhs_calls += 1
                k0 = idx
                while idx < len(times) and times[idx] <= t_new + 1e-12:
                    idx += 1
                if idx > k0:
                    s = torch.as_tensor((times[k0:idx] - t) / (t_new - t), dtype=y.dtype)
                    vals = _hermite(y, f0, y_new, f1, t_new - t, s.clamp(0.0, 1.0))
                    for k in range(k0, idx):
                        out[k] = vals[:, k - k0]
                t, y, f0, derivs = t_new, y_new, f1, None
                stats.steps += 1
                fac = min(5.0, max(0.2, 0.9 * enorm ** -0.25)) if enorm > 0 else 5.0
            else:
                stats.rejected += 1
                fac = min(1.0, max(0.2, 0.9 * enorm ** -0.25))
            h = h * fac
    while idx < len(times):
        out[idx] = y
        idx += 1
    return torch.stack(out, dim=1)  # type: ignore[arg-type]


def _derivatives(rhs: Rhs, t: float, y: Tensor, f0: Tensor, scale: Tensor,
                 stats: SolverStats) -> tuple[Tensor, Tensor]:
    """(Jacobian [B, n, n], right-sided df/dt [B, n]) at (t, y), detached."""
    with torch.no_grad():
        yd, fd = y.detach(), f0.detach()
        jac = _jacobian(rhs, t, yd, fd, scale)
        dt = 1e-7 * max(1.0, abs(t))
        dfdt = (rhs(t + dt, yd) - fd) / dt
    stats.rhs_calls += 2
    return jac, dfdt


def _step(rhs: Rhs, t: float, y: Tensor, f0: Tensor, h: float, derivs: tuple[Tensor, Tensor],
          stats: SolverStats) -> tuple[Tensor, Tensor]:
    """One RODAS4 step; returns (y_new, error estimate)."""
    jac, dfdt = derivs
    with torch.no_grad():
        n = y.shape[-1]
        w_inv, _ = torch.linalg.inv_ex(torch.eye(n, dtype=y.dtype) / (h * _G) - jac)
    ks: list[Tensor] = []
    for i in range(6):
        if i == 0:
            fi = f0
        else:
            yi = y
            for j, a in enumerate(_A[i]):
                yi = yi + a * ks[j]
            fi = rhs(t + _ALPHA[i] * h, yi)
            stats.rhs_calls += 1
        rhs_i = fi
        for j, c in enumerate(_C[i]):
            rhs_i = rhs_i + (c / h) * ks[j]
        if _GAMMA[i] != 0.0:
            rhs_i = rhs_i + (_GAMMA[i] * h) * dfdt
        ks.append(torch.matmul(w_inv, rhs_i.unsqueeze(-1)).squeeze(-1))
    y_new = y
    for m, k in zip(_M, ks, strict=True):
        y_new = y_new + m * k
    return y_new, ks[5]
