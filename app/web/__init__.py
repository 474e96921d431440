"""Server-rendered clinician pages (work without JavaScript; ``static/live.js`` adds live
updates over Server-Sent Events, ``app.web.live``)."""

from flask import Flask

from app import events
from app.web import live, patient_details  # noqa: F401 - register their routes on bp
from app.web.views import bp


@bp.record_once
def _connect_events(state) -> None:
    """The live stream's in-process bus listens to ``patient_changed`` (``app.events``)."""
    app: Flask = state.app
    events.init_app(app)


__all__ = ["bp"]
