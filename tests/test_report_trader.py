"""The report a trader reads first (issue 17 part 3): every trade of a 15k-trade run in the page, filters,
the new sections, plotly.js modes, the Chromium-printed PDF, exports; screenshots in artifacts/report/."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, insert, select

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.reports.analysis import by_period
from mt5tester.reports.content import RunReport, breakdown, build_trades, load_run, open_results_db
from mt5tester.reports.html import PLOTLY_FILE, PRINT_ROWS, write_html_report, write_run_html
from mt5tester.reports.pdf import PdfPrinter, write_run_pdf
from mt5tester.reports.prices import resample
from mt5tester.results import db
from mt5tester.results.metrics import DEAL_BUY, DEAL_SELL, compute_metrics

from conftest import base_config, require

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "report"
BIG = 15_000  # positions of the synthetic run
SECTIONS = [
    "summary",
    "metrics",
    "equity",
    "monthly",
    "periods",
    "breakdown",
    "prices",
    "trades",
    "deals",
    "lifecycle",
    "regimes",
    "health",
    "errors",
    "config",
]
H = 3_600_000_000_000  # one hour in ns


@dataclass
class Big:
    db_url: str
    small: str  # a real (short) run
    big: str  # the same run's config with 15k synthetic positions
    out: Path


def _insert(conn, table, rows: list[dict]) -> None:
    if rows:
        conn.execute(insert(table), rows)


def _synthetic(db_url: str, base: str, run_id: str, n: int) -> None:
    """Copy run ``base`` (config, strategies, health) as ``run_id`` with ``n`` positions on EURUSD, GBPUSD and
    USDJPY, each an IN and an OUT deal, its order, its signal (regime trend/range by blocks of 500)."""
    engine = create_engine(db_url)
    t0 = int(pd.Timestamp("2024-01-02T00:00:00Z").value)
    step = 90 * 1_000_000_000  # a position every 90 s: 15k fit in the run's window
    prices = {"EURUSD": 1.1, "GBPUSD": 1.27, "USDJPY": 145.0}
    syms = list(prices)
    with engine.begin() as conn:
        run = dict(conn.execute(select(db.runs).where(db.runs.c.run_id == base)).mappings().one())
        _insert(conn, db.runs, [run | {"run_id": run_id, "funnel": {}}])
        for t in (db.run_strategies, db.data_health):
            rows = [
                dict(r) | {"run_id": run_id}
                for r in conn.execute(select(t).where(t.c.run_id == base)).mappings()
            ]
            _insert(conn, t, rows)
        deals, orders, positions, signals, equity = [], [], [], [], []
        balance = float(run["deposit"])
        deals.append(
            dict(
                run_id=run_id,
                ticket=1,
                order=0,
                time=t0,
                type=2,
                entry=0,
                reason=0,
                position_id=0,
                symbol="",
                volume=0.0,
                price=0.0,
                commission=0.0,
                swap=0.0,
                profit=balance,
                balance=balance,
                comment="deposit",
                strategy="",
                signal_id=None,
            )
        )
        for i in range(n):
            pid, sym = i + 1, syms[i % 3]
            side = DEAL_BUY if i % 2 == 0 else DEAL_SELL
            t_in, t_out = t0 + i * step, t0 + i * step + 60 * 1_000_000_000
            p_in = prices[sym]
            profit = round(((i * 37) % 200 - 90) / 10.0, 2)
            p_out = p_in + (0.0001 if profit >= 0 else -0.0001) * (1 if side == DEAL_BUY else -1)
            common = dict(run_id=run_id, symbol=sym, strategy="ma", signal_id=pid, position_id=pid)
            deals.append(
                common
                | dict(
                    ticket=2 * pid,
                    order=2 * pid,
                    time=t_in,
                    type=side,
                    entry=0,
                    reason=3,
                    volume=0.1,
                    price=p_in,
                    commission=0.0,
                    swap=0.0,
                    profit=0.0,
                    balance=balance,
                    comment=f"signal {pid}",
                )
            )
            balance = round(balance + profit, 2)
            deals.append(
                common
                | dict(
                    ticket=2 * pid + 1,
                    order=2 * pid + 1,
                    time=t_out,
                    type=1 - side,
                    entry=1,
                    reason=4 if profit < 0 else 5,
                    volume=0.1,
                    price=p_out,
                    commission=0.0,
                    swap=0.0,
                    profit=profit,
                    balance=balance,
                    comment="sl" if profit < 0 else "tp",
                )
            )
            for k, (t, typ) in enumerate(((t_in, side), (t_out, 1 - side))):
                orders.append(
                    common
                    | dict(
                        ticket=2 * pid + k,
                        time_setup=t,
                        time_done=t,
                        type=typ,
                        state=4,
                        reason=3,
                        volume_initial=0.1,
                        volume_current=0.0,
                        price_open=0.0,
                        price_done=p_in if k == 0 else p_out,
                        sl=0.0,
                        tp=0.0,
                        price_stoplimit=0.0,
                        comment=f"signal {pid}",
                    )
                )
            positions.append(
                common
                | dict(
                    type=0 if side == DEAL_BUY else 1,
                    volume=0.1,
                    time_open=t_in,
                    time_close=t_out,
                    price_open=p_in,
                    price_close=p_out,
                    net=profit,
                    mfe=max(profit, 0.0) + 1.0,
                    mae=min(profit, 0.0) - 1.0,
                    close_reason=4 if profit < 0 else 5,
                )
            )
            signals.append(
                dict(
                    run_id=run_id,
                    signal_id=pid,
                    time=t_in,
                    strategy="ma",
                    symbol=sym,
                    timeframe="H1",
                    direction="buy" if side == DEAL_BUY else "sell",
                    order_type="market",
                    confidence=1.0,
                    comment="",
                    tags={"regime": "trend" if (i // 500) % 2 else "range"},
                    status="approved",
                    volume=0.1,
                    position_id=pid,
                )
            )
            if i % 50 == 0:
                equity.append(
                    dict(
                        run_id=run_id,
                        time=t_in,
                        balance=balance,
                        equity=balance,
                        margin=0.0,
                        open_positions=0,
                    )
                )
        for table, rows in (
            (db.deals, deals),
            (db.orders, orders),
            (db.positions, positions),
            (db.signals, signals),
            (db.equity, equity),
        ):
            _insert(conn, table, rows)


@pytest.fixture(scope="module")
def big(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Big:
    tmp = tmp_path_factory.mktemp("trader")
    raw = base_config(demo_data, tmp, end="2024-01-31")
    raw["report"] = {"html": False, "plotlyjs": "cdn"}  # stored with the run: the report's default
    small = Runner(build(parse_config(raw), tmp)).run().run_id
    url = raw["results"]["database_url"]
    _synthetic(url, small, "big15k", BIG)
    return Big(url, small, "big15k", tmp / "out")


@pytest.fixture(scope="module")
def big_rep(big: Big) -> RunReport:
    return load_run(open_results_db(big.db_url), big.big)


@pytest.fixture(scope="module")
def big_html(big: Big, big_rep: RunReport) -> Path:
    return write_run_html(big_rep, big.out, "inline")


def _chromium(chromium: str, tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={tmp / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _dom(chromium: str, tmp: Path, page: Path, fragment: str = "") -> tuple[str, list[str]]:
    proc = _chromium(chromium, tmp, page.resolve().as_uri() + fragment, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    problems = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    return proc.stdout, problems


def _grid_attr(dom: str, grid: str, attr: str) -> int:
    m = re.search(rf"<div class=\"grid\" id=\"grid-{grid}\" data-grid=\"{grid}\"[^>]*{attr}=\"(\d+)\"", dom)
    assert m, f"grid {grid} has no {attr}"
    return int(m.group(1))


def _grid_rows(dom: str, grid: str) -> int:
    start = dom.index(f'id="grid-{grid}"')
    body = dom[start:].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr>")


# --- trades, built in one grouped pass ------------------------------------------------------------------
def _deals(rows: list[tuple]) -> pd.DataFrame:
    cols = [
        "ticket",
        "time",
        "type",
        "entry",
        "reason",
        "position_id",
        "symbol",
        "volume",
        "price",
        "commission",
        "swap",
        "profit",
        "strategy",
        "signal_id",
        "comment",
    ]
    f = pd.DataFrame(rows, columns=cols)
    f["time"] = pd.to_datetime(f["time"], utc=True)
    return f


def test_build_trades_partial_closes_reversal_open_position_and_regime() -> None:
    deals = _deals(
        [
            (1, "2024-01-01 00:00", 2, 0, 0, 0, "", 0.0, 0.0, 0.0, 0.0, 1000.0, "", None, "deposit"),
            # position 7: buy 0.3 in two fills, closed 0.1 by TP then 0.2 by SL
            (2, "2024-01-02 10:00", 0, 0, 3, 7, "EURUSD", 0.1, 1.1000, -0.5, 0.0, 0.0, "a", 1, "signal 1"),
            (3, "2024-01-02 10:05", 0, 0, 3, 7, "EURUSD", 0.2, 1.1003, -1.0, 0.0, 0.0, "a", 1, "signal 1"),
            (4, "2024-01-02 11:00", 1, 1, 5, 7, "EURUSD", 0.1, 1.1020, -0.5, 0.0, 19.0, "a", 1, "tp"),
            (5, "2024-01-02 12:30", 1, 1, 4, 7, "EURUSD", 0.2, 1.0990, -1.0, -0.4, -22.0, "a", 1, "sl"),
            # position 8: a sell still open at the end
            (6, "2024-01-03 09:00", 1, 0, 3, 8, "GBPUSD", 0.5, 1.27, -2.5, 0.0, 0.0, "b", 2, "signal 2"),
        ]
    )
    signals = pd.DataFrame({"signal_id": [1, 2], "tags": [{"regime": "trend"}, {}]})

    t = build_trades(deals, signals)

    assert t["position_id"].tolist() == [7, 8]
    assert t["direction"].tolist() == ["buy", "sell"]
    assert t["volume"].tolist() == [pytest.approx(0.3), 0.5]
    assert t["open_price"].iloc[0] == pytest.approx((1.1 * 0.1 + 1.1003 * 0.2) / 0.3)
    assert t["close_price"].iloc[0] == pytest.approx((1.102 * 0.1 + 1.099 * 0.2) / 0.3)
    assert t["close_reason"].tolist() == ["sl", "open"]
    assert t["holding_s"].iloc[0] == 9000.0 and pd.isna(t["holding_s"].iloc[1])
    assert t["net"].tolist() == [pytest.approx(19.0 - 22.0 - 0.4 - 3.0), -2.5]
    assert t["regime"].tolist()[0] == "trend" and pd.isna(t["regime"].iloc[1])
    assert pd.isna(t["close_time"].iloc[1]) and pd.isna(t["close_price"].iloc[1])
    assert t["comment"].tolist() == ["signal 1", "signal 2"]


def test_breakdown_rows_equal_compute_metrics_per_group(big: Big) -> None:
    rep = load_run(open_results_db(big.db_url), big.small)
    table = breakdown(rep, "symbol", "Per symbol")
    d = rep.mt5_deals
    trading = d[d["type"].isin([DEAL_BUY, DEAL_SELL])]
    for row in [*table.rows, table.total]:
        part = trading if row[0] == "all" else trading[trading["symbol"] == row[0]]
        m = compute_metrics(part.assign(balance=np.nan), rep.deposit)
        expected = [
            m.total_trades,
            m.total_net_profit,
            m.gross_profit,
            m.gross_loss,
            m.profit_factor,
            m.profit_trades_pct,
            m.expected_payoff,
            m.long_trades,
            m.short_trades,
        ]
        assert row[1:] == pytest.approx(expected)


def test_entries_and_profit_by_hour_weekday_month_on_the_server_clock(big_rep: RunReport) -> None:
    periods = by_period(big_rep)  # the config's server clock: UTC

    assert set(periods) == {"hour", "weekday", "month"}
    assert len(periods["hour"]) == 24 and periods["weekday"]["label"].tolist()[0] == "Mon"
    # 15k entries, one every 90 s from Tue 2024-01-02 00:00 UTC: 40 per hour
    assert int(periods["hour"][["buy", "sell"]].to_numpy().sum()) == BIG
    assert periods["hour"].loc[0, "buy"] + periods["hour"].loc[0, "sell"] == 40 * 16
    assert periods["month"]["buy"].sum() == BIG // 2 and periods["month"].loc[0, "sell"] == BIG // 2
    net = big_rep.trades["net"].sum()
    assert periods["weekday"]["net"].sum() == pytest.approx(net, abs=1e-6)
    assert periods["month"]["profit"].sum() + periods["month"]["loss"].sum() == pytest.approx(net, abs=1e-6)


def test_by_period_counts_hours_on_the_broker_clock() -> None:
    deals = _deals([(2, "2024-07-01 21:30", 0, 0, 3, 1, "EURUSD", 0.1, 1.1, 0.0, 0.0, 0.0, "a", None, "")])
    run = {"config": {"backtest": {"server_timezone": "Europe/Athens"}}, "deposit": 1000.0, "currency": "USD"}
    rep = RunReport(
        "r",
        run,
        pd.DataFrame(),
        deals,
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        compute_metrics(
            pd.DataFrame(
                columns=["time", "type", "direction", "profit", "swap", "commission", "volume", "balance"]
            ),
            1000.0,
        ),
        pd.DataFrame(),
        None,
    )

    p = by_period(rep)

    # 21:30 UTC is 00:30 on Tuesday in Athens (UTC+3 in July)
    assert p["hour"].loc[0, "buy"] == 1 and p["hour"]["buy"].sum() == 1
    assert p["weekday"].loc[1, "buy"] == 1


def test_candles_resample_on_server_days() -> None:
    t = pd.date_range("2024-07-01 20:00", periods=6 * 60, freq="1min", tz="UTC").as_unit("ns").asi8
    price = np.arange(len(t), dtype=float)
    times, o, h, low, c = resample(t, price, price + 0.5, price - 0.5, price, 86400, "Europe/Athens")

    # Athens midnight is 21:00 UTC: the first day holds 20:00-20:59, the next starts at 21:00
    assert pd.to_datetime(times, utc=True).strftime("%H:%M").tolist() == ["20:00", "21:00"]
    assert o.tolist() == [0.0, 60.0] and c.tolist() == [59.0, 359.0]
    assert h.tolist() == [59.5, 359.5] and low.tolist() == [-0.5, 59.5]


# --- the page in Chromium -------------------------------------------------------------------------------
def test_every_trade_of_a_15k_run_is_in_the_page_and_shown_with_size_all(
    big_html: Path, chromium: str, tmp_path: Path
) -> None:
    static = big_html.read_text()
    data = [
        json.loads(m)
        for m in re.findall(r"<script type='application/json' class='grid-data'>(.*?)</script>", static)
    ]
    by_id = {g["id"]: g for g in data}

    assert len(by_id["trades"]["rows"]) == BIG
    assert len(by_id["deals"]["rows"]) == 2 * BIG + 1 and len(by_id["orders"]["rows"]) == 2 * BIG
    assert by_id["deals"]["rows"][0][2:5] == ["", "balance", ""]  # no direction on a balance operation
    assert by_id["deals"]["rows"][2][:5] == ["2024-01-02 00:01:00", 3, "EURUSD", "sell", "out"]
    assert by_id["orders"]["rows"][0][:8] == ["2024-01-02 00:00:00", 2, "EURUSD", "buy", 0.1, 1.1, None, None]
    dom, problems = _dom(chromium, tmp_path, big_html, "#trades.size=all")
    assert problems == []
    assert _grid_attr(dom, "trades", "data-shown") == BIG
    assert _grid_rows(dom, "trades") == BIG
    assert _grid_rows(dom, "deals") == 100  # the default page
    assert "1–100 of 30001" in dom


def test_trades_filters_by_symbol_side_and_result(big_html: Path, chromium: str, tmp_path: Path) -> None:
    dom, problems = _dom(
        chromium, tmp_path, big_html, "#trades.symbol=GBPUSD&trades.direction=sell&trades.size=all"
    )

    assert problems == []
    # GBPUSD is position 2, 5, 8, ... (i % 3 == 1); sells are odd i: i % 6 == 1
    assert _grid_attr(dom, "trades", "data-matching") == BIG // 6
    assert f"of {BIG // 6} (filtered from {BIG})" in dom
    dom, _ = _dom(chromium, tmp_path, big_html, "#trades.result=loss&trades.strategy=ma")
    losses = sum(1 for i in range(BIG) if ((i * 37) % 200 - 90) / 10.0 < 0)
    assert _grid_attr(dom, "trades", "data-matching") == losses


def test_every_section_present_charts_drawn_no_console_errors_and_screenshots(
    big_html: Path, chromium: str, tmp_path: Path
) -> None:
    dom, problems = _dom(chromium, tmp_path, big_html)
    charts = int(re.search(r"mt5tester-charts' content='(\d+)'", big_html.read_text()).group(1))

    assert problems == []
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom, section
    # 11 charts (no funnel recorded for the synthetic run) and a price chart per traded symbol
    assert charts == 11 + 3
    assert dom.count('class="plot-container plotly"') == charts
    for title in (
        "Entries and profit by hour, weekday and month",
        "Cumulative net result per strategy",
        "Cumulative net result per symbol",
        "GBPUSD: H1 candles with entries and exits",
        "MFE and MAE per trade vs result",
        "Holding time distribution",
        "Regime timeline",
    ):
        assert title in dom, title
    assert "history quality" in dom
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for section in ("periods", "breakdown", "prices", "trades", "deals", "regimes", "health"):
        shot = ARTIFACTS / f"{section}.png"
        proc = _chromium(
            chromium,
            tmp_path,
            big_html.resolve().as_uri() + f"#only={section}",
            f"--screenshot={shot}",
            "--window-size=1400,1600",
            "--hide-scrollbars",
        )
        assert proc.returncode == 0 and shot.stat().st_size > 10_000, section


# --- plotly.js modes ------------------------------------------------------------------------------------
def test_plotlyjs_directory_shares_one_file_cdn_links_inline_embeds(big: Big, tmp_path: Path) -> None:
    engine = open_results_db(big.db_url)
    a = write_html_report(engine, big.small, tmp_path / "dir", "directory")
    shared = tmp_path / "dir" / PLOTLY_FILE
    mtime = shared.stat().st_mtime_ns
    write_html_report(engine, big.small, tmp_path / "dir", "directory")
    cdn = write_html_report(engine, big.small, tmp_path / "cdn", "cdn").read_text()
    inline = write_html_report(engine, big.small, tmp_path / "inline", "inline").read_text()
    default = write_html_report(engine, big.small, tmp_path / "default").read_text()

    assert "<script src='plotly.min.js' charset='utf-8'></script>" in a.read_text()
    assert "plotly.js v" not in a.read_text() and "plotly.js v" in shared.read_text()[:300]
    assert shared.stat().st_mtime_ns == mtime  # written once for every report of the folder
    assert re.search(r"<script src='https://cdn\.plot\.ly/plotly-\d+\.\d+\.\d+\.min\.js'", cdn)
    assert inline.count("plotly.js v") == 1 and not (tmp_path / "inline" / PLOTLY_FILE).exists()
    assert default == cdn  # without a mode: the run's report.plotlyjs
    assert len(a.read_text()) < len(inline) - 4_000_000


def test_cli_plotlyjs_option_and_config_key(big: Big, run_cli, tmp_path: Path, demo_data: Path) -> None:
    code, out, err = run_cli(
        "report", big.small, "--plotlyjs", "directory", "--out", str(tmp_path), "--db", big.db_url
    )
    assert code == 0, err
    assert f"html: {tmp_path / f'report_{big.small}.html'}" in out
    assert (tmp_path / PLOTLY_FILE).is_file()

    raw = base_config(demo_data, tmp_path)
    raw["report"] = {"plotlyjs": "file"}
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(json.dumps(raw))
    code, out, err = run_cli("config", "check", str(cfg))
    assert code == 2
    assert "report.plotlyjs" in out + err


def test_report_phases_reach_the_callback_in_order(big: Big, tmp_path: Path) -> None:
    phases: list[str] = []
    write_html_report(open_results_db(big.db_url), big.small, tmp_path, on_phase=phases.append)

    assert phases == [
        "reading the run",
        "computing metrics and trades",
        "charts",
        "price charts",
        "tables",
        "writing the page",
    ]


# --- PDF --------------------------------------------------------------------------------------------------
def test_pdf_without_a_browser_is_exit_2_naming_the_fix(
    big: Big, run_cli, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MT5TESTER_CHROMIUM", str(tmp_path / "no-such-browser"))
    code, out, err = run_cli("report", big.small, "--pdf", "--out", str(tmp_path), "--db", big.db_url)

    assert code == 2
    assert "MT5TESTER_CHROMIUM" in out + err and "Traceback" not in out + err
    assert not (tmp_path / f"report_{big.small}.html").exists()  # failed before any work


# --- exports ----------------------------------------------------------------------------------------------
def test_runs_export_has_positions_with_mfe_mae_and_orders(big: Big, run_cli, tmp_path: Path) -> None:
    code, _out, err = run_cli("runs", "export", big.big, "--out", str(tmp_path), "--db", big.db_url)

    assert code == 0, err
    pos = pd.read_csv(tmp_path / "positions.csv")
    orders = pd.read_csv(tmp_path / "orders.csv")
    assert len(pos) == BIG and len(orders) == 2 * BIG
    assert {"mfe", "mae", "time_open", "time_close", "net"} <= set(pos.columns)
    first = pos.iloc[0]
    assert (first["net"], first["mfe"], first["mae"]) == (-9.0, 1.0, -10.0)
    assert first["time_open"] == "2024-01-02 00:00:00+00:00"
    assert orders["time_setup"].iloc[1] == "2024-01-02 00:01:00+00:00"


def test_runs_export_quantstats_writes_daily_returns(big: Big, run_cli, tmp_path: Path) -> None:
    code, _out, err = run_cli(
        "runs", "export", big.small, "--format", "quantstats", "--out", str(tmp_path), "--db", big.db_url
    )
    assert code == 0, err
    returns = pd.read_csv(tmp_path / "returns.csv")
    with sqlite3.connect(big.db_url.removeprefix("sqlite:///")) as conn:
        days = conn.execute(
            "SELECT day, equity FROM daily_equity WHERE run_id = ? ORDER BY day", (big.small,)
        ).fetchall()
        deposit = conn.execute("SELECT deposit FROM runs WHERE run_id = ?", (big.small,)).fetchone()[0]

    assert list(returns.columns) == ["date", "return"]
    assert returns["date"].tolist() == [d for d, _ in days]
    equity = [deposit] + [e for _, e in days]
    expected = [equity[i + 1] / equity[i] - 1.0 for i in range(len(days))]
    assert returns["return"].tolist() == pytest.approx(expected, abs=1e-11)
    assert len(days) > 10


def test_pdf_of_a_15k_run_prints_first_rows_with_the_count_left_and_thinned_markers_saying_so(
    big: Big, big_rep: RunReport, chromium: str, tmp_path: Path
) -> None:
    pdftotext = shutil.which("pdftotext")
    require(bool(pdftotext), "pdftotext (poppler-utils) not installed")
    phases: list[str] = []

    pdf = write_run_pdf(big_rep, tmp_path, phases.append, PdfPrinter(chromium))

    text = " ".join(
        subprocess.run(
            [str(pdftotext), str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert phases == [
        "charts",
        "price charts",
        "tables",
        "writing the page",
        "drawing the charts for print",
        "printing the PDF",
    ]
    for more in (BIG - PRINT_ROWS, 2 * BIG + 1 - PRINT_ROWS, 2 * BIG - PRINT_ROWS):  # trades, deals, orders
        assert f"… {more} more rows in the results database (totals cover all)" in text
    # 5,000 trades per symbol, 300 marked: every 17th; MFE/MAE of all 15,000: every 50th
    assert text.count(f"(every 17th of {BIG // 3} trades)") == 3
    assert f"MFE and MAE per trade vs result (USD) (every 50th of {BIG} trades)" in text
    assert f"{BIG} trades" in text  # the totals row covers every trade


def test_candles_are_read_once_for_the_html_and_the_pdf_of_a_report(big: Big, monkeypatch) -> None:
    import mt5tester.reports.html as report_html

    calls: list[list[str]] = []
    real = report_html.load_candles

    def counting(rep: RunReport, symbols: list[str]):
        calls.append(symbols)
        return real(rep, symbols)

    monkeypatch.setattr(report_html, "load_candles", counting)
    rep = load_run(open_results_db(big.db_url), big.big)

    report_html.render_run_html(rep)
    parts = report_html.run_page_parts(rep, static=True)

    assert calls == [["EURUSD", "GBPUSD", "USDJPY"]]
    assert parts.body.count("candles with entries and exits") == 3
