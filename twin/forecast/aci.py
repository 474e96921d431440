"""Online, per-patient adaptive interval scale (adaptive conformal inference).

After Gibbs & Candes, "Adaptive conformal inference under distribution shift" (NeurIPS 2021):
as each reading lands, the patient's log interval scale ``theta`` moves by
``gamma * (miss - (1 - 0.9))``, where ``miss`` says whether the reading fell outside the 90 %
one-step interval of the state-space filter (normalised innovation ``|z| > 1.645``). A patient
whose readings keep escaping gets wider intervals, one who is steadier than the cohort
narrower ones; ``theta`` is kept in ``THETA_RANGE``. The scale multiplies the model's spread
before the split-conformal quantile (calibrated with the same rule), so the marginal
guarantee is kept and the adaptation is per patient.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

Z90 = 1.6448536269514722
TARGET_MISS = 0.1
THETA_RANGE = (math.log(0.6), math.log(2.5))


def _step(theta, z, gamma: float):
    return np.clip(theta + gamma * ((np.abs(z) > Z90) - TARGET_MISS), *THETA_RANGE)


def aci_grid(z: np.ndarray, gamma: float) -> np.ndarray:
    """``theta`` ``[S, T]`` after the readings at hours <= t from the normalised one-step
    innovations ``z`` ``[S, T]`` (NaN = no reading)."""
    S, T = z.shape
    theta = np.zeros(S)
    out = np.empty((S, T))
    for t in range(T):
        obs = np.isfinite(z[:, t])
        theta[obs] = _step(theta[obs], z[obs, t], gamma)
        out[:, t] = theta
    return out


def aci_theta(z: Iterable[float], gamma: float) -> float:
    """``theta`` after the innovations ``z`` of one patient, in order."""
    theta = 0.0
    for zi in z:
        theta = float(_step(theta, zi, gamma))
    return theta
