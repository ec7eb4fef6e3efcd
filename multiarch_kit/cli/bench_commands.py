"""The bench's commands: ``bench``, ``report`` and ``profile``."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import KitError
from ..oci.platforms import parse_list
from .image_commands import pairs
from .tables import print_frame


def _csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _sizes(text: str | None) -> dict[str, int]:
    """``c=4,go=20`` to {"c": 4, "go": 20}."""
    sizes = {}
    for part in _csv_list(text or ""):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise KitError(f"--sizes {text!r}: {part!r} is not WORKLOAD=NUMBER", "e.g. --sizes c=4,go=20")
        sizes[name.strip()] = int(value)
    return sizes


# The options that shape a bench plan and where it goes, with their defaults: `--reference` fixes them all.
BENCH_PLAN_DEFAULTS = {"workloads": "c,go", "platforms": "linux/arm64,linux/arm/v7",
                       "strategies": "native,emulated,cross", "sizes": None, "full": False, "repeats": 5, "warmup": 1,
                       "builder": None, "node": None, "results": None}


def run_bench(args) -> int:
    from .. import bench, lab
    from ..bench import hostinfo, plans, store
    from ..lab import workloads
    from ..scale import split

    if args.reference:
        given = [f"--{name}" for name, default in BENCH_PLAN_DEFAULTS.items() if getattr(args, name) != default]
        if given:
            raise KitError(f"--reference measures the reference plan into {store.REFERENCE}/, so it takes no "
                           f"{', '.join(given)}", "run 'multiarch-kit bench --reference' alone (with --resume to "
                           "finish an interrupted one)")
        folder = store.REFERENCE  # not $MULTIARCH_KIT_RESULTS: this run is meant to be committed
    else:
        folder = Path(args.results) if args.results else store.results_dir()
    if args.resume:
        started = [plans.Plan.load(path) for path in sorted((Path(folder) / "runs").glob("*.json"))]
        if not started:  # a damaged plan, or none, is said before the engine is asked
            raise KitError(f"nothing to resume: no bench run was started in {folder}",
                           "start a new one with 'multiarch-kit bench'")
        rows = bench.resume(folder, lab.status(), progress=not args.no_progress)
    else:
        if args.reference:
            status = lab.status()
            plan = plans.reference_plan(status.engine.platform,
                                        host_id=hostinfo.host_id(status.config, status.engine))
        else:
            names = _csv_list(args.workloads)
            for name in names:
                workloads.workload(name)
            platforms = parse_list(args.platforms)
            strategies = [workloads.check_strategy(s) for s in _csv_list(args.strategies)]
            sizes = _sizes(args.sizes)
            plans.check_counts(args.repeats, args.warmup)
            nodes = split.parse_nodes(args.node or [], platforms)
            status = lab.status()  # every mistake above is named before the engine is asked, once, here
            plan = plans.Plan.matrix(names, platforms, status.engine.platform, sizes=sizes, strategies=strategies,
                                     full=args.full, repeats=args.repeats, warmup=args.warmup, builder=args.builder,
                                     nodes=nodes, host_id=hostinfo.host_id(status.config, status.engine))
        print(f"run {plan.run_id}: {len(plan.cells)} cells x {plan.repeats} repeats (+{plan.warmup} warm-up), "
              f"results in {folder / (plan.host_id + '.csv')}")
        rows = bench.run(plan, folder, status, progress=not args.no_progress)
    print(f"measured {len(rows)} builds")
    if args.reference:
        print(f"to share them: say what machine this is in {folder / 'README.md'}, then commit that, this host's "
              f"CSV and {folder / 'runs'}/")
    return 0


def run_report(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only; the notebooks show the same plots inline
    from ..bench import plots, stats, store

    folders = [Path(f) for f in args.results] if args.results else [store.results_dir()]
    df = store.load_results(*folders)
    if df.empty:
        raise KitError(f"no results in {', '.join(map(str, folders))}", "measure first with 'multiarch-kit bench'")
    print_frame(stats.summarize(df, args.metric).round(3))
    slow = stats.slowdown(df, args.metric)
    if len(slow):
        print("\nagainst the native build (slowdown: geometric mean of the ratios; low to high: a 95 % CI by the method in "
              "'interval', or the range when n < 5):")
        print_frame(slow.round(3))
    print()
    for sentence in stats.answer(df, args.metric):
        print(sentence)
    out = Path(args.plots) if args.plots else folders[0] / "plots"
    written = []
    for workload in sorted(df.workload.unique()):
        written += plots.strategies(df, workload, out / f"{workload}-strategies", metric=args.metric)
    if len(slow):
        written += plots.compare_hosts(slow, out / "hosts")
    print("\nplots: " + ", ".join(str(p) for p in written))
    return 0


def run_profile(args) -> int:
    from .. import lab
    from ..bench import profiling

    platforms = parse_list(args.platform) if args.platform else None
    named = pairs(args.build_context, "--build-context")
    what = profiling.subject(args.context, target=args.target, build_args=pairs(args.build_arg, "--build-arg"))
    # every mistake above is named before the engine is asked, here, once
    result = profiling.profile_in_lab(lab.read(), what, platforms, build_contexts=named, echo=args.format != "json")
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2))
        return 0
    print()
    print_frame(result.table().drop(columns=["runs_emulated"]))
    print("\nwhole build, wall s: " + ", ".join(f"{p} {s:.1f}" for p, s in result.totals.items()))
    if result.hints:
        print("\nRUN steps that cost most under emulation, and how to run them natively:")
        for h in result.hints:
            print(f"- {h['platform']} [{h['stage']} {h['step']}] {h['instruction'][:70]}: {h['emulated_s']:.1f} s, "
                  f"{h['share'] * 100:.0f} % of the build: {h['advice']}")
    else:
        print("\nno emulated RUN step takes 5 % of the build and a second or more: nothing worth moving")
    said = {p: line for p, line in result.said.items() if line}
    if said:
        print("\nthe last line each build's longest RUN step printed:")
        for p, line in said.items():
            print(f"- {p}: {line}")
    return 0
