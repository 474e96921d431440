"""Use cases shared by the API and the pages: admit, edit details (with history), discharge
and readmit, record, regimen, forecast, what-if, audit,
observation sets and NEWS2 (``news2``), the ward status (``status``).

Services take validated pydantic inputs (``app.schemas``), raise ``ApiError`` naming the field
on bad input, and return ORM rows or plain dicts; the adapters (``app.api``, ``app.web``)
render them. They never import the adapters, the plots or the background warm-up: writes send
``app.signals.patient_changed`` instead.
"""

from app.services.audit import audit, flush_audit
from app.services.checks import reading_checks
from app.services.forecasts import (
    forecast,
    forecast_body,
    forecast_key,
    load_for_forecast,
    model_info,
    simulate,
    what_if,
)
from app.services.news2 import patient_news2, record_set
from app.services.news2 import stateless as news2_score
from app.services.patients import (
    admit_patient,
    discharge_patient,
    get_patient,
    list_observations,
    list_patients,
    patient_history,
    patient_version,
    readmit_patient,
    record_observations,
    set_regimen,
    update_patient,
)
from app.services.status import patient_status, status_dict

__all__ = [
    "admit_patient", "audit", "discharge_patient", "flush_audit", "forecast", "forecast_body",
    "forecast_key", "get_patient", "list_observations", "list_patients", "load_for_forecast",
    "model_info", "news2_score", "patient_history", "patient_news2", "patient_status",
    "patient_version", "reading_checks", "readmit_patient", "record_observations",
    "record_set", "set_regimen", "simulate", "status_dict", "update_patient", "what_if",
]
