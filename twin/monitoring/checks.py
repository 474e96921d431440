"""Measurement checks ("re-measure", issue 13 item 5): flags that say "check this reading",
never clinical alarms.

``check_reading(endpoint, value, others=..., previous=..., interval_99=..., time_h=...)``
returns a list of :class:`Flag`:

* ``dbp_not_below_sbp``: the diastolic is at or above the systolic of the same set (SBP and
  DBP transposed on entry, or a mis-keyed value).
* ``narrow_pulse_pressure``: SBP - DBP below 10 mmHg (an over-damped arterial line, a cuff
  artefact; a real pulse pressure that narrow is rare even in tamponade or shock).
* ``map_outside_sbp_dbp``: a MAP of the same set not between DBP and SBP.
* ``implausible_jump``: the value differs from the recent level (median of the up to 3 latest
  previous readings within 6 h) by more than :data:`JUMP` allows: ``base + per_h * dt``,
  ``dt`` = hours since the latest of them, at most ``cap``. The base is what one real event
  can do between two readings (a vasovagal drop, a new arrhythmia); more than that, faster,
  is more often a moved transducer, a flush, a double-counted heart rate or a typo.
* ``outside_99``: the value outside the forecast's 99 % prediction interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: pulse pressure below this (mmHg) is flagged
MIN_PULSE_PRESSURE_MMHG = 10.0
#: recent level: median of at most this many previous readings, within this many hours
JUMP_REFERENCE_READINGS = 3
JUMP_LOOKBACK_H = 6.0


@dataclass(frozen=True)
class JumpLimit:
    """Largest change physiology explains: ``min(base + per_h * dt, cap)`` (natural units)."""

    base: float
    per_h: float
    cap: float

    def allowed(self, dt_h: float) -> float:
        return min(self.base + self.per_h * max(dt_h, 0.0), self.cap)


#: per endpoint (both the service's and the real-data loader's names)
JUMP: dict[str, JumpLimit] = {
    "sbp_mmhg": JumpLimit(50.0, 10.0, 80.0),
    "dbp_mmhg": JumpLimit(35.0, 7.0, 60.0),
    "map_mmhg": JumpLimit(40.0, 8.0, 65.0),
    "hr_bpm": JumpLimit(50.0, 10.0, 80.0),
    "respiratory_rate_per_min": JumpLimit(15.0, 5.0, 30.0),
    "spo2_pct": JumpLimit(15.0, 5.0, 30.0),
    "temperature_c": JumpLimit(1.5, 0.5, 3.0),
}
JUMP["resp_per_min"] = JUMP["respiratory_rate_per_min"]
JUMP["temp_c"] = JUMP["temperature_c"]

UNITS = {"sbp_mmhg": "mmHg", "dbp_mmhg": "mmHg", "map_mmhg": "mmHg", "hr_bpm": "/min",
         "respiratory_rate_per_min": "/min", "resp_per_min": "/min", "spo2_pct": "%",
         "temperature_c": "degC", "temp_c": "degC"}
RULES = ("dbp_not_below_sbp", "narrow_pulse_pressure", "map_outside_sbp_dbp",
         "implausible_jump", "outside_99")


@dataclass(frozen=True)
class Flag:
    """A "check this reading" flag: the rule, the endpoint checked, a message, the values."""

    rule: str
    endpoint: str
    message: str
    values: dict[str, float | str] = field(default_factory=dict)
    kind: str = "check"   # never a clinical alarm

    def as_dict(self) -> dict:
        return {"rule": self.rule, "endpoint": self.endpoint, "kind": self.kind,
                "message": self.message, "values": dict(self.values)}


def _num(x) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _g(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def _pressure_flags(endpoint: str, value: float, others: dict) -> list[Flag]:
    bp = {k: _num(v) for k, v in others.items() if k in ("sbp_mmhg", "dbp_mmhg", "map_mmhg")}
    bp[endpoint] = value
    sbp, dbp, mean = bp.get("sbp_mmhg"), bp.get("dbp_mmhg"), bp.get("map_mmhg")
    out = []
    if sbp is not None and dbp is not None and endpoint in ("sbp_mmhg", "dbp_mmhg"):
        vals = {"sbp_mmhg": sbp, "dbp_mmhg": dbp, "pulse_pressure_mmhg": sbp - dbp}
        if dbp >= sbp:
            out.append(Flag("dbp_not_below_sbp", endpoint,
                            f"check this reading: DBP {_g(dbp)} is not below SBP {_g(sbp)} "
                            "(transposed?)", vals))
        elif sbp - dbp < MIN_PULSE_PRESSURE_MMHG:
            out.append(Flag("narrow_pulse_pressure", endpoint,
                            f"check this reading: pulse pressure {_g(sbp - dbp)} mmHg "
                            f"({_g(sbp)}/{_g(dbp)}) is below {_g(MIN_PULSE_PRESSURE_MMHG)} "
                            "(damped trace or cuff artefact?)",
                            {**vals, "threshold_mmhg": MIN_PULSE_PRESSURE_MMHG}))
    if (mean is not None and sbp is not None and dbp is not None and dbp < sbp
            and not dbp <= mean <= sbp):
        out.append(Flag("map_outside_sbp_dbp", endpoint,
                        f"check this reading: MAP {_g(mean)} is outside {_g(sbp)}/{_g(dbp)}",
                        {"sbp_mmhg": sbp, "dbp_mmhg": dbp, "map_mmhg": mean}))
    return out


def _jump_flag(endpoint: str, value: float, previous: Sequence[tuple[float, float]],
               time_h: float | None) -> Flag | None:
    limit = JUMP.get(endpoint)
    prev = sorted((float(t), v) for t, v in ((t, _num(v)) for t, v in previous)
                  if v is not None and (time_h is None or t <= time_h))
    if limit is None or not prev:
        return None
    latest = prev[-1][0]
    recent = [p for p in prev if p[0] >= latest - JUMP_LOOKBACK_H][-JUMP_REFERENCE_READINGS:]
    if time_h is not None and time_h - latest > JUMP_LOOKBACK_H:
        return None   # the previous readings are too old to say what "recent" is
    ref = float(np.median([v for _, v in recent]))
    dt = 0.0 if time_h is None else max(time_h - latest, 0.0)
    allowed = limit.allowed(dt)
    change = value - ref
    if abs(change) <= allowed:
        return None
    unit = UNITS.get(endpoint, "")
    return Flag("implausible_jump", endpoint,
                f"check this reading: {_g(value)} {unit} is {_g(abs(change))} "
                f"{'above' if change > 0 else 'below'} the recent {_g(ref)} within {_g(dt)} h "
                f"(physiology explains at most {_g(allowed)})",
                {"value": value, "reference": round(ref, 2), "change": round(change, 2),
                 "dt_h": round(dt, 2), "allowed": round(allowed, 2)})


def check_reading(endpoint: str, value: float, *, others: dict | None = None,
                  previous: Sequence[tuple[float, float]] = (),
                  interval_99: tuple[float, float] | None = None,
                  time_h: float | None = None) -> list[Flag]:
    """Flags for one reading of ``endpoint``.

    ``others``: same-time readings of the set (e.g. ``{"dbp_mmhg": 80}`` for an SBP);
    ``previous``: earlier readings of the same endpoint [(time_h, value)];
    ``interval_99``: the forecast's 99 % prediction interval (lower, upper) at this time;
    ``time_h``: the reading's time on the clock of ``previous`` (without it the jump rule
    allows only the base change, as for readings taken together).
    """
    v = _num(value)
    if v is None:
        raise ValueError(f"{endpoint}: value must be a finite number, got {value!r}")
    flags = _pressure_flags(endpoint, v, others or {}) if endpoint in (
        "sbp_mmhg", "dbp_mmhg", "map_mmhg") else []
    jump = _jump_flag(endpoint, v, previous, time_h)
    if jump is not None:
        flags.append(jump)
    if interval_99 is not None:
        lo, hi = (float(x) for x in interval_99)
        if not lo <= v <= hi:
            flags.append(Flag("outside_99", endpoint,
                              f"check this reading: {_g(v)} {UNITS.get(endpoint, '')} is "
                              f"outside the forecast's 99 % interval {_g(lo)}-{_g(hi)}",
                              {"value": v, "lower": lo, "upper": hi}))
    return flags
