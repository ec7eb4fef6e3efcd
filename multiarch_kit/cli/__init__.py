"""The ``multiarch-kit`` command line.

Text from the command line is parsed here, once (platforms, lists, sizes); the package receives values.
Every :class:`~multiarch_kit.errors.KitError`, and every usage mistake, ends the program with one line on
stderr (what went wrong, then what to do) and exit code 2; a failed doctor check exits 1.
Modules with heavy imports (pandas, matplotlib) are imported inside the commands that need them, so
``multiarch-kit lab up`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from .. import __version__
from ..core.errors import KitError
from ..oci.platforms import Platform, parse_list

WIDTH = 120


def print_table(rows: list[dict], columns: list[str], width: int = WIDTH) -> None:
    """Rows as a left-aligned text table no wider than ``width``: the widest columns wrap."""
    cells = [[str(c) for c in columns]] + [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line) for row in cells for line in [row[i]]) for i in range(len(columns))]
    room = width - 2 * (len(columns) - 1)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 12:
            break
        widths[widest] -= 1
    for row in cells:
        wrapped = [textwrap.wrap(v, w) or [""] for v, w in zip(row, widths)]
        for k in range(max(len(x) for x in wrapped)):
            parts = [(x[k] if k < len(x) else "").ljust(w) for x, w in zip(wrapped, widths)]
            print("  ".join(parts).rstrip())


def _print_frame(df) -> None:
    print_table(df.to_dict(orient="records"), [str(c) for c in df.columns])


def _cmd_doctor(args) -> int:
    from ..lab import doctor, config as labconfig

    rows = doctor.run_checks(labconfig.LabConfig.from_env())
    table = doctor.table(rows)
    if args.format == "json":
        print(json.dumps(table.to_dict(orient="records"), indent=2))
    else:
        _print_frame(table)
    return 1 if any(r.status == doctor.FAIL for r in rows) else 0


def _cmd_lab(args) -> int:
    from ..lab import armvm
    from .. import lab

    if args.action == "up":
        st = lab.up(check=args.check, nodes=args.nodes, build_base_now=args.build_base, arm64_vm=args.arm64_vm)
        print(st.base.note)
        print(f"engine: {st.engine.platform} ({st.engine.operating_system}), image store {st.engine.image_store}")
        print(f"registry: {st.registry.host} ({st.registry.kind})")
        print(f"base: {st.base.source} {st.base.ref}")
        for n in st.nodes:
            print(f"engine {n.name}: docker --context {n.name} (stands in for another machine)")
        if st.arm64_vm:
            print(f"engine {armvm.CONTEXT}: docker --context {armvm.CONTEXT} (a Debian arm64 VM, full-system "
                  f"emulated: {st.arm64_vm.levers.describe()}); DOCKER_CONTEXT={armvm.CONTEXT} makes it the lab's")
        _print_frame(st.table())
        if "proved each platform runs" not in " ".join(st.actions):
            print(f"(proven at {st.proven_at}; nothing has changed since: 'lab up --check' runs them again)")
        print("changed: " + ("; ".join(st.actions) if st.actions else "nothing (already up)"))
        return 0 if all(r.ok for r in st.runs) else 1
    if args.action == "status":
        st = lab.status()
        print(f"engine: {st.engine.platform} ({st.engine.operating_system}), image store {st.engine.image_store}")
        print(f"buildx: {st.buildx_version}, builder {st.builder.name} ({st.builder.driver})")
        print(f"registry: {st.registry.address} " + (f"({st.registry.kind})" if st.registry.answers else "not answering"))
        print(f"base: {st.base.source} {st.base.ref}" + (f" @ {st.base.digest}" if st.base.digest else ""))
        real = st.build_base_status()
        print("build base: " + (f"{real.source} {real.pinned}" if real else
                                "not made yet (made when a real workload first needs it, or 'lab up --build-base')"))
        for n in st.nodes:
            print(f"engine {n.name}: docker --context {n.name}")
        vm = armvm.vm(st.config.lab_dir)
        if vm.disk.exists():
            print(f"arm64 VM: {'running' if vm.running else 'stopped'} (docker --context {armvm.CONTEXT}; "
                  "'lab up --arm64-vm' boots it)")
        return 0
    stopped = lab.down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing (the lab had started nothing)"))
    return 0


def _cmd_notebooks(args) -> int:
    from . import notebooks

    summary = notebooks.execute_all(Path(args.src), Path(args.out))
    events = notebooks.summary(Path(args.out))
    if len(events):
        print("\nwhat the notebooks built and pushed:")
        _print_frame(events)
    print()
    _print_frame(summary)
    print(f"executed notebooks and HTML copies are in {args.out}/")
    return 1 if (summary.status != "ok").any() else 0


def _platform(text: str | None) -> Platform | None:
    return Platform.parse(text) if text else None


def _cmd_inspect(args) -> int:
    from ..oci import manifests

    platform = _platform(args.platform)  # a bad platform fails before any request
    if args.raw:
        sys.stdout.buffer.write(manifests.raw(args.reference, platform))
        sys.stdout.buffer.flush()
        return 0
    result = manifests.inspect(args.reference)
    if platform:
        entry = result.select(platform)
        result = manifests.Inspection(result.reference, result.top, [entry], result.media_type, result.rate_limit)
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2))
        return 0
    kind = manifests.SHORT_NAMES.get(result.media_type, result.media_type)
    print(f"{result.reference}: {kind} {result.digest}")
    _print_frame(result.table().drop(columns=["config size", "attests"]))
    if result.rate_limit:
        print("rate limit: " + ", ".join(f"{k}={v}" for k, v in result.rate_limit.items()))
    return 0


def _csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _sizes(text: str | None) -> dict[str, int]:
    """``c=8,go=20`` to {"c": 8, "go": 20}."""
    sizes = {}
    for part in _csv_list(text or ""):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise KitError(f"--sizes {text!r}: {part!r} is not WORKLOAD=NUMBER", "e.g. --sizes c=8,go=20")
        sizes[name.strip()] = int(value)
    return sizes


# The options that shape a bench plan and where it goes, with their defaults: `--reference` fixes them all.
BENCH_PLAN_DEFAULTS = {"workloads": "c,go", "platforms": "linux/arm64,linux/arm/v7",
                       "strategies": "native,emulated,cross", "sizes": None, "full": False, "repeats": 5, "warmup": 1,
                       "builder": None, "node": None, "results": None}


def _cmd_bench(args) -> int:
    from .. import bench, engine, lab
    from ..bench import hostinfo, plans, store
    from ..scale import split
    from ..lab import workloads

    if args.reference:
        given = [f"--{name}" for name, default in BENCH_PLAN_DEFAULTS.items() if getattr(args, name) != default]
        if given:
            raise KitError(f"--reference measures the reference plan into {store.REFERENCE}/, so it takes no "
                           f"{', '.join(given)}", "run 'multiarch-kit bench --reference' alone (with --resume to "
                           "finish an interrupted one)")
        folder = store.REFERENCE  # not $MULTIARCH_KIT_RESULTS: this run is meant to be committed
    else:
        folder = Path(args.results) if args.results else store.results_dir()
    cfg = lab.LabConfig.from_env()
    if args.resume:
        rows = bench.resume(folder, cfg, progress=not args.no_progress)
    else:
        if args.reference:
            plan = plans.reference_plan(engine.facts().platform, host_id=hostinfo.host_id(cfg.lab_dir))
        else:
            names = _csv_list(args.workloads)
            for name in names:
                workloads.workload(name)
            platforms = parse_list(args.platforms)
            strategies = [workloads.check_strategy(s) for s in _csv_list(args.strategies)]
            sizes = _sizes(args.sizes)
            plans.check_counts(args.repeats, args.warmup)  # every mistake is named before the engine is asked
            build_platform = engine.facts().platform
            nodes = split.parse_nodes(args.node or [], platforms)
            plan = plans.Plan.matrix(names, platforms, build_platform, sizes=sizes, strategies=strategies,
                                     full=args.full, repeats=args.repeats, warmup=args.warmup, builder=args.builder,
                                     nodes=nodes, host_id=hostinfo.host_id(cfg.lab_dir))
        print(f"run {plan.run_id}: {len(plan.cells)} cells x {plan.repeats} repeats (+{plan.warmup} warm-up), "
              f"results in {folder / (plan.host_id + '.csv')}")
        rows = bench.run(plan, folder, lab.status(cfg), progress=not args.no_progress)
    print(f"measured {len(rows)} builds")
    if args.reference:
        print(f"to share them: say what machine this is in {folder / 'README.md'}, then commit that, this host's "
              f"CSV and {folder / 'runs'}/")
    return 0


def _cmd_report(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only; the notebooks show the same plots inline
    from ..bench import plots, stats, store

    folders = [Path(f) for f in args.results] if args.results else [store.results_dir()]
    df = store.load_results(*folders)
    if df.empty:
        raise KitError(f"no results in {', '.join(map(str, folders))}", "measure first with 'multiarch-kit bench'")
    _print_frame(stats.summarize(df, args.metric).round(3))
    slow = stats.slowdown(df, args.metric)
    if len(slow):
        print("\nagainst the native build (slowdown: geometric mean of the ratios; low to high: a 95 % CI by the method in "
              "'interval', or the range when n < 5):")
        _print_frame(slow.round(3))
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


def _cmd_profile(args) -> int:
    from .. import lab
    from ..bench import profiling

    platforms = parse_list(args.platform) if args.platform else None
    result = profiling.profile_in_lab(lab.read(), args.context, platforms,
                                      target=args.target, build_args=_pairs(args.build_arg, "--build-arg"),
                                      build_contexts=_pairs(args.build_context, "--build-context"),
                                      echo=args.format != "json")
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2))
        return 0
    print()
    _print_frame(result.table().drop(columns=["runs_emulated"]))
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


def _cmd_build(args) -> int:
    from .. import lab, verify
    from ..scale import split

    platforms = parse_list(args.platform)
    nodes = split.parse_nodes(args.node or [], platforms)
    ref = split.check_request(Path(args.context), args.tag, platforms)  # parsed once, passed on as a value
    build_args, named = _pairs(args.build_arg, "--build-arg"), _pairs(args.build_context, "--build-context")
    here = lab.read()  # the engine's facts and the base: not the builder or the extra engines, which split asks itself
    result = split.build(Path(args.context), ref, platforms, nodes, here=here, base=here.base,
                         build_args=build_args, build_contexts=named, resume=args.resume,
                         no_cache=args.no_cache, target=args.target, echo=args.format != "json")
    report = verify.verify(ref.at(result.index), echo=False) if args.verify else None
    if args.format == "json":
        data = result.as_json()
        if report is not None:
            data["verified"] = report.ok
        print(json.dumps(data, indent=2))
    else:
        print(f"\n{result.reference.docker}: index {result.index}")
        _print_frame(result.table())
        if nodes:
            print(f"merge and checks after the slowest platform: {result.merge_seconds:.1f} s")
        if report is not None:
            print("verified: every image matches its platform" if report.ok else "NOT verified")
    return 0 if report is None or report.ok else 1


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KitError(f"{flag} {item!r} is not NAME=VALUE", f"e.g. {flag} NAME=VALUE")
        out[key] = value
    return out


def _cmd_verify(args) -> int:
    from .. import verify

    report = verify.verify(args.reference, run=args.run)
    table = report.table()
    table["digest"] = table.digest.str.slice(0, 19)
    _print_frame(table)
    findings = report.findings()
    if len(findings):
        print(f"\n{len(findings)} file(s) do not match their image's platform:")
        _print_frame(findings.drop(columns=["layer_digest", "explained"]))
    notes = report.findings(expected=True)
    if len(notes):
        print(f"\n{len(notes)} file(s) for other machines where they are expected (not counted as mismatches):")
        for why, group in notes.groupby("explained"):
            print(f"- {len(group)} x {why}, e.g. {group.path.iloc[0]}")
    for e in report.entries:
        if not e.config_ok:
            print(f"the {e.platform} entry's config says {e.config_platform}")
    print("verified: every image matches its platform" if report.ok else "NOT verified")
    return 0 if report.ok else 1


def _cmd_diff(args) -> int:
    from .. import verify

    _print_frame(verify.diff(args.a, args.b))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (what was wrong, then where to look) and exit 2."""

    def error(self, message: str):
        self.exit(2, f"multiarch-kit: error: {message}: see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="multiarch-kit", description="Learn and measure multi-platform images.")
    parser.add_argument("--version", action="version", version=f"multiarch-kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("doctor", help="check the lab: one row per check with pass/warn/fail and the fix")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_doctor)
    p = sub.add_parser("lab", help="bring the build lab up, show it, or stop what it started")
    p.add_argument("action", choices=["up", "status", "down"])
    p.add_argument("--check", action="store_true",
                   help="with up: run a container per platform and probe Docker Hub again even if nothing changed")
    p.add_argument("--nodes", type=int, default=1, help="with up: engines in all (extra ones stand in for machines)")
    p.add_argument("--arm64-vm", action="store_true",
                   help="with up: also boot a Debian arm64 VM under qemu-system-aarch64 (Docker context "
                        "multiarch-kit-arm64), making its disk image the first time (about 10 minutes)")
    p.add_argument("--build-base", action="store_true", help="with up: make the real workloads' build base now")
    p.set_defaults(func=_cmd_lab)
    p = sub.add_parser("inspect", help="show what an image reference holds (registry, archive or OCI layout)")
    p.add_argument("reference", help="docker://NAME[:TAG|@DIGEST] (default transport), oci-archive:PATH, "
                   "docker-archive:PATH, oci:DIR")
    p.add_argument("--raw", action="store_true", help="write the manifest bytes exactly as stored")
    p.add_argument("--platform", help="resolve like a runtime on this platform, e.g. linux/arm64")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_inspect)
    p = sub.add_parser("bench", help="measure native vs emulated vs cross builds into <results>/<host-id>.csv")
    p.add_argument("--workloads", default=BENCH_PLAN_DEFAULTS["workloads"],
                   help="comma-separated: c, go, cpu, article (default c,go)")
    p.add_argument("--platforms", default=BENCH_PLAN_DEFAULTS["platforms"],
                   help="target platforms for the emulated and cross builds (native builds the build platform)")
    p.add_argument("--strategies", default=BENCH_PLAN_DEFAULTS["strategies"],
                   help="comma-separated: native, emulated, cross")
    p.add_argument("--sizes", help="WORKLOAD=SIZE,... (c: files of 35, go: packages of 66, cpu: MB); default: short")
    p.add_argument("--full", action="store_true", help="every workload at its full size (the whole build)")
    p.add_argument("--repeats", type=int, default=BENCH_PLAN_DEFAULTS["repeats"],
                   help="measured runs per cell (default 5)")
    p.add_argument("--warmup", type=int, default=BENCH_PLAN_DEFAULTS["warmup"],
                   help="unrecorded rounds first (default 1)")
    p.add_argument("--builder", help="buildx builder to use (passed to --builder), e.g. a multi-node one")
    p.add_argument("--node", action="append", help="PLATFORM=CONTEXT: build that platform on that Docker context")
    p.add_argument("--results", help="results folder (default: $MULTIARCH_KIT_RESULTS, else results/reference "
                   "under the current folder)")
    p.add_argument("--resume", action="store_true", help="finish this host's newest unfinished run")
    p.add_argument("--reference", action="store_true",
                   help="measure the reference plan (c and go whole builds, three strategies, linux/amd64, linux/arm64 "
                   "and linux/arm/v7 but this engine's own, 5 repeats) into results/reference/<host-id>.csv under "
                   "the current folder, to commit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("report", help="tables, the answer and plots from every host's results")
    p.add_argument("--results", action="append", help="a results folder (repeatable; default: "
                   "$MULTIARCH_KIT_RESULTS, else results/reference under the current folder)")
    p.add_argument("--plots", help="where the plots go (default: <first results folder>/plots)")
    p.add_argument("--metric", choices=["wall_s", "run_s"], default="wall_s")
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("profile", help="per-step times of a Dockerfile, native vs emulated, and which steps to move")
    p.add_argument("context", help="a folder with a Dockerfile, or a workload name (c, go, cpu, article)")
    p.add_argument("--platform", help="comma-separated platforms to emulate (default: the lab's other platforms)")
    p.add_argument("--target", help="the Dockerfile stage to build")
    p.add_argument("--build-arg", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--build-context", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_profile)
    p = sub.add_parser("build", help="build for several platforms and push one tag, on one engine or split over "
                       "several (--node)")
    p.add_argument("context", help="the folder with the Dockerfile")
    p.add_argument("--tag", required=True, help="the tag to push, e.g. localhost:5000/app:latest")
    p.add_argument("--platform", required=True, help="comma-separated, e.g. linux/amd64,linux/arm64")
    p.add_argument("--node", action="append", help="PLATFORM=CONTEXT: build that platform on that Docker context")
    p.add_argument("--build-arg", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--build-context", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--resume", action="store_true", help="finish an interrupted split build: only missing platforms")
    p.add_argument("--target", help="the Dockerfile stage to build")
    p.add_argument("--no-cache", action="store_true", help="run every step (each engine has a cache of its own)")
    p.add_argument("--verify", action="store_true", help="then check every image's binaries (multiarch-kit verify)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_build)
    p = sub.add_parser("verify", help="check each platform's image holds binaries for that platform")
    p.add_argument("reference", help="a registry reference, oci-archive:PATH, docker-archive:PATH or oci:DIR")
    p.add_argument("--run", action="store_true", help="also run uname -m in a container of each platform")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("diff", help="two references side by side: platforms, digests, media types, attestations")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(func=_cmd_diff)
    p = sub.add_parser("notebooks", help="execute the numbered notebooks headless into a results directory")
    p.add_argument("--src", default="notebooks", help="folder of the numbered notebooks (default: notebooks)")
    p.add_argument("--out", default="results", help="where executed notebooks and HTML go (default: results)")
    p.set_defaults(func=_cmd_notebooks)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KitError as exc:
        print(f"multiarch-kit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("multiarch-kit: interrupted: nothing measured so far is lost; run the command again to go on",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
