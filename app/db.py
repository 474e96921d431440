"""Database engine and sessions per application; ``init-db`` runs the alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from flask.cli import with_appcontext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    """Declarative base of every table."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    # hide_parameters: an error's text (a log line, a traceback) never carries the values
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def get_engine() -> Engine:
    """The engine of the current application."""
    return current_app.extensions["db_engine"]


def session() -> Session:
    """The request's session (closed at teardown)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_session"]()
    return g.db_session


@contextmanager
def new_session() -> Iterator[Session]:
    """A session outside the request (CLI, background): committed by the caller."""
    s = current_app.extensions["db_session"]()
    try:
        yield s
    finally:
        s.close()


def _close_session(_exc) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


def ping() -> bool:
    """True when the database answers a trivial query."""
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any driver error means "not reachable"
        current_app.logger.exception("database ping failed")
        return False


def alembic_config(engine: Engine):
    """An alembic Config pointing at our migrations and ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


#: PostgreSQL advisory-lock key held while migrating ("RAST" in ASCII)
MIGRATION_LOCK_KEY = 0x52415354


def init_db() -> None:
    """Bring the schema to the latest migration (creates every table on a new database).

    On PostgreSQL the upgrade runs under a session advisory lock, so service tasks that all
    start at once (each runs ``init-db``) migrate one after another instead of racing."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as lock_conn:
        lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or upgrade the tables (alembic upgrade head)."""
    init_db()
    click.echo("Initialized the database.")


def init_app(app: Flask) -> None:
    """Attach an engine and session factory to ``app`` and register the CLI."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_session"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)
    app.cli.add_command(init_db_command)
