"""``python -m mt5tester.results.migrations [alembic args]``: the Alembic CLI on the shipped migrations.

The database is ``MT5TESTER_DB_URL`` (default ``sqlite:///runs/mt5tester.sqlite``); no alembic.ini.
Examples: ``current``, ``history``, ``upgrade head``, ``revision -m "..." --autogenerate``.
"""

from __future__ import annotations

import os
import sys

from alembic.config import CommandLine

from mt5tester.results import db


def main(argv: list[str] | None = None) -> None:
    cli = CommandLine(prog="python -m mt5tester.results.migrations")
    options = cli.parser.parse_args(argv if argv is not None else sys.argv[1:])
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cfg = db.alembic_config()
    cfg.attributes["url"] = os.environ.get("MT5TESTER_DB_URL") or "sqlite:///runs/mt5tester.sqlite"
    cli.run_cmd(cfg, options)


if __name__ == "__main__":
    main()
