"""The bench's statistics: medians, slowdowns against the native build with their intervals, fitted lines, and
the question answered in sentences.

Pure functions of the results' DataFrames (``store.load_results``): they run no build and ask no engine, so a
reader can redo them on anyone's committed CSVs.

A slowdown is a ratio of times, and times of one build vary by factors (a busy core slows a build by a share of
it), so ratios are averaged on the log scale: the point estimate is the geometric mean, and its interval is
Student's t on the logs, exact when the ratios are log-normal and close to exact when their spread is a few
per cent (``tests/test_stats.py`` simulates both and checks the coverage at the n the kit uses). A percentile
bootstrap is not used: over n = 3 to 5 rounds it returns little more than the smallest and largest ratio, and
covers far less often than it claims. Below ``MIN_INTERVAL_N`` rounds no interval is claimed at all: the range
of the ratios is printed and called a range.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..lab import workloads
from ..lab.workloads import CROSS, EMULATED, NATIVE

LEVEL = 0.95
# Fewer rounds than this give a t-interval too wide to say anything, resting wholly on the log-normal shape.
MIN_INTERVAL_N = 5

CELL = ["host_id", "workload", "strategy", "platform", "size"]


def summarize(df: pd.DataFrame, metric: str = "wall_s") -> pd.DataFrame:
    """Median, quartiles, IQR and count of ``metric`` per host and cell."""
    g = df.groupby(CELL)[metric]
    out = pd.DataFrame({"median": g.median(), "q1": g.quantile(0.25), "q3": g.quantile(0.75), "n": g.size()})
    out["iqr"] = out.q3 - out.q1
    return out.reset_index()


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


class Method(enum.Enum):
    """How a ratio's low and high bounds were found; the value is the text printed beside them."""

    PAIRED_T = "t-interval on the log ratios"
    WELCH_T = "Welch t-interval on the log times"
    RANGE = "range"


@dataclass(frozen=True)
class Ratio:
    """A ratio of build times: its geometric mean, and an interval at ``LEVEL`` or (too few rounds) the range."""

    value: float
    low: float
    high: float
    n: int
    method: Method

    def bounds(self) -> str:
        """The bounds in words that say what they are: a 95 % CI and its method, or a range and why."""
        if self.method is Method.RANGE:
            return f"range {self.low:.2f} to {self.high:.2f} (a range, not an interval: n < {MIN_INTERVAL_N})"
        return f"{LEVEL * 100:g} % CI {self.low:.2f} to {self.high:.2f} by a {self.method.value}"


@functools.cache
def t_critical(df: int, level: float = LEVEL) -> float:
    """Student's t with ``df`` degrees of freedom: the t that holds ``level`` of the distribution within +-t.

    Bisection on the closed form of P(|T| < t) for whole degrees of freedom (Abramowitz and Stegun 26.7.3-4),
    so the kit needs no statistics library for it. ``df`` is at least 1.
    """

    def inside(t: float) -> float:
        theta = math.atan(t / math.sqrt(df))
        c2 = math.cos(theta) ** 2
        # The series: 1, 1/2 c^2, 1*3/(2*4) c^4 ... (even df); c, 2/3 c^3, 2*4/(3*5) c^5 ... (odd df).
        term = 1.0 if df % 2 == 0 else math.cos(theta)
        total = term if df > 1 else 0.0
        for k in range(2 if df % 2 == 0 else 3, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        if df % 2 == 0:
            return math.sin(theta) * total
        return 2 / math.pi * (theta + math.sin(theta) * total)

    lo, hi = 0.0, 1.0
    while inside(hi) < level:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if inside(mid) < level else (lo, mid)
    return (lo + hi) / 2


def paired_ratio(ratios) -> Ratio:
    """Round-by-round ratios: their geometric mean with a t-interval on the log ratios (the range below 5)."""
    logs = np.log(np.asarray(ratios, float))
    n = len(logs)
    centre = float(np.exp(logs.mean()))
    if n < MIN_INTERVAL_N:
        return Ratio(centre, float(np.exp(logs.min())), float(np.exp(logs.max())), n, Method.RANGE)
    half = t_critical(n - 1) * logs.std(ddof=1) / math.sqrt(n)
    return Ratio(centre, float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half)), n, Method.PAIRED_T)


def unpaired_ratio(a, b) -> Ratio:
    """Geometric mean of ``a`` over that of ``b`` with Welch's t-interval on the log times (below 5, the range).

    The degrees of freedom (Welch-Satterthwaite) are rounded down, which widens the interval a little. The range
    is that of every ratio of one ``a`` to one ``b``.
    """
    la, lb = np.log(np.asarray(a, float)), np.log(np.asarray(b, float))
    n = min(len(la), len(lb))
    diff = la.mean() - lb.mean()
    centre = float(np.exp(diff))
    if n < MIN_INTERVAL_N:
        return Ratio(centre, float(np.exp(la.min() - lb.max())), float(np.exp(la.max() - lb.min())), n, Method.RANGE)
    va, vb = la.var(ddof=1) / len(la), lb.var(ddof=1) / len(lb)
    se = math.sqrt(va + vb)
    if se == 0:
        return Ratio(centre, centre, centre, n, Method.WELCH_T)
    df = (va + vb) ** 2 / (va ** 2 / (len(la) - 1) + vb ** 2 / (len(lb) - 1))
    half = t_critical(max(1, math.floor(df))) * se
    return Ratio(centre, float(np.exp(diff - half)), float(np.exp(diff + half)), n, Method.WELCH_T)


def _paired(h: pd.DataFrame, ref: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Per-round ratios when both cells were measured in the same interleaved rounds (same run, same repeats)."""
    keys = ["run_id", "repeat"]
    if h.duplicated(keys).any() or ref.duplicated(keys).any():
        return None
    joined = h.merge(ref, on=keys, suffixes=("", "_native"))
    if not len(joined) or len(joined) != len(h) or len(joined) != len(ref):
        return None
    return (joined[metric] / joined[f"{metric}_native"]).to_numpy()


def slowdown(df: pd.DataFrame, metric: str = "wall_s") -> pd.DataFrame:
    """Per host, workload, size, platform and strategy: time over the native build's, with its bounds.

    The reference is the ``native`` strategy of the same host, workload and size (the build platform's own).
    When both were measured in the same interleaved rounds, the ratio is taken round by round
    (:func:`paired_ratio`, ``pairing`` = "by round"): drift of the machine over the run, which hits both alike
    within a round, cancels. Otherwise the two samples are compared (:func:`unpaired_ratio`, "unpaired").
    ``slowdown`` is the geometric mean; ``low`` and ``high`` are what ``interval`` says (a ``Method`` value): a
    95 % CI by that method, or the range when n < 5.
    """
    rows = []
    for (host, workload, size), g in df.groupby(["host_id", "workload", "size"]):
        native = g[g.strategy == NATIVE]
        if not len(native):
            continue
        reference = native.platform.iloc[0]
        for (platform, strat), h in g.groupby(["platform", "strategy"]):
            paired = _paired(h, native, metric)
            ratio = (paired_ratio(paired) if paired is not None
                     else unpaired_ratio(h[metric].to_numpy(), native[metric].to_numpy()))
            rows.append({"host_id": host, "workload": workload, "size": size, "platform": platform, "strategy": strat,
                         "reference": reference, "slowdown": ratio.value, "low": ratio.low, "high": ratio.high,
                         "interval": ratio.method.value, "n": len(h), "n_native": len(native),
                         "pairing": "by round" if paired is not None else "unpaired"})
    return pd.DataFrame(rows, columns=["host_id", "workload", "size", "platform", "strategy", "reference", "slowdown",
                                       "low", "high", "interval", "n", "n_native", "pairing"])


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
        what = _build(workload, size)
        parts = []
        for strat in (EMULATED, CROSS):
            r = g[g.strategy == strat]
            if len(r):
                r = r.iloc[0]
                verb = "under emulation" if strat == EMULATED else "cross-compiled"
                ratio = Ratio(r.slowdown, r.low, r.high, min(r.n, r.n_native), Method(r.interval))
                parts.append(f"{verb} {r.slowdown:.2f}x native (geometric mean, {ratio.bounds()}, n = {r.n}"
                             + (", paired by round)" if r.pairing == "by round" else ")"))
        if parts:
            sentences.append(f"On {host}, {what} for {platform} takes " + "; ".join(parts) +
                             f" ({metric}, native = {g.reference.iloc[0]}, n = {g.n_native.iloc[0]}).")
    return sentences


def _build(workload: str, size: int) -> str:
    w = workloads.workload(workload)
    return f"the {workload} build ({size} {w.unit})" if w.size_arg else f"the {workload} build"


def in_brief(df: pd.DataFrame, metric: str = "wall_s") -> list[str]:
    """Per host and target platform, at each workload's largest size: one sentence with every slowdown.

    The short form that prose quotes (the README, notebook 11), so that a quoted number is always one this
    function printed from the results (``tests/test_project.py`` recomputes the README's from
    ``results/reference/``). Each bracket is a 95 % CI, or says "range" where fewer than ``MIN_INTERVAL_N``
    rounds were measured; the sentence ends with n and the method.
    """
    slow = at_largest_size(slowdown(df, metric))
    sentences = []
    for (host, platform), g in slow.groupby(["host_id", "platform"], sort=True):
        builds = []
        for (workload, size), w in g.groupby(["workload", "size"], sort=True):
            parts = []
            for strat, how in ((EMULATED, "under emulation"), (CROSS, "cross-compiled")):
                for r in w[w.strategy == strat].itertuples():
                    bracket = f"{r.low:.2f} to {r.high:.2f}"
                    if r.interval == Method.RANGE.value:
                        bracket = "range " + bracket
                    parts.append(f"{r.slowdown:.2f}x native {how} ({bracket})")
            if parts:
                builds.append(f"{_build(workload, size)} " + " and ".join(parts))
        if not builds:  # the build platform itself: its native build is the 1x of every ratio
            continue
        shown = g[g.strategy.isin([EMULATED, CROSS])]
        ns = sorted(set(shown.n))
        n = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]} to {ns[-1]}"
        pairing = ", paired by round" if set(shown.pairing) == {"by round"} else ""
        methods = " or ".join(f"the range where n < {MIN_INTERVAL_N}, not an interval" if m == Method.RANGE.value
                              else f"a {LEVEL * 100:g} % CI by a {m}" for m in sorted(set(shown.interval)))
        sentences.append(f"On {host} for {platform}: " + "; ".join(builds) +
                         f" (geometric means over {n} rounds{pairing}; in brackets {methods}; {metric}).")
    return sentences


def breakdown(df: pd.DataFrame) -> pd.DataFrame:
    """Where each cell's time goes, from the medians of its rows: the build's RUN steps (``run_s``, the compile)
    and the rest (``fixed_s`` = wall - run: starting the build, loading contexts and sources, the stages that
    copy, the export), each against the native build of the same host, workload and size (``native_fixed_s``).

    Emulation slows the RUN steps only (the rest runs natively for every target), so ``run_ratio`` is the
    emulation cost of the work itself and ``wall_ratio`` is it diluted by the fixed part; a cross build runs its
    RUN step natively with another compiler for another target, and pays for its extra stage in ``fixed_s``.
    Ratios of medians, to explain the headline slowdowns (:func:`slowdown`), not to replace them.
    """
    med = df.groupby(CELL)[["wall_s", "run_s"]].median().reset_index()
    med["fixed_s"] = med.wall_s - med.run_s
    native = med[med.strategy == NATIVE].set_index(["host_id", "workload", "size"])[["wall_s", "run_s", "fixed_s"]]
    med = med.join(native.add_prefix("native_"), on=["host_id", "workload", "size"], how="inner")
    med["wall_ratio"] = med.wall_s / med.native_wall_s
    med["run_ratio"] = med.run_s / med.native_run_s
    med["_order"] = med.strategy.map({NATIVE: 0, EMULATED: 1, CROSS: 2})
    med = med.sort_values(["host_id", "workload", "size", "_order", "platform"])
    return med[["host_id", "workload", "size", "platform", "strategy", "wall_s", "run_s", "fixed_s", "native_fixed_s",
                "wall_ratio", "run_ratio"]].reset_index(drop=True)


def explain(df: pd.DataFrame, strategies=(EMULATED, CROSS)) -> list[str]:
    """Each build of ``strategies`` taken apart (:func:`breakdown`), one line each: its RUN steps' ratio of
    medians to native, what the rest of the build took, and the whole build's slowdown. The whole build is given
    as :func:`slowdown` gives it (the geometric mean of the rounds' ratios), so that a build has one slowdown
    wherever it is printed; only the parts are ratios of medians."""
    slow = slowdown(df).set_index(["host_id", "workload", "size", "platform", "strategy"]).slowdown
    several = df.host_id.nunique() > 1  # then each line names its host
    lines = []
    for r in breakdown(df).itertuples():
        what = (f"{r.host_id}, " if several else "") + f"{r.workload} {r.size} {r.platform} {r.strategy}:"
        whole = slow.get((r.host_id, r.workload, r.size, r.platform, r.strategy), r.wall_ratio)
        if r.strategy == EMULATED and EMULATED in strategies:
            lines.append(f"{what} RUN steps {r.run_ratio:.2f}x (ratio of medians), whole build {whole:.2f}x "
                         f"(+{r.fixed_s:.2f} s outside the RUN steps, not emulated)")
        elif r.strategy == CROSS and CROSS in strategies:
            lines.append(f"{what} compile {r.run_ratio:.2f}x (ratio of medians), rest {r.fixed_s:.2f} s against "
                         f"{r.native_fixed_s:.2f} s native (the extra stage), whole build {whole:.2f}x")
    return lines


def report(df: pd.DataFrame, metric: str = "wall_s") -> str:
    """The slowdowns as a short text: per host and workload, one line per target platform with the geometric
    mean and its bounds for each strategy, then what the bounds are (the interval's method, or a range)."""
    slow = slowdown(df, metric)
    lines, methods = [], set()
    for (host, workload, size), g in slow.groupby(["host_id", "workload", "size"], sort=True):
        lines.append(f"{host}, {workload} ({size} {workloads.workload(workload).unit}), "
                     f"against native {g.reference.iloc[0]}:")
        for platform, h in g[g.strategy != NATIVE].groupby("platform", sort=True):
            parts = []
            for strat in (EMULATED, CROSS):
                r = h[h.strategy == strat]
                if len(r):
                    r = r.iloc[0]
                    parts.append(f"{strat} {r.slowdown:.2f}x [{r.low:.2f}, {r.high:.2f}]")
                    methods.add((r.interval, int(min(r.n, r.n_native)), r.pairing))
            lines.append(f"  {platform:<13} " + "   ".join(parts))
    for method, n, pairing in sorted(methods):
        bounds = (f"{LEVEL * 100:g} % CI by a {method}" if method != Method.RANGE.value
                  else f"the range of the ratios, not an interval (n < {MIN_INTERVAL_N})")
        lines.append(f"[low, high]: {bounds}; n = {n} rounds, {pairing}")
    return "\n".join(lines)


def spans(df: pd.DataFrame, metric: str = "wall_s") -> list[str]:
    """Per host, the smallest and largest slowdown of each strategy over its workloads, sizes and platforms:
    the numbers a summary quotes, printed from the rows rather than typed."""
    slow = slowdown(df, metric)
    lines = []
    for host, g in slow.groupby("host_id", sort=True):
        parts = []
        for strat, verb in ((EMULATED, "emulated"), (CROSS, "cross-compiled")):
            r = g[g.strategy == strat].slowdown
            if len(r):
                parts.append(f"{verb} {r.min():.2f}x to {r.max():.2f}x native")
        builds = ", ".join(f"{w} {s} {workloads.workload(w).unit}" for w, s in
                           g[["workload", "size"]].drop_duplicates().itertuples(index=False))
        rounds = f"{g.n.min()}" if g.n.min() == g.n.max() else f"{g.n.min()} to {g.n.max()}"
        lines.append(f"{host}: " + ", ".join(parts) + f" ({builds}; geometric means over n = {rounds} rounds)")
    return lines


def side_by_side(df: pd.DataFrame, metric: str = "wall_s") -> pd.DataFrame:
    """One row per workload, target platform and strategy, one column per host: each host's slowdown against its
    own native build, at the largest size it measured (what :func:`in_brief` says in sentences, as a grid)."""
    slow = at_largest_size(slowdown(df, metric))
    slow = slow[slow.strategy.isin([EMULATED, CROSS])]
    grid = slow.pivot_table(index=["workload", "platform", "strategy"], columns="host_id", values="slowdown")
    grid.columns.name = "slowdown on"
    return grid


def hosts_note(df: pd.DataFrame) -> str:
    """One plain sentence on which hosts the results come from; what they are compared with is the caller's to say."""
    found = hosts(df)
    if found.empty:
        return "No host has results yet: run notebook 05, or `multiarch-kit bench`."
    described = "; ".join(f"{r.host_id} ({r.host_os}, {r.cpu}, {r.cpus} CPUs, engine {r.engine_platform}, "
                          f"{r.rows} rows)"
                          for r in found.itertuples())
    return f"{len(found)} host{'s have' if len(found) > 1 else ' has'} results: {described}."
