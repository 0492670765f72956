"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ended by a NUL byte, read by the browser on fd 3 and written on fd 4): no port, no websocket
library, one browser process for the whole PDF.

The browser is started as soon as a PDF is asked for and loads its first page (the printed page's shell:
CSS and plotly.js) while Python still reads the run; the caller talks to it only when that work is done.
Everything the browser reports as an error (an exception in the page, a console error, a crash, a
timeout) is raised, never printed over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from mt5tester.errors import ConfigError

TIMEOUT_S = 300.0
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class BrowserError(ConfigError):
    """Chromium failed, stopped answering or reported an error in the page (exit 2, with its message)."""


class Chromium:
    """One headless browser process (its own session: closing kills every process it started) with the
    page ``url`` open. ``call`` sends one DevTools command and returns its result."""

    def __init__(self, binary: str, url: str) -> None:
        self.binary = binary
        self._profile = tempfile.TemporaryDirectory(prefix="mt5tester-chromium-", ignore_cleanup_errors=True)
        self._log = Path(self._profile.name) / "stderr.log"
        to_child, self._write = os.pipe()  # the browser reads commands on fd 3
        self._read, from_child = os.pipe()  # and writes answers and events on fd 4
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child, from_child)]
        os.close(to_child)
        os.close(from_child)
        argv = [binary, *FLAGS, f"--user-data-dir={self._profile.name}", url]
        actions = [
            (os.POSIX_SPAWN_DUP2, high[0], 3),
            (os.POSIX_SPAWN_DUP2, high[1], 4),
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(self._log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        try:
            # posix_spawn, not fork + exec: the CLI's spinner runs a thread, and a forked child of a
            # threaded process may deadlock before exec
            self.pid = os.posix_spawn(binary, argv, dict(os.environ), file_actions=actions, setsid=True)
        except OSError as e:
            os.close(self._write)
            os.close(self._read)
            self._profile.cleanup()
            raise BrowserError(f"cannot start {binary}: {e.strerror}") from None
        finally:
            for fd in high:
                os.close(fd)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.closed = False

    # --- protocol ----------------------------------------------------------------------------------------
    def _fail(self, what: str) -> BrowserError:
        tail = ""
        if self._log.is_file():
            lines = [ln for ln in self._log.read_text(errors="replace").splitlines() if ln.strip()]
            tail = "\n".join(lines[-5:])
        self.close()
        return BrowserError(f"{self.binary}: {what}" + (f"\n{tail}" if tail else ""))

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"no answer within {TIMEOUT_S:.0f} s")
            ready, _, _ = select.select([self._read], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise self._fail("the browser exited")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send one command and wait for its answer; the events that arrive meanwhile go to ``events``."""
        if self.closed:
            raise BrowserError(f"{self.binary}: the browser is closed")
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._write, data) :]
        except OSError as e:
            raise self._fail(f"the browser does not read its commands ({e})") from None
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise self._fail(f"{method} failed: {answer['error'].get('message', answer['error'])}")
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)

    def page_session(self) -> str:
        """A session attached to the page the browser opened at start."""
        targets = self.call("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise self._fail("no page is open")
        return str(
            self.call("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True})[
                "sessionId"
            ]
        )

    def close(self) -> None:
        """Ask the browser to quit, then end its process group; idempotent."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            os.write(self._write, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                break
            time.sleep(0.02)
        else:
            os.killpg(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        with contextlib.suppress(ProcessLookupError):  # helpers (zygote, renderer) that outlived it
            os.killpg(self.pid, signal.SIGKILL)
        os.close(self._write)
        os.close(self._read)
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
