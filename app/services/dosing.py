"""Dosing safety of a regimen: labelled limits (refused, 422) and warnings (confirmed, 409).

``twin/data/dose_limits.json`` holds each drug's labelled initial, usual and maximum daily
dose, its dosing intervals and its renal dose adjustment, with sources (docs/dosing.md).

- **Limits** (``check_limits``): a daily dose (``dose_mg * 24 / interval_h``) above the
  maximum (the renal maximum when renal function is impaired), a single dose above the
  largest labelled one, or an interval outside the labelled schedule is refused, in clinical
  words ("Benazepril 80 mg every 4 h is 480 mg a day; the maximum is 80 mg a day.").
- **Warnings** (``warnings_for``): before *starting or raising* an ACE inhibitor, the latest
  SBP < 100 mmHg, potassium > 5.5 mmol/L, eGFR < 30 (when recorded), a rising creatinine,
  a starting dose above the renal starting dose and a pregnancy flag (when the patient model
  has one); for any regimen with a dose, a start more than 3 days in the past. Lowering or
  stopping never warns about contraindications. A warning needs ``confirm``; the
  confirmation is audited with the warnings (``audit_regimen``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import select

from app import codes, db
from app.errors import ApiError
from app.models import OBS_FINAL, Observation, Patient, utcnow
from app.services import audit_chain

CONFIRMATION_REQUIRED = "confirmation-required"
#: latest readings older than this are not used for the warnings
RECENT = timedelta(days=30)


@cache
def limits() -> dict[str, Any]:
    """The dose limits file (twin/data/dose_limits.json)."""
    return json.loads(resources.files("twin.data").joinpath("dose_limits.json").read_text())


def drug_limits(drug: str) -> dict[str, Any]:
    return limits()["drugs"].get(drug, {"labelled": False, "interval_h": [4, 168]})


class ConfirmationRequired(ApiError):
    """409 problem ``confirmation-required`` listing the warnings (``{code, message}``)."""

    def __init__(self, warnings: list[dict[str, str]]) -> None:
        detail = ("This regimen needs a confirmation: "
                  + " ".join(w["message"] for w in warnings)
                  + ' Repeat the request with "confirm": true to set it anyway.')
        super().__init__(409, "Confirmation required", detail,
                         [{"field": "confirm", "message": "required: see warnings"}])
        self.warnings = warnings
        self.type = CONFIRMATION_REQUIRED

    def body(self, instance: str) -> dict[str, Any]:
        return {"type": self.type, "title": self.title, "status": self.status,
                "detail": self.detail, "instance": instance, "errors": self.errors,
                "warnings": self.warnings}


def _g(x: float) -> str:
    return f"{x:g}"


def daily_mg(dose_mg: float, interval_h: float) -> float:
    """Milligrams per 24 h of ``dose_mg`` every ``interval_h`` hours."""
    return dose_mg * 24.0 / interval_h


def _every(interval_h: float) -> str:
    return "once a day" if interval_h == 24 else f"every {_g(interval_h)} h"


def _latest(patient_id: str, code: str, since: datetime, n: int = 1) -> list[Observation]:
    """The patient's newest ``n`` observations of ``code`` since ``since`` (newest first);
    readings marked entered in error are left out."""
    q = (select(Observation).where(Observation.patient_id == patient_id,
                                   Observation.code == code, Observation.time >= since,
                                   Observation.status == OBS_FINAL)
         .order_by(Observation.time.desc(), Observation.id.desc()).limit(n))
    return list(db.session().scalars(q).all())


def _egfr_code() -> str | None:
    return next((c for c in codes.CODES if c.startswith("egfr")), None)


def renal_impaired(p: Patient, creatinine_above: float | None = None,
                   now: datetime | None = None) -> tuple[bool, str]:
    """(renal dose adjustment applies, why in words): the patient's renal function is
    impaired, the latest eGFR (if recorded) is below 30 or the latest creatinine is above
    ``creatinine_above`` (the label's equivalent, e.g. benazepril 3 mg/dL = 265 umol/L)."""
    now = now or utcnow()
    if p.renal_function == "impaired":
        return True, "impaired renal function"
    code = _egfr_code()
    if code:
        rows = _latest(p.id, code, now - RECENT)
        if rows and rows[0].value < limits()["warnings"]["egfr_below"]:
            return True, f"eGFR {_g(rows[0].value)}"
    rows = _latest(p.id, "creatinine_umol_per_l", now - RECENT) if creatinine_above else []
    if rows and rows[0].value > creatinine_above:
        return True, f"creatinine {rows[0].value:.0f} µmol/L"
    return False, ""


def check_limits(p: Patient, drug: str, dose_mg: float, interval_h: float,
                 prefix: str = "") -> None:
    """Refuse (422, naming ``dose_mg`` / ``interval_h``) a regimen outside the labelling."""
    if dose_mg <= 0:
        return
    lim = drug_limits(drug)
    name = drug.capitalize()
    errors: list[dict[str, str]] = []
    per_day = daily_mg(dose_mg, interval_h)
    renal = lim.get("renal")
    impaired, why = (renal_impaired(p, renal.get("creatinine_umol_per_l_above"))
                     if renal else (False, ""))
    max_day = renal["max_mg_per_day"] if impaired else lim.get("max_mg_per_day")
    if max_day is not None and per_day > max_day + 1e-9:
        where = f" with {why}" if impaired else ""
        errors.append({"field": prefix + "dose_mg", "message": (
            f"{name} {_g(dose_mg)} mg {_every(interval_h)} is {per_day:.4g} mg a day; "
            f"the maximum{where} is {_g(max_day)} mg a day.")})
    elif lim.get("max_mg_per_intake") and dose_mg > lim["max_mg_per_intake"] + 1e-9:
        errors.append({"field": prefix + "dose_mg", "message": (
            f"{name} {_g(dose_mg)} mg in one dose is above the largest labelled single dose "
            f"of {_g(lim['max_mg_per_intake'])} mg.")})
    lo, hi = lim["interval_h"]
    if not lo <= interval_h <= hi:
        span = f"every {_g(lo)} h" if lo == hi else f"every {_g(lo)} to {_g(hi)} h"
        words = lim.get("interval_words")
        errors.append({"field": prefix + "interval_h", "message": (
            f"{name} is given {words} ({span}); every {_g(interval_h)} h is not a labelled "
            "schedule." if words else f"{name} is given {span}.")})
    if errors:
        raise ApiError(422, "Dose outside the labelling",
                       " ".join(e["message"] for e in errors), errors)


def _active(r, now: datetime):
    """``r`` if it is giving doses now or later (dose above 0, not stopped), else None."""
    if r is None or r.dose_mg <= 0 or (r.stop is not None and r.stop <= now):
        return None
    return r


def starting_or_raising(current, drug: str, dose_mg: float, interval_h: float) -> bool:
    """True if the regimen starts a drug or raises its daily dose (not lowering, stopping
    or re-timing the same daily dose)."""
    if dose_mg <= 0:
        return False
    if current is None or current.drug != drug:
        return True
    return daily_mg(dose_mg, interval_h) > daily_mg(current.dose_mg, current.interval_h) + 1e-9


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _vitals_warnings(p: Patient, now: datetime, name: str) -> list[dict[str, str]]:
    out = []
    w = limits()["warnings"]
    sbp = _latest(p.id, "sbp_mmhg", now - RECENT)
    if sbp and sbp[0].value < w["sbp_below_mmhg"]:
        t = sbp[0].time
        near = timedelta(minutes=10)  # the same observation set
        dbp = [o for o in _latest(p.id, "dbp_mmhg", t - near, 5) if o.time <= t + near][:1]
        hr = [o for o in _latest(p.id, "hr_bpm", t - near, 5) if o.time <= t + near][:1]
        bp = f"{sbp[0].value:.0f}/{dbp[0].value:.0f}" if dbp else f"{sbp[0].value:.0f}"
        pulse = f", heart rate {hr[0].value:.0f}/min" if hr else ""
        fast = " (low pressure with a fast pulse: volume depletion?)" if (
            hr and hr[0].value > 100) else ""
        out.append({"code": "low-sbp", "message": (
            f"Latest blood pressure {bp} mmHg{pulse} at {_when(t)}{fast}: systolic below "
            f"{w['sbp_below_mmhg']} mmHg; starting or raising {name} can cause marked "
            "hypotension.")})
    k = _latest(p.id, "potassium_mmol_per_l", now - RECENT)
    if k and k[0].value > w["potassium_above_mmol_per_l"]:
        out.append({"code": "high-potassium", "message": (
            f"Latest potassium {_g(k[0].value)} mmol/L at {_when(k[0].time)} is above "
            f"{w['potassium_above_mmol_per_l']} mmol/L: ACE inhibitors raise potassium.")})
    code = _egfr_code()
    if code:
        e = _latest(p.id, code, now - RECENT)
        if e and e[0].value < w["egfr_below"]:
            out.append({"code": "low-egfr", "message": (
                f"Latest eGFR {_g(e[0].value)} at {_when(e[0].time)} is below "
                f"{w['egfr_below']}: severe renal impairment.")})
    out += _creatinine_warning(p, now)
    return out


def _creatinine_warning(p: Patient, now: datetime) -> list[dict[str, str]]:
    w = limits()["warnings"]
    latest = _latest(p.id, "creatinine_umol_per_l", now - RECENT)
    if not latest:
        return []
    last = latest[0]
    window = timedelta(hours=w["creatinine_window_h"])
    before = [o for o in _latest(p.id, "creatinine_umol_per_l", last.time - window, 50)
              if o.time < last.time]
    if not before:
        return []
    low = min(before, key=lambda o: o.value)
    rise = last.value - low.value
    if rise >= w["creatinine_rise_umol_per_l"] or rise >= w["creatinine_rise_fraction"] * low.value:
        return [{"code": "rising-creatinine", "message": (
            f"Creatinine rose from {low.value:.0f} to {last.value:.0f} µmol/L "
            f"(+{rise:.0f} µmol/L, +{100 * rise / low.value:.0f} %) within "
            f"{w['creatinine_window_h']} h: possible acute kidney injury; ACE inhibitors can "
            "worsen renal function.")}]
    return []


def warnings_for(p: Patient, drug: str, dose_mg: float, interval_h: float, start: datetime,
                 now: datetime | None = None) -> list[dict[str, str]]:
    """The warnings a regimen needs confirmed (empty: none), each ``{code, message}``."""
    now = now or utcnow()
    lim = drug_limits(drug)
    name = drug.capitalize()
    out: list[dict[str, str]] = []
    days = limits()["warnings"]["start_in_past_days"]
    if dose_mg > 0 and start < now - timedelta(days=days):
        ago = (now - start).days
        out.append({"code": "start-in-past", "message": (
            f"The start ({_when(start)}) is {ago} days ago, more than {days} days in the "
            "past: every dose since then is recorded as given.")})
    current = _active(p.regimen, now)
    if not starting_or_raising(current, drug, dose_mg, interval_h):
        return out
    if not lim.get("labelled"):
        out.append({"code": "unlabelled-drug", "message": (
            f"{name} has no product labelling (investigational): its dose cannot be checked "
            "against a labelled maximum.")})
    out += _vitals_warnings(p, now, name.lower())
    renal = lim.get("renal")
    if renal and (current is None or current.drug != drug):
        impaired, why = renal_impaired(p, renal.get("creatinine_umol_per_l_above"), now)
        per_day = daily_mg(dose_mg, interval_h)
        if impaired and per_day > renal["initial_mg_per_day"] + 1e-9:
            out.append({"code": "renal-start-dose", "message": (
                f"With {why} the recommended starting dose of {name.lower()} is "
                f"{_g(renal['initial_mg_per_day'])} mg a day; {per_day:.4g} mg a day is "
                "proposed.")})
    if getattr(p, "pregnant", False):
        out.append({"code": "pregnancy", "message": (
            "The patient is recorded as pregnant: ACE inhibitors are contraindicated in "
            "pregnancy (fetal toxicity).")})
    return out


def check(p: Patient, drug: str, dose_mg: float, interval_h: float, start: datetime,
          confirm: bool, prefix: str = "") -> list[dict[str, str]]:
    """Refuse a regimen outside the labelling (422); raise ConfirmationRequired (409) if it
    has warnings and ``confirm`` is false; else the warnings confirmed (maybe empty)."""
    check_limits(p, drug, dose_mg, interval_h, prefix)
    found = warnings_for(p, drug, dose_mg, interval_h, start)
    if found and not confirm:
        raise ConfirmationRequired(found)
    return found


def audit_regimen(actor: str | None, method: str, path: str, patient_id: str,
                  detail: dict[str, Any], action: str = "confirm") -> None:
    """One audit row for a confirmed regimen (``detail`` holds its warnings) or a stopped
    treatment (action ``write``)."""
    with db.get_engine().begin() as conn:
        audit_chain.append(conn, {
            "time": utcnow(), "actor": actor, "action": action, "method": method[:8],
            "path": path[:256], "patient_id": patient_id, "status": 200,
            "detail": json.dumps(detail)})
