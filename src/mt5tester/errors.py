"""Error hierarchy. Each class maps to one CLI exit code (README "Exit codes"); ``did_you_mean`` builds the
hint the messages end with."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class Mt5TesterError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1


class ConfigError(Mt5TesterError):
    """The configuration is invalid (unknown key, bad value, bad combination)."""

    exit_code = 2


class DataError(Mt5TesterError):
    """Market data is missing, does not cover the run, or is unhealthy."""

    exit_code = 3


class StrategyLoadError(Mt5TesterError):
    """A strategy could not be imported, built, or none was configured."""

    exit_code = 4


class StrategyRuntimeError(Mt5TesterError):
    """A strategy raised during the run and the policy is `stop`."""

    exit_code = 5


class LookaheadFound(Mt5TesterError):
    """check-lookahead found signals or prepared values that change when the future is removed."""

    exit_code = 7


class StorageError(Mt5TesterError):
    """The results database cannot be reached or written."""

    exit_code = 6


EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "internal error (a bug: the traceback is printed)",
    2: "config error",
    3: "data error",
    4: "strategy load error",
    5: "strategy runtime error",
    6: "storage error",
    7: "lookahead found (check-lookahead)",
}


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the choice closest to ``word``, or '' when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""
