"""Observation codes: our endpoint names, their UCUM units, plausible ranges and LOINC codes.

Codes verified for the ward vital signs (issue 13), all against published FHIR material:

- respiratory rate LOINC 9279-1 (``/min``); SpO2 LOINC 59408-5 "Oxygen saturation in Arterial
  blood by Pulse oximetry" (output), 2708-6 "Oxygen saturation in Arterial blood" accepted
  on input too (the US Core pulse-oximetry profile carries both; ``%``);
- inhaled oxygen flow rate LOINC 3151-8 (``L/min``), inhaled oxygen concentration (FiO2)
  LOINC 3150-0 (``%``);
- body temperature LOINC 8310-5 (``Cel``);
- potassium LOINC 2823-3 "Potassium [Moles/volume] in Serum or Plasma" (``mmol/L``);
- creatinine: LOINC 2160-0 is "Creatinine [Mass/volume] in Serum or Plasma" (mg/dL), 14682-9
  its "[Moles/volume]" twin (umol/L). We store umol/L (``creatinine_umol_per_l``) and write
  14682-9; 2160-0 is accepted on input in mg/dL (or mg/L) and converted (1 mg/dL = 88.42
  umol/L, molar mass 113.12 g/mol).
- consciousness (ACVPU): we found no LOINC term for the five-point ACVPU scale (67775-7 could
  not be confirmed; LOINC's AVPU-like lists lack "new confusion"). UK Core codes the
  observation with SNOMED CT 1104441000000107 "Alert Confusion Voice Pain Unresponsive scale
  score", value a SNOMED finding (e.g. 300202002 "Responds to voice"). We use that SNOMED
  code and store the level as ``acvpu`` 0..4 (A, C, V, P, U), unit ``{ACVPU}``; FHIR values
  are a CodeableConcept of our ``ACVPU_SYSTEM`` (codes A, C, V, P, U), plus SNOMED CT for the
  four AVPU findings (248234008 alert, 300202002 voice, 450847001 pain, 422768004
  unresponsive), which are also accepted on input.
- supplemental oxygen yes/no: no LOINC term found for "on supplemental oxygen" as a yes/no
  observation; our own system (``urn:ras-twin:endpoint`` code ``on_oxygen``), value 0 (air)
  or 1 (on oxygen), unit ``{bool}``; FHIR ``valueBoolean``.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.forecast.endpoints import NAMES as TWIN_ENDPOINTS
from twin.forecast.endpoints import PLAUSIBLE  # vital-sign ranges: one table, the twin's


@dataclass(frozen=True)
class Code:
    """An observable quantity: twin endpoint ``name``, UCUM ``unit``, plausible [low, high]."""

    name: str
    unit: str
    low: float
    high: float
    loinc: str | None
    display: str
    #: only whole numbers are valid (ordinal scales, yes/no)
    integer: bool = False
    #: a SNOMED CT code for the observation, written when there is no LOINC code
    snomed: str | None = None


#: plausible ranges of the ward observations the twin does not model (natural units); a value
#: outside is refused as impossible, most often a unit mistake (deg F for deg C, kPa, mg/dL)
WARD_PLAUSIBLE: dict[str, tuple[float, float]] = {
    "rr_per_min": (1.0, 80.0),
    "spo2_pct": (40.0, 100.0),
    "o2_flow_l_per_min": (0.0, 80.0),
    "fio2_pct": (21.0, 100.0),
    "on_oxygen": (0.0, 1.0),
    "temp_c": (25.0, 45.0),
    "acvpu": (0.0, 4.0),
    "potassium_mmol_per_l": (1.0, 10.0),
    "creatinine_umol_per_l": (10.0, 3000.0),
}

#: Every code an observation may carry (the twin's standard endpoints, same units).
CODES: dict[str, Code] = {c.name: c for c in (
    Code("angI_pg_per_ml", "pg/mL", 0, 5000, "2719-3", "Angiotensin I [Mass/volume] in Plasma"),
    Code("angII_pg_per_ml", "pg/mL", 0, 2000, "2720-1",
         "Angiotensin II [Mass/volume] in Plasma"),
    Code("renin_pg_per_ml", "pg/mL", 0, 2000, None, "Renin concentration"),
    Code("pra_ng_per_ml_per_h", "ng/mL/h", 0, 100, "2915-7",
         "Renin [Enzymatic activity/volume] in Plasma"),
    Code("ang17_pg_per_ml", "pg/mL", 0, 2000, None, "Angiotensin 1-7"),
    Code("diacid_ng_per_ml", "ng/mL", 0, 5000, None, "Benazeprilat concentration"),
    Code("ace_inhibition_pct", "%", 0, 100, None, "ACE inhibition"),
    Code("sbp_mmhg", "mm[Hg]", *PLAUSIBLE["sbp_mmhg"], "8480-6", "Systolic blood pressure"),
    Code("dbp_mmhg", "mm[Hg]", *PLAUSIBLE["dbp_mmhg"], "8462-4", "Diastolic blood pressure"),
    Code("map_mmhg", "mm[Hg]", *PLAUSIBLE["map_mmhg"], "8478-0", "Mean blood pressure"),
    Code("hr_bpm", "/min", *PLAUSIBLE["hr_bpm"], "8867-4", "Heart rate"),
    Code("rr_per_min", "/min", *WARD_PLAUSIBLE["rr_per_min"], "9279-1", "Respiratory rate"),
    Code("spo2_pct", "%", *WARD_PLAUSIBLE["spo2_pct"], "59408-5",
         "Oxygen saturation in Arterial blood by Pulse oximetry"),
    Code("o2_flow_l_per_min", "L/min", *WARD_PLAUSIBLE["o2_flow_l_per_min"], "3151-8",
         "Inhaled oxygen flow rate"),
    Code("fio2_pct", "%", *WARD_PLAUSIBLE["fio2_pct"], "3150-0",
         "Inhaled oxygen concentration"),
    Code("on_oxygen", "{bool}", *WARD_PLAUSIBLE["on_oxygen"], None,
         "On supplemental oxygen (0 = air, 1 = oxygen)", integer=True),
    Code("temp_c", "Cel", *WARD_PLAUSIBLE["temp_c"], "8310-5", "Body temperature"),
    Code("acvpu", "{ACVPU}", *WARD_PLAUSIBLE["acvpu"], None,
         "Alert Confusion Voice Pain Unresponsive scale score", integer=True,
         snomed="1104441000000107"),
    Code("potassium_mmol_per_l", "mmol/L", *WARD_PLAUSIBLE["potassium_mmol_per_l"], "2823-3",
         "Potassium [Moles/volume] in Serum or Plasma"),
    Code("creatinine_umol_per_l", "umol/L", *WARD_PLAUSIBLE["creatinine_umol_per_l"],
         "14682-9", "Creatinine [Moles/volume] in Serum or Plasma"),
)}

#: the codes the twin forecasts from (the labs of the RAS and the four vital signs it
#: models); observations of the ward codes are monitoring data only
TWIN_CODES: frozenset[str] = frozenset(CODES) & frozenset(TWIN_ENDPOINTS)

#: LOINC code -> our code name (including the accepted alternatives)
LOINC_TO_CODE = {c.loinc: c.name for c in CODES.values() if c.loinc}
LOINC_TO_CODE.update({"2708-6": "spo2_pct", "2160-0": "creatinine_umol_per_l"})
#: extra LOINC codings written beside the main one (US Core's pulse oximetry carries both)
EXTRA_LOINC = {"spo2_pct": ("2708-6", "Oxygen saturation in Arterial blood")}
#: LOINC blood-pressure panel whose components carry 8480-6 and 8462-4
BP_PANEL_LOINC = "85354-9"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
#: our own code system (for endpoints without a LOINC code)
LOCAL_SYSTEM = "urn:ras-twin:endpoint"
#: SNOMED CT code -> our code name
SNOMED_TO_CODE = {c.snomed: c.name for c in CODES.values() if c.snomed}

#: ACVPU letters in order of the stored value 0..4
ACVPU = ("A", "C", "V", "P", "U")
ACVPU_SYSTEM = "urn:ras-twin:acvpu"
ACVPU_DISPLAY = {"A": "Alert", "C": "New confusion", "V": "Responds to voice",
                 "P": "Responds to pain", "U": "Unresponsive"}
#: SNOMED CT findings for AVPU (UK Core; there is no single SNOMED finding for "new confusion"
#: in the sets we checked, so C is written with our system only)
ACVPU_SNOMED = {"A": "248234008", "V": "300202002", "P": "450847001", "U": "422768004"}
SNOMED_TO_ACVPU = {v: k for k, v in ACVPU_SNOMED.items()}

#: observation-set field (the NEWS2 names) -> our code; its value is in the code's unit, except
#: supplemental_oxygen (true/false -> 1/0) and consciousness (A, C, V, P, U -> 0..4)
SET_FIELDS: dict[str, str] = {
    "respiratory_rate_per_min": "rr_per_min", "spo2_pct": "spo2_pct",
    "supplemental_oxygen": "on_oxygen", "o2_flow_l_per_min": "o2_flow_l_per_min",
    "fio2_pct": "fio2_pct", "sbp_mmhg": "sbp_mmhg", "dbp_mmhg": "dbp_mmhg",
    "hr_bpm": "hr_bpm", "consciousness": "acvpu", "temperature_c": "temp_c",
}

#: spellings we accept for a UCUM code (normalised before storing)
UNIT_ALIASES = {
    "mmHg": "mm[Hg]", "mm Hg": "mm[Hg]", "bpm": "/min", "beats/min": "/min",
    "{beats}/min": "/min", "1/min": "/min", "ng/mL/hr": "ng/mL/h", "ng/ml/h": "ng/mL/h",
    "pg/ml": "pg/mL", "ng/ml": "ng/mL", "breaths/min": "/min", "{breaths}/min": "/min",
    "l/min": "L/min", "degC": "Cel", "°C": "Cel", "mmol/l": "mmol/L",
    "umol/l": "umol/L", "µmol/L": "umol/L", "mg/dl": "mg/dL", "mg/l": "mg/L",
    "degF": "[degF]", "°F": "[degF]",
}

#: (code, UCUM unit) -> converter to the code's own unit
CONVERSIONS = {
    ("creatinine_umol_per_l", "mg/dL"): lambda v: v * 88.42,
    ("creatinine_umol_per_l", "mg/L"): lambda v: v * 8.842,
    ("potassium_mmol_per_l", "meq/L"): lambda v: v,  # K+ is monovalent
    ("potassium_mmol_per_l", "mEq/L"): lambda v: v,
    ("temp_c", "[degF]"): lambda v: (v - 32.0) * 5.0 / 9.0,
}


def normalise_unit(unit: str) -> str:
    """The UCUM code for ``unit`` (aliases resolved)."""
    return UNIT_ALIASES.get(unit.strip(), unit.strip())


def convert(code: str, value: float, unit: str) -> float | None:
    """``value`` in ``code``'s own unit, or None if ``unit`` is not accepted for it."""
    unit = normalise_unit(unit)
    if unit == CODES[code].unit:
        return value
    fn = CONVERSIONS.get((code, unit))
    return None if fn is None else fn(value)


def set_value(field: str, value: float | bool | str) -> float:
    """An observation-set field's value as its code stores it."""
    if field == "supplemental_oxygen":
        return 1.0 if value else 0.0
    if field == "consciousness":
        return float(ACVPU.index(str(value)))
    return float(value)


def check(code: str, value: float, unit: str) -> tuple[str, str] | None:
    """None if (value, unit) is acceptable for ``code``, else (the wrong part, a message)."""
    spec = CODES[code]
    converted = convert(code, value, unit)
    if converted is None:
        also = sorted(u for c, u in CONVERSIONS if c == code)
        return "unit", (f"{code} needs UCUM unit '{spec.unit}'"
                        + (f" (or {', '.join(also)})" if also else "") + f", got '{unit}'")
    if not spec.low <= converted <= spec.high:
        shown = f"{value:g} {normalise_unit(unit)}" if converted != value else f"{value:g}"
        return "value", (f"{code} must be in [{spec.low:g}, {spec.high:g}] {spec.unit}, "
                         f"got {shown}")
    if spec.integer and converted != int(converted):
        return "value", f"{code} must be a whole number, got {value:g}"
    return None
