"""Tables: patients (admitted or discharged) and the history of their details, regimens,
observations, forecast runs, users, their login sessions and failed logins, API tokens, audit log,
alerts (with their events and per-patient overrides) and webhook subscriptions and deliveries.

Times are stored as naive UTC (``UTCDateTime`` converts at the boundary) so SQLite and
PostgreSQL behave alike. Patients carry a pseudonymous id only: no names, no birth dates.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base

#: an observation's status (FHIR ObservationStatus): a reading in use, or one marked wrong
OBS_FINAL = "final"
OBS_ENTERED_IN_ERROR = "entered-in-error"
#: a patient's admission status: on the ward, or discharged (kept, findable, read-only)
ADMITTED = "admitted"
DISCHARGED = "discharged"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_patient_id() -> str:
    """A random pseudonymous patient id, e.g. ``p-3f9c2a7b1d04``."""
    return "p-" + secrets.token_hex(6)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_patient_id)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    age_years: Mapped[float] = mapped_column(Float)
    renal_function: Mapped[str] = mapped_column(String(16))
    #: either a fixed glucose in mmol/L or a named daily pattern
    glucose_mmol_per_l: Mapped[float | None] = mapped_column(Float)
    glucose_pattern: Mapped[str | None] = mapped_column(String(16))
    infected: Mapped[bool] = mapped_column(Boolean, default=False)
    infection_onset: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: NEWS2 SpO2 scale: 1, or 2 for confirmed hypercapnic respiratory failure (RCP 2017)
    spo2_scale: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: bumped on every write to the patient, its observations or regimen (cache key)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: ``admitted`` (on the ward) or ``discharged`` (kept and findable; no new readings)
    status: Mapped[str] = mapped_column(String(16), default=ADMITTED, server_default=ADMITTED)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    regimens: Mapped[list[Regimen]] = relationship(
        back_populates="patient", order_by="Regimen.id", cascade="all, delete-orphan"
    )

    @property
    def glucose(self) -> float | str:
        return self.glucose_pattern if self.glucose_pattern else self.glucose_mmol_per_l

    @property
    def regimen(self) -> Regimen | None:
        """The current regimen (the latest one set), or None if untreated."""
        return self.regimens[-1] if self.regimens else None


class PatientChange(Base):
    """One changed detail of a patient (one row per field): when, by whom, old and new value
    as text (``app.services.patients.change_text``); discharge and readmission are rows of
    the field ``status``."""

    __tablename__ = "patient_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)


class Regimen(Base):
    __tablename__ = "regimens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    drug: Mapped[str] = mapped_column(String(32))
    dose_mg: Mapped[float] = mapped_column(Float)
    interval_h: Mapped[float] = mapped_column(Float)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    stop: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who set it (a user's or token's name), if known
    set_by: Mapped[str | None] = mapped_column(String(64))
    #: the dosing warnings confirmed when it was set (JSON list of {code, message}), if any
    confirmed_warnings: Mapped[str | None] = mapped_column(Text)

    patient: Mapped[Patient] = relationship(back_populates="regimens")


class Observation(Base):
    __tablename__ = "observations"
    __table_args__ = (Index("ix_observations_patient_time", "patient_id", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    #: a standard twin endpoint name, e.g. ``sbp_mmhg``
    code: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    #: UCUM unit code, e.g. ``mm[Hg]``
    unit: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: FHIR's word: ``final``, or ``entered-in-error`` (kept, but no forecast or score uses it)
    status: Mapped[str] = mapped_column(String(16), default=OBS_FINAL, server_default=OBS_FINAL)


class ForecastRun(Base):
    """Audit of every forecast computed (not served from cache)."""

    __tablename__ = "forecast_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # forecast | whatif | simulate
    model_version: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str | None] = mapped_column(String(32))
    input_digest: Mapped[str] = mapped_column(String(64))
    horizon_h: Mapped[float | None] = mapped_column(Float)
    coverage: Mapped[float | None] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(64))  # comma-separated: read,write
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: refused from this time on (NULL: never; new tokens get 90 days by default)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: last request made with it (updated at most once a minute)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class LoginSession(Base):
    """A clinician's login (server side): the cookie carries only the random id, the table
    only its SHA-256. Ended by logout, idle time, its absolute lifetime, a password change or
    the user's deactivation."""

    __tablename__ = "sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: last request seen (updated at most once a minute)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_addr: Mapped[str | None] = mapped_column(String(64))


class LoginFailure(Base):
    """One failed login (the account name tried, never the password), for throttling."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    client_addr: Mapped[str] = mapped_column(String(64), index=True)


class LoginLockout(Base):
    """Logins for an account or from a client address refused until ``until``."""

    __tablename__ = "login_lockouts"
    __table_args__ = (Index("ix_login_lockouts_scope_key", "scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))  # account | address
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Who read or wrote what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(8))  # read | write
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(256))
    patient_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[int] = mapped_column(Integer)
    #: what was confirmed or changed, as JSON (e.g. the dosing warnings of a confirmation)
    detail: Mapped[str | None] = mapped_column(Text)
    #: the caller's address (the proxy's forwarded one only when the proxy is trusted)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    #: the hash chain (``app.services.audit_chain``): the previous row's hash and this one's
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditHead(Base):
    """The audit chain's head: one row (id 1) with the newest row's hash and the count.
    Every append updates it first, so appends are serialised (a row lock)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class ForecastCache(Base):
    """Computed forecasts shared by every worker and replica (second-level cache).

    Keyed by the SHA-256 of the in-process cache key (patient, data version, model version,
    horizon, coverage, engine, issue hour); rows older than a few hours are pruned.
    """

    __tablename__ = "forecast_cache"

    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(32), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Alert(Base):
    """One alert: raised by a rule on a patient, acknowledged by a named user, resolved.

    ``open_key`` is ``"<patient_id>:<rule>"`` while the alert is open and NULL once it is
    resolved; its unique index makes "one open alert per patient and rule" a database fact.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_patient_status", "patient_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))  # critical | urgent | watch
    status: Mapped[str] = mapped_column(String(16))  # raised | acknowledged | resolved
    open_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    message: Mapped[str] = mapped_column(Text, default="")
    values_json: Mapped[str] = mapped_column(Text, default="{}")
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertEvent(Base):
    """Every alert transition: who, when, what (raised, escalated, acknowledged, resolved)."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"),
                                          index=True)
    patient_id: Mapped[str] = mapped_column(String(32), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))  # a user's name, or "system"
    level: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class AlertOverride(Base):
    """A patient's own threshold, clear value or on/off for one rule of the rules file."""

    __tablename__ = "alert_overrides"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    threshold: Mapped[float | None] = mapped_column(Float)
    clear: Mapped[float | None] = mapped_column(Float)
    enabled: Mapped[bool | None] = mapped_column(Boolean)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookSubscription(Base):
    """An integrator's endpoint for alert events. The secret signs each body (HMAC-SHA256),
    so it is stored as given (it cannot be hashed and still sign)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[str] = mapped_column(String(256))
    #: comma-separated event types (alert.raised, ...), or "*" for all
    events: Mapped[str] = mapped_column(String(256), default="*")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one subscription: its body, attempts and the next retry (delivery log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """A write's ``Idempotency-Key`` (``app.api.idempotency``): its request and response."""

    __tablename__ = "idempotency_keys"

    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # caller+path+key
    request_sha256: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[int | None] = mapped_column(Integer)  # None while the first one runs
    body: Mapped[str | None] = mapped_column(Text)
    mimetype: Mapped[str | None] = mapped_column(String(128))
    location: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
