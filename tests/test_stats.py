"""The statistics over results: medians, bootstrap slowdowns, fitted lines and the sentence that answers."""

import numpy as np
import pandas as pd
import pytest

from conftest import result_row as _row
from multiarch_kit import stats


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


def test_slowdown_with_bootstrap_interval():
    s = stats.slowdown(_known())
    at20 = s[(s.platform == "linux/arm64") & (s["size"] == 20)].iloc[0]
    assert at20.slowdown == pytest.approx(7.0 / 3.0)
    assert at20.ci_low <= at20.slowdown <= at20.ci_high
    assert at20.ci_high - at20.ci_low < 0.05
    assert s[(s.platform == "linux/amd64")].slowdown.tolist() == [1.0, 1.0, 1.0]


def test_bootstrap_interval_covers_a_known_ratio():
    rng = np.random.default_rng(1)
    a, b = rng.normal(30, 1, 40), rng.normal(10, 0.5, 40)
    ratio, lo, hi = stats.bootstrap_ratio(a, b)
    assert lo < 3.0 < hi and lo < ratio < hi


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
    assert "cross-compiled 1.10x native" in sentence and "n = 5" in sentence
