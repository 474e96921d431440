"""The forecast endpoints: names, units, plausible ranges and the scale each is modelled on.

Concentrations are modelled (and their intervals built) on a log scale, ``log(y + offset)``,
so that intervals are multiplicative; pressures, heart rate and ACE inhibition stay linear.
"""

from __future__ import annotations

import numpy as np

from twin.simulate import ENDPOINTS

#: name -> unit, in the order of twin.ENDPOINTS (the 11 guaranteed standard columns).
ENDPOINT_UNITS: dict[str, str] = dict(ENDPOINTS)
NAMES: tuple[str, ...] = tuple(ENDPOINT_UNITS)
INDEX: dict[str, int] = {n: i for i, n in enumerate(NAMES)}

#: Plausible (physiological or pharmacological) range of an observation, natural units.
#: A value outside is refused as implausible (most often a unit mistake, e.g. kPa for mmHg).
#: The vital-sign ranges are the ones the real-data loader applies (``twin.realdata.loader``
#: takes them from here): an SBP of 45 mmHg in shock is a reading, not a unit mistake.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "angI_pg_per_ml": (0.0, 20000.0),
    "angII_pg_per_ml": (0.0, 2000.0),
    "renin_pg_per_ml": (0.0, 20000.0),
    "pra_ng_per_ml_per_h": (0.0, 200.0),
    "ang17_pg_per_ml": (0.0, 20000.0),
    "diacid_ng_per_ml": (0.0, 5000.0),
    "ace_inhibition_pct": (0.0, 100.0),
    "sbp_mmhg": (40.0, 300.0),
    "dbp_mmhg": (15.0, 200.0),
    "map_mmhg": (20.0, 250.0),
    "hr_bpm": (20.0, 250.0),
}

#: Offset of the log scale for concentrations (natural units); None = linear scale.
LOG_OFFSET: dict[str, float | None] = {
    "angI_pg_per_ml": 1.0,
    "angII_pg_per_ml": 1.0,
    "renin_pg_per_ml": 1.0,
    "pra_ng_per_ml_per_h": 0.05,
    "ang17_pg_per_ml": 1.0,
    "diacid_ng_per_ml": 0.5,
    "ace_inhibition_pct": None,
    "sbp_mmhg": None,
    "dbp_mmhg": None,
    "map_mmhg": None,
    "hr_bpm": None,
}

_OFFSETS = np.array([LOG_OFFSET[n] or 1.0 for n in NAMES])
_IS_LOG = np.array([LOG_OFFSET[n] is not None for n in NAMES])
_LOWER = np.array([PLAUSIBLE[n][0] for n in NAMES])
_UPPER = np.array([PLAUSIBLE[n][1] for n in NAMES])


def to_model_scale(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Natural units -> model scale; ``values`` has the endpoint axis at ``axis`` (length 11)."""
    v = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    out = np.where(_IS_LOG, np.log(np.maximum(v, 0.0) + _OFFSETS), v)
    return np.moveaxis(out, -1, axis)


def from_model_scale(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Model scale -> natural units, clipped to the plausible range of each endpoint."""
    v = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    out = np.where(_IS_LOG, np.exp(np.minimum(v, 50.0)) - _OFFSETS, v)
    out = np.clip(out, _LOWER, _UPPER)
    return np.moveaxis(out, -1, axis)


def endpoint_to_model_scale(name: str, values: np.ndarray | float) -> np.ndarray:
    """One endpoint's values, natural units -> model scale."""
    off = LOG_OFFSET[name]
    v = np.asarray(values, dtype=np.float64)
    return v if off is None else np.log(np.maximum(v, 0.0) + off)

#: Observation noise of the virtual ward (and the likelihood calibration assumes):
#: ("sd", x) additive Gaussian SD in natural units, ("cv", x) multiplicative log-normal.
OBS_NOISE: dict[str, tuple[str, float]] = {
    "sbp_mmhg": ("sd", 5.0),
    "dbp_mmhg": ("sd", 5.0),
    "map_mmhg": ("sd", 4.0),
    "hr_bpm": ("sd", 3.0),
    "angII_pg_per_ml": ("cv", 0.15),
    "pra_ng_per_ml_per_h": ("cv", 0.15),
    "angI_pg_per_ml": ("cv", 0.15),
    "renin_pg_per_ml": ("cv", 0.15),
    "ang17_pg_per_ml": ("cv", 0.15),
    "diacid_ng_per_ml": ("cv", 0.15),
    "ace_inhibition_pct": ("sd", 5.0),
}
