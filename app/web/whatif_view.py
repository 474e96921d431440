"""The what-if result on the patient page, which never waits for the two forecasts: the
form post queues them (``app.services.whatif_jobs``) and shows "computing"; ``live.js``
fetches ``section`` until the result is there; its plot is drawn from the stored result."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, render_template, request
from pydantic import ValidationError

from app import auth, cache, plots, services
from app.errors import ApiError
from app.schemas import RegimenIn
from app.services import dosing, freshness, whatif_jobs
from app.web import forecast_view


def query_of(regimen: RegimenIn) -> dict[str, Any]:
    """The what-if's regimen as URL query arguments (times ISO with offset)."""
    query = {"drug": regimen.drug, "dose_mg": regimen.dose_mg,
             "interval_h": regimen.interval_h, "start": regimen.start.isoformat()}
    if regimen.stop:
        query["stop"] = regimen.stop.isoformat()
    return query


def whatif_context(patient_id: str, regimen: RegimenIn) -> dict[str, Any]:
    """``whatif`` (the result, or None while computed), ``whatif_pending``,
    ``whatif_error``, ``whatif_query`` and ``whatif_warnings`` (dosing checks) of a what-if;
    queues it when no cache holds it. Raises ApiError for what a what-if refuses."""
    p = services.get_patient(patient_id)
    result, error = whatif_jobs.request_whatif(patient_id, regimen, auth.actor())
    return {"whatif": result, "whatif_pending": result is None and error is None,
            "whatif_error": error, "whatif_query": query_of(regimen),
            "whatif_warnings": dosing.warnings_for(p, regimen.drug, regimen.dose_mg,
                                                   regimen.interval_h, regimen.start)}


def _regimen_from_args() -> RegimenIn:
    return RegimenIn.model_validate({k: v for k, v in request.args.items()
                                     if k != "v" and v not in ("", None)})


def section(patient_id: str):
    """The what-if result section alone (``live.js`` swaps it in once computed)."""
    try:
        p = services.get_patient(patient_id)
        regimen = _regimen_from_args()
        ctx = whatif_context(patient_id, regimen)
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        return Response(exc.detail, status=exc.status, mimetype="text/plain")
    except ValidationError:
        return Response("Not a valid regimen.", status=422, mimetype="text/plain")
    return render_template("_whatif_section.html", p=p,
                           plot_v=freshness.plot_version(patient_id), **ctx)


def _png(patient_id: str, data: bytes | None, etag: str) -> Response:
    return forecast_view.png_response(
        data, etag, freshness.cache_control(patient_id, request.args.get("v")))


def whatif_png(patient_id: str):
    """The stored what-if drawn: current against proposed BP; 404 until it is computed."""
    try:
        regimen = _regimen_from_args()
        key = whatif_jobs.whatif_key(patient_id, regimen)
        etag = freshness.etag(key, "png")
        if etag in request.if_none_match:
            return _png(patient_id, None, etag)
        result = whatif_jobs.stored_whatif(patient_id, regimen)
    except ValidationError:
        return Response("Not a valid regimen.", status=422, mimetype="text/plain")
    except ApiError as exc:
        return Response(exc.detail, status=exc.status, mimetype="text/plain")
    if result is None:
        abort(404)
    data, _ = cache.plots().get_or_compute((*key, "png", freshness.CODE),
                                           lambda: plots.render_whatif(result))
    return _png(patient_id, data, etag)
