"""NEWS2, the National Early Warning Score 2, as the Royal College of Physicians chart defines it.

Royal College of Physicians. *National Early Warning Score (NEWS) 2: Standardising the
assessment of acute-illness severity in the NHS.* Updated report of a working party.
London: RCP, 2017. Chart 1 (the scoring system), chart 2 (thresholds and triggers),
chart 4 (clinical response and monitoring frequency).

The chart is written for values a nurse records: whole numbers for respiration rate, SpO2,
systolic pressure and pulse, one decimal for temperature. A value between two bands (an
averaged monitor reading, 8.6 breaths/min) is first rounded half-up to the chart's precision
(8.6 -> 9), then banded; so every band edge of the chart is exact and nothing falls between.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from twin.errors import ObservationError, TwinError

#: the seven NEWS2 parameters, in the chart's order (SpO2 scale is a setting, not a parameter)
PARAMETERS = ("respiratory_rate_per_min", "spo2_pct", "supplemental_oxygen", "sbp_mmhg",
              "hr_bpm", "consciousness", "temperature_c")
#: ACVPU: alert, new confusion, responds to voice, to pain, unresponsive
CONSCIOUSNESS = ("A", "C", "V", "P", "U")
RISKS = ("low", "low-medium", "medium", "high")

# (upper bound inclusive, points) per parameter, on the chart's rounded values
_RR = ((8, 3), (11, 1), (20, 0), (24, 2), (math.inf, 3))
_SPO2_SCALE1 = ((91, 3), (93, 2), (95, 1), (math.inf, 0))
_SPO2_SCALE2_LOW = ((83, 3), (85, 2), (87, 1), (92, 0))  # 88-92 scores 0; >= 93 see below
_SPO2_SCALE2_ON_O2 = ((94, 1), (96, 2), (math.inf, 3))   # 93-94, 95-96, >= 97 on oxygen
_SBP = ((90, 3), (100, 2), (110, 1), (219, 0), (math.inf, 3))
_HR = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (math.inf, 3))
_TEMP = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (math.inf, 2))

#: chart 4: clinical response by trigger
RESPONSES = {
    "zero": "Continue routine NEWS monitoring.",
    "low": ("Inform the registered nurse, who must assess the patient and decide whether "
            "increased frequency of clinical monitoring and/or escalation of care is required."),
    "low-medium": ("Registered nurse to inform the medical team caring for the patient, who "
                   "will review and decide whether escalation of care is necessary."),
    "medium": ("Registered nurse to immediately inform the medical team caring for the "
               "patient and to request urgent assessment by a clinician or team with core "
               "competencies in the care of acutely ill patients; provide clinical care in "
               "an environment with monitoring facilities."),
    "high": ("Registered nurse to immediately inform the medical team caring for the patient "
             "(at least specialist registrar level); emergency assessment by a team with "
             "critical-care competencies, including advanced airway management skills; "
             "consider transfer to a level 2 or 3 care facility (HDU or ICU); clinical care "
             "in an environment with monitoring facilities."),
}
#: chart 4: minimum monitoring frequency, hours (0 = continuous monitoring of vital signs)
MONITORING_INTERVAL_H = {"zero": 12.0, "low": 4.0, "low-medium": 1.0, "medium": 1.0,
                         "high": 0.0}


class IncompleteObservationSet(TwinError, ValueError):
    """A set lacking parameters NEWS2 needs; ``missing`` names them (chart order)."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(missing[0], "required for NEWS2: " + ", ".join(missing))
        self.missing = missing


@dataclass(frozen=True)
class ObservationSet:
    """One bedside observation set; ``None`` = not recorded. Units: /min, %, mmHg, deg C."""

    respiratory_rate_per_min: float | None = None
    spo2_pct: float | None = None
    spo2_scale: int = 1
    supplemental_oxygen: bool | None = None
    sbp_mmhg: float | None = None
    hr_bpm: float | None = None
    consciousness: str | None = None
    temperature_c: float | None = None

    def missing(self) -> tuple[str, ...]:
        """The NEWS2 parameters not recorded, in chart order."""
        return tuple(p for p in PARAMETERS if getattr(self, p) is None)


@dataclass(frozen=True)
class News2:
    """A NEWS2 score with its parts, risk, response and monitoring interval (hours)."""

    score: int
    components: dict[str, int] = field(default_factory=dict)
    risk: str = "low"
    single_parameter_3: bool = False
    clinical_response: str = RESPONSES["zero"]
    monitoring_interval_h: float = MONITORING_INTERVAL_H["zero"]

    def as_dict(self) -> dict:
        """Plain JSON-able dict (the API's response keys)."""
        return asdict(self)


def _half_up(x: float, decimals: int = 0) -> float:
    scale = 10 ** decimals
    return math.floor(x * scale + 0.5 + 1e-9) / scale


def _band(bands: tuple[tuple[float, int], ...], x: float) -> int:
    for upper, pts in bands:
        if x <= upper:
            return pts
    raise AssertionError("bands end at infinity")  # pragma: no cover


def _validate(obs: ObservationSet) -> None:
    if obs.spo2_scale not in (1, 2):
        raise ObservationError("spo2_scale", f"must be 1 or 2, got {obs.spo2_scale!r}")
    if obs.consciousness is not None and obs.consciousness not in CONSCIOUSNESS:
        raise ObservationError("consciousness", "must be one of A, C, V, P, U")
    for name in ("respiratory_rate_per_min", "spo2_pct", "sbp_mmhg", "hr_bpm", "temperature_c"):
        v = getattr(obs, name)
        if v is not None and (isinstance(v, bool) or not math.isfinite(v) or v < 0):
            raise ObservationError(name, "must be a finite, non-negative number")


def _spo2_points(spo2: float, scale: int, on_oxygen: bool | None) -> int | None:
    """Points for SpO2 (None when scale 2 needs the oxygen status and it is unknown)."""
    s = _half_up(spo2)
    if scale == 1:
        return _band(_SPO2_SCALE1, s)
    if s <= 92:
        return _band(_SPO2_SCALE2_LOW, s)
    if on_oxygen is None:
        return None
    return _band(_SPO2_SCALE2_ON_O2, s) if on_oxygen else 0  # >= 93 on air scores 0


def points(obs: ObservationSet) -> dict[str, int]:
    """Chart 1 points for each parameter present (chart order); raises ObservationError."""
    _validate(obs)
    out: dict[str, int] = {}
    if obs.respiratory_rate_per_min is not None:
        out["respiratory_rate_per_min"] = _band(_RR, _half_up(obs.respiratory_rate_per_min))
    if obs.spo2_pct is not None:
        p = _spo2_points(obs.spo2_pct, obs.spo2_scale, obs.supplemental_oxygen)
        if p is not None:
            out["spo2_pct"] = p
    if obs.supplemental_oxygen is not None:
        out["supplemental_oxygen"] = 2 if obs.supplemental_oxygen else 0
    if obs.sbp_mmhg is not None:
        out["sbp_mmhg"] = _band(_SBP, _half_up(obs.sbp_mmhg))
    if obs.hr_bpm is not None:
        out["hr_bpm"] = _band(_HR, _half_up(obs.hr_bpm))
    if obs.consciousness is not None:
        out["consciousness"] = 0 if obs.consciousness == "A" else 3
    if obs.temperature_c is not None:
        out["temperature_c"] = _band(_TEMP, _half_up(obs.temperature_c, 1))
    return out


def trigger(total: int, single_parameter_3: bool) -> str:
    """Chart 4 trigger: ``zero``, ``low`` (1-4), ``low-medium``, ``medium`` or ``high``."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    if single_parameter_3:
        return "low-medium"
    return "low" if total > 0 else "zero"


def risk_level(total: int, single_parameter_3: bool) -> str:
    """Chart 2 clinical risk: ``low`` (0-4), ``low-medium`` (a 3 in one), ``medium``, ``high``."""
    t = trigger(total, single_parameter_3)
    return "low" if t == "zero" else t


def partial_score(obs: ObservationSet) -> tuple[int, dict[str, int], tuple[str, ...]]:
    """(sum of the points present, the points, the parameters missing): never a NEWS2 score."""
    pts = points(obs)
    return sum(pts.values()), pts, tuple(p for p in PARAMETERS if p not in pts)


def score(obs: ObservationSet) -> News2:
    """The NEWS2 of a complete set; raises IncompleteObservationSet naming what is missing."""
    total, pts, missing = partial_score(obs)
    if missing:
        raise IncompleteObservationSet(missing)
    single3 = any(v == 3 for v in pts.values())
    t = trigger(total, single3)
    return News2(score=total, components=pts, risk=risk_level(total, single3),
                 single_parameter_3=single3, clinical_response=RESPONSES[t],
                 monitoring_interval_h=MONITORING_INTERVAL_H[t])
