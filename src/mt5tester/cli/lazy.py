"""A click group whose subcommands are imported only when they are used.

``mt5tester --help`` must not import pandas, numpy, SQLAlchemy, numba or plotly (issue 14: start-up
<= 0.3 s), yet the commands' modules import them at the top. The group knows each lazy command by name,
the module attribute that defines it and the one-line summary its ``--help`` listing shows; the module
is imported the first time the command is looked up to run, to show its own help, or by
``group.commands[name]`` (tests/test_startup.py keeps the summaries equal to the commands' own).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Any

import click


class LazyCommand:
    """Where a command lives ("package.module:attr") and the summary shown before it is imported."""

    __slots__ = ("summary", "target")

    def __init__(self, target: str, summary: str) -> None:
        self.target = target
        self.summary = summary

    def load(self) -> click.Command:
        module, _, attr = self.target.partition(":")
        command = getattr(import_module(module), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class _Commands(dict[str, click.Command]):
    """The group's commands: the loaded ones, and the lazy ones imported on first ``[name]``. Iterating
    lists every name without importing; ``values()`` and ``items()`` import what is still lazy."""

    def __init__(self, lazy: Mapping[str, LazyCommand]) -> None:
        super().__init__()
        self.lazy = dict(lazy)

    def __missing__(self, name: str) -> click.Command:
        spec = self.lazy.get(name)
        if spec is None:
            raise KeyError(name)
        command = spec.load()
        self[name] = command
        return command

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.lazy

    def _names(self) -> list[str]:
        return sorted({*dict.keys(self), *self.lazy})

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def keys(self) -> list[str]:  # type: ignore[override]
        return self._names()

    def values(self) -> list[click.Command]:  # type: ignore[override]
        return [self[n] for n in self._names()]

    def items(self) -> list[tuple[str, click.Command]]:  # type: ignore[override]
        return [(n, self[n]) for n in self._names()]

    def loaded(self, name: str) -> click.Command | None:
        """The command if it is imported already, else None (never imports)."""
        return dict.get(self, name)


class LazyGroup(click.Group):
    """A click group with lazy subcommands (``lazy``: name -> LazyCommand) beside its ordinary ones."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        commands = _Commands(lazy or {})
        commands.update(self.commands)
        self.commands: _Commands = commands

    def add_lazy(self, name: str, target: str, summary: str) -> None:
        self.commands.lazy[name] = LazyCommand(target, summary)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self.commands.keys()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command: click.Command | None = self.commands.get(cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, as click lists them, without importing lazy ones."""
        shown: list[tuple[str, click.Command | LazyCommand]] = []
        for name in self.list_commands(ctx):
            command = self.commands.loaded(name)
            if command is None:
                shown.append((name, self.commands.lazy[name]))
            elif not command.hidden:
                shown.append((name, command))
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        rows = []
        for name, c in shown:
            if isinstance(c, LazyCommand):  # shortened as click shortens a command's own help
                c = click.Command(name, help=c.summary)
            rows.append((name, c.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
