"""Plots of bench results. Each helper takes an output path, saves PNG and SVG there, then shows the figure.

Figures have fixed sizes so the text nbval compares (``<Figure size 800x450 with 1 Axes>``) does not change
from one host to another.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .bench import at_largest_size

SIZE = (8, 4.5)
COLORS = {"native": "#2b7bba", "emulated": "#d95f02", "cross": "#1b9e77"}


def _save(fig, path: str | Path) -> list[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        out = path.with_suffix(suffix)
        fig.savefig(out, dpi=120, bbox_inches="tight")
        written.append(out)
    plt.show()
    return written


def bars(summary: pd.DataFrame, path: str | Path, workload: str = "cpu") -> list[Path]:
    """Median build time per platform and strategy (largest size), error bars from the first to the third quartile."""
    data = summary[summary.workload == workload]
    data = data[data.size_mb == data.size_mb.max()]
    fig, ax = plt.subplots(figsize=SIZE)
    hosts = sorted(data.host_id.unique())
    labels = [f"{r.platform}\n{r.strategy}" + (f"\n{r.host_id}" if len(hosts) > 1 else "") for r in data.itertuples()]
    x = np.arange(len(data))
    ax.bar(x, data["median"], color=[COLORS.get(s, "grey") for s in data.strategy],
           yerr=[data["median"] - data.q1, data.q3 - data["median"]], capsize=4)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("build time, median (s)")
    size = int(data.size_mb.max()) if len(data) else 0
    ax.set_title(f"{workload} workload, {size} MB: native, emulated and cross builds")
    return _save(fig, path)


def cost_vs_size(df: pd.DataFrame, fits: pd.DataFrame, path: str | Path, workload: str = "cpu") -> list[Path]:
    """Build time against workload size, one line per host, platform and strategy (the fitted line)."""
    data = df[df.workload == workload]
    fig, ax = plt.subplots(figsize=SIZE)
    for (host, platform, strat), g in data.groupby(["host_id", "platform", "strategy"]):
        label = f"{platform} ({strat})" + (f", {host}" if data.host_id.nunique() > 1 else "")
        ax.scatter(g.size_mb, g.wall_s, s=12, alpha=0.5, color=COLORS.get(strat, "grey"))
        fit = fits[(fits.host_id == host) & (fits.platform == platform) & (fits.strategy == strat)]
        if len(fit):
            xs = np.array([0, g.size_mb.max()])
            f = fit.iloc[0]
            ax.plot(xs, f.overhead_s + f.s_per_mb * xs, color=COLORS.get(strat, "grey"),
                    label=f"{label}: {f.overhead_s:.2f} s + {f.s_per_mb * 1000:.1f} ms/MB")
    ax.set_xlabel("workload size (MB compressed and hashed)")
    ax.set_ylabel("build time (s)")
    ax.set_title("cost against size: the slope ratio is the emulation slowdown")
    ax.legend(fontsize=8)
    return _save(fig, path)


def compare_hosts(slowdowns: pd.DataFrame, path: str | Path) -> list[Path]:
    """Emulated-over-native slowdown per host and platform (largest size), with 95 % bootstrap intervals."""
    data = at_largest_size(slowdowns[slowdowns.strategy != "native"])
    fig, ax = plt.subplots(figsize=SIZE)
    x = np.arange(len(data))
    ax.bar(x, data.slowdown, color=[COLORS.get(s, "grey") for s in data.strategy],
           yerr=[data.slowdown - data.ci_low, data.ci_high - data.slowdown], capsize=4)
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{r.host_id}\n{r.platform} ({r.strategy})" for r in data.itertuples()], fontsize=8)
    ax.set_ylabel("time / native time (median, 95 % CI)")
    ax.set_title("how much slower than native, per host")
    return _save(fig, path)
