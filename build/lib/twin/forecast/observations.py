"""Observations of a patient and their validation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from twin.errors import ObservationError
from twin.forecast.endpoints import ENDPOINT_UNITS, PLAUSIBLE

__all__ = ["Observation", "ObservationError", "validate_observations"]


@dataclass(frozen=True)
class Observation:
    """One measurement: ``time_h`` (hours from the scenario origin), a standard endpoint
    name (unit in the name, e.g. ``sbp_mmhg``) and its value in that unit."""

    time_h: float
    endpoint: str
    value: float


def validate_observations(
    observations: Sequence[Observation], now_h: float | None = None
) -> tuple[Observation, ...]:
    """Check observations and return them as a tuple.

    Refuses (ObservationError): no observations; an unknown endpoint (e.g. wrong unit in the
    name); a non-finite or implausible value (outside the endpoint's plausible range, usually
    a unit mistake); a negative time, a time after ``now_h``; times out of order.
    """
    obs = tuple(observations or ())
    if not obs:
        raise ObservationError("observations", "at least one observation is required, got none")
    last = -math.inf
    for i, o in enumerate(obs):
        field = f"observations[{i}]"
        if not isinstance(o, Observation):
            raise ObservationError(f"{field}", f"must be an Observation, got {type(o).__name__}")
        if o.endpoint not in ENDPOINT_UNITS:
            allowed = ", ".join(ENDPOINT_UNITS)
            raise ObservationError(f"{field}.endpoint",
                f"unknown endpoint {o.endpoint!r}; allowed: {allowed}"
            )
        t, v = float(o.time_h), float(o.value)
        if not math.isfinite(t) or t < 0:
            raise ObservationError(f"{field}.time_h", f"must be a finite number >= 0, got {t}")
        if now_h is not None and t > now_h:
            raise ObservationError(f"{field}.time_h",
                f"{t} h is after the forecast time now_h={now_h} h (in the future)"
            )
        if t < last:
            raise ObservationError(f"{field}.time_h",
                f"observations must be in time order, got {t} h after {last} h"
            )
        lo, hi = PLAUSIBLE[o.endpoint]
        if not math.isfinite(v) or not lo <= v <= hi:
            unit = ENDPOINT_UNITS[o.endpoint]
            raise ObservationError(f"{field}.value",
                f"{o.endpoint} must be in [{lo:g}, {hi:g}] {unit}, got {v} "
                "(check the unit)"
            )
        last = t
    return obs
