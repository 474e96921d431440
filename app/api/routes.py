"""The v1 endpoints: thin HTTP adapters around ``app.services``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, json, render_template, request, url_for
from pydantic import BaseModel, ValidationError

from app import plots, services
from app.api import admission, fhir, openapi, regimens
from app.api.admission import patient_json as _patient
from app.auth import actor
from app.codes import CODES
from app.errors import ApiError, field_error, validation_problem
from app.models import Observation
from app.schemas import (
    MAX_HORIZON_H,
    ModelOut,
    News2In,
    News2Out,
    ObservationBatch,
    ObservationOut,
    ObservationPage,
    ObservationSetIn,
    ObservationSetRecorded,
    ObservationStatusIn,
    PatientIn,
    PatientNews2Out,
    PatientOut,
    PatientPage,
    PatientPatch,
    Recorded,
    ScenarioOut,
    ScenarioRequest,
    SimulateRequest,
    SimulationOut,
    StatusOut,
    aware_time,
)
from app.services import corrections, dosing, freshness, los
from app.services.dosing import ConfirmationRequired
from app.services.regimens import RegimenChange

bp = Blueprint("api", __name__, url_prefix="/api/v1")
FHIR_JSON = "application/fhir+json"


def _json(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, mimetype=mimetype)


def _out(model: type[BaseModel], data: Any, status: int = 200) -> Response:
    """``data`` rendered through ``model``, the schema the OpenAPI document shows."""
    return _json(model.model_validate(data).model_dump(mode="json"), status)


def _status(patient_id: str) -> dict | None:
    """The patient's status, or None (logged) if the status rules fail: a read of the
    patient is never refused because of them."""
    try:
        return services.status_dict(patient_id)
    except Exception:
        current_app.logger.exception("status failed", extra={"patient_id": patient_id})
        return None


def _observation(r: Observation) -> dict[str, Any]:
    return {"id": r.id, "time": r.time, "code": r.code, "value": r.value, "unit": r.unit,
            "source": r.source, "status": r.status or "final"}


def body_json() -> Any:
    """The request body parsed as JSON, or a 400/415 problem."""
    mimetype = request.mimetype
    if mimetype not in ("application/json", FHIR_JSON):
        raise ApiError(415, "Unsupported Media Type",
                       f"Content-Type must be application/json, got {mimetype or 'none'!r}",
                       [{"field": "Content-Type", "message": "unsupported"}])
    try:
        return json.loads(request.get_data(cache=True) or b"")
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ApiError(400, "Malformed JSON", f"body: not valid JSON ({type(exc).__name__})",
                       [{"field": "body", "message": "malformed JSON"}]) from None


def _strict(model: type[BaseModel]) -> Any:
    """The (well-formed) JSON body validated against ``model`` in pydantic's strict mode: a
    number is a JSON number (no ``true``, no ``"120"``), a boolean a JSON boolean; 422
    naming the field."""
    try:
        return model.model_validate_json(request.get_data(cache=True), strict=True)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def parse_body(model: type[BaseModel]) -> Any:
    """The JSON body validated against ``model`` (400 malformed, 415, 422 naming the field)."""
    body_json()
    if request.mimetype != "application/json":
        raise ApiError(415, "Unsupported Media Type", "Content-Type must be application/json",
                       [{"field": "Content-Type", "message": "unsupported"}])
    return _strict(model)


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise field_error(name, "must be an integer", 400) from None
    if not lo <= value <= hi:
        raise field_error(name, f"must be in [{lo}, {hi}]", 400)
    return value


def _float_arg(name: str, default: float, lo: float, hi: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise field_error(name, "must be a number", 400) from None
    if not lo <= value <= hi:
        raise field_error(name, f"must be in [{lo:g}, {hi:g}]", 400)
    return value


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise field_error(name, "must be an ISO 8601 date-time", 400) from None
    if t.tzinfo is None:
        raise field_error(name, "needs a timezone", 400)
    try:
        return aware_time(t)
    except ValueError as exc:
        raise field_error(name, str(exc), kind="datetime_window") from None


def forecast_args() -> dict[str, Any]:
    """horizon_h, coverage and engine from the query string (400 if out of range)."""
    engine = request.args.get("engine")
    return {"horizon_h": _float_arg("horizon_h", 72.0, 1.0, MAX_HORIZON_H),
            "coverage": _float_arg("coverage", 0.9, 0.5, 0.99),
            "engine": engine or None}


def _next(endpoint: str, total: int, limit: int, offset: int, **kw) -> str | None:
    if offset + limit >= total:
        return None
    args = {k: v for k, v in request.args.items() if k not in ("limit", "offset")}
    return url_for(endpoint, limit=limit, offset=offset + limit, **kw, **args)


# --- spec and docs ----------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 description of this API."""
    return _json(openapi.spec())


@bp.get("/docs")
def docs():
    """A readable page listing every operation (no JavaScript)."""
    return render_template("api_docs.html", spec=openapi.spec())


# --- patients ---------------------------------------------------------------------------------


@bp.post("/patients")
def create_patient():
    p = services.admit_patient(parse_body(PatientIn))
    resp = _out(PatientOut, _patient(p), 201)
    resp.headers["Location"] = url_for("api.get_patient", patient_id=p.id)
    return resp


@bp.get("/patients")
def list_patients():
    limit = _int_arg("limit", 50, 1, 200)
    offset = _int_arg("offset", 0, 0, 10**9)
    include = request.args.get("include")
    if include not in (None, "status"):
        raise field_error("include", "must be 'status' (or absent)", 400)
    rows, total = services.list_patients(limit, offset, request.args.get("status", "admitted"),
                                         request.args.get("q"))
    # the status costs a few queries per patient (~15 ms): only when asked for
    items = [{**_patient(p), "status": _status(p.id) if include else None} for p in rows]
    return _out(PatientPage, {"items": items, "total": total,
                              "limit": limit, "offset": offset,
                              "next": _next("api.list_patients", total, limit, offset)})


@bp.get("/patients/<patient_id>")
def get_patient(patient_id: str):
    p = services.get_patient(patient_id)
    return _out(PatientOut, {**_patient(p), "status": _status(p.id),
                             "remaining_stay": los.remaining_stay(p.id)})


@bp.get("/patients/<patient_id>/status")
def get_status(patient_id: str):
    services.get_patient(patient_id)
    return _out(StatusOut, services.status_dict(patient_id))


@bp.patch("/patients/<patient_id>")
def patch_patient(patient_id: str):
    patch = parse_body(PatientPatch)
    return _out(PatientOut, _patient(services.update_patient(patient_id, patch, actor(),
                                                             "PATCH", request.path)))


# --- observations and regimen -----------------------------------------------------------------


@bp.post("/patients/<patient_id>/observations")
def post_observations(patient_id: str):
    services.get_patient(patient_id)
    data = body_json()
    if request.mimetype == FHIR_JSON:
        items = fhir.parse(data, source="fhir", patient_id=patient_id)
        paths = [item["_path"] for item in items]
        try:
            rows, version = services.record_observations(patient_id, items, paths)
        except ValidationError as exc:
            raise validation_problem(exc) from None
    else:
        batch = _strict(ObservationBatch)
        rows, version = services.record_observations(patient_id, batch.observations)
    return _out(Recorded, {"recorded": len(rows), "patient_version": version,
                           "items": [_observation(r) for r in rows],
                           "checks": services.reading_checks(patient_id, rows)}, 201)


@bp.get("/patients/<patient_id>/observations")
def get_observations(patient_id: str):
    since, until = _time_arg("since"), _time_arg("until")
    code = request.args.get("code")
    if code is not None and code not in CODES:
        raise field_error("code", f"must be one of {sorted(CODES)}", 400)
    limit = _int_arg("limit", 500, 1, 5000)
    offset = _int_arg("offset", 0, 0, 10**9)
    rows, total = services.list_observations(patient_id, since, until, limit, offset, code,
                                             include_errors=True)
    if FHIR_JSON in request.headers.get("Accept", ""):
        return _json(fhir.to_bundle(patient_id, rows), mimetype=FHIR_JSON)
    return _out(ObservationPage, {
        "items": [_observation(r) for r in rows], "total": total, "limit": limit,
        "offset": offset, "next": _next("api.get_observations", total, limit, offset,
                                        patient_id=patient_id)})


@bp.patch("/patients/<patient_id>/observations/<observation_id>")
def patch_observation(patient_id: str, observation_id: str):
    """Mark one reading entered in error (kept, listed, used by nothing; idempotent)."""
    services.get_patient(patient_id)
    obs_id = corrections.observation_id(patient_id, observation_id)
    parse_body(ObservationStatusIn)
    row = corrections.mark_entered_in_error(patient_id, obs_id, actor(), "PATCH", request.path)
    return _out(ObservationOut, _observation(row))


@bp.post("/patients/<patient_id>/observation-sets")
def post_observation_set(patient_id: str):
    services.get_patient(patient_id)
    data = parse_body(ObservationSetIn)
    rows, version, view = services.record_set(patient_id, data)
    return _out(ObservationSetRecorded, {
        "recorded": len(rows), "patient_version": version,
        "items": [_observation(r) for r in rows], "set": view,
        "checks": services.reading_checks(patient_id, rows)}, 201)


@bp.get("/patients/<patient_id>/news2")
def get_patient_news2(patient_id: str):
    hours = _float_arg("hours", 72.0, 1.0, 24.0 * 90)
    return _out(PatientNews2Out, services.patient_news2(patient_id, hours))


@bp.post("/news2")
def post_news2():
    return _out(News2Out, services.news2_score(parse_body(News2In)))


@bp.put("/patients/<patient_id>/regimen")
def put_regimen(patient_id: str):
    services.get_patient(patient_id)
    regimen = parse_body(RegimenChange)
    p = services.set_regimen(patient_id, regimen, actor=actor(), method="PUT",
                             path=request.path)
    return _out(PatientOut, _patient(p))


bp.register_error_handler(ConfirmationRequired, regimens.confirmation_problem)
bp.add_url_rule("/patients/<patient_id>/regimen", view_func=regimens.get_regimen)
bp.add_url_rule("/patients/<patient_id>/regimen/history",
                view_func=regimens.get_regimen_history)
bp.add_url_rule("/patients/<patient_id>/regimen/stop", methods=["POST"],
                view_func=regimens.stop_regimen)
admission.register(bp)  # details history, discharge, readmission


# --- forecasts --------------------------------------------------------------------------------


@bp.get("/patients/<patient_id>/forecast")
def get_forecast(patient_id: str):
    body = services.forecast_body(patient_id, actor=actor(), **forecast_args())
    body = los.with_remaining_stay(body, los.remaining_stay(patient_id))
    return Response(body, mimetype="application/json")


def _plot(patient_id: str, fmt: str) -> Response:
    panel = request.args.get("panel", "bp")
    if panel not in plots.PANELS:
        raise field_error("panel", f"must be one of {list(plots.PANELS)}", 400)
    args = forecast_args()
    # the validator names every input of the picture: data version, model version, issue
    # hour, panel, format, arguments and the plotting code; a new reading changes it
    key, _ = services.forecast_key(patient_id, args["horizon_h"], args["coverage"],
                                   args["engine"], "plot", panel, fmt)
    etag = freshness.etag(key)
    if etag in request.if_none_match:
        resp = Response(status=304)
    else:
        data, mimetype = plots.forecast_plot(patient_id, fmt, panel, actor=actor(), **args)
        resp = Response(data, mimetype=mimetype)
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = freshness.cache_control(patient_id, request.args.get("v"))
    return resp



@bp.get("/patients/<patient_id>/forecast.png")
def get_forecast_png(patient_id: str):
    return _plot(patient_id, "png")


@bp.get("/patients/<patient_id>/forecast.svg")
def get_forecast_svg(patient_id: str):
    return _plot(patient_id, "svg")


@bp.post("/patients/<patient_id>/scenarios")
def post_scenario(patient_id: str):
    services.get_patient(patient_id)
    req = parse_body(ScenarioRequest)
    r = req.regimen
    dosing.check_limits(services.get_patient(patient_id), r.drug, r.dose_mg, r.interval_h,
                        "regimen.")
    result = services.what_if(patient_id, req.regimen, req.horizon_h, req.coverage, actor())
    return _out(ScenarioOut, result)  # drops the forecasts' observations


@bp.post("/simulate")
def post_simulate():
    return _out(SimulationOut, services.simulate(parse_body(SimulateRequest), actor()))


@bp.get("/model")
def get_model():
    return _out(ModelOut, services.model_info())


@bp.after_request
def _audit(resp: Response) -> Response:
    if request.method == "OPTIONS" or request.endpoint in ("api.openapi_json", "api.docs",
                                                            "api.get_model"):
        return resp
    try:
        services.audit(actor(), request.method, request.path,
                       (request.view_args or {}).get("patient_id"), resp.status_code)
    except Exception:  # auditing must never turn a served response into an error
        current_app.logger.exception("audit write failed")
    return resp
