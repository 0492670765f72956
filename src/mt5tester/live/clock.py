"""What moves time in a session. Both clocks answer one question: given, per symbol, the close of the
bar each strategy waits for, when is the first tick at or after it (the moment a backtest calls the
strategy: the bar is known closed on the first tick after its close, README "Design choices")?

``WallClock``: a real terminal; time passes by itself, the clock polls the symbols' last ticks.
``ReplayClock``: our simulated terminal over stored data; the clock jumps the terminal from tick to tick,
optionally paced at ``speed`` times real time (0: as fast as possible).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from mt5tester.errors import ConfigError
from mt5tester.terminal.api import SimTerminal

SECOND_NS = 1_000_000_000
LAST_OHLC_TICK_NS = 59 * SECOND_NS  # the 1-minute OHLC path's last tick (spec 6.1)


class Clock(Protocol):
    def now(self) -> int:
        """UTC ns."""
        ...

    def wait(self, due: dict[str, int], stop: Callable[[], bool]) -> int | None:
        """Block until a symbol of ``due`` has a tick at or after its time (UTC ns); return that tick's
        time, or None when the session ends or ``stop()`` turns true."""
        ...


class ReplayClock:
    """Replays stored data through a SimTerminal: each ``wait`` advances its trade server (fills, SL/TP,
    swaps, stop-outs on the way) and its clock to the next tick a strategy waits for."""

    def __init__(
        self,
        terminal: SimTerminal,
        start_ns: int,
        end_ns: int,
        speed: float = 0.0,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        self.terminal, self.server = terminal, terminal.server
        self.end_ns, self.speed, self.sleep = end_ns, speed, sleep
        real = self.server.real_ticks if self.server.settings.tick_mode == "real_ticks" else {}
        # the ticks a backtest's timeline looks at: recorded ones in real_ticks mode, else M1 opens
        self.times = {s: (real[s].time if s in real else b.time) for s, b in terminal.market.m1.items()}
        self._now = start_ns - 1  # just before the start: a bar first seen at `start` is still to come
        if self._now >= terminal.market.now:
            self.server.advance(self._now)
            terminal.set_time(self._now)
        else:  # a session restarted on a terminal that has moved on: it continues from there
            self._now = terminal.market.now
        self._wall = _time.monotonic()

    def now(self) -> int:
        return self._now

    def first_tick(self, symbol: str, t: int) -> int | None:
        times = self.times.get(symbol)
        if times is None:
            return None
        i = int(np.searchsorted(times, t, "left"))
        return int(times[i]) if i < len(times) else None

    def wait(self, due: dict[str, int], stop: Callable[[], bool]) -> int | None:
        ticks = [x for s, c in due.items() if (x := self.first_tick(s, max(c, self._now + 1))) is not None]
        if not ticks or min(ticks) >= self.end_ns or stop():
            return None
        t = min(ticks)
        if self.speed > 0:  # pace: simulated time passes `speed` times faster than the wall clock
            target = self._wall + (t - self._now) / SECOND_NS / self.speed
            while (left := target - _time.monotonic()) > 0:
                if stop():
                    return None
                self.sleep(min(left, 0.2))
        self._wall = _time.monotonic()
        self.move(t)
        return t

    def move(self, t: int) -> None:
        """The market moves to ``t``: what happened in between is replayed by the trade server."""
        self.server.advance(t)
        self.terminal.set_time(t)
        self._now = t

    def last_quote_before(self, end: int) -> int:
        """The tester's last tick before ``end`` (where a backtest closes what is open at the end)."""
        last = max(
            (int(x[i - 1]) for x in self.times.values() if (i := int(np.searchsorted(x, end, "left")))),
            default=self._now,
        )
        return max(self._now, min(end - 1, last + LAST_OHLC_TICK_NS))


class WallClock:
    """A real terminal: polls ``symbol_info_tick`` every ``poll`` seconds until a tick reaches a due time."""

    def __init__(
        self,
        mt5: Any,
        to_utc: Callable[[int], int],
        poll: float,
        end_ns: int | None = None,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        self.mt5, self.to_utc, self.poll, self.end_ns, self.sleep = mt5, to_utc, poll, end_ns, sleep
        self._now = 0
        # called when the terminal is found disconnected: True once reconnected (and reconciled)
        self.reconnect: Callable[[], bool] | None = None
        self.lost: str | None = None  # why the clock gave up: the connection could not be restored

    def start(self, symbols: list[str]) -> None:
        """Now is the terminal's last tick (the server's clock, not this machine's)."""
        if not self.mt5.initialize():
            code, text = self.mt5.last_error()
            raise ConfigError(f"preflight: the terminal did not initialize (last_error {code}: {text})")
        ticks = [t for s in symbols if (t := self._tick(s)) is not None]
        self._now = max(ticks) if ticks else _time.time_ns()

    def _tick(self, symbol: str) -> int | None:
        tick = self.mt5.symbol_info_tick(symbol)
        if tick is None or not tick.time_msc:
            return None
        return self.to_utc(int(tick.time_msc) // 1000) + int(tick.time_msc) % 1000 * 1_000_000

    def now(self) -> int:
        return self._now

    def wait(self, due: dict[str, int], stop: Callable[[], bool]) -> int | None:
        while not stop():
            seen = []
            for symbol, close in due.items():
                t = self._tick(symbol)
                if t is not None and t >= close:
                    seen.append(t)
            if seen:
                self._now = max(self._now, min(seen))
                return self._now
            info = self.mt5.terminal_info()
            if (info is None or not info.connected) and not (self.reconnect and self.reconnect()):
                code, text = self.mt5.last_error()
                self.lost = f"connection lost ({code}: {text})"
                return None
            if self.end_ns is not None and _time.time_ns() >= self.end_ns:
                return None
            self.sleep(self.poll)
        return None
