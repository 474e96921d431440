"""Request and response bodies of patients, observations, regimens, forecasts and
simulations (pydantic v2); they also generate the OpenAPI schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.codes import ACVPU, CODES
from twin.drugs import DRUG_NAMES

CodeName = Literal[tuple(CODES)]  # type: ignore[valid-type]
#: the forecaster's horizon limit, hours
MAX_HORIZON_H = 72
DRUGS: tuple[str, ...] = tuple(DRUG_NAMES)
Drug = Literal[DRUGS]  # type: ignore[valid-type]


#: the times the service takes: [TIME_MIN, TIME_MAX) in UTC; outside, time arithmetic
#: (look-back windows, UTC conversion) could overflow, and no reading is dated so
TIME_MIN = datetime(1900, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)
TIME_WINDOW_MESSAGE = "must be between 1900 and 2100"


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timezone_required",
                                  "needs a timezone, e.g. 2026-01-31T08:00:00Z")
    if not TIME_MIN <= value < TIME_MAX:  # aware comparison: no UTC conversion, no overflow
        raise PydanticCustomError("datetime_window", TIME_WINDOW_MESSAGE)
    return value


#: every date-time the service takes (bodies, FHIR, query arguments): a UTC offset, and
#: between 1900-01-01 and 2100-01-01 UTC
AwareDatetime = Annotated[datetime, AfterValidator(_aware), WithJsonSchema({
    "type": "string", "format": "date-time",
    "description": "ISO 8601 with a UTC offset, from 1900-01-01 to 2100-01-01 UTC"})]
_AWARE = TypeAdapter(AwareDatetime)


def aware_time(value: datetime) -> datetime:
    """``value`` checked as an ``AwareDatetime`` field is; ValueError with the message."""
    try:
        return _AWARE.validate_python(value)
    except ValidationError as exc:
        raise ValueError(exc.errors(include_input=False)[0]["msg"]) from None
#: a response's date-time: ISO 8601 as ``datetime.isoformat`` writes it (``+00:00``)
Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str,
                                                when_used="json"),
                      WithJsonSchema({"type": "string", "format": "date-time"})]


class Strict(BaseModel):
    """Base of request bodies: unknown fields are an error. The API validates its JSON
    bodies in pydantic's strict mode (``app.api.routes.parse_body``): no ``true`` or
    ``"120"`` for a number; the pages convert their form strings first."""

    model_config = ConfigDict(extra="forbid")


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # True == 1: a Literal[1, 2] would take it
        raise PydanticCustomError("literal_error", "Input should be 1 or 2")
    return value


#: NEWS2 SpO2 scale: 1 (usual), 2 (hypercapnic respiratory failure, target 88-92 %)
Spo2Scale = Annotated[Literal[1, 2], BeforeValidator(_not_bool), Field(
    description="NEWS2 SpO2 scale: 1, or 2 for a prescribed target of 88-92 % "
                "(hypercapnic respiratory failure)")]
Consciousness = Annotated[Literal[ACVPU], Field(  # type: ignore[valid-type]
    description="ACVPU: Alert, new Confusion, responds to Voice, to Pain, Unresponsive")]

Glucose = (Annotated[float, Field(ge=2.0, le=30.0, description="fixed glucose, mmol/L")]
           | Literal["normal", "diabetic"])


class PatientIn(Strict):
    """A new patient: covariates only, never names or birth dates."""

    age: float = Field(ge=18, le=110, description="age, years")
    renal_function: Literal["normal", "impaired"] = "normal"
    glucose: Glucose = "normal"
    infected: bool = False
    infection_onset: AwareDatetime | None = None
    external_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$",
                                    description="optional pseudonym from the caller's system")
    spo2_scale: Spo2Scale = 1


class PatientPatch(Strict):
    """Fields to change; absent fields stay as they are."""

    age: float | None = Field(default=None, ge=18, le=110)
    renal_function: Literal["normal", "impaired"] | None = None
    glucose: Glucose | None = None
    infected: bool | None = None
    infection_onset: AwareDatetime | None = None
    external_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    spo2_scale: Spo2Scale | None = None


class RegimenIn(Strict):
    """A dosing regimen in wall-clock time."""

    drug: Drug = "benazepril"
    dose_mg: float = Field(ge=0, le=80, description="dose per intake, mg (0 = untreated)")
    interval_h: float = Field(default=24, ge=4, le=168, description="dosing interval, h")
    start: AwareDatetime
    stop: AwareDatetime | None = None

    @model_validator(mode="after")
    def _stop_after_start(self) -> RegimenIn:
        if self.stop is not None and self.stop <= self.start:
            raise ValueError("stop: must be after start")
        return self


class RegimenOut(BaseModel):
    drug: str
    dose_mg: float
    interval_h: float
    start: Timestamp
    stop: Timestamp | None


class StatusReason(BaseModel):
    rule: str = Field(description="the rule that fired, e.g. sbp_falling")
    level: str
    message: str
    values: dict[str, Any] = Field(description="the values the rule used")


class StatusOut(BaseModel):
    """A patient's status: the most severe level of its reasons (or no-data)."""

    level: Literal["critical", "urgent", "watch", "stable", "no-data"]
    reasons: list[StatusReason]


class RemainingStayPoint(BaseModel):
    time: Timestamp = Field(description="as of")
    hours_since_admission: float
    median_h: float = Field(description="expected remaining ICU stay, hours (median)")
    low_h: float = Field(description="lower end of the interval, hours")
    high_h: float = Field(description="upper end of the interval, hours")
    median_days: float
    low_days: float
    high_days: float
    text: str = Field(description="as the ward shows it, e.g. '2.5 d (1-5)'")


class RemainingStayOut(RemainingStayPoint):
    coverage: float = Field(description="interval coverage on held-out ICU stays (0.8)")
    model_version: str
    trained_on: str = Field(description="the population the model learnt from")
    admitted: Timestamp = Field(description="hour 0: the earlier of admission and the first "
                                            "reading")
    trend: list[RemainingStayPoint] = Field(
        description="the estimate every 6 h over the last 72 h, oldest first, ending now")


#: a patient's admission status (``app.models.ADMITTED``, ``DISCHARGED``)
AdmissionStatus = Literal["admitted", "discharged"]


class DischargeIn(Strict):
    """A discharge: when (default now; not in the future)."""

    time: AwareDatetime | None = Field(default=None, description="discharge time (UTC "
                                                                 "offset required)")


class PatientChangeOut(BaseModel):
    """One changed detail: discharge and readmission are changes of the field ``status``."""

    time: Timestamp
    actor: str | None = Field(description="who changed it (a user's or token's name)")
    field: str = Field(description="external_id, age, renal_function, glucose, infected, "
                                   "infection_onset, spo2_scale or status")
    old: str | None = Field(description="the value before, as text (yes/no, ISO time)")
    new: str | None = Field(description="the value after, as text")


class PatientHistoryOut(BaseModel):
    items: list[PatientChangeOut] = Field(description="newest first")
    total: int


class PatientOut(BaseModel):
    id: str
    age: float
    renal_function: str
    glucose: float | str
    infected: bool
    infection_onset: Timestamp | None
    external_id: str | None
    spo2_scale: int = Field(description="NEWS2 SpO2 scale (1 or 2)")
    version: int = Field(description="data version; changes with every write")
    regimen: RegimenOut | None
    created_at: Timestamp
    updated_at: Timestamp
    status: StatusOut | None = Field(
        default=None, description="ward status with its reasons: GET of one patient, or the "
                                  "list with include=status; else (or if the status rules "
                                  "fail) null")
    remaining_stay: RemainingStayOut | None = Field(
        default=None, description="expected remaining ICU stay (80 % interval, model "
                                  "version): GET of one patient; null in lists and when "
                                  "there is no reading to go on")
    admission_status: AdmissionStatus = Field(
        default="admitted", description="admitted (on the ward), or discharged (kept and "
                                        "findable, read-only until readmitted); `status` is "
                                        "the ward status")
    discharged_at: Timestamp | None = Field(default=None,
                                            description="when discharged; null if admitted")


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="URL of the next page, or null")


class PatientPage(Page):
    items: list[PatientOut]


class ObservationIn(Strict):
    """One measurement; ``code`` is a twin endpoint name, ``unit`` its UCUM code."""

    time: AwareDatetime
    code: CodeName
    value: float
    unit: str = Field(min_length=1, max_length=16)
    source: str = Field(default="api", min_length=1, max_length=64)


class ObservationBatch(Strict):
    observations: list[ObservationIn] = Field(min_length=1, max_length=1000)


#: an observation's status, FHIR's words (``app.models.OBS_FINAL``, ``OBS_ENTERED_IN_ERROR``)
ObservationStatus = Literal["final", "entered-in-error"]


class ObservationOut(BaseModel):
    id: int
    time: Timestamp
    code: str
    value: float
    unit: str
    source: str
    status: ObservationStatus = Field(
        default="final", description="final, or entered-in-error: kept and listed, but no "
                                     "forecast, NEWS2, status, alert or trend uses it")


class ObservationStatusIn(Strict):
    """A correction of one stored reading (FHIR's status word); it cannot be undone."""

    status: Literal["entered-in-error"] = Field(
        description="entered-in-error: the reading was wrong (wrong patient, time or value)")


class ObservationPage(Page):
    items: list[ObservationOut]


class Recorded(BaseModel):
    recorded: int
    patient_version: int
    items: list[ObservationOut]
    checks: list[dict[str, Any]] = Field(default_factory=list, description=(
        '"check this reading" flags on the new readings (rule, endpoint, message, values)'))


class EndpointSeries(BaseModel):
    unit: str
    times: list[Timestamp]
    times_h: list[float]
    median: list[float]
    lower: list[float]
    upper: list[float]


class ForecastOut(BaseModel):
    patient_id: str | None
    model_version: str
    engine: str
    coverage: float
    horizon_h: float
    origin: Timestamp = Field(description="wall-clock time of twin hour 0")
    now: Timestamp = Field(description="forecast issued at (last data point or this hour)")
    endpoints: dict[str, EndpointSeries]
    remaining_stay: RemainingStayOut | None = Field(
        default=None, description="expected remaining ICU stay now (as on the patient)")


class ScenarioRequest(Strict):
    regimen: RegimenIn
    horizon_h: float = Field(default=72, ge=1, le=MAX_HORIZON_H)
    coverage: float = Field(default=0.9, ge=0.5, le=0.99)


class ScenarioSummary(BaseModel):
    sbp_mmhg_end: float
    dbp_mmhg_end: float
    sbp_mmhg_mean: float


class ScenarioOut(BaseModel):
    current: ForecastOut
    proposed: ForecastOut
    summary: dict[str, ScenarioSummary]


class TwinRegimen(Strict):
    """A regimen in twin hours (stateless simulation)."""

    drug: Drug = "benazepril"
    dose_mg: float = Field(default=0, ge=0, le=80)
    interval_h: float = Field(default=24, ge=4, le=168)
    start_h: float = Field(default=0, ge=0, le=2000)
    stop_h: float | None = Field(default=None, ge=0, le=2000)
    missed_doses: list[Annotated[int, Field(ge=0, le=1000)]] = Field(default=[], max_length=100)


class TwinScenario(Strict):
    age_years: float = Field(default=50, ge=18, le=110)
    renal_function: Literal["normal", "impaired"] = "normal"
    glucose: Glucose = 5.0
    infected: bool = False
    infection_onset_h: float = Field(default=0, ge=0, le=2000)
    regimen: TwinRegimen = TwinRegimen()


class SimulateRequest(Strict):
    scenario: TwinScenario = TwinScenario()
    horizon_h: float = Field(default=72, gt=0, le=168)
    step_h: float = Field(default=1.0, ge=0.25, le=24)


class SimulationOut(BaseModel):
    times_h: list[float]
    endpoints: dict[str, dict[str, str | list[float]]] = Field(
        description="name -> {unit, values}")


class ModelOut(BaseModel):
    """The bundle in service (no server path: where it is loaded from is the operator's)."""

    model_version: str
    engines: list[str]
    default_engine: str
    metrics: dict


class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` names each offending field."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None
