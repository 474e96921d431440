"""Pages: login, ward overview, intake, patient page with forms, what-if."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlparse

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from pydantic import ValidationError

from app import auth, services
from app.codes import ACVPU_DISPLAY
from app.errors import ApiError, validation_problem
from app.models import OBS_ENTERED_IN_ERROR
from app.schemas import PatientIn, RegimenIn
from app.services import corrections, dosing, regimens
from app.services.audit import audit_change
from app.services.regimens import regimen_active, regimen_entry
from app.web import forecast_view, localtime, observation_sets, whatif_view
from app.web import ward as ward_rows

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")

def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        exc = validation_problem(exc)
    if isinstance(exc, ApiError):
        return exc.detail
    return str(exc)


def _safe_next(target: str | None) -> str:
    target = unquote(target or "")
    parsed = urlparse(target)
    if target.startswith("/") and not target.startswith("//") and not parsed.netloc:
        return target
    return url_for("web.ward")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = auth.SESSION_ENDED if request.args.get("ended") else None
    status = 200
    if request.method == "POST":
        name = request.form.get("username", "")
        result = auth.check_login(name, request.form.get("password", ""), request.remote_addr)
        for code, detail in result.audit:  # failures and lockouts, never the password
            audit_change(None, "POST", "/login", None, detail, status=code)
        if result.ok:
            auth.login_user(name)
            return redirect(_safe_next(request.args.get("next")))
        error, status = result.message, result.status
    return render_template("login.html", error=error), status


@bp.post("/logout")
def logout():
    auth.logout_user()
    return redirect(url_for("web.login"))


# --- ward -------------------------------------------------------------------------------------


@bp.get("/")
def ward():
    """Every patient, sickest and most overdue first (``app.web.ward``); live updates come
    from ``/ward/events`` (``static/live.js``)."""
    key = request.args.get("sort", "status")
    key = key if key in ward_rows.SORT_KEYS else "status"
    desc = request.args.get("order") == "desc"
    rows = ward_rows.sort_rows(ward_rows.ward_rows(), key, desc)
    return render_template("ward.html", rows=rows, sort=key, desc=desc,
                           keys=ward_rows.SORT_KEYS)


# --- intake -----------------------------------------------------------------------------------


def _form_dt(name: str, required: bool = True) -> datetime | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise ApiError(422, "Invalid input", f"{name}: required",
                           [{"field": name, "message": "required"}])
        return None
    try:
        return localtime.parse_local(raw)
    except ValueError:
        raise ApiError(422, "Invalid input", f"{name}: not a date and time",
                       [{"field": name, "message": "not a date-time"}]) from None


def _clean(form: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in form.items() if v not in ("", None)}


@bp.route("/patients/new", methods=["GET", "POST"])
def intake():
    error = None
    if request.method == "POST":
        f = request.form
        try:
            glucose: Any = f.get("glucose", "normal")
            if glucose not in ("normal", "diabetic"):
                glucose = f.get("glucose_mmol_per_l") or glucose
            data = _clean({"age": f.get("age"), "renal_function": f.get("renal_function"),
                           "glucose": glucose, "infected": f.get("infected") == "on",
                           "infection_onset": _form_dt("infection_onset", required=False),
                           "external_id": f.get("external_id")})
            p = services.admit_patient(PatientIn.model_validate(data))
            g.audit_patient_id = p.id  # the audit row names the admitted patient
            return redirect(url_for("web.patient", patient_id=p.id))
        except (ApiError, ValidationError) as exc:
            error = _message(exc)
    return render_template("intake.html", error=error, form=request.form), 422 if error else 200


# --- patient page -----------------------------------------------------------------------------


def _patient_page(patient_id: str, error: str | None = None, whatif: dict | None = None,
                  whatif_query: dict | None = None, status: int = 200,
                  whatif_pending: bool = False, whatif_error: str | None = None,
                  obs_errors: dict[str, str] | None = None, obs_form: Any = None,
                  **regimen: Any):
    """The patient page; ``regimen`` holds the regimen card's state (``regimen_error``,
    ``regimen_form`` (the submitted values, kept), ``regimen_warnings``, ``whatif_warnings``)."""
    p = _patient_or_404(patient_id)
    obs, total = services.list_observations(patient_id, None, None, include_errors=True)
    forecast = forecast_view.forecast_context(
        patient_id, any(o.status != OBS_ENTERED_IN_ERROR for o in obs))
    now = localtime.now_local()  # the forms' defaults, in ward time
    return render_template(
        "patient.html", p=p, patient_id=patient_id, obs=obs[-50:], total=total, **forecast,
        error=error, whatif=whatif, whatif_query=whatif_query, now=now.isoformat(),
        whatif_pending=whatif_pending, whatif_error=whatif_error,
        live=ward_rows.ward_row(p, compute=False), obs_fields=observation_sets.field_specs(),
        acvpu_choices=observation_sets.ACVPU_CHOICES, obs_errors=obs_errors or {},
        obs_form=obs_form or {},
        tomorrow=(now + timedelta(days=1)).replace(hour=8, minute=0).isoformat(),
        set_labels=SET_LABELS,
        sets=services.patient_news2(patient_id, hours=24 * 7)["history"][::-1][:50],
        acvpu_display=ACVPU_DISPLAY,
        history=[regimen_entry(r) for r in reversed(p.regimens)][:20],
        regimen_active=regimen_active(p.regimen), **_regimen_context(regimen),
    ), status


#: a set's missing NEWS2 parameters, as the vitals table names them
SET_LABELS = {"respiratory_rate_per_min": "RR", "spo2_pct": "SpO2", "sbp_mmhg": "SBP",
              "supplemental_oxygen": "air or oxygen", "hr_bpm": "HR",
              "consciousness": "consciousness", "temperature_c": "temperature"}


def _regimen_context(regimen: dict[str, Any]) -> dict[str, Any]:
    form = dict(regimen.get("regimen_form") or {})
    for name in ("start", "stop"):  # an ISO time with an offset (the what-if's apply button)
        if len(form.get(name) or "") > 16:
            try:
                form[name] = localtime.to_form(localtime.parse_local(form[name]))
            except ValueError:
                form[name] = form[name][:16]
    return {"regimen_error": regimen.get("regimen_error"), "regimen_form": form,
            "regimen_raw": dict(regimen.get("regimen_form") or {}),
            "regimen_warnings": regimen.get("regimen_warnings") or [],
            "whatif_warnings": regimen.get("whatif_warnings") or [],
            "whatif_form": dict(regimen.get("whatif_form") or {})}


def _patient_or_404(patient_id: str):
    """The stored patient, or a 404 page."""
    try:
        return services.get_patient(patient_id)
    except ApiError:
        abort(404)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico: the icon the pages link to."""
    return redirect(url_for("web.static", filename="favicon.svg"), 301)


@bp.get("/patients/<patient_id>")
def patient(patient_id: str):
    return _patient_page(patient_id)


@bp.post("/patients/<patient_id>/observations")
def add_observations(patient_id: str):
    """One bedside observation set (``app.web.observation_sets``): refused whole, with a
    message per field and the values kept, or stored whole."""
    _patient_or_404(patient_id)
    items, errors = observation_sets.parse(request.form)
    if not errors:
        try:
            services.record_observations(patient_id, items, [it.code for it in items])
        except ApiError as exc:
            errors = observation_sets.service_errors(exc)
        except ValidationError as exc:
            errors = {"observations": _message(exc)}
    if errors:
        return _patient_page(patient_id, error=observation_sets.messages(errors), status=422,
                             obs_errors=errors, obs_form=request.form)
    return redirect(url_for("web.patient", patient_id=patient_id))


@bp.post("/patients/<patient_id>/observations/<observation_id>/entered-in-error")
def mark_entered_in_error(patient_id: str, observation_id: str):
    """"Mark entered in error": the reading stays, struck through, and nothing uses it."""
    _patient_or_404(patient_id)
    try:
        corrections.mark_entered_in_error(
            patient_id, corrections.observation_id(patient_id, observation_id),
            auth.actor(), "POST", request.path)
    except ApiError:
        abort(404)
    return redirect(url_for("web.patient", patient_id=patient_id) + "#observations")


#: the regimen form's fields in clinical words (pydantic's messages are for developers)
_REGIMEN_WORDS = {
    "dose_mg": "Dose must be a number of mg between 0 and 80.",
    "interval_h": "The interval must be a number of hours between 4 and 168.",
    "drug": "Unknown drug.",
    "start": "Start must be a date and time.",
    "stop": "Stop must be a date and time after the start.",
}


def _number(name: str, default: str | None = None) -> float | None:
    raw = (request.form.get(name) or default or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(422, "Invalid input", _REGIMEN_WORDS[name],
                       [{"field": name, "message": _REGIMEN_WORDS[name]}]) from None


def _regimen_from_form(patient_id: str | None = None) -> RegimenIn:
    """The regimen of the submitted form: labelled dose limits first (clinical words, e.g.
    "Benazepril 80 mg every 4 h is 480 mg a day; the maximum is 80 mg a day."), then the
    schema (its messages translated)."""
    f = request.form
    drug = f.get("drug") or "benazepril"
    dose, interval = _number("dose_mg"), _number("interval_h", "24")
    if patient_id and dose is not None and interval and drug in _DRUGS:
        dosing.check_limits(services.get_patient(patient_id), drug, dose, interval)
    try:
        start = _form_dt("start")
        stop = _form_dt("stop", required=False)
    except ApiError as exc:
        field = exc.errors[0]["field"] if exc.errors else "start"
        words = "Start is required." if "required" in exc.detail else _REGIMEN_WORDS[field]
        raise ApiError(422, "Invalid input", words, [{"field": field, "message": words}]
                       ) from None
    try:
        return RegimenIn.model_validate(_clean({
            "drug": drug, "dose_mg": dose, "interval_h": interval, "start": start,
            "stop": stop}))
    except ValidationError as exc:
        fields = [str(e["loc"][0]) if e["loc"] else "stop" for e in exc.errors()]
        words = " ".join(dict.fromkeys(_REGIMEN_WORDS.get(n, _REGIMEN_WORDS["stop"])
                                       for n in fields))
        raise ApiError(422, "Invalid input", words,
                       [{"field": n, "message": words} for n in fields]) from None


_DRUGS = frozenset(dosing.limits()["drugs"])


@bp.post("/patients/<patient_id>/regimen")
def set_regimen(patient_id: str):
    """Set the regimen through the dosing checks: refused (422) in clinical words with the
    values kept, or a confirmation page (409) listing the warnings with a "confirm" box."""
    _patient_or_404(patient_id)
    confirm = request.form.get("confirm") in ("on", "1", "true", "yes")
    try:
        services.set_regimen(patient_id, _regimen_from_form(patient_id), actor=auth.actor(),
                             confirm=confirm, method="POST", path=request.path)
    except dosing.ConfirmationRequired as exc:
        note = ("Tick the box to confirm that you have reviewed the warnings."
                if request.form.get("confirmation") else None)
        return _patient_page(patient_id, error=note, regimen_warnings=exc.warnings,
                             regimen_form=request.form, status=409)
    except (ApiError, ValidationError) as exc:
        message = _message(exc)
        return _patient_page(patient_id, error=message, regimen_error=message,
                             regimen_form=request.form, status=422)
    return redirect(url_for("web.patient", patient_id=patient_id))


@bp.post("/patients/<patient_id>/regimen/stop")
def stop_treatment(patient_id: str):
    """"Stop treatment": the current regimen ends now (audited; no confirmation)."""
    _patient_or_404(patient_id)
    try:
        regimens.stop_treatment(patient_id, actor=auth.actor(), method="POST",
                                path=request.path)
    except ApiError as exc:
        return _patient_page(patient_id, error=f"Nothing to stop: {exc.detail}.", status=409)
    return redirect(url_for("web.patient", patient_id=patient_id))


@bp.post("/patients/<patient_id>/whatif")
def whatif(patient_id: str):
    """Queue the what-if and answer at once: the page shows it when computed."""
    _patient_or_404(patient_id)
    try:
        regimen = _regimen_from_form(patient_id)
        ctx = whatif_view.whatif_context(patient_id, regimen)
    except (ApiError, ValidationError) as exc:
        return _patient_page(patient_id, error=_message(exc), status=422,
                             whatif_form=request.form)
    return _patient_page(patient_id, **ctx)


bp.add_url_rule("/patients/<patient_id>/whatif.png", view_func=whatif_view.whatif_png)
bp.add_url_rule("/patients/<patient_id>/whatif-section", view_func=whatif_view.section,
                endpoint="whatif_section")
bp.add_url_rule("/patients/<patient_id>/waveform.png", view_func=forecast_view.waveform_png)
bp.add_url_rule("/patients/<patient_id>/forecast-section", view_func=forecast_view.section,
                endpoint="forecast_section")
bp.add_url_rule("/patients/<patient_id>/forecasts/<digest>/<panel>.png",
                view_func=forecast_view.older_plot, endpoint="older_forecast_png")
