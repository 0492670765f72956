import datetime as dt
import itertools

import pandas as pd
import pytest

from mt5tester.optimize.space import WalkForwardConfig
from mt5tester.optimize.walkforward import (
    Fold,
    Window,
    add_period,
    forward_split,
    stitch_equity,
    walk_forward_efficiency,
    walk_forward_folds,
)

D = dt.date


def test_add_period_units_and_month_end_clamp():
    assert add_period(D(2024, 1, 31), "1m") == D(2024, 2, 29)
    assert add_period(D(2023, 1, 31), "1m") == D(2023, 2, 28)
    assert add_period(D(2024, 2, 29), "1y") == D(2025, 2, 28)
    assert add_period(D(2024, 1, 1), "2w") == D(2024, 1, 15)
    assert add_period(D(2024, 1, 1), "10d", -1) == D(2023, 12, 22)
    assert add_period(D(2024, 11, 15), "3m") == D(2025, 2, 15)


@pytest.mark.parametrize(
    ("forward", "cut"),
    [
        ("1/2", D(2024, 3, 1)),  # 120 days: in-sample 60
        ("1/3", D(2024, 3, 21)),  # in-sample 120 * 2 // 3 = 80 days
        ("1/4", D(2024, 3, 31)),  # in-sample 90 days
        (D(2024, 4, 10), D(2024, 4, 10)),
    ],
)
def test_forward_split(forward, cut):
    start, end = D(2024, 1, 1), D(2024, 4, 30)  # 120 days
    fold = forward_split(start, end, forward)
    assert fold == Fold(0, Window(start, cut), Window(cut, end))


def test_forward_none_and_bad_dates():
    assert forward_split(D(2024, 1, 1), D(2024, 2, 1), "none") is None
    with pytest.raises(ValueError, match="optimize.forward: 2024-02-01 is not inside"):
        forward_split(D(2024, 1, 1), D(2024, 2, 1), D(2024, 2, 1))
    with pytest.raises(ValueError, match="too short"):
        forward_split(D(2024, 1, 1), D(2024, 1, 2), "1/2")


def test_rolling_folds_keep_in_sample_length():
    wf = WalkForwardConfig(mode="rolling", folds=3, in_sample="6m", out_of_sample="2m")
    folds = walk_forward_folds(D(2023, 1, 1), D(2024, 1, 1), wf)
    assert [(f.in_sample.start, f.in_sample.end, f.out_of_sample.end) for f in folds] == [
        (D(2023, 1, 1), D(2023, 7, 1), D(2023, 9, 1)),
        (D(2023, 3, 1), D(2023, 9, 1), D(2023, 11, 1)),
        (D(2023, 5, 1), D(2023, 11, 1), D(2024, 1, 1)),
    ]
    # out-of-sample windows tile without gap or overlap
    assert all(a.out_of_sample.end == b.out_of_sample.start for a, b in itertools.pairwise(folds))


def test_rolling_first_fold_never_starts_before_the_backtest():
    wf = WalkForwardConfig(folds=2, in_sample="1m", out_of_sample="1m")
    folds = walk_forward_folds(D(2024, 1, 31), D(2024, 6, 1), wf)
    assert folds[0].in_sample == Window(D(2024, 1, 31), D(2024, 2, 29))


def test_anchored_folds_start_at_the_backtest_start():
    wf = WalkForwardConfig(mode="anchored", folds=3, in_sample="6m", out_of_sample="2m")
    folds = walk_forward_folds(D(2023, 1, 1), D(2024, 1, 1), wf)
    assert {f.in_sample.start for f in folds} == {D(2023, 1, 1)}
    assert [f.in_sample.end for f in folds] == [D(2023, 7, 1), D(2023, 9, 1), D(2023, 11, 1)]


def test_folds_without_oos_length_share_the_rest_equally():
    wf = WalkForwardConfig(folds=4, in_sample="100d")
    folds = walk_forward_folds(D(2024, 1, 1), D(2024, 1, 1) + dt.timedelta(days=143), wf)
    # 143 - 100 = 43 days over 4 folds: 10 days each (floor), the last 3 days unused
    assert [f.out_of_sample.days for f in folds] == [10, 10, 10, 10]
    assert [f.in_sample.days for f in folds] == [100] * 4


def test_folds_past_the_end_are_refused():
    wf = WalkForwardConfig(folds=5, in_sample="6m", out_of_sample="2m")
    with pytest.raises(ValueError, match="need 2023-01-01 .. 2024-05-01, past the backtest end 2024-01-01"):
        walk_forward_folds(D(2023, 1, 1), D(2024, 1, 1), wf)
    with pytest.raises(ValueError, match="no out-of-sample days"):
        walk_forward_folds(D(2023, 1, 1), D(2023, 7, 2), WalkForwardConfig(folds=2, in_sample="6m"))


def _curve(times, values):
    return pd.Series(values, index=pd.to_datetime(times, utc=True), dtype=float)


def test_stitch_additive_continues_from_previous_end():
    a = _curve(["2024-01-01", "2024-01-02", "2024-01-03"], [10_000, 10_300, 10_200])
    b = _curve(["2024-01-03", "2024-01-04"], [10_000, 9_900])  # starts at the fold's own deposit
    c = _curve(["2024-01-05", "2024-01-06"], [10_000, 10_500])
    out = stitch_equity([a, b, c], initial=10_000)
    # b: 10 200 + (9 900 - 10 000) = 10 100 (its first point duplicates a's last time: dropped)
    # c: 10 100 + 0 = 10 100, then 10 100 + 500 = 10 600
    assert out.tolist() == [10_000, 10_300, 10_200, 10_100, 10_100, 10_600]
    assert out.index.is_monotonic_increasing and out.name == "equity"


def test_stitch_compound_scales_by_returns():
    a = _curve(["2024-01-01", "2024-01-02"], [1000, 1100])
    b = _curve(["2024-01-03", "2024-01-04"], [1000, 1100])
    assert stitch_equity([a, b], initial=1000, compound=True).tolist() == pytest.approx(
        [1000, 1100, 1100, 1210]
    )


def test_stitch_refuses_overlapping_folds():
    a = _curve(["2024-01-01", "2024-01-03"], [1000, 1100])
    b = _curve(["2024-01-02", "2024-01-04"], [1000, 1100])
    with pytest.raises(ValueError, match="before fold 0 ends"):
        stitch_equity([a, b], initial=1000)
    assert stitch_equity([], initial=1000).empty


def test_walk_forward_efficiency_pardo():
    # IS: +20 % over 365.25 days -> 20 %/year; OOS: +4 % over 91.3125 days (a quarter) -> 16 %/year
    assert walk_forward_efficiency(0.20, 365.25, 0.04, 91.3125) == pytest.approx(0.8)
    assert walk_forward_efficiency(0.20, 365.25, -0.02, 91.3125) == pytest.approx(-0.4)
    assert walk_forward_efficiency(-0.1, 365.25, 0.05, 90) is None
