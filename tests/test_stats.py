"""The statistics over results: medians, slowdowns and their intervals (with their coverage simulated), fitted
lines and the sentence that answers."""

import numpy as np
import pandas as pd
import pytest
from conftest import result_row as _row

from multiarch_kit.bench import stats


def _known():
    rows = []
    for size in (0, 10, 20):
        for rep in range(5):
            jitter = (rep - 2) * 0.01
            rows.append(_row(size=size, repeat=rep, wall_s=1 + 0.1 * size + jitter))
            rows.append(_row(size=size, repeat=rep, platform="linux/arm64", strategy="emulated",
                             wall_s=1 + 0.3 * size + jitter))
    df = pd.DataFrame(rows)
    df["size"], df["wall_s"] = df["size"].astype(int), df.wall_s.astype(float)
    return df


def test_summarize_median_and_iqr():
    s = stats.summarize(_known())
    cell = s[(s.platform == "linux/amd64") & (s["size"] == 10)].iloc[0]
    assert cell["median"] == pytest.approx(2.0) and cell.n == 5
    assert cell.q1 == pytest.approx(1.99) and cell.q3 == pytest.approx(2.01) and cell.iqr == pytest.approx(0.02)


def test_slowdown_is_the_geometric_mean_of_the_round_ratios_with_a_t_interval():
    s = stats.slowdown(_known())
    at20 = s[(s.platform == "linux/arm64") & (s["size"] == 20)].iloc[0]
    jitter = np.array([-0.02, -0.01, 0, 0.01, 0.02])
    logs = np.log((7 + jitter) / (3 + jitter))
    assert at20.slowdown == pytest.approx(np.exp(logs.mean()))
    half = 2.7764451 * logs.std(ddof=1) / np.sqrt(5)  # Student's t, 4 degrees of freedom, 97.5 %
    assert at20.low == pytest.approx(np.exp(logs.mean() - half)) and at20.high == pytest.approx(np.exp(logs.mean() + half))
    assert at20.interval == "t-interval on the log ratios" and at20.pairing == "by round" and at20.n == 5
    assert s[(s.platform == "linux/amd64")].slowdown.tolist() == [1.0, 1.0, 1.0]


def test_unpaired_samples_get_welch_on_the_log_times():
    rng = np.random.default_rng(1)
    a, b = rng.normal(30, 1, 40), rng.normal(10, 0.5, 40)
    r = stats.unpaired_ratio(a, b)
    assert r.method is stats.Method.WELCH_T and r.n == 40
    assert r.value == pytest.approx(np.exp(np.log(a).mean() - np.log(b).mean()))
    assert r.low < 3.0 < r.high and r.high - r.low < 0.15


@pytest.mark.parametrize("df, t", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (5, 2.5706), (9, 2.2622), (11, 2.2010),
                                   (30, 2.0423), (60, 2.0003), (1000, 1.9623)])
def test_t_critical_matches_the_printed_table(df, t):
    assert stats.t_critical(df) == pytest.approx(t, abs=1e-4)


# Coverage: many simulated benches with a known true geometric mean ratio; the share of intervals that contain it.
TRIALS = 4000


def _coverage(draw_ratios, truth: float, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(TRIALS):
        r = stats.paired_ratio(draw_ratios(rng, n))
        assert r.method is stats.Method.PAIRED_T
        hits += r.low <= truth <= r.high
    return hits / TRIALS


def _normal_truth(mean: float, sd: float) -> float:
    """exp(E[log X]) for X normal (small CV, so X > 0), by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float(np.exp((w * np.log(mean + sd * x)).sum() / w.sum()))


@pytest.mark.parametrize("n", [5, 6, 10])  # 5: the plans' and the bench's default repeats; 6 and 10: more
def test_the_paired_interval_covers_95_percent_of_log_normal_ratios(n):
    truth = 9.5
    # Each round: emulated and native both scaled by the round's drift (which cancels) and their own noise.
    def draw(rng, n):
        drift = rng.lognormal(0, 0.2, n)
        return (truth * drift * rng.lognormal(0, 0.05, n)) / (drift * rng.lognormal(0, 0.03, n))
    assert 0.93 <= _coverage(draw, truth, n, seed=n) <= 0.97


@pytest.mark.parametrize("n", [5, 10])
def test_the_paired_interval_covers_95_percent_of_normal_ratios(n):
    mean, sd = 1.05, 0.05  # a cross build: about native, a few per cent of spread
    truth = _normal_truth(mean, sd)
    assert 0.93 <= _coverage(lambda rng, n: rng.normal(mean, sd, n), truth, n, seed=100 + n) <= 0.97


def test_the_unpaired_interval_covers_95_percent_of_normal_times():
    rng = np.random.default_rng(7)
    truth = _normal_truth(90, 4) / _normal_truth(10, 0.3)
    hits = 0
    for _ in range(TRIALS):
        r = stats.unpaired_ratio(rng.normal(90, 4, 5), rng.normal(10, 0.3, 5))
        hits += r.low <= truth <= r.high
    assert 0.93 <= hits / TRIALS <= 0.99  # Welch's degrees of freedom rounded down: a little wider than 95 %


def test_fewer_than_5_rounds_give_a_range_called_a_range():
    r = stats.paired_ratio([9.2, 10.1, 9.4])
    assert r.method is stats.Method.RANGE and (r.low, r.high, r.n) == (9.2, 10.1, 3)
    assert r.value == pytest.approx((9.2 * 10.1 * 9.4) ** (1 / 3))
    assert r.bounds() == "range 9.20 to 10.10 (a range, not an interval: n < 5)"
    u = stats.unpaired_ratio([20, 22, 21, 23, 20], [2, 2.2, 2.1, 2.05])
    assert u.method is stats.Method.RANGE and u.low == pytest.approx(20 / 2.2) and u.high == pytest.approx(23 / 2)
    df = _known()
    df = df[(df["size"] == 20) & (df.repeat < 3)]
    (sentence,) = stats.answer(df)
    assert "geometric mean, range " in sentence and "(a range, not an interval: n < 5), n = 3" in sentence
    assert "CI" not in sentence


def test_fit_lines_recover_overhead_and_slope():
    f = stats.fit_lines(_known()).set_index("platform")
    assert f.loc["linux/amd64", "overhead_s"] == pytest.approx(1.0, abs=1e-9)
    assert f.loc["linux/amd64", "s_per_unit"] == pytest.approx(0.1)
    assert f.loc["linux/arm64", "s_per_unit"] == pytest.approx(0.3)
    assert f.loc["linux/arm64", "slope_ratio"] == pytest.approx(3.0)


def test_the_answer_states_the_slowdowns_with_their_intervals():
    df = _known()
    df = df[df["size"] == 20]
    cross = df[df.strategy == "native"].assign(strategy="cross", platform="linux/arm64", wall_s=lambda d: d.wall_s * 1.1)
    (sentence,) = stats.answer(pd.concat([df, cross]))
    assert sentence.startswith("On h1, the cpu build (20 MB) for linux/arm64 takes under emulation 2.33x native")
    assert "cross-compiled 1.10x native (geometric mean, 95 % CI 1.10 to 1.10 by a t-interval on the log ratios, n = 5, "\
        "paired by round)" in sentence


def _timed():
    """c at size 8: native 10 s of compile + 0.5 s else; emulated 100 + 0.5; cross 8 + 0.8 (an extra stage)."""
    rows = []
    for rep in range(5):
        for strategy, platform, run_s, fixed in (("native", "linux/amd64", 10.0, 0.5),
                                                 ("emulated", "linux/arm64", 100.0, 0.5),
                                                 ("cross", "linux/arm64", 8.0, 0.8)):
            rows.append(_row(workload="c", size=8, size_unit="files", repeat=rep, strategy=strategy,
                             platform=platform, run_s=run_s, wall_s=run_s + fixed))
    return pd.DataFrame(rows)


def test_breakdown_splits_the_run_steps_from_the_fixed_rest():
    b = stats.breakdown(_timed()).set_index("strategy")
    assert list(b.index) == ["native", "emulated", "cross"]
    assert b.loc["emulated", "run_ratio"] == pytest.approx(10.0)
    assert b.loc["emulated", "wall_ratio"] == pytest.approx(100.5 / 10.5)
    assert b.loc["cross", "fixed_s"] == pytest.approx(0.8) and b.loc["cross", "native_fixed_s"] == pytest.approx(0.5)
    assert b.loc["cross", "run_ratio"] == pytest.approx(0.8)


def test_explain_says_which_part_made_each_ratio():
    emulated, cross = stats.explain(_timed())
    assert emulated == ("c 8 linux/arm64 emulated: RUN steps 10.00x (ratio of medians), whole build 9.57x "
                        "(+0.50 s outside the RUN steps, not emulated)")
    assert cross == ("c 8 linux/arm64 cross: compile 0.80x (ratio of medians), rest 0.80 s against 0.50 s native "
                     "(the extra stage), "
                     "whole build 0.84x")
    assert stats.explain(_timed(), strategies=("cross",)) == [cross]


def test_a_whole_build_has_one_slowdown_wherever_it_is_printed():
    """Rounds that vary: the ratio of medians and the geometric mean of the rounds' ratios differ, and `explain`,
    `report` and `in_brief` all give the geometric mean (05 once printed 4.02x and 4.82x for one build)."""
    df = _timed()
    df.loc[(df.strategy == "emulated") & (df.repeat < 2), "wall_s"] = 300.5  # two slow rounds of five
    medians = stats.breakdown(df).set_index("strategy").loc["emulated", "wall_ratio"]
    geometric = stats.slowdown(df).set_index("strategy").loc["emulated", "slowdown"]
    assert abs(geometric - medians) > 0.5
    assert f"whole build {geometric:.2f}x" in stats.explain(df)[0]
    assert f"emulated {geometric:.2f}x" in stats.report(df) and f"{geometric:.2f}x native under emulation" in \
        stats.in_brief(df)[0]


def test_report_names_the_interval_or_the_range():
    text = stats.report(_timed()).splitlines()
    assert text[0] == "h1, c (8 files), against native linux/amd64:"
    assert text[1] == "  linux/arm64   emulated 9.57x [9.57, 9.57]   cross 0.84x [0.84, 0.84]"
    assert text[2] == "[low, high]: 95 % CI by a t-interval on the log ratios; n = 5 rounds, by round"
    short = stats.report(_timed()[lambda d: d.repeat < 3]).splitlines()
    assert short[-1] == "[low, high]: the range of the ratios, not an interval (n < 5); n = 3 rounds, by round"


def test_spans_quote_the_smallest_and_largest_slowdown_of_each_strategy():
    df = _timed()
    arm = df[df.platform == "linux/arm64"].assign(platform="linux/arm/v7", wall_s=lambda d: d.wall_s * 2)
    (line,) = stats.spans(pd.concat([df, arm]))
    assert line == ("h1: emulated 9.57x to 19.14x native, cross-compiled 0.84x to 1.68x native "
                    "(c 8 files; geometric means over n = 5 rounds)")


def test_side_by_side_puts_each_hosts_slowdown_in_its_own_column():
    """Notebook 06's grid: the committed hosts' slowdowns, each the same number `slowdown` gives for that host."""
    from conftest import ROOT

    from multiarch_kit.bench import store

    df = store.load_results(ROOT / store.REFERENCE)
    grid = stats.side_by_side(df)
    assert sorted(grid.columns) == sorted(df.host_id.unique())
    assert set(grid.index.get_level_values("strategy")) == {"emulated", "cross"}
    slow = stats.at_largest_size(stats.slowdown(df))
    for r in slow[slow.strategy != "native"].itertuples():
        assert grid.loc[(r.workload, r.platform, r.strategy), r.host_id] == pytest.approx(r.slowdown)
