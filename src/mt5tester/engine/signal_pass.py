"""The signal pass: per-bar Python strategies that decide from bars alone (``Strategy.bars_only``) are
called at every decision point first, in time order, exactly as the loop calls them (``Host.decide``:
the same windows of closed bars, clock, error policy and checks); their signals are kept per point, and
the trading then runs over them, inside the compiled kernel (driver b) when it can, else in the Python
loop, which takes each point's signals from the pass instead of calling the strategies again.

This is exact because such a strategy's signals depend only on the bars and the market data it reads,
never on the account: while the pass runs, the terminal's account, book, history and trading calls are
sealed (``Sealed``), and a strategy that makes one stops the run with a message naming the call and the
strategy (its decisions read the account, so it cannot be ``bars_only``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from mt5tester.errors import StrategyRuntimeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mt5tester.engine.loop import Runner
    from mt5tester.engine.timeline import Timeline
    from mt5tester.model.signal import Signal

Batch = list[tuple[int, str, "Signal"]]

# What a strategy's terminal still answers while the pass runs: the symbols' specifications and the
# conversions and money of a price (symbol_info, order_calc_margin/profit), which no trade changes.
_OPEN = frozenset({"conversion", "margin_for", "profit", "specs", "settings", "inputs", "market"})
_API_FILE = os.path.join("terminal", "api.py")


class SealedCall(BaseException):
    """A strategy read the account or traded during the signal pass."""


class _Clock:
    now = 0  # the terminal's set_time writes the server's clock here while the pass runs


class Sealed:
    """The trade server as the terminal sees it during the pass: what no trade changes is answered,
    anything else (balance, positions, orders, history, order_send, order_check) raises ``SealedCall``."""

    def __init__(self, server: Any, caller: Callable[[], int | None]) -> None:
        self._server, self._caller = server, caller
        self.state = _Clock()
        self.breach: tuple[str, int | None] | None = None  # (the first call made, the strategy calling)

    def __getattr__(self, name: str) -> Any:
        if name in _OPEN:
            return getattr(self._server, name)
        call = _api_call(sys._getframe(1)) or name
        self.breach = self.breach or (call, self._caller())
        raise SealedCall(call)


def _api_call(frame: FrameType | None) -> str | None:
    """The terminal function the strategy called (``positions_get()``): the first public method of the
    terminal (terminal/api.py) up the stack from the sealed read."""
    while frame is not None:
        code = frame.f_code
        if code.co_filename.endswith(_API_FILE) and not code.co_name.startswith("_"):
            return f"{code.co_name}()"
        frame = frame.f_back
    return None


# The signals a pass holds at most (each a Signal object, ~1 KB): at that many it stops before the next
# point, the kernel trades the points before it and the Python loop goes on from there (bounded memory
# for a strategy that signals on every bar).
LIMIT = 250_000


@dataclass
class Pass:
    """The signals of each point the pass called (``points``: all, or those before its ``LIMIT``), and
    where it stopped on a strategy error that stops the run (``on_strategy_error: stop``): that point
    and the error, raised there again."""

    points: int = 0
    batches: dict[int, Batch] = field(default_factory=dict)
    failed_at: int | None = None
    error: BaseException | None = None

    def replay(self, tl: Timeline, call: Callable[[Any, int], Batch]) -> Callable[[Any, int], Batch]:
        """``decide`` for the loop: (events, time) -> the signals the pass recorded at that time; from the
        first point the pass did not call on, the strategies themselves (``call``)."""
        times = tl.times
        by_time = {int(times[n]): batch for n, batch in self.batches.items()}
        failed_at = None if self.failed_at is None else int(times[self.failed_at])
        error = self.error
        beyond = int(times[self.points]) if self.points < len(times) else None

        def decide(events: Any, t: int) -> Batch:
            if t == failed_at and error is not None:
                raise error
            if beyond is not None and t >= beyond:
                return call(events, t)
            return by_time.get(t, [])

        return decide


def run(runner: Runner, tl: Timeline, progress: Callable[[int, int], None] | None = None) -> Pass:
    """Call the strategies at every point of ``tl`` with the account sealed; their signals per point."""
    from mt5tester.engine.timeline import points

    c, host, ctx = runner.c, runner.host, runner.ctx
    terminal = c.terminal
    server, now, market_now = terminal.server, c.server.state.now, terminal.market.now
    sealed = Sealed(server, lambda: host.active)
    router, connected = terminal.router, terminal.connected
    terminal.server = sealed  # type: ignore[assignment]  # the server's read-only part, or SealedCall
    terminal.router = lambda req: sealed.order_send  # order_send: sealed like the rest
    out = Pass()
    set_time, decide, batches = terminal.set_time, host.decide, out.batches
    n, held, limit, called = 0, 0, LIMIT, 0  # called: the points whose strategies were called
    try:
        for n, t, events, _ in points(tl, 0):
            if held >= limit:
                break
            called = n + 1
            ctx.now = t
            set_time(t)
            if batch := decide(events, t):
                batches[n] = batch
                held += len(batch)
            if sealed.breach is not None or terminal.connected is not connected:
                if sealed.breach is None:  # shutdown(): the trades after it would fail
                    callers = sorted({si for si, _, _ in events})
                    sealed.breach = ("shutdown()", callers[0] if len(callers) == 1 else None)
                raise SealedCall(sealed.breach[0])  # (a strategy that caught SealedCall itself too)
            if progress is not None and not n & 0xFFFF:
                progress(n, len(tl))
    except SealedCall as e:
        si = sealed.breach[1] if sealed.breach is not None else None
        who = f"strategy {host.name(si)}" if si is not None else "a strategy"
        raise StrategyRuntimeError(
            f"{who} is declared bars_only but called the terminal's {e.args[0]} (account, "
            f"positions, orders, history or trading) at {_ts(tl, n)} UTC: its decisions read the account; "
            "remove bars_only from the strategy class"
        ) from None
    except Exception as e:  # on_strategy_error: stop (the loop raises it at that point, after its trades)
        out.failed_at, out.error = n, e
    finally:
        out.points = called
        terminal.server, terminal.router, terminal.connected = server, router, connected
        server.state.now = now
        terminal.market.rewind(market_now)  # the clocks as before the pass: the trading starts at bar 1
        host.active = None
    return out


def _ts(tl: Timeline, n: int) -> str:
    from mt5tester.engine.preflight import ts

    return ts(int(tl.times[n])) if len(tl) else "-"
