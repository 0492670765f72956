"""Alembic migrations of the results database, run by ``mt5tester.results.db.connect`` (``db.migrate``).

``versions/`` holds one file per revision (0001, 0002, ...). A revision is a frozen snapshot of a change:
it never imports ``db.metadata`` (which always describes the newest schema), so old revisions keep
producing the schema they produced when they were written.

New revision (from the repository root, against a scratch database at the current head)::

    python -m mt5tester.results.migrations revision -m "what changes" --autogenerate

then edit the generated file by hand, name its revision ``00NN`` and add a test of the upgrade from the
previous revision (tests/test_migrations.py).
"""
