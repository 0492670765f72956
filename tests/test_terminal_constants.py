"""MetaTrader5-package constants and records, checked against the spec text itself.

The spec (../shared/spec/mt5_python_api.md) is parsed: the field lists of §3.3–3.12, the dtypes of §3.1/3.2
and every constant of §4 (prose lists, the 4.1 / 4.13 / 4.14 tables). The parser is lenient about layout,
the checks are strict: a missing constant, a different value or a different field order fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple, get_type_hints

import numpy as np
import pytest

from mt5tester.model import constants, structs
from mt5tester.model.timeframe import Timeframe

from conftest import require

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "spec" / "mt5_python_api.md"

# Package constants the §4 prose abbreviates with "…" (DAY_OF_WEEK_*: SUNDAY 0 … SATURDAY 6).
ELIDED_IN_SPEC = {
    "DAY_OF_WEEK_MONDAY": 1,
    "DAY_OF_WEEK_TUESDAY": 2,
    "DAY_OF_WEEK_WEDNESDAY": 3,
    "DAY_OF_WEEK_THURSDAY": 4,
    "DAY_OF_WEEK_FRIDAY": 5,
}

RECORD_CLASSES = {
    "AccountInfo",
    "TerminalInfo",
    "SymbolInfo",
    "TradePosition",
    "TradeOrder",
    "TradeDeal",
    "TradeRequest",
    "OrderSendResult",
    "OrderCheckResult",
    "BookInfo",
}


# ---------------------------------------------------------------------------------------------- parsing
def _spec_text() -> str:
    require(SPEC_PATH.is_file(), f"spec not found at {SPEC_PATH}")
    return SPEC_PATH.read_text(encoding="utf-8")


def _block(text: str, start: str, end: str | None) -> str:
    """The text from the line starting with `start` up to (not including) the line starting with `end`."""
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith(start))
    j = len(lines)
    if end is not None:
        j = next(n for n in range(i + 1, len(lines)) if lines[n].startswith(end))
    return "\n".join(lines[i:j])


def _table_rows(block: str) -> list[list[str]]:
    rows = []
    for line in block.splitlines():
        s = line.strip()
        if s.startswith("|") and not re.fullmatch(r"[|\s:-]+", s):
            # split on unescaped pipes only: the 4.1 cell '(0x4000\|24)' holds an escaped one
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", s.strip("|"))])
    return rows


def _strip_parens(s: str) -> str:
    while True:
        t = re.sub(r"\([^()]*\)", " ", s)
        if t == s:
            return t
        s = t


_TOKEN = re.compile(
    r"`(?P<full>[A-Z][A-Z0-9_]*)`"
    r"|\b(?P<prefix>[A-Z][A-Z0-9_]*_)\*"
    r"|\b(?P<word>[A-Z][A-Z0-9_]*)\b"
    r"|(?<![\w.])(?P<num>-?(?:0x[0-9A-Fa-f]+|\d+))\b"
    r"|(?P<other>\S)"
)


class _Parsed(NamedTuple):
    values: dict[str, int]
    prefixes: dict[str, int]  # prefix -> number of constants read under it
    orphans: list[str]  # NAME value pairs seen without a prefix in force


def _parse_prose_constants(block: str) -> _Parsed:
    """Read `NAME value` pairs from lines like '**4.2 ORDER_TYPE_*:** BUY 0, SELL 1 (note), ...'.

    A `PREFIX_*` token sets the prefix; `SUB WORD value` (e.g. 'TRADE_MODE DEMO 0' under ACCOUNT_*) sets a
    sub-prefix; a back-quoted full name (`DEAL_TAX` 17) stands alone. Parenthesised notes are dropped.
    """
    values: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    orphans: list[str] = []
    for raw in block.splitlines():
        if raw.lstrip().startswith("|"):
            continue
        toks = [(m.lastgroup, m.group(m.lastgroup or "")) for m in _TOKEN.finditer(_strip_parens(raw))]
        prefix, sub = "", ""
        for k, (kind, val) in enumerate(toks):
            nxt = toks[k + 1] if k + 1 < len(toks) else ("", "")
            nxt2 = toks[k + 2] if k + 2 < len(toks) else ("", "")
            if kind == "prefix":
                prefix, sub = val, ""
                prefixes.setdefault(prefix, 0)
            elif kind == "full" and nxt[0] == "num":
                name = val
                assert values.get(name, int(nxt[1], 0)) == int(nxt[1], 0), f"{name} given twice"
                values[name] = int(nxt[1], 0)
            elif kind == "word" and nxt[0] == "word" and nxt2[0] == "num":
                sub = val + "_"
            elif kind == "word" and nxt[0] == "num":
                if not prefix:
                    orphans.append(f"{val} {nxt[1]}")
                    continue
                name = prefix + sub + val
                assert values.get(name, int(nxt[1], 0)) == int(nxt[1], 0), f"{name} given twice"
                values[name] = int(nxt[1], 0)
                prefixes[prefix] += 1
    return _Parsed(values, prefixes, orphans)


def _spec_prose_constants(text: str) -> _Parsed:
    return _parse_prose_constants(_block(text, "**4.2 ", "**4.13 "))


def _spec_timeframes(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in _table_rows(_block(text, "**4.1 ", "**4.2 ")):
        for cell in row:
            m = re.fullmatch(r"([A-Z]+\d+)\s+(\d+)", _strip_parens(cell.replace("**", "")).strip())
            if m:
                out["TIMEFRAME_" + m.group(1)] = int(m.group(2))
    return out


def _spec_last_errors(text: str) -> tuple[dict[str, int], dict[int, str]]:
    """4.13 table: (constant -> code, code -> message as quoted in the spec)."""
    codes: dict[str, int] = {}
    messages: dict[int, str] = {}
    for row in _table_rows(_block(text, "**4.13 ", "**4.14 ")):
        nums = [int(x) for x in re.findall(r"-?\d+", row[1])]
        if not nums:
            continue  # header
        names = [n.strip() for n in row[0].split("/")]
        # 'RES_E_INTERNAL_FAIL_SEND / _RECEIVE': a fragment replaces the first name's last part.
        names = [names[0].rsplit("_", 1)[0] + n if n.startswith("_") else n for n in names]
        quoted = re.findall(r"'([^']*)'", row[2])
        assert len(names) == len(nums), row
        for i, (name, code) in enumerate(zip(names, nums, strict=True)):
            codes[name] = code
            if len(quoted) == len(names):
                messages[code] = quoted[i]
            elif quoted:
                messages[code] = quoted[0]
    return codes, messages


def _spec_retcodes(text: str) -> tuple[dict[str, int], set[str]]:
    """4.14 table: (TRADE_RETCODE_* -> code, names the spec marks as not exported)."""
    exported: dict[str, int] = {}
    absent: set[str] = set()
    for row in _table_rows(_block(text, "**4.14 ", "## 5.")):
        nums = [int(x) for x in re.findall(r"\d+", row[0])]
        if not nums:
            continue  # header
        names = [n.strip() for n in row[1].split("/")]
        # 'SERVER_/CLIENT_DISABLES_AT': a fragment ending in '_' takes the last name's tail.
        names = [n + names[-1].split("_", 1)[1] if n.endswith("_") else n for n in names]
        assert len(names) == len(nums), row
        for name, code in zip(names, nums, strict=True):
            if row[0].startswith("("):
                absent.add("TRADE_RETCODE_" + name)
            else:
                exported["TRADE_RETCODE_" + name] = code
    return exported, absent


def _spec_record_fields(text: str) -> dict[str, tuple[list[str], int | None]]:
    """§3.3–3.12: class name -> (field list, field count stated in the heading or None)."""
    out: dict[str, tuple[list[str], int | None]] = {}
    section = _block(text, "## 3.", "## 4.")
    for part in re.split(r"^### ", section, flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        m = re.match(r"3\.(\d+)\s+(\w+)", heading)
        if not m or int(m.group(1)) < 3:
            continue
        fields_src = next(s for s in re.findall(r"`([^`]*)`", body) if "," in s)
        count = re.search(r"(\d+) fields", heading)
        out[m.group(2)] = (
            [f.strip() for f in fields_src.split(",")],
            int(count.group(1)) if count else None,
        )
    return out


def _spec_dtype(text: str, number: str) -> np.dtype[Any]:
    body = _block(text, f"### {number} ", "### ")
    src = next(s for s in re.findall(r"`([^`]*)`", body) if s.startswith("[("))
    return np.dtype([(n, t) for n, t in re.findall(r"\('(\w+)','([<>|=]?\w+)'\)", src)])


def _constant(name: str) -> Any:
    assert hasattr(constants, name), f"constants.{name} is missing"
    return getattr(constants, name)


# ------------------------------------------------------------------------------- constants vs spec §4
def test_constants_spec_prose_lists_all_present_with_exact_values() -> None:
    parsed = _spec_prose_constants(_spec_text())
    assert parsed.orphans == []
    # Every prefix the spec introduces must have yielded constants, so a parser slip cannot pass silently.
    assert {p for p, n in parsed.prefixes.items() if n == 0} == set()
    assert {"ORDER_TYPE_", "ACCOUNT_", "BOOK_TYPE_", "TICK_FLAG_", "DAY_OF_WEEK_"} <= set(parsed.prefixes)
    for name in ("ACCOUNT_MARGIN_MODE_RETAIL_HEDGING", "DEAL_TAX", "COPY_TICKS_ALL", "TICK_FLAG_SELL"):
        assert name in parsed.values
    wrong = {n: (v, getattr(constants, n, None)) for n, v in parsed.values.items() if _constant(n) != v}
    assert wrong == {}
    assert all(type(_constant(n)) is int for n in parsed.values)


def test_constants_under_spec_prefixes_nothing_beyond_spec() -> None:
    parsed = _spec_prose_constants(_spec_text())
    ours = {
        n
        for n in vars(constants)
        if any(n.startswith(p) for p in parsed.prefixes) and isinstance(getattr(constants, n), int)
    }
    assert ours - set(parsed.values) == set(ELIDED_IN_SPEC)


def test_constants_day_of_week_elided_days_expected_values() -> None:
    assert {n: _constant(n) for n in ELIDED_IN_SPEC} == ELIDED_IN_SPEC


def test_constants_timeframe_table_matches_spec_and_model() -> None:
    spec = _spec_timeframes(_spec_text())
    assert set(spec) == {f"TIMEFRAME_{tf.name}" for tf in Timeframe}
    assert {n: _constant(n) for n in spec} == spec
    assert {n: int(Timeframe[n.removeprefix("TIMEFRAME_")]) for n in spec} == spec
    assert all(type(_constant(n)) is int for n in spec)


def test_constants_last_error_table_codes_and_messages_match_spec() -> None:
    codes, messages = _spec_last_errors(_spec_text())
    assert len(codes) == 15
    assert {n: _constant(n) for n in codes} == codes
    assert {n for n in vars(constants) if n.startswith("RES_")} == set(codes)
    assert set(constants.LAST_ERROR_MESSAGES) == set(codes.values())
    for code, text in messages.items():
        ours = constants.LAST_ERROR_MESSAGES[code]
        if text.endswith("…"):  # the spec truncates a few texts
            assert ours.startswith(text.rstrip("…").rstrip(", ")), code
        else:
            assert ours == text, code


def test_constants_retcode_table_matches_spec_exactly() -> None:
    exported, absent = _spec_retcodes(_spec_text())
    assert absent == {"TRADE_RETCODE_HEDGE_PROHIBITED"}
    assert {n: _constant(n) for n in exported} == exported
    assert {n for n in vars(constants) if n.startswith("TRADE_RETCODE_")} == set(exported)
    assert all(not hasattr(constants, n) for n in absent)


def test_constants_retcode_comments_cover_every_retcode() -> None:
    exported, _ = _spec_retcodes(_spec_text())
    assert set(constants.RETCODE_COMMENTS) == set(exported.values()) | {0}
    assert all(isinstance(v, str) and v for v in constants.RETCODE_COMMENTS.values())


# ---------------------------------------------------------------------------------- records vs spec §3
def test_structs_field_lists_match_spec_in_order() -> None:
    spec = _spec_record_fields(_spec_text())
    assert set(spec) == RECORD_CLASSES
    for name, (fields, count) in spec.items():
        cls = getattr(structs, name)
        assert list(cls._fields) == fields, name
        if count is not None:
            assert len(fields) == count, name


def test_structs_tick_fields_match_spec_and_ticks_dtype() -> None:
    m = re.search(r"`Tick\(([^)]*)\)`", _block(_spec_text(), "### 3.2 ", "### "))
    assert m is not None
    fields = [f.strip() for f in m.group(1).split(",")]
    assert list(structs.Tick._fields) == fields
    assert structs.TICKS_DTYPE.names == tuple(fields)


def test_structs_dtypes_match_spec() -> None:
    text = _spec_text()
    rates, ticks = _spec_dtype(text, "3.1"), _spec_dtype(text, "3.2")
    assert len(rates.names or ()) == 8
    assert len(ticks.names or ()) == 8
    assert rates == structs.RATES_DTYPE
    assert rates.descr == structs.RATES_DTYPE.descr
    assert ticks == structs.TICKS_DTYPE
    assert ticks.descr == structs.TICKS_DTYPE.descr


# ----------------------------------------------------------------------------------- direct checks
def test_constants_timeframe_d1_is_16408() -> None:
    assert constants.TIMEFRAME_D1 == 16408
    assert constants.TIMEFRAME_MN1 == 49153


def test_constants_no_money_retcode_is_10019_with_comment() -> None:
    assert constants.TRADE_RETCODE_NO_MONEY == 10019
    assert constants.RETCODE_COMMENTS[10019] == "No money"
    assert constants.RETCODE_COMMENTS[constants.TRADE_RETCODE_DONE] == "Request executed"


def test_constants_hedge_prohibited_not_exported() -> None:
    assert hasattr(constants, "TRADE_RETCODE_HEDGE_PROHIBITED") is False
    assert 10046 not in constants.RETCODE_COMMENTS


def test_constants_symbol_bit_flags_expected_values() -> None:
    assert (constants.SYMBOL_FILLING_FOK, constants.SYMBOL_FILLING_IOC) == (1, 2)
    expiration = (
        constants.SYMBOL_EXPIRATION_GTC
        | constants.SYMBOL_EXPIRATION_DAY
        | constants.SYMBOL_EXPIRATION_SPECIFIED
        | constants.SYMBOL_EXPIRATION_SPECIFIED_DAY
    )
    assert expiration == 15
    order_mode = (
        constants.SYMBOL_ORDER_MARKET
        | constants.SYMBOL_ORDER_LIMIT
        | constants.SYMBOL_ORDER_STOP
        | constants.SYMBOL_ORDER_STOP_LIMIT
        | constants.SYMBOL_ORDER_SL
        | constants.SYMBOL_ORDER_TP
        | constants.SYMBOL_ORDER_CLOSEBY
    )
    assert order_mode == 127


def test_constants_last_error_no_ipc_connection_is_10004() -> None:
    assert constants.RES_E_INTERNAL_FAIL_CONNECT == -10004
    assert constants.LAST_ERROR_MESSAGES[-10004] == "No IPC connection"


@pytest.mark.parametrize("name", sorted(RECORD_CLASSES | {"Tick"}))
def test_structs_defaults_all_zero_of_annotated_type(name: str) -> None:
    cls = getattr(structs, name)
    hints = get_type_hints(cls)
    record = cls()
    for field in cls._fields:
        value = getattr(record, field)
        assert type(value) is hints[field], (name, field)
        if hints[field] is structs.TradeRequest:
            assert value == structs.TradeRequest()
        else:
            assert value == hints[field](), (name, field)


def test_structs_partial_construction_fills_rest_with_zeros() -> None:
    p = structs.TradePosition(ticket=5, volume=0.1, symbol="EURUSD")
    assert (p.ticket, p.volume, p.symbol, p.sl, p.comment, p.time_msc) == (5, 0.1, "EURUSD", 0.0, "", 0)
    assert p._asdict()["identifier"] == 0
    book = structs.BookInfo(type=1, price=1.1)
    assert repr(book) == "BookInfo(type=1, price=1.1, volume=0, volume_dbl=0.0)"


def test_trade_request_from_dict_full_request_echoed_in_field_order() -> None:
    d = {
        "position_by": 0,
        "action": constants.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": constants.ORDER_TYPE_BUY,
        "price": 1.1,
        "sl": 1.09,
        "tp": 1.12,
        "deviation": 10,
        "magic": 234000,
        "comment": "python script open",
        "type_time": constants.ORDER_TIME_GTC,
        "type_filling": constants.ORDER_FILLING_IOC,
    }
    r = structs.trade_request_from_dict(d)
    # field order: action magic order symbol volume price stoplimit sl tp deviation type type_filling
    # type_time expiration comment position position_by (spec 3.9)
    expected = (1, 234000, 0, "EURUSD", 0.1, 1.1, 0.0, 1.09, 1.12, 10, 0, 1, 0, 0, "python script open", 0, 0)
    assert tuple(r) == expected


def test_trade_request_from_dict_empty_all_zero() -> None:
    assert structs.trade_request_from_dict({}) == structs.TradeRequest()


def test_trade_request_from_dict_numpy_float64_accepted_as_float() -> None:
    r = structs.trade_request_from_dict({"volume": np.float64(0.25)})
    assert r.volume == 0.25
    assert type(r.volume) is float


def test_trade_request_from_dict_unknown_key_raises() -> None:
    with pytest.raises(ValueError, match=r'^Invalid "foo" argument$'):
        structs.trade_request_from_dict({"action": 1, "foo": 2})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("volume", 1),  # an int where the package wants a double
        ("volume", "0.1"),
        ("price", None),
        ("symbol", 1),
        ("comment", b"x"),
        ("action", 1.0),
        ("magic", -1),
        ("deviation", np.int64(10)),
        ("expiration", 1.5),
    ],
)
def test_trade_request_from_dict_wrong_type_raises_with_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf'^Invalid "{key}" argument$'):
        structs.trade_request_from_dict({"action": 1, key: value})


def test_trade_request_from_dict_known_keys_checked_before_unknown() -> None:
    # Keys are validated one by one in field order (spec §2), unknown keys last.
    with pytest.raises(ValueError, match=r'^Invalid "volume" argument$'):
        structs.trade_request_from_dict({"zzz": 1, "type": "x", "volume": "x"})


def test_trade_request_from_dict_not_a_dict_raises() -> None:
    with pytest.raises(ValueError, match="Invalid 1st unnamed argument"):
        structs.trade_request_from_dict([("action", 1)])  # type: ignore[arg-type]


def test_shim_module_has_every_function_of_the_spec_table() -> None:
    """Every function named in the spec's section 2 table exists in the MetaTrader5 shim, plus
    the package's undocumented Buy/Sell/Close helpers (spec 1)."""
    require(SPEC_PATH.is_file(), f"spec not found at {SPEC_PATH}")
    text = SPEC_PATH.read_text(encoding="utf-8")
    section = text[text.index("## 2. Functions") : text.index("## 3. Returned structures")]
    names = set(re.findall(r"^\| `([a-z_]+)\(", section, flags=re.M))
    names |= set(re.findall(r"`([a-z_]+)\(symbol\)` / `([a-z_]+)\(symbol\)`", section)[0])
    assert {"initialize", "order_send", "copy_ticks_range", "market_book_add", "market_book_release"} <= names
    from mt5tester.terminal.shim import FUNCTIONS

    assert sorted(names - set(FUNCTIONS)) == []
    assert {"Buy", "Sell", "Close"} <= set(FUNCTIONS)
