"""Plots of bench results. Each helper saves PNG and SVG at the path it is given, then shows the figure.

One colour per platform, everywhere; axes carry units; legends carry n and what the error bars mean.
Figures have fixed sizes so the text nbval compares (``<Figure size 800x450 with 1 Axes>``) is the same on
every host.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..lab.workloads import STRATEGIES
from ..lab.workloads import workload as get_workload
from .stats import Method, at_largest_size, summarize

SIZE = (8, 4.5)
PLATFORM_COLORS = {"linux/amd64": "#1b9e77", "linux/arm64": "#d95f02", "linux/arm/v7": "#7570b3",
                   "linux/arm/v6": "#e7298a", "linux/386": "#66a61e"}
STRATEGY_HATCH = {"native": "", "emulated": "//", "cross": ".."}


def color(platform: str) -> str:
    return PLATFORM_COLORS.get(platform, "#666666")


def _save(fig, path: str | Path) -> list[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        out = path.with_suffix(suffix)
        fig.savefig(out, dpi=120, bbox_inches="tight", metadata={"Date": None} if suffix == ".svg" else None)
        written.append(out)
    plt.show()
    return written


def strategies(df: pd.DataFrame, workload: str, path: str | Path, metric: str = "wall_s") -> list[Path]:
    """One workload at its largest size: median build time per strategy, one bar per platform, IQR error bars."""
    data = summarize(at_largest_size(df[df.workload == workload]), metric)
    fig, ax = plt.subplots(figsize=SIZE)
    hosts = sorted(data.host_id.unique())
    platforms = sorted(data.platform.unique())
    groups = [(h, s) for h in hosts for s in STRATEGIES if ((data.host_id == h) & (data.strategy == s)).any()]
    width = 0.8 / max(1, len(platforms))
    for j, platform in enumerate(platforms):
        xs, ys, lo, hi, ns = [], [], [], [], []
        for i, (h, s) in enumerate(groups):
            row = data[(data.host_id == h) & (data.strategy == s) & (data.platform == platform)]
            if len(row):
                r = row.iloc[0]
                xs.append(i + (j - (len(platforms) - 1) / 2) * width)
                ys.append(r["median"])
                lo.append(r["median"] - r.q1)
                hi.append(r.q3 - r["median"])
                ns.append(int(r.n))
        if xs:
            n = f"n = {min(ns)}" if min(ns) == max(ns) else f"n = {min(ns)} to {max(ns)}"
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, color=color(platform), label=f"{platform} ({n})")
    ax.set_xticks(range(len(groups)), [s + (f"\n{h}" if len(hosts) > 1 else "") for h, s in groups])
    w = get_workload(workload)
    size = int(data["size"].max()) if len(data) else 0
    unit = f", {size} {w.unit}" if w.size_arg else ""
    ax.set_ylabel(f"build time, median ({'s, whole build' if metric == 'wall_s' else 's, RUN steps'})")
    ax.set_title(f"{workload}{unit}: native, emulated and cross-compiled builds")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, title="bars: median; error bars: interquartile range", fontsize=8, title_fontsize=8)
    return _save(fig, path)


def compare_hosts(slowdowns: pd.DataFrame, path: str | Path) -> list[Path]:
    """Emulated and cross builds over native, per host and workload (largest size), with their bounds.

    The bars are geometric means; the error bars a 95 % CI by the method ``stats.slowdown`` names, or the range
    of the ratios where a cell has fewer than ``stats.MIN_INTERVAL_N`` rounds (the legend says which).
    """
    data = at_largest_size(slowdowns[slowdowns.strategy != "native"])
    data = data.sort_values(["workload", "host_id", "strategy", "platform"]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=SIZE)
    x = np.arange(len(data))
    labelled = set()
    for i, r in data.iterrows():
        ns = sorted(set(data[data.platform == r.platform].n))
        n = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]} to {ns[-1]}"
        ax.bar(i, r.slowdown, color=color(r.platform), hatch=STRATEGY_HATCH.get(r.strategy, ""),
               yerr=[[r.slowdown - r.low], [r.high - r.slowdown]], capsize=3,
               label=None if r.platform in labelled else f"{r.platform} ({n} per cell)")
        labelled.add(r.platform)
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{r.workload} {r.strategy}\n{r.host_id}" for r in data.itertuples()], fontsize=7)
    ax.set_ylabel("slowdown: build time / native build time\n(x native, geometric mean of the rounds)")
    ax.set_title("how much slower than native: emulated (hatched //) and cross-compiled (..)")
    methods = sorted(set(data.interval))
    caption = "; ".join("the range of the ratios (n < 5: a range, not an interval)" if m == Method.RANGE.value
                        else f"95 % CI, {m}" for m in methods)
    # beside the axes, not over them: the tallest bars fill the middle of the plot
    ax.legend(title=f"error bars:\n{caption}", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, path)
