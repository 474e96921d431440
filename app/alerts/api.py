"""Alert endpoints under ``/api/v1``, the ``flask alerts`` commands and ``init_app``.

``GET /alerts`` (``status=open|raised|acknowledged|resolved``, ``patient_id``, ``limit``),
``GET /alerts/{id}`` (with its events), ``POST /alerts/{id}/acknowledge`` and
``POST /alerts/{id}/resolve`` (body ``{"note": ...}``, optional), ``GET /alert-rules``,
``GET|PUT /patients/{id}/alert-overrides``. Reads need the ``read`` scope, writes ``write``
(``app.auth``); every request is in the audit log, every transition in ``alert_events``.
"""

from __future__ import annotations

import logging
import math
import secrets
import sys
from typing import Any

import click
from flask import Blueprint, Flask, Response, current_app, g, json, request
from flask.cli import AppGroup
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from app import db, services, signals
from app.alerts import overrides, rules, service, webhooks
from app.auth import actor
from app.codes import CODES
from app.errors import ApiError, field_error, validation_problem
from app.models import Patient

bp = Blueprint("alerts", __name__, url_prefix="/api/v1")
log = logging.getLogger("app.alerts")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)

    @field_validator("note")
    @classmethod
    def _no_nul(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str = Field(min_length=1, max_length=64)
    threshold: float | None = None
    clear: float | None = None
    enabled: bool | None = None

    @field_validator("threshold", "clear")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class OverridesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overrides: list[OverrideIn] = Field(max_length=100)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _body(model: type[BaseModel], optional: bool = False) -> Any:
    raw = request.get_data(cache=True)
    if optional and not raw.strip():
        return model()
    if request.mimetype != "application/json":
        raise ApiError(415, "Unsupported Media Type", "Content-Type must be application/json"
                       f", got {request.mimetype or 'none'!r}",
                       [{"field": "Content-Type", "message": "unsupported"}])
    try:
        data = json.loads(raw or b"")
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ApiError(400, "Malformed JSON", f"body: not valid JSON ({type(exc).__name__})",
                       [{"field": "body", "message": "malformed JSON"}]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def _user() -> str:
    return actor() or "unknown"


@bp.get("/alerts")
def list_alerts():
    status = request.args.get("status")
    patient_id = request.args.get("patient_id")
    if patient_id is not None and (not 0 < len(patient_id) <= 64 or "\x00" in patient_id):
        raise field_error("patient_id", "1 to 64 characters, no NUL", 400)
    raw_limit = request.args.get("limit", "200")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise field_error("limit", "must be an integer", 400) from None
    if not 1 <= limit <= 1000:
        raise field_error("limit", "must be in [1, 1000]", 400)
    if status is not None and status not in service.STATUSES:
        raise field_error("status", f"must be one of {', '.join(service.STATUSES)}", 400)
    try:
        service.escalate_due()  # cheap: one query unless something is due
    except Exception:  # a listing never fails because escalation could not write now
        current_app.logger.exception("alert escalation failed")
    return _json({"alerts": service.list_alerts(status, patient_id, limit)})


@bp.get("/alerts/<int:alert_id>")
def get_alert(alert_id: int):
    out = service.get_alert(alert_id)
    g.alert_patient_id = out["patient_id"]
    return _json(out)


@bp.post("/alerts/<int:alert_id>/acknowledge")
def acknowledge(alert_id: int):
    body = _body(NoteIn, optional=True)
    out = service.acknowledge(alert_id, _user(), body.note)
    g.alert_patient_id = out["patient_id"]
    return _json(out)


@bp.post("/alerts/<int:alert_id>/resolve")
def resolve(alert_id: int):
    body = _body(NoteIn, optional=True)
    out = service.resolve(alert_id, _user(), body.note)
    g.alert_patient_id = out["patient_id"]
    return _json(out)


@bp.get("/alert-rules")
def list_rules():
    rs = service.ruleset()
    return _json({"rules": [overrides.rule_dict(r) for r in rs.rules.values()],
                  "escalate_after_min": rs.escalate_after_min})


def _known_form(patient_id: str) -> str:
    """404 for an id no patient can have (a NUL would reach PostgreSQL as an error)."""
    if "\x00" in patient_id or len(patient_id) > 64:
        raise ApiError(404, "Not Found", "no such patient",
                       [{"field": "patient_id", "message": "unknown patient"}])
    return patient_id


@bp.get("/patients/<patient_id>/alert-overrides")
def get_overrides(patient_id: str):
    return _json(overrides.get_overrides(_known_form(patient_id)))


@bp.put("/patients/<patient_id>/alert-overrides")
def put_overrides(patient_id: str):
    overrides.get_overrides(_known_form(patient_id))  # 404 before 4xx on the body
    body = _body(OverridesIn)
    items = [o.model_dump() for o in body.overrides]
    return _json(overrides.set_overrides(patient_id, items, actor()))


@bp.after_request
def _audit(resp: Response) -> Response:
    if request.method == "OPTIONS":
        return resp
    try:
        patient_id = (request.view_args or {}).get("patient_id") or g.get("alert_patient_id")
        services.audit(actor(), request.method, request.path, patient_id, resp.status_code)
    except Exception:  # auditing must never turn a served response into an error
        current_app.logger.exception("audit write failed")
    return resp


# --- CLI -------------------------------------------------------------------------------------

cli = AppGroup("alerts", help="Alert rules, escalation and webhooks.")


@cli.command("escalate")
def escalate_command() -> None:
    """Escalate unacknowledged alerts past their level's time (run every minute)."""
    done = service.escalate_due()
    click.echo(f"{len(done)} alert(s) escalated.")


@cli.command("evaluate")
@click.argument("patient_ids", nargs=-1)
@click.option("--forecast", is_flag=True, help="also the forecast rules (computes forecasts)")
def evaluate_command(patient_ids: tuple[str, ...], forecast: bool) -> None:
    """Evaluate the rules of PATIENT_IDS (default: every patient)."""
    ids = list(patient_ids) or list(db.session().scalars(select(Patient.id)))
    changed = 0
    for pid in ids:
        fc = None
        if forecast:
            try:
                fc = services.forecast(pid, 24.0, 0.9, None, "alerts")
            except ApiError as exc:
                click.echo(f"{pid}: no forecast ({exc.detail})")
        changed += len(service.evaluate_patient(pid, forecast=fc))
    click.echo(f"{len(ids)} patient(s) evaluated, {changed} alert(s) raised or resolved.")


@cli.command("deliver")
def deliver_command() -> None:
    """Send the webhook deliveries that are due (retries included)."""
    counts = webhooks.deliver_due()
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


@cli.command("add-webhook")
@click.argument("url")
@click.option("--events", default="*", show_default=True,
              help="comma-separated: " + ", ".join(webhooks.EVENT_TYPES))
@click.option("--secret-stdin", is_flag=True, help="read the signing secret from stdin")
def add_webhook_command(url: str, events: str, secret_stdin: bool) -> None:
    """Subscribe URL to alert events; prints the signing secret (generated unless given)."""
    secret = sys.stdin.readline().strip() if secret_stdin else secrets.token_urlsafe(32)
    try:
        sub_id = webhooks.add_subscription(url, secret, events)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"Webhook {sub_id} for {url} ({events}).")
    if not secret_stdin:
        click.echo("Signing secret (shown once):")
        click.echo(secret)


@cli.command("webhooks")
def webhooks_command() -> None:
    """List the webhook subscriptions and their deliveries by status."""
    for sub_id, url, events, active, counts in webhooks.subscriptions():
        state = "active" if active else "inactive"
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
        click.echo(f"{sub_id}\t{state}\t{url}\t{events}\tdeliveries: {summary}")


@cli.command("deliveries")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def deliveries_command(limit: int) -> None:
    """The delivery log, newest first: id, event, status, attempts, last code or error."""
    for d in webhooks.recent_deliveries(limit):
        last = d.last_status_code if d.last_status_code is not None else (d.last_error or "-")
        due = d.next_attempt_at.isoformat() if d.next_attempt_at else "-"
        click.echo(f"{d.id}\tsub {d.subscription_id}\t{d.event}\talert {d.alert_id}\t"
                   f"{d.status}\tattempts {d.attempts}\tlast {last}\tnext {due}")


@cli.command("remove-webhook")
@click.argument("subscription_id", type=int)
def remove_webhook_command(subscription_id: int) -> None:
    """Deactivate a subscription (its pending deliveries fail; the log is kept)."""
    if not webhooks.deactivate(subscription_id):
        raise click.ClickException(f"no webhook subscription {subscription_id}")
    click.echo(f"Webhook {subscription_id} deactivated.")


@cli.command("check-rules")
@click.argument("path", required=False)
def check_rules_command(path: str | None) -> None:
    """Validate a rules file (default: the configured one)."""
    path = path or current_app.config.get("ALERT_RULES_FILE")
    try:
        rs = rules.load(path, set(CODES))
    except rules.RulesError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{rs.source}: {len(rs.rules)} rules, OK.")


# --- wiring ----------------------------------------------------------------------------------


def _on_forecast_ready(app: Flask, patient_id: str, forecast: dict, **_extra) -> None:
    """``signals.forecast_ready`` receiver (the warm-up's thread, in its app context): every
    rule again, the forecast rules on the forecast just computed (never a second one).
    Without the warm-up, ``flask alerts evaluate --forecast`` does it (cron)."""
    try:
        service.evaluate_patient(patient_id, forecast=forecast)
    except ApiError as exc:
        log.info("forecast rules skipped", extra={"patient_id": patient_id,
                                                  "detail": exc.detail})
    except Exception:
        log.exception("forecast rules failed", extra={"patient_id": patient_id})


def _on_patient_changed(app: Flask, patient_id: str, **_extra) -> None:
    """``signals.patient_changed`` receiver: evaluate the patient's rules now (a few queries;
    a failure logs and never fails the write that sent the signal); the forecast rules
    follow when the warm-up has the forecast (``_on_forecast_ready``)."""
    try:
        service.evaluate_patient(patient_id)
    except Exception:
        app.logger.exception("alert evaluation failed", extra={"patient_id": patient_id})


def init_app(app: Flask) -> None:
    """Load and validate the rules file (a bad one raises ``RulesError``: the service does not
    start), evaluate after every write, register the endpoints and ``flask alerts``."""
    path = app.config.get("ALERT_RULES_FILE")
    app.config["ALERT_RULES_FILE"] = str(path or rules.DEFAULT_FILE)
    app.extensions["alert_rules"] = rules.load(path, set(CODES))
    webhooks.init_app(app)
    signals.forecast_ready.connect(_on_forecast_ready, sender=app, weak=False)
    signals.patient_changed.connect(_on_patient_changed, sender=app, weak=False)
    app.register_blueprint(bp)
    app.cli.add_command(cli)
