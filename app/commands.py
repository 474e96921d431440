"""Management commands that are not about logins: ``erase-patient`` and ``purge``
(``app.services.erasure``), ``audit-verify`` (``app.services.audit_chain``). Login and token
commands live in ``app.auth``."""

from __future__ import annotations

import getpass
import json

import click
from flask import Flask
from flask.cli import with_appcontext

from app import db
from app.errors import ApiError
from app.services import audit_chain, erasure


def _operator() -> str:
    """Who runs the command (the audit row's actor): ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@click.command("erase-patient")
@click.argument("patient_id")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@with_appcontext
def erase_patient_command(patient_id: str, yes: bool) -> None:
    """Erase PATIENT_ID from every table (readings, regimens, history, alerts, forecasts,
    caches, audit); one audit row records the erasure (row counts, who), no values."""
    if not yes:
        click.confirm(f"Erase patient {patient_id} and everything recorded about them?",
                      abort=True)
    try:
        counts = erasure.erase_patient(patient_id, _operator())
    except ApiError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(json.dumps({"erased": patient_id, "rows": counts}, sort_keys=True))


@click.command("purge")
@click.option("--audit-days", type=click.FloatRange(min=1), default=None,
              help="delete audit rows older than this many days")
@click.option("--observation-days", type=click.FloatRange(min=1), default=None,
              help="delete observations older than this many days")
@with_appcontext
def purge_command(audit_days: float | None, observation_days: float | None) -> None:
    """Retention: delete audit rows and/or observations older than the given ages."""
    if audit_days is None and observation_days is None:
        raise click.UsageError("give --audit-days and/or --observation-days")
    counts = erasure.purge_older_than(audit_days, observation_days, _operator())
    click.echo(json.dumps({"deleted": counts}, sort_keys=True))


#: PostgreSQL grants of the service's own login role: full use of the data tables, but the
#: audit log only read and appended (the chain head is updated by every append)
APP_ROLE_GRANTS = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.audit_log FROM {role}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.alembic_version FROM {role}",
)


@click.command("grant-app-role")
@click.argument("role")
@with_appcontext
def grant_app_role_command(role: str) -> None:
    """PostgreSQL: give ROLE (the login the service runs as) what it needs and no more: it
    may read and append to the audit log but not update or delete it. Run as the owner (the
    role that ran the migrations); erase-patient and purge keep running as the owner."""
    engine = db.get_engine()
    if engine.dialect.name != "postgresql":
        raise click.ClickException("grant-app-role is for PostgreSQL (SQLite has no roles)")
    if not role.replace("_", "").isalnum():
        raise click.ClickException("a role name is letters, digits and _")
    with engine.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        for statement in APP_ROLE_GRANTS:
            conn.exec_driver_sql(statement.format(schema=schema, role=role))
    click.echo(f"granted {role} on schema {schema}: audit_log read and insert only")


def init_app(app: Flask) -> None:
    """Register the commands on ``flask --app app``."""
    app.cli.add_command(erase_patient_command)
    app.cli.add_command(purge_command)
    app.cli.add_command(audit_verify_command)
    app.cli.add_command(grant_app_role_command)


@click.command("audit-verify")
@with_appcontext
def audit_verify_command() -> None:
    """Check the audit log's hash chain: exit 0 when intact, else 1 naming the first bad
    row."""
    with db.get_engine().connect() as conn:
        verdict = audit_chain.verify(conn)
    if not verdict.ok:
        click.echo(f"audit chain broken at row {verdict.bad_id}: {verdict.reason} "
                   f"({verdict.checked} rows before it verified)", err=True)
        raise SystemExit(1)
    click.echo(f"audit chain intact: {verdict.checked} rows verified")
