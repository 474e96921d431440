"""The bedside observation-set form: one set of vital signs (and optional labs) at one time,
checked field by field in clinical words, stored whole or not at all.

Field names are the observation codes (``time``, ``rr_per_min``, ``spo2_pct``, ``on_oxygen``
(``yes``/``no``), ``o2_flow_l_per_min``, ``fio2_pct``, ``sbp_mmhg``, ``dbp_mmhg``, ``hr_bpm``,
``acvpu`` (A, C, V, P, U), ``temp_c``; labs ``potassium_mmol_per_l``,
``creatinine_umol_per_l``, ``angII_pg_per_ml``, ``pra_ng_per_ml_per_h``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from app import codes
from app.errors import ApiError
from app.schemas import ObservationIn, aware_time
from app.services.readings import DBP_NOT_BELOW_SBP, DUPLICATE_OBSERVATION
from app.web import localtime

#: (form field = code, label, unit shown, input step)
VITALS = (
    ("rr_per_min", "Respiratory rate", "/min", "1"),
    ("spo2_pct", "SpO2", "%", "1"),
    ("o2_flow_l_per_min", "Oxygen flow", "L/min", "0.5"),
    ("fio2_pct", "FiO2", "%", "1"),
    ("sbp_mmhg", "Systolic", "mmHg", "1"),
    ("dbp_mmhg", "Diastolic", "mmHg", "1"),
    ("hr_bpm", "Heart rate", "/min", "1"),
    ("temp_c", "Temperature", "°C", "0.1"),
)
LABS = (
    ("potassium_mmol_per_l", "Potassium", "mmol/L", "0.1"),
    ("creatinine_umol_per_l", "Creatinine", "µmol/L", "1"),
    ("angII_pg_per_ml", "Angiotensin II", "pg/mL", "any"),
    ("pra_ng_per_ml_per_h", "Plasma renin activity", "ng/mL/h", "any"),
)
ACVPU_CHOICES = (("A", "Alert"), ("C", "New confusion"), ("V", "Responds to voice"),
                 ("P", "Responds to pain"), ("U", "Unresponsive"))
LABELS = {name: label for name, label, _, _ in VITALS + LABS}
LABELS.update({"time": "Time", "on_oxygen": "On oxygen", "acvpu": "Consciousness (ACVPU)"})
#: a set may be dated this far in the future (clock skew) before it is refused
CLOCK_SKEW = timedelta(minutes=5)


def field_specs() -> list[dict[str, Any]]:
    """The numeric inputs with min/max from the plausible ranges (for the template)."""
    out = []
    for group, rows in (("vitals", VITALS), ("labs", LABS)):
        for name, label, unit, step in rows:
            c = codes.CODES[name]
            out.append({"name": name, "label": label, "unit": unit, "step": step,
                        "min": f"{c.low:g}", "max": f"{c.high:g}", "group": group})
    return out


def _range_message(label: str, name: str, unit: str) -> str:
    c = codes.CODES[name]
    return f"{label} must be between {c.low:g} and {c.high:g} {unit}."


def parse(form) -> tuple[list[ObservationIn], dict[str, str]]:
    """(observations to store, {field: message}); store nothing unless the dict is empty."""
    errors: dict[str, str] = {}
    when = None
    raw_time = (form.get("time") or "").strip()
    if not raw_time:
        errors["time"] = "Enter the time of the observations."
    else:
        try:
            when = localtime.parse_local(raw_time)
        except (ValueError, OverflowError):  # OverflowError: year 1 in a zone east of UTC
            errors["time"] = "Enter the time as date and time."
        else:
            try:
                when = aware_time(when)  # the API's window: 1900-2100
            except ValueError:
                errors["time"] = "The time must be between 1900 and 2100."
            else:
                if when > datetime.now(UTC) + CLOCK_SKEW:
                    errors["time"] = "The time is in the future."
    values: dict[str, float] = {}
    for name, label, unit, _ in VITALS + LABS:
        raw = (form.get(name) or "").strip()
        if not raw:
            continue
        try:
            v = float(raw)
        except ValueError:
            errors[name] = f"{label}: enter a number."
            continue
        c = codes.CODES[name]
        if not math.isfinite(v) or not c.low <= v <= c.high:
            errors[name] = _range_message(label, name, unit)
        else:
            values[name] = v
    oxygen = (form.get("on_oxygen") or "").strip().lower()
    if oxygen not in ("", "yes", "no"):
        errors["on_oxygen"] = "On oxygen: choose yes or no."
    elif oxygen:
        values["on_oxygen"] = 1.0 if oxygen == "yes" else 0.0
    acvpu = (form.get("acvpu") or "").strip().upper()
    if acvpu and acvpu not in codes.ACVPU:
        errors["acvpu"] = "Consciousness: choose A, C, V, P or U."
    elif acvpu:
        values["acvpu"] = float(codes.ACVPU.index(acvpu))
    _cross_checks(values, oxygen, errors)
    if not values and not errors:
        errors["observations"] = "Enter at least one value."
    if errors:
        return [], errors
    items = [ObservationIn(time=when, code=name, value=v, unit=codes.CODES[name].unit,
                           source="form") for name, v in values.items()]
    return items, {}


def _cross_checks(values: dict[str, float], oxygen: str, errors: dict[str, str]) -> None:
    sbp, dbp = values.get("sbp_mmhg"), values.get("dbp_mmhg")
    if sbp is not None and dbp is not None and dbp >= sbp:
        errors["dbp_mmhg"] = DBP_NOT_BELOW_SBP + "."
    if (sbp is None) != (dbp is None) and "sbp_mmhg" not in errors \
            and "dbp_mmhg" not in errors:
        missing = "dbp_mmhg" if dbp is None else "sbp_mmhg"
        errors[missing] = f"Enter {'diastolic' if dbp is None else 'systolic'} with " \
                          f"{'systolic' if dbp is None else 'diastolic'}."
    given = [n for n in ("o2_flow_l_per_min", "fio2_pct") if n in values]
    if oxygen == "no" and any(values.get(n, 0) > (21 if n == "fio2_pct" else 0)
                              for n in given):
        errors["on_oxygen"] = "Oxygen flow or FiO2 given: set 'On oxygen' to yes."
    if oxygen == "" and given:
        errors["on_oxygen"] = "Say whether the patient is on oxygen."


def service_errors(exc: ApiError) -> dict[str, str]:
    """{form field: message in clinical words} of a refusal by the service: DBP at or above a
    stored systolic of the same time, a reading already recorded, else the problem's
    detail under ``observations``."""
    out: dict[str, str] = {}
    for e in exc.errors:
        name = e.get("field", "").split(".")[0]
        if name not in LABELS or name == "time":
            continue
        if exc.type == DUPLICATE_OBSERVATION:
            out[name] = (f"{LABELS[name]}: the same value at the same time is already "
                         "recorded.")
        elif e.get("message") == DBP_NOT_BELOW_SBP:
            out[name] = DBP_NOT_BELOW_SBP + " (recorded at the same time)."
    return out or {"observations": exc.detail}


def messages(errors: dict[str, str]) -> str:
    """The summary line above the form."""
    return "Not recorded: " + " ".join(errors.values())
