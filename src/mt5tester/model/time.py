"""Time: UTC nanoseconds inside, the broker's server clock at the MetaTrader5 API (spec 5.2).

Every time the engine keeps is UTC int64 ns (ARCHITECTURE section 2); the API's ``time`` fields are
seconds (``*_msc`` milliseconds) of the server's wall clock encoded as if it were UTC. The unit
constants and the server time zone parser live here so every layer converts the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MS_NS = 1_000_000
SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
WEEK_NS = 7 * DAY_NS
NEVER_NS = 2**63 - 1  # a time after every other


# server_tz text: [UTC|GMT] sign hours [[:]minutes], at most 18 hours either side
_MAX_OFFSET_MIN = 18 * 60
_FIXED_RE = re.compile(r"^(?:(?:UTC|GMT)\s*)?([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_UTC_NAMES = frozenset({"UTC", "GMT", "Z"})


def parse_server_tz(spec: str | tzinfo) -> tzinfo:
    """Validate a server time zone and return a ``tzinfo``.

    Accepted: ``"UTC"``/``"GMT"``/``"Z"`` (-> ``datetime.UTC``); a fixed offset east of UTC such as
    ``"+02:00"``, ``"-0500"``, ``"+2"``, ``"UTC+2"``, ``"GMT+03:00"`` (-> ``datetime.timezone``; note
    ``"UTC+2"`` means the server clock is 2 h ahead of UTC, unlike the POSIX-style ``"Etc/GMT+2"``);
    an IANA zone name such as ``"Europe/Athens"`` (-> ``zoneinfo.ZoneInfo``, DST-aware); or a
    ``tzinfo`` instance, returned as is. Anything else raises ``ValueError``.
    """
    if isinstance(spec, tzinfo):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"server_tz must be a string or tzinfo, got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise ValueError("server_tz is empty; use 'UTC', a fixed offset like '+02:00' or an IANA zone")
    if text.upper() in _UTC_NAMES:
        return UTC
    m = _FIXED_RE.match(text)
    if m is not None:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        total = hours * 60 + minutes
        if minutes >= 60 or total > _MAX_OFFSET_MIN:
            raise ValueError(f"server_tz {spec!r}: offset out of range (minutes < 60, at most ±18:00)")
        if total == 0:
            return UTC
        return timezone(timedelta(minutes=-total if sign == "-" else total))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"server_tz {spec!r} is neither 'UTC', a fixed offset like '+02:00' / 'UTC+2', "
            "nor a known IANA zone like 'Europe/Athens'"
        ) from None


def utcoffset_s(tz: tzinfo, epoch_s: int) -> int:
    """UTC offset in seconds of ``tz`` at the UTC instant ``epoch_s``."""
    local = datetime.fromtimestamp(epoch_s, tz)
    off = local.utcoffset()
    if off is None:
        raise ValueError(f"time zone {tz!r} gives no UTC offset")
    return int(off.total_seconds())
