"""Alembic environment for the Alembic CLI (``python -m mt5tester.results.migrations``).

``mt5tester.results.db.migrate`` does not use this file: it runs the revisions programmatically on a
connection it has locked. Here the URL comes from ``config.attributes["url"]`` (set by ``__main__``) or a
connection passed in ``config.attributes["connection"]``; the password is never printed.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mt5tester.results import db

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.attributes["url"],
        target_metadata=db.metadata,
        include_object=db.include_object,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=db.metadata, include_object=db.include_object
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.attributes["url"])
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=db.metadata, include_object=db.include_object)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
