"""Server-rendered clinician pages (work without JavaScript; ``static/live.js`` adds live
updates over Server-Sent Events, ``app.web.live``)."""

from flask import Flask, Response, current_app, g, request

from app import auth, events, services
from app.web import live, patient_details  # noqa: F401 - register their routes on bp
from app.web.views import bp


@bp.record_once
def _connect_events(state) -> None:
    """The live stream's in-process bus listens to ``patient_changed`` (``app.events``)."""
    app: Flask = state.app
    events.init_app(app)


#: page requests that carry no patient data and are not audited (assets, the icon)
UNAUDITED = frozenset({"web.static", "web.favicon"})


@bp.after_request
def _audit(resp: Response) -> Response:
    """Every page request (views, form posts, live fragments) in the audit log, with the
    patient it concerns, committed before the response goes out."""
    if request.endpoint in UNAUDITED or request.method == "OPTIONS":
        return resp
    try:
        patient_id = (request.view_args or {}).get("patient_id") or g.get("audit_patient_id")
        services.audit(auth.actor(), request.method, request.path, patient_id,
                       resp.status_code)
    except Exception:  # auditing must never turn a served page into an error
        current_app.logger.exception("audit write failed")
    return resp


__all__ = ["bp"]
