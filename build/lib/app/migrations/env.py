"""Alembic environment: uses the engine handed over by ``app.db.alembic_config``.

Run from the CLI through ``flask --app app init-db``; new revisions with
``alembic -c app/migrations/alembic.ini revision --autogenerate -m "..."`` (DATABASE_URL set).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from app import config as app_config
from app import models  # noqa: F401  (register the tables)
from app.db import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    engine = create_engine(app_config.env("DATABASE_URL"))

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
