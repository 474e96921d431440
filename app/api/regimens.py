"""The regimen reads, "stop treatment" and the 409 ``confirmation-required`` problem (the
routes are registered on the v1 blueprint by ``app.api.routes``)."""

from __future__ import annotations

from flask import Response, current_app, json, request

from app.auth import actor
from app.errors import PROBLEM
from app.services.dosing import ConfirmationRequired
from app.services.regimens import (
    RegimenCurrent,
    RegimenHistory,
    current_regimen,
    regimen_history,
    stop_treatment,
)


def _json(model, data, status: int = 200) -> Response:
    body = model.model_validate(data).model_dump(mode="json")
    return Response(json.dumps(body), status=status, mimetype="application/json")


def confirmation_problem(exc: ConfirmationRequired) -> Response:
    """409 problem+json of type ``confirmation-required`` with the ``warnings``."""
    current_app.logger.warning("confirmation required", extra={
        "status": 409, "path": request.path,
        "detail": ",".join(w["code"] for w in exc.warnings)})
    return Response(json.dumps(exc.body(request.path)), status=409, mimetype=PROBLEM)


def get_regimen(patient_id: str) -> Response:
    """The current (latest) regimen, or null, and whether it is active."""
    return _json(RegimenCurrent, current_regimen(patient_id))


def get_regimen_history(patient_id: str) -> Response:
    """Every regimen set, newest first, with when and by whom."""
    return _json(RegimenHistory, regimen_history(patient_id))


def stop_regimen(patient_id: str) -> Response:
    """End the current regimen now (audited; no confirmation): the regimen as stopped."""
    stop_treatment(patient_id, actor=actor(), method="POST", path=request.path)
    return _json(RegimenCurrent, current_regimen(patient_id))
