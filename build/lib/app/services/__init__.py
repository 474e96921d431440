"""Use cases shared by the API and the pages: admit, record, regimen, forecast, what-if, audit.

Services take validated pydantic inputs (``app.schemas``), raise ``ApiError`` naming the field
on bad input, and return ORM rows or plain dicts; the adapters (``app.api``, ``app.web``)
render them. They never import the adapters, the plots or the background warm-up: writes send
``app.signals.patient_changed`` instead.
"""

from app.services.audit import audit, flush_audit
from app.services.forecasts import (
    forecast,
    forecast_body,
    forecast_key,
    load_for_forecast,
    model_info,
    simulate,
    what_if,
)
from app.services.patients import (
    admit_patient,
    get_patient,
    list_observations,
    list_patients,
    patient_version,
    record_observations,
    set_regimen,
    update_patient,
)

__all__ = [
    "admit_patient", "audit", "flush_audit", "forecast", "forecast_body", "forecast_key",
    "get_patient", "list_observations", "list_patients", "load_for_forecast", "model_info",
    "patient_version", "record_observations", "set_regimen", "simulate", "update_patient",
    "what_if",
]
