"""Pharmacokinetics and pharmacodynamics: superposed Bateman curves and Hill inhibition.

Concentrations in ng/mL, doses in mg (x 1e6 ng), times in hours, volumes in mL.
"""

from __future__ import annotations

import torch
from torch import Tensor


def diacid_ng_per_ml(t: Tensor | float, dose_t: Tensor, dose_mg: Tensor, ka: Tensor, ke: Tensor,
                     vf: Tensor) -> Tensor:
    """Diacid concentration (ng/mL) at time(s) `t` from oral doses at `dose_t` [B, K].

    C(t) = sum_k D_k ka / (V/F (ka - ke)) (exp(-ke dt_k) - exp(-ka dt_k)), dt_k = t - t_k > 0.
    `t` is a float or a tensor broadcastable against [B, K] (e.g. [T, 1, 1] gives [T, B]).
    ka, ke, vf have shape [B]. Padding entries carry dose 0.
    """
    dt = torch.as_tensor(t, dtype=dose_t.dtype) - dose_t
    given = dt > 0
    dt = dt.clamp(min=0.0)
    ka_, ke_, vf_ = ka[..., None], ke[..., None], vf[..., None]
    amp = dose_mg * 1e6 * ka_ / (vf_ * (ka_ - ke_))
    terms = amp * (torch.exp(-ke_ * dt) - torch.exp(-ka_ * dt))
    return torch.where(given, terms, torch.zeros_like(terms)).sum(-1)


def hill_fraction(conc: Tensor, c50: Tensor, n: Tensor) -> Tensor:
    """Fractional inhibition C^n / (C^n + C50^n) in [0, 1); 0 (with finite gradient) at C = 0."""
    positive = conc > 0
    safe = torch.where(positive, conc, torch.ones_like(conc))
    ratio = torch.where(positive, (safe / c50) ** n, torch.zeros_like(conc))
    return ratio / (1.0 + ratio)


def pk_summary(times_h: Tensor, conc: Tensor, ke_per_h: float) -> dict[str, float]:
    """AUC (trapezoid plus the ke tail), tmax and terminal half-life of one curve [T]."""
    auc = torch.trapezoid(conc, times_h) + conc[-1] / ke_per_h
    i = int(torch.argmax(conc))
    tail = conc[-len(conc) // 4:]
    t_tail = times_h[-len(conc) // 4:]
    logc = torch.log(tail)
    tm = t_tail - t_tail.mean()
    k = -float((tm * (logc - logc.mean())).sum() / (tm * tm).sum())
    return {"auc_ng_h_per_ml": float(auc), "tmax_h": float(times_h[i]),
            "t_half_h": float(torch.log(torch.tensor(2.0)) / k)}
