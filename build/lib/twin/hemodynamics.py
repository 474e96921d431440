"""Blood pressure from AT1-receptor-bound AngII: resistance, volume and a resetting baroreflex.

x = B1 / B1_0 is AT1R-bound AngII relative to the personal baseline.
  vascular resistance factor   T = x^a_v                      (immediate, Guyton-type tone)
  volume factor                dV/dt = (x^a_n - V) / tau_n    (aldosterone/sodium, days)
  open-loop MAP                M_open = MAP_0 T V
  baroreflex-buffered MAP      M = P_ref (M_open / P_ref)^(1 / (1 + G))
  baroreflex resetting         dP_ref/dt = (M - P_ref) / tau_r
  heart rate                   HR = HR_0 (P_ref / M)^g_hr
  pulse pressure               PP = PP_0 (M / MAP_0)^k_pp; SBP = M + 2 PP / 3; DBP = M - PP / 3
Pressures in mmHg, times in hours.
"""

from __future__ import annotations

import torch
from torch import Tensor


def at1_ratio(b1: Tensor, b1_0: Tensor) -> Tensor:
    """AT1R-bound AngII relative to baseline (>= a tiny positive floor)."""
    return (b1 / b1_0).clamp(min=1e-6)


def volume_rate(vol: Tensor, x: Tensor, p: dict) -> Tensor:
    """dV/dt (1/h) of the relative extracellular-volume factor."""
    return (x ** p["a_n"] - vol) / p["tau_n_h"]


def mean_pressure(x: Tensor, vol: Tensor, p_ref: Tensor, p: dict) -> Tensor:
    """Baroreflex-buffered mean arterial pressure (mmHg)."""
    m_open = p["map0"] * x ** p["a_v"] * vol.clamp(min=1e-6)
    return p_ref * (m_open / p_ref) ** (1.0 / (1.0 + p["g_baro"]))


def reset_rate(m: Tensor, p_ref: Tensor, p: dict) -> Tensor:
    """dP_ref/dt (mmHg/h): the baroreflex set point follows the pressure over days."""
    return (m - p_ref) / p["tau_reset_h"]


def pressures(m: Tensor, p_ref: Tensor, p: dict) -> dict[str, Tensor]:
    """SBP, DBP, MAP (mmHg) and HR (1/min) from the mean pressure and the reflex set point."""
    pp = p["pp0"] * (m / p["map0"]) ** p["k_pp"]
    hr = p["hr0"] * (p_ref / m) ** p["g_hr"]
    return {"sbp_mmhg": m + 2.0 * pp / 3.0, "dbp_mmhg": m - pp / 3.0, "map_mmhg": m,
            "hr_bpm": hr}


def default_bp(age_years: Tensor) -> tuple[Tensor, Tensor]:
    """Population SBP/DBP (mmHg) by age when no personal baseline is given (a simple trend)."""
    sbp = 105.0 + 0.5 * age_years
    dbp = 70.0 + 0.2 * age_years
    return sbp, torch.minimum(dbp, sbp - 20.0)
