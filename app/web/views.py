"""Pages: login, ward overview, intake, patient page with forms, what-if."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlparse

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from pydantic import ValidationError

from app import auth, forecasting, plots, services
from app.errors import ApiError, validation_problem
from app.schemas import PatientIn, RegimenIn
from app.web import observation_sets
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
    error = None
    if request.method == "POST":
        name = request.form.get("username", "")
        if auth.check_login(name, request.form.get("password", "")):
            auth.login_user(name)
            return redirect(_safe_next(request.args.get("next")))
        error = "Unknown user or wrong password."
    status = 401 if error else 200
    return render_template("login.html", error=error), status


@bp.post("/logout")
def logout():
    session.clear()
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
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "Invalid input", f"{name}: not a date and time",
                       [{"field": name, "message": "not a date-time"}]) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


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
            return redirect(url_for("web.patient", patient_id=p.id))
        except (ApiError, ValidationError) as exc:
            error = _message(exc)
    return render_template("intake.html", error=error, form=request.form), 422 if error else 200


# --- patient page -----------------------------------------------------------------------------


def _patient_page(patient_id: str, error: str | None = None, whatif: dict | None = None,
                  whatif_query: dict | None = None, status: int = 200,
                  obs_errors: dict[str, str] | None = None, obs_form: Any = None):
    p = _patient_or_404(patient_id)
    obs, total = services.list_observations(patient_id, None, None)
    fc, fc_error = None, None
    if obs:
        try:
            fc = services.forecast(patient_id, actor=auth.actor())
        except ApiError as exc:
            fc_error = exc.detail
    else:
        fc_error = "No observations yet: enter one below to get a forecast."
    now = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    return render_template(
        "patient.html", p=p, obs=obs[-50:], total=total, fc=fc, fc_error=fc_error,
        fc24={k: ward_rows.at_24h(fc, k) for k in ("sbp_mmhg", "dbp_mmhg")} if fc else {},
        error=error, whatif=whatif, whatif_query=whatif_query, now=now.isoformat(),
        live=ward_rows.ward_row(p, compute=False), obs_fields=observation_sets.field_specs(),
        acvpu_choices=observation_sets.ACVPU_CHOICES, obs_errors=obs_errors or {},
        obs_form=obs_form or {},
        tomorrow=(now + timedelta(days=1)).replace(hour=8, minute=0).isoformat(),
    ), status


def _patient_or_404(patient_id: str):
    """The stored patient, or a 404 page."""
    try:
        return services.get_patient(patient_id)
    except ApiError:
        abort(404)


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
        except (ApiError, ValidationError) as exc:
            errors = {"observations": _message(exc)}
    if errors:
        return _patient_page(patient_id, error=observation_sets.messages(errors), status=422,
                             obs_errors=errors, obs_form=request.form)
    return redirect(url_for("web.patient", patient_id=patient_id))


def _regimen_from_form() -> RegimenIn:
    f = request.form
    return RegimenIn.model_validate(_clean({
        "drug": f.get("drug") or "benazepril", "dose_mg": f.get("dose_mg"),
        "interval_h": f.get("interval_h"), "start": _form_dt("start"),
        "stop": _form_dt("stop", required=False)}))


@bp.post("/patients/<patient_id>/regimen")
def set_regimen(patient_id: str):
    _patient_or_404(patient_id)
    try:
        services.set_regimen(patient_id, _regimen_from_form())
    except (ApiError, ValidationError) as exc:
        return _patient_page(patient_id, error=_message(exc), status=422)
    return redirect(url_for("web.patient", patient_id=patient_id))


@bp.post("/patients/<patient_id>/whatif")
def whatif(patient_id: str):
    _patient_or_404(patient_id)
    try:
        regimen = _regimen_from_form()
        result = services.what_if(patient_id, regimen, horizon_h=72, actor=auth.actor())
    except (ApiError, ValidationError) as exc:
        return _patient_page(patient_id, error=_message(exc), status=422)
    query = {"drug": regimen.drug, "dose_mg": regimen.dose_mg, "interval_h": regimen.interval_h,
             "start": regimen.start.isoformat()}
    if regimen.stop:
        query["stop"] = regimen.stop.isoformat()
    return _patient_page(patient_id, whatif=result, whatif_query=query)


@bp.get("/patients/<patient_id>/whatif.png")
def whatif_png(patient_id: str):
    try:
        regimen = RegimenIn.model_validate(_clean(dict(request.args)))
        result = services.what_if(patient_id, regimen, horizon_h=72, actor=auth.actor())
    except (ApiError, ValidationError) as exc:
        return Response(_message(exc), status=422, mimetype="text/plain")
    return Response(plots.render_whatif(result), mimetype="image/png")


@bp.get("/patients/<patient_id>/waveform.png")
def waveform_png(patient_id: str):
    """Arterial pressure waveform at the forecast's issue time, from the patient's own
    (personalised) forecast: median SBP, DBP and HR at that time."""
    try:
        fc = services.forecast(patient_id, actor=auth.actor())
        now = {name: fc["endpoints"][name]["median"][0]
               for name in ("sbp_mmhg", "dbp_mmhg", "hr_bpm")}
        wave = forecasting.pressure_waveform(now["sbp_mmhg"], now["dbp_mmhg"], now["hr_bpm"])
    except ApiError as exc:
        return Response(exc.detail, status=exc.status, mimetype="text/plain")
    return Response(plots.render_waveform(wave), mimetype="image/png")
