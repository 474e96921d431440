"""Edit a patient's details with their change history, discharge and readmit (issue 14), and
the Discharged list with its search. The routes go on the ``web`` blueprint
(``app.web.views.bp``); the patient page links here ("Edit details / discharge").

A refusal keeps the submitted values and says what is wrong in clinical words (422, or 409
when the patient is discharged or the external pseudonym is taken)."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from pydantic import ValidationError

from app import auth, services
from app.errors import ApiError
from app.models import DISCHARGED
from app.schemas import PatientPatch
from app.web import localtime
from app.web.views import _form_dt, _message, _patient_or_404, bp

#: the history's field names as the page shows them
LABELS = {"external_id": "External pseudonym", "age": "Age (years)",
          "renal_function": "Renal function", "glucose": "Glucose",
          "infected": "Infected", "infection_onset": "Infection onset",
          "spo2_scale": "SpO2 scale", "status": "Admission"}

#: the form's fields in clinical words (pydantic's messages are for developers)
WORDS = {
    "age": "Age must be a number of years between 18 and 110.",
    "renal_function": "Renal function must be normal or impaired.",
    "glucose": "A fixed glucose must be a number of mmol/L between 2 and 30.",
    "infected": "Infected must be ticked or not.",
    "infection_onset": "Infection onset must be a date and time, not in the future.",
    "external_id": "The external pseudonym may have up to 64 letters, digits and . _ : - "
                   "(no spaces).",
    "spo2_scale": "The SpO2 scale must be 1 or 2.",
}
CONFIRM = {"discharge": "Tick the box to confirm that the patient leaves the ward.",
           "readmit": "Tick the box to confirm that the patient is back on the ward."}


def _refuse(field: str, status: int = 422) -> ApiError:
    return ApiError(status, "Invalid input", WORDS[field],
                    [{"field": field, "message": WORDS[field]}])


def _float(name: str, field: str) -> float | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise _refuse(field) from None


def _patch_from_form() -> PatientPatch:
    f = request.form
    age = _float("age", "age")
    if age is None:
        raise ApiError(422, "Invalid input", "Age is required.",
                       [{"field": "age", "message": "required"}])
    glucose: Any = f.get("glucose") or "normal"
    if glucose not in ("normal", "diabetic"):
        glucose = _float("glucose_mmol_per_l", "glucose")
        if glucose is None:
            raise ApiError(422, "Invalid input", "Enter the fixed glucose in mmol/L, or "
                           "choose a glucose pattern.",
                           [{"field": "glucose", "message": "required"}])
    try:
        onset = _form_dt("infection_onset", required=False)
    except ApiError:
        raise _refuse("infection_onset") from None
    data = {"age": age, "renal_function": f.get("renal_function") or "normal",
            "glucose": glucose, "infected": f.get("infected") == "on",
            "infection_onset": onset,
            "external_id": (f.get("external_id") or "").strip() or None,
            "spo2_scale": 2 if f.get("spo2_scale") == "2" else 1}
    try:
        return PatientPatch.model_validate(data)
    except ValidationError as exc:
        fields = [str(e["loc"][0]) if e["loc"] else "age" for e in exc.errors()]
        words = " ".join(dict.fromkeys(WORDS.get(n, WORDS["age"]) for n in fields))
        raise ApiError(422, "Invalid input", words,
                       [{"field": n, "message": words} for n in fields]) from None


def _service_words(exc: ApiError) -> str:
    """A refusal of the service in clinical words."""
    fields = {e.get("field") for e in exc.errors}
    if exc.status == 409 and "external_id" in fields:
        return "This external pseudonym is already used by another patient."
    if "infection_onset" in fields:
        return WORDS["infection_onset"]
    return _message(exc)


def _form_of(p) -> dict[str, str]:
    """The form's values of the stored patient."""
    return {"age": f"{p.age_years:g}", "renal_function": p.renal_function,
            "glucose": p.glucose_pattern or "fixed",
            "glucose_mmol_per_l": "" if p.glucose_mmol_per_l is None
            else f"{p.glucose_mmol_per_l:g}",
            "infected": "on" if p.infected else "",
            "infection_onset": localtime.to_form(p.infection_onset),
            "external_id": p.external_id or "", "spo2_scale": str(p.spo2_scale or 1)}


def _page(patient_id: str, error: str | None = None, form: Any = None, status: int = 200,
          discharge_form: Any = None):
    p = _patient_or_404(patient_id)
    return render_template(
        "patient_details.html", p=p, error=error, form=form or _form_of(p),
        discharged=p.status == DISCHARGED, history=services.patient_history(patient_id),
        labels=LABELS, now=localtime.to_form(localtime.now_local()),
        discharge_form=discharge_form or {}), status


@bp.route("/patients/<patient_id>/details", methods=["GET", "POST"])
def patient_details(patient_id: str):
    """The details form (POST saves it: one history row per changed field) and the
    history, with Discharge or Readmit."""
    _patient_or_404(patient_id)
    if request.method == "GET":
        return _page(patient_id)
    try:
        services.update_patient(patient_id, _patch_from_form(), auth.actor(), "POST",
                                request.path)
    except ApiError as exc:
        return _page(patient_id, _service_words(exc), request.form,
                     409 if exc.status == 409 else 422)
    return redirect(url_for("web.patient_details", patient_id=patient_id) + "#history")


@bp.post("/patients/<patient_id>/discharge")
def discharge(patient_id: str):
    """Discharge (now, or at the time given in ward time): off the ward, findable under
    Discharged, read-only until readmitted."""
    _patient_or_404(patient_id)
    if request.form.get("confirm") != "on":
        return _page(patient_id, CONFIRM["discharge"], status=422,
                     discharge_form=request.form)
    try:
        when = _form_dt("time", required=False)
        services.discharge_patient(patient_id, auth.actor(), when, "POST", request.path)
    except ApiError as exc:
        words = ("The discharge time must be a date and time, not in the future."
                 if exc.status == 422 else _message(exc))
        return _page(patient_id, words, status=exc.status, discharge_form=request.form)
    return redirect(url_for("web.patient_details", patient_id=patient_id))


@bp.post("/patients/<patient_id>/readmit")
def readmit(patient_id: str):
    """Readmit: back on the ward, readings and treatment can be recorded again."""
    _patient_or_404(patient_id)
    if request.form.get("confirm") != "on":
        return _page(patient_id, CONFIRM["readmit"], status=422)
    try:
        services.readmit_patient(patient_id, auth.actor(), "POST", request.path)
    except ApiError as exc:
        return _page(patient_id, _message(exc), status=exc.status)
    return redirect(url_for("web.patient", patient_id=patient_id))


#: the most discharged patients the list shows at once (the search narrows it)
DISCHARGED_LIMIT = 200


@bp.get("/discharged")
def discharged():
    """Discharged patients, most recent first; the search matches a part of the id or the
    external pseudonym."""
    q = (request.args.get("q") or "").strip()[:64]
    rows, total = services.list_patients(DISCHARGED_LIMIT, 0, DISCHARGED, q or None)
    rows.sort(key=lambda p: (p.discharged_at is not None, p.discharged_at), reverse=True)
    return render_template("discharged.html", rows=rows, total=total, q=q,
                           limit=DISCHARGED_LIMIT)
