"""Plasma glucose input G(t) (mmol/L) and the glucose-dependent RAS rate constants.

Constant glucose, or a smooth 24-h periodic profile ("normal" / "diabetic"): a fasting level
plus three meal responses g(s) = A (s/tau)^2 exp(2 (1 - s/tau)) after breakfast 07:30, lunch
12:30 and dinner 19:00. The published degree-12 polynomials are not in our sources; these
profiles reproduce their published range and mean (normal about 5.4 to 8 mmol/L, diabetic about
7 to 15) and are continuous with a continuous derivative everywhere, midnight included.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MEAL_TIMES_H = (7.5, 12.5, 19.0)
# name -> (fasting mmol/L, meal amplitude mmol/L, meal time constant h)
PROFILES: dict[str, tuple[float, float, float]] = {
    "normal": (5.42, 2.5, 1.5),
    "diabetic": (6.96, 7.6, 2.0),
}


def profile_mmol_per_l(t_h: Tensor | float, name: str) -> Tensor:
    """Glucose (mmol/L) of the daily profile `name` at time(s) t_h (hours from midnight)."""
    fasting, amp, tau = PROFILES[name]
    t = torch.as_tensor(t_h, dtype=torch.float64)
    g = torch.full_like(t, fasting)
    for meal in MEAL_TIMES_H:
        s = torch.remainder(t - meal, 24.0) / tau
        g = g + amp * s * s * torch.exp(2.0 * (1.0 - s))
    return g


def profile_mean(name: str) -> float:
    """24-h mean of a profile (mmol/L)."""
    t = torch.linspace(0.0, 24.0, 4801, dtype=torch.float64)
    return float(torch.trapezoid(profile_mmol_per_l(t, name), t) / 24.0)


def linear_rate(a: Tensor | float, b: Tensor | float, glucose: Tensor) -> Tensor:
    """Pilvankar et al. 2018 glucose-dependent rate c = a G + b (1/h)."""
    return a * glucose + b


LN2 = math.log(2.0)
