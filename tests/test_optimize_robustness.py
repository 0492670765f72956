import math

import numpy as np
import pandas as pd
import pytest

from mt5tester.optimize.robustness import (
    deflated_sharpe_of_returns as deflated_sharpe_ratio_of,
)
from mt5tester.optimize.robustness import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    monte_carlo_order,
    monte_carlo_skip,
    neighbours,
    pbo_cscv,
    probabilistic_sharpe_ratio,
    stability_ratio,
    stability_table,
)
from mt5tester.optimize.space import parse_optimize


def test_psr_hand_computed_normal_returns():
    # SR = 0.1 per period, SR* = 0, T = 101, skew 0, kurtosis 3:
    # z = 0.1 * sqrt(100) / sqrt(1 - 0 + (3 - 1)/4 * 0.01) = 1 / sqrt(1.005) = 0.997509
    # Φ(0.997509) ≈ Φ(1) − 0.002491·φ(1) = 0.841345 − 0.002491 · 0.241971 = 0.840742
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101) == pytest.approx(0.840742, abs=1e-5)


def test_psr_penalises_negative_skew_and_fat_tails():
    normal = probabilistic_sharpe_ratio(0.1, 0.0, 101)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101, skew=-3.0, kurtosis=10.0) < normal


def test_dsr_matches_bailey_lopez_de_prado_2014_example():
    # "The Deflated Sharpe Ratio" (2014), numerical example: N = 100 trials, variance of the trials'
    # annualised SR V = 0.5, best annualised SR 2.5, T = 1250 daily returns (5 years of 250 days),
    # skew -3, kurtosis 10. By hand:
    #   Φ⁻¹(1 - 1/100) = 2.326348, Φ⁻¹(1 - 1/(100e)) = 2.679114
    #   E[max SR] annualised = sqrt(0.5) * (0.422784 * 2.326348 + 0.577216 * 2.679114) = 1.789406
    #   per day: SR0 = 1.789406 / sqrt(250) = 0.113172; SR = 2.5 / sqrt(250) = 0.158114
    #   z = (0.158114 - 0.113172) * sqrt(1249) / sqrt(1 + 3 * 0.158114 + 9/4 * 0.158114²) = 1.28318
    #   DSR = Φ(1.28318) = 0.9004 (the paper's figure)
    assert expected_max_sharpe(100, 0.5) == pytest.approx(1.789406, abs=1e-6)
    sr = 2.5 / math.sqrt(250)
    dsr = deflated_sharpe_ratio(sr, n_obs=1250, n_trials=100, var_trials=0.5 / 250, skew=-3.0, kurtosis=10.0)
    assert dsr == pytest.approx(0.9004, abs=1e-4)


def test_dsr_of_one_trial_is_psr_against_zero():
    assert deflated_sharpe_ratio(0.1, 101, 1, 0.3) == probabilistic_sharpe_ratio(0.1, 0.0, 101)


def test_dsr_of_returns_uses_the_sample_moments():
    # returns -1, 0, 1, 2 (x 1 %): mean 0.5 %, sd (ddof 1) = sqrt(5/3) % -> SR = 0.5 / 1.290994 = 0.387298;
    # symmetric: skew 0; kurtosis = mean(z⁴) with z = (r - 0.5)/sqrt(1.25) -> (2·0.0625 + 2·5.0625)/4 / 1.5625
    # = 1.64. Trials' SRs 0.1, 0.2, 0.387298: N = 3, V = their sample variance.
    r = np.array([-0.01, 0.0, 0.01, 0.02])
    srs = np.array([0.1, 0.2, 0.5 / math.sqrt(5 / 3)])
    expected = deflated_sharpe_ratio(0.5 / math.sqrt(5 / 3), 4, 3, float(np.var(srs, ddof=1)), 0.0, 1.64)
    assert deflated_sharpe_ratio_of(r, srs) == pytest.approx(expected)


def test_pbo_hand_enumerated_splits():
    # T = 4 periods, S = 4 blocks of one period, N = 3 trials, metric = mean (sums rank the same):
    #   period:  0    1    2    3
    #   A:       3    3    3    3
    #   B:       7    0    5    0.5
    #   C:       4    5    4    6
    # C(4, 2) = 6 splits (in-sample blocks J; out-of-sample the other two), sums IS | OOS:
    #   J={0,1}: A6 B7 C9  -> C | A6 B5.5 C10 -> C ranks 3rd of 3: ω = 3/4, λ = ln 3
    #   J={0,2}: A6 B12 C8 -> B | A6 B0.5 C11 -> B ranks 1st:      ω = 1/4, λ = -ln 3
    #   J={0,3}: A6 B7.5 C10 -> C | A6 B5 C9  -> 3rd:              λ = ln 3
    #   J={1,2}: A6 B5 C9  -> C | A6 B7.5 C10 -> 3rd:              λ = ln 3
    #   J={1,3}: A6 B0.5 C11 -> C | A6 B12 C8 -> 2nd:  ω = 2/4,    λ = 0
    #   J={2,3}: A6 B5.5 C10 -> C | A6 B7 C9  -> 3rd:              λ = ln 3
    # λ <= 0 in 2 of 6 splits: PBO = 1/3
    perf = np.array([[3, 7, 4], [3, 0, 5], [3, 5, 4], [3, 0.5, 6]], dtype=float)
    res = pbo_cscv(perf, n_blocks=4, metric="mean")
    ln3 = math.log(3)
    assert res.splits == 6
    assert res.logits == pytest.approx([ln3, -ln3, ln3, ln3, 0.0, ln3])
    assert res.pbo == pytest.approx(1 / 3)


def test_pbo_tie_takes_average_rank():
    # two trials identical out-of-sample: the in-sample best shares ranks 1 and 2 -> 1.5 / 3 -> λ = ln(1/1)
    perf = np.array([[2, 1], [1, 1]], dtype=float)
    res = pbo_cscv(perf, n_blocks=2, metric="mean")
    # J={0}: A2 B1 -> A | OOS A1 B1 -> rank 1.5, ω = 0.5, λ = 0; J={1}: tie IS -> A (first) | A2 B1 -> rank 2
    assert res.logits == pytest.approx([0.0, math.log(2 / 3 / (1 / 3))])
    assert res.pbo == pytest.approx(0.5)


def test_pbo_noise_is_a_coin_flip_skill_is_not_overfit():
    # Pure noise: a split's in-sample and out-of-sample halves are disjoint blocks of independent returns, so
    # the out-of-sample rank of the in-sample winner is uniform and PBO is 1/2 in expectation (Bailey et
    # al. 2017, section 4). One sample's PBO varies widely (the C(S, S/2) splits share blocks): average
    # over seeds.
    noise_pbo = [
        pbo_cscv(np.random.default_rng(s).normal(0, 0.01, (400, 20)), n_blocks=8).pbo for s in range(60)
    ]
    assert 0.4 < float(np.mean(noise_pbo)) < 0.65
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 0.01, (800, 30))
    skill = noise + np.linspace(-0.002, 0.004, 30)  # trial quality persists in and out of sample
    assert pbo_cscv(skill, n_blocks=8).pbo < 0.05


def test_pbo_rejects_odd_blocks():
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(np.zeros((10, 3)), n_blocks=3)


def test_monte_carlo_order_hand_example():
    # trades +100, -50, -50 from 10 000: the two losses back to back (after the win or at the start) fall
    # 100; split by the win they fall 50 each time. 3 of the 3 distinct orders: 2 fall 100, 1 falls 50.
    mc = monte_carlo_order(np.array([100.0, -50.0, -50.0]), 10_000, n_sims=3000, seed=1)
    assert set(np.round(mc.max_dd, 6)) == {50.0, 100.0}
    assert np.mean(mc.max_dd == 50.0) == pytest.approx(1 / 3, abs=0.03)
    assert np.all(mc.final_balance == 10_000.0)
    again = monte_carlo_order(np.array([100.0, -50.0, -50.0]), 10_000, n_sims=3000, seed=1)
    assert np.array_equal(mc.max_dd, again.max_dd)  # seeded


def test_monte_carlo_skip():
    pnl = np.array([100.0, -300.0, 50.0, 200.0])
    none_skipped = monte_carlo_skip(pnl, 1000, p_skip=0.0, n_sims=5)
    assert np.all(none_skipped.max_dd == 300.0)
    assert none_skipped.max_dd_pct == pytest.approx([300 / 1100 * 100] * 5)
    mc = monte_carlo_skip(pnl, 1000, p_skip=0.5, n_sims=4000, seed=3)
    # the -300 trade is skipped half the time, and then there is no drawdown at all
    assert np.mean(mc.max_dd == 0.0) == pytest.approx(0.5, abs=0.03)
    assert mc.final_balance.mean() == pytest.approx(1000 + 0.5 * 50, abs=5)
    q = mc.quantiles()
    assert q["max_dd"][0.99] == 300.0


def _trials():
    cfg = parse_optimize(
        {
            "parameters": {
                "strategies.s.params.x": {"start": 0, "step": 1, "stop": 4},
                "strategies.s.params.y": {"start": 0.1, "step": 0.1, "stop": 0.5},
                "strategies.s.params.z": {"choices": ["a", "b"]},
            }
        }
    )
    space = cfg.space()
    rows = [space.params(p) for p in space.grid()]
    df = pd.DataFrame(rows)
    df["value"] = (
        100 - (df["strategies.s.params.x"] - 2) ** 2 - 100 * (df["strategies.s.params.y"] - 0.3) ** 2
    )
    df.loc[df["strategies.s.params.z"] == "b", "value"] -= 10
    return space, df


def test_neighbours_of_best_within_one_step():
    space, df = _trials()
    best = {"strategies.s.params.x": 2, "strategies.s.params.y": 0.3, "strategies.s.params.z": "a"}
    near = neighbours(df, space, best)
    assert len(near) == 3 * 3 * 2  # x 1..3, y 0.2..0.4, both z
    # neighbours: x±1 loses 1, y±0.1 loses 1, z=b loses 10: a plateau-ish optimum
    ratio = stability_ratio(near, best)
    expected = (np.array([99, 99, 99, 99, 98, 98, 98, 98]).sum() + (90 + 4 * 89 + 4 * 88)) / 17 / 100
    assert ratio == pytest.approx(expected)


def test_stability_table_for_a_heatmap():
    space, df = _trials()
    best = {"strategies.s.params.x": 2, "strategies.s.params.y": 0.3, "strategies.s.params.z": "a"}
    table = stability_table(df, space, best, x="strategies.s.params.x", y="strategies.s.params.y")
    assert table.shape == (5, 5)
    assert list(table.columns) == [0, 1, 2, 3, 4]
    assert list(table.index) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert table.loc[0.3, 2] == pytest.approx(100.0)  # z held at the best's "a"
    assert table.loc[0.1, 0] == pytest.approx(100 - 4 - 4)
    with pytest.raises(ValueError):
        stability_table(df, space, best, x="strategies.s.params.x", y="strategies.s.params.x")
