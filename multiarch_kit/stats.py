"""The bench's statistics: medians, slowdowns against the native build with bootstrap intervals, fitted
lines, and the question answered in sentences.

Pure functions of the results' DataFrames (``store.load_results``): they run no build and ask no engine, so a
reader can redo them on anyone's committed CSVs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import workloads
from .workloads import CROSS, EMULATED, NATIVE

CELL = ["host_id", "workload", "strategy", "platform", "size"]


def summarize(df: pd.DataFrame, metric: str = "wall_s") -> pd.DataFrame:
    """Median, quartiles, IQR and count of ``metric`` per host and cell."""
    g = df.groupby(CELL)[metric]
    out = pd.DataFrame({"median": g.median(), "q1": g.quantile(0.25), "q3": g.quantile(0.75), "n": g.size()})
    out["iqr"] = out.q3 - out.q1
    return out.reset_index()


def bootstrap_ratio(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """median(a) / median(b) with a percentile bootstrap interval (both samples resampled)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    ra = np.median(rng.choice(a, (n_boot, len(a)), replace=True), axis=1)
    rb = np.median(rng.choice(b, (n_boot, len(b)), replace=True), axis=1)
    ratios = ra / rb
    tail = (1 - level) / 2 * 100
    return float(np.median(a) / np.median(b)), float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


def hosts(df: pd.DataFrame) -> pd.DataFrame:
    """One row per host in the results: OS, CPU, engine, Docker version, rows and runs measured."""
    return (df.groupby("host_id")
            # (not engine=: agg() takes that name for its own computing engine)
            .agg(host_os=("host_os", "first"), cpu=("cpu_model", "first"), cpus=("cpus", "first"),
                 engine_platform=("engine_platform", "first"), docker=("docker_version", "first"),
                 rows=("wall_s", "size"),
                 runs=("run_id", "nunique"))
            .reset_index())


def at_largest_size(df: pd.DataFrame) -> pd.DataFrame:
    """The rows at the largest size each host measured of each workload (where fixed costs weigh least)."""
    return df[df["size"] == df.groupby(["host_id", "workload"])["size"].transform("max")]


def bootstrap_paired(ratios: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """The median of per-round ratios with a percentile bootstrap interval (the rounds resampled)."""
    ratios = np.asarray(ratios, float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ratios, (n_boot, len(ratios)), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.median(ratios)), float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


def _paired(h: pd.DataFrame, ref: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Per-round ratios when both cells were measured in the same interleaved rounds (same run, same repeats)."""
    keys = ["run_id", "repeat"]
    if h.duplicated(keys).any() or ref.duplicated(keys).any():
        return None
    joined = h.merge(ref, on=keys, suffixes=("", "_native"))
    if len(joined) != len(h) or len(joined) != len(ref) or len(joined) < 3:
        return None
    return (joined[metric] / joined[f"{metric}_native"]).to_numpy()


def slowdown(df: pd.DataFrame, metric: str = "wall_s", n_boot: int = 2000) -> pd.DataFrame:
    """Per host, workload, size, platform and strategy: time over the native build's, with a 95 % CI.

    The reference is the ``native`` strategy of the same host, workload and size (the build platform's own).
    When both were measured in the same interleaved rounds, the ratio is taken round by round and the median of
    those ratios is bootstrapped (``pairing`` = "by round"): drift of the machine over the run, which hits both
    alike within a round, cancels. Otherwise the medians of the two samples are compared ("unpaired").
    """
    rows = []
    for (host, workload, size), g in df.groupby(["host_id", "workload", "size"]):
        native = g[g.strategy == NATIVE]
        if not len(native):
            continue
        reference = native.platform.iloc[0]
        for (platform, strat), h in g.groupby(["platform", "strategy"]):
            paired = _paired(h, native, metric)
            if paired is not None:
                ratio, lo, hi = bootstrap_paired(paired, n_boot)
            else:
                ratio, lo, hi = bootstrap_ratio(h[metric].to_numpy(), native[metric].to_numpy(), n_boot)
            rows.append({"host_id": host, "workload": workload, "size": size, "platform": platform, "strategy": strat,
                         "reference": reference, "slowdown": ratio, "ci_low": lo, "ci_high": hi, "n": len(h),
                         "n_native": len(native), "pairing": "by round" if paired is not None else "unpaired"})
    return pd.DataFrame(rows, columns=["host_id", "workload", "size", "platform", "strategy", "reference", "slowdown",
                                       "ci_low", "ci_high", "n", "n_native", "pairing"])


def fit_lines(df: pd.DataFrame, workload: str = "cpu", metric: str = "wall_s") -> pd.DataFrame:
    """Per host, platform and strategy: ``time = overhead + cost_per_unit * size`` by least squares.

    ``slope_ratio`` divides each cost per unit by the native one: the emulation slowdown of the work itself,
    with the fixed costs (starting the build, loading contexts) taken out.
    """
    rows = []
    for (host, platform, strat), g in df[df.workload == workload].groupby(["host_id", "platform", "strategy"]):
        if g["size"].nunique() < 2:
            continue
        slope, intercept = np.polyfit(g["size"].astype(float), g[metric].astype(float), 1)
        pred = intercept + slope * g["size"]
        ss_res = float(((g[metric] - pred) ** 2).sum())
        ss_tot = float(((g[metric] - g[metric].mean()) ** 2).sum())
        rows.append({"host_id": host, "platform": platform, "strategy": strat, "overhead_s": intercept,
                     "s_per_unit": slope, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0})
    out = pd.DataFrame(rows, columns=["host_id", "platform", "strategy", "overhead_s", "s_per_unit", "r2"])
    native = out[out.strategy == NATIVE].set_index("host_id").s_per_unit
    out["slope_ratio"] = [r.s_per_unit / native.get(r.host_id, np.nan) if r.host_id in native.index else np.nan
                          for r in out.itertuples()]
    return out


def answer(df: pd.DataFrame, metric: str = "wall_s") -> list[str]:
    """The question answered in one sentence per host, workload and target platform, with the numbers."""
    slow = slowdown(df, metric)
    sentences = []
    for (host, workload, size, platform), g in slow.groupby(["host_id", "workload", "size", "platform"], sort=True):
        if platform == g.reference.iloc[0]:
            continue
        w = workloads.workload(workload)
        what = f"the {workload} build ({size} {w.unit})" if w.size_arg else f"the {workload} build"
        parts = []
        for strat in (EMULATED, CROSS):
            r = g[g.strategy == strat]
            if len(r):
                r = r.iloc[0]
                verb = "under emulation" if strat == EMULATED else "cross-compiled"
                parts.append(f"{verb} {r.slowdown:.2f}x native (95 % CI {r.ci_low:.2f} to {r.ci_high:.2f}, n = {r.n}"
                             + (", paired by round)" if r.pairing == "by round" else ")"))
        if parts:
            sentences.append(f"On {host}, {what} for {platform} takes " + "; ".join(parts) +
                             f" ({metric}, native = {g.reference.iloc[0]}, n = {g.n_native.iloc[0]}).")
    return sentences


def hosts_note(df: pd.DataFrame) -> str:
    """One plain sentence on which hosts the results come from (and that one host is not a comparison)."""
    found = hosts(df)
    if found.empty:
        return "No host has results yet: run notebook 05, or `multiarch-kit bench`."
    described = "; ".join(f"{r.host_id} ({r.host_os}, {r.cpu}, {r.cpus} CPUs, engine {r.engine_platform}, "
                          f"{r.rows} rows)"
                          for r in found.itertuples())
    if len(found) == 1:
        return (f"Only one host has results: {described}. There is nothing to compare it with yet; the tables "
                "below are that host's alone.")
    return f"{len(found)} hosts have results: {described}."
