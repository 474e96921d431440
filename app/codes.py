"""Observation codes: our endpoint names, their UCUM units, plausible ranges and LOINC codes."""

from __future__ import annotations

from dataclasses import dataclass

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
)}

#: LOINC code -> our code name
LOINC_TO_CODE = {c.loinc: c.name for c in CODES.values() if c.loinc}
#: LOINC blood-pressure panel whose components carry 8480-6 and 8462-4
BP_PANEL_LOINC = "85354-9"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
#: our own code system (for endpoints without a LOINC code)
LOCAL_SYSTEM = "urn:ras-twin:endpoint"

#: spellings we accept for a UCUM code (normalised before storing)
UNIT_ALIASES = {
    "mmHg": "mm[Hg]", "mm Hg": "mm[Hg]", "bpm": "/min", "beats/min": "/min",
    "{beats}/min": "/min", "1/min": "/min", "ng/mL/hr": "ng/mL/h", "ng/ml/h": "ng/mL/h",
    "pg/ml": "pg/mL", "ng/ml": "ng/mL",
}


def normalise_unit(unit: str) -> str:
    """The UCUM code for ``unit`` (aliases resolved)."""
    return UNIT_ALIASES.get(unit.strip(), unit.strip())


def check(code: str, value: float, unit: str) -> tuple[str, str] | None:
    """None if (value, unit) is acceptable for ``code``, else (the wrong part, a message)."""
    spec = CODES[code]
    if normalise_unit(unit) != spec.unit:
        return "unit", f"{code} needs UCUM unit '{spec.unit}', got '{unit}'"
    if not spec.low <= value <= spec.high:
        return "value", (f"{code} must be in [{spec.low:g}, {spec.high:g}] {spec.unit}, "
                         f"got {value:g}")
    return None
