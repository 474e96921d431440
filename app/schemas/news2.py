"""NEWS2 and the bedside observation set: request and response bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictBool
from pydantic_core import PydanticCustomError

from app.codes import CODES, PLAUSIBLE, SET_FIELDS, WARD_PLAUSIBLE, check
from app.schemas.core import AwareDatetime, Consciousness, Recorded, Spo2Scale, Strict, Timestamp


def _range(code: str, table: dict[str, tuple[float, float]]) -> dict[str, float]:
    lo, hi = table[code]
    return {"ge": lo, "le": hi, "allow_inf_nan": False}


class News2In(Strict):
    """One observation set for the stateless NEWS2 (all seven parameters required)."""

    respiratory_rate_per_min: float = Field(strict=True, **_range("rr_per_min", WARD_PLAUSIBLE))
    spo2_pct: float = Field(strict=True, **_range("spo2_pct", WARD_PLAUSIBLE))
    spo2_scale: Spo2Scale = 1
    supplemental_oxygen: bool = Field(strict=True)
    sbp_mmhg: float = Field(strict=True, **_range("sbp_mmhg", PLAUSIBLE))
    hr_bpm: float = Field(strict=True, **_range("hr_bpm", PLAUSIBLE))
    consciousness: Consciousness
    temperature_c: float = Field(strict=True, **_range("temp_c", WARD_PLAUSIBLE))


class News2Out(BaseModel):
    """NEWS2 (RCP 2017): score, points per parameter, risk, response, monitoring interval."""

    score: int
    components: dict[str, int]
    risk: Literal["low", "low-medium", "medium", "high"]
    single_parameter_3: bool
    clinical_response: str
    monitoring_interval_h: float = Field(description="minimum monitoring frequency, hours "
                                                     "(0 = continuous)")


def _plausible(field: str):
    """A validator refusing an impossible value of an observation-set field (app.codes)."""
    code = SET_FIELDS[field]

    def validate(value: float | None) -> float | None:
        if value is None:
            return value
        problem = check(code, float(value), CODES[code].unit)
        if problem:
            message = problem[1].removeprefix(code + " ")
            raise PydanticCustomError("implausible", message)
        return value

    return AfterValidator(validate)


def _reading(field: str, description: str) -> Any:
    # strict: a JSON true or "70" is not a reading
    return Annotated[Annotated[float, Field(strict=True)] | None, _plausible(field),
                     Field(description=description)]


SetRR = _reading("respiratory_rate_per_min", "respiration rate, /min")
SetSpO2 = _reading("spo2_pct", "SpO2, %")
SetFlow = _reading("o2_flow_l_per_min", "oxygen flow, L/min")
SetFiO2 = _reading("fio2_pct", "inspired oxygen fraction (FiO2), %")
SetSBP = _reading("sbp_mmhg", "systolic pressure, mmHg")
SetDBP = _reading("dbp_mmhg", "diastolic pressure, mmHg")
SetHR = _reading("hr_bpm", "heart rate, /min")
SetTemp = _reading("temperature_c", "temperature, deg C")


class ObservationSetIn(Strict):
    """A bedside observation set: values at one time, stored together (all or nothing).

    Units: /min, %, L/min, mmHg, deg C. At least one value besides ``time``."""

    time: AwareDatetime
    respiratory_rate_per_min: SetRR = None
    spo2_pct: SetSpO2 = None
    supplemental_oxygen: StrictBool | None = Field(default=None,
                                                   description="on supplemental oxygen")
    o2_flow_l_per_min: SetFlow = None
    fio2_pct: SetFiO2 = None
    sbp_mmhg: SetSBP = None
    dbp_mmhg: SetDBP = None
    hr_bpm: SetHR = None
    consciousness: Consciousness | None = None
    temperature_c: SetTemp = None


class News2SetOut(BaseModel):
    """An observation set as NEWS2 sees it. An incomplete set (``complete`` false) shows the
    points of the parameters present in ``score`` but no risk or response: it is not a
    NEWS2 score. ``stale``: older than its monitoring interval."""

    time: Timestamp
    respiratory_rate_per_min: float | None
    spo2_pct: float | None
    spo2_scale: int
    supplemental_oxygen: bool | None
    o2_flow_l_per_min: float | None
    fio2_pct: float | None
    sbp_mmhg: float | None
    dbp_mmhg: float | None
    hr_bpm: float | None
    consciousness: str | None
    temperature_c: float | None
    score: int = Field(description="NEWS2 if complete, else the sum of the points present")
    components: dict[str, int]
    risk: str | None
    single_parameter_3: bool | None
    clinical_response: str | None
    monitoring_interval_h: float | None
    complete: bool
    stale: bool
    missing: list[str]
    age_h: float = Field(description="hours since the set")


class PatientNews2Out(BaseModel):
    patient_id: str
    latest: News2SetOut | None
    history: list[News2SetOut] = Field(description="every set, oldest first")


class ObservationSetRecorded(Recorded):
    set: News2SetOut | None = Field(description="the stored set as NEWS2 sees it")
