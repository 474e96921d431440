"""Tables: patients, regimens, observations, forecast runs, users, API tokens, audit log.

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

    user: Mapped[User] = relationship()


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
