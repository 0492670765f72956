"""The command line: parses, calls the library (`mt5tester.run()` and friends), prints and renders."""

from mt5tester.cli.app import cli, main

__all__ = ["cli", "main"]
