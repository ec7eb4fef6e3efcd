"""`make bench`: the kit's speed targets, measured and printed (never asserted in tests).

Each section times what a reader runs, through the installed CLI, and prints median, min and max.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

KIT = str(Path(sys.executable).with_name("multiarch-kit"))
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def report(name: str, samples: list[float], target: str) -> None:
    print(f"{name:<34} median {statistics.median(samples):7.2f} s   min {min(samples):6.2f}   "
          f"max {max(samples):6.2f}   n={len(samples)}   target {target}")


def bench_first_run() -> None:
    """What a Mac reader's first run costs, as the Docker Desktop rehearsal last measured it on this machine
    (``make test-desktop`` writes it) or, failing that, the
    committed record (``scripts/rehearse_desktop.py --cold --record``), and how long each committed reference run
    took. Read from records, not measured now: a cold run takes the better part of half an hour."""
    import datetime as dt
    import json

    from rehearsal import common, cost

    print("a Docker Desktop-shaped first run (make venv, lab up, every lesson):")
    for where in (common.STATE / cost.RECORD, ROOT / "results" / "desktop" / cost.RECORD):
        if where.exists():
            print(f"  from {where}")
            print("\n".join("  " + line for line in cost.describe(json.loads(where.read_text()))))
            break
    else:
        print("  no record: run make test-desktop (as root, on the lab machine)")
    print("  (bench --reference has not run in the rehearsal; below, how long each committed run took on Linux)")
    print("bench --reference, each committed run as long as it took on the Linux host that ran it (start: its run "
          "id; end: its last measurement):")
    from multiarch_kit.bench import plans, store

    reference = ROOT / store.REFERENCE
    for run in sorted((reference / "runs").glob("*.json")):
        plan = plans.Plan.load(run)
        rows = store.read_rows(reference / f"{plan.host_id}.csv")
        rows = rows[rows.run_id == plan.run_id]
        start = dt.datetime.strptime(plan.run_id.split("-")[0] + "Z", "%Y%m%dT%H%M%S%z")
        end = max(dt.datetime.fromisoformat(t) for t in rows.timestamp)
        print(f"  {plan.host_id}: {(end - start).total_seconds() / 60:.1f} min for the warm-up and "
              f"{rows.repeat.nunique()} of {plan.repeats} rounds ({len(rows)} measured builds)")


def bench_lab() -> None:
    """Warm `lab up` (everything already up: it checks cheaply) and cold `lab up` (after `lab down`)."""
    report("import multiarch_kit.lab (no pandas)",
           [timed([sys.executable, "-c", "import multiarch_kit.lab"]) for _ in range(5)], "none (reported)")
    subprocess.run([KIT, "lab", "up"], check=True, stdout=subprocess.DEVNULL)
    report("lab up, warm", [timed([KIT, "lab", "up"]) for _ in range(5)], "<= 2 s")
    report("lab up --check, warm", [timed([KIT, "lab", "up", "--check"]) for _ in range(3)], "none (reported)")
    cold = []
    for _ in range(2):
        subprocess.run([KIT, "lab", "down"], check=True, stdout=subprocess.DEVNULL)
        cold.append(timed([KIT, "lab", "up"]))
    report("lab up, cold (after lab down)", cold, "none (reported)")


def bench_inspect(runs: int = 30) -> None:
    """In-process inspect of a two-platform index in the lab registry vs a `skopeo inspect --raw` subprocess."""
    from multiarch_kit import buildx, lab
    from multiarch_kit.core import commands
    from multiarch_kit.oci import manifests
    from multiarch_kit.oci.platforms import AMD64, ARM64
    from multiarch_kit.oci.references import open_source

    status = lab.status()
    ref = f"{status.registry.host}/kit-bench/two:latest"
    options = buildx.BuildOptions.of(platforms=[AMD64, ARM64], tags=[ref], push=True,
                                     build_contexts=status.base.build_contexts)
    commands.run(buildx.build_argv(ROOT / "notebooks" / "article", options, progress="quiet"), echo=False)

    def clock(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    skopeo = ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]
    run_skopeo = lambda: subprocess.run(skopeo, check=True, stdout=subprocess.DEVNULL)
    full = lambda: manifests.inspect(ref)  # index, 4 manifests, 2 image configs; entries fetched in parallel
    top = lambda: open_source(ref).top()  # the same single request skopeo --raw makes
    for fn in (run_skopeo, full, top):  # warm-up: connections, imports, page cache
        fn()
    samples = {"skopeo": [], "full": [], "top": []}
    for _ in range(runs):  # interleaved, so drift hits all three alike
        samples["skopeo"].append(clock(run_skopeo))
        samples["full"].append(clock(full))
        samples["top"].append(clock(top))
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"{'skopeo inspect --raw (subprocess)':<34} median {med['skopeo'] * 1000:7.1f} ms   n={runs}")
    print(f"{'inspect --raw, in-process':<34} median {med['top'] * 1000:7.1f} ms   "
          f"ratio to skopeo {med['top'] / med['skopeo']:.2f}   target <= 0.5 (same single request as skopeo)")
    print(f"{'inspect, full tree, parallel':<34} median {med['full'] * 1000:7.1f} ms   "
          f"ratio to skopeo {med['full'] / med['skopeo']:.2f}   target <= 0.7 (7 requests: index, 4 manifests, "
          "2 image configs)")


def bench_registry_race(puts: int = 150) -> None:
    """The race the lab's guard removes: HEADs on a tag while it is re-pushed, raw distribution vs the lab registry."""
    import tempfile

    import registry_race  # beside this script: the same race tests/test_registry_guard.py runs

    from multiarch_kit import lab
    from multiarch_kit.lab import local_registry as labregistry

    def hammer(address: str) -> tuple[int, int]:
        failures, heads = registry_race.race(address, "bench/race", puts=puts)
        return len(failures), heads

    with tempfile.TemporaryDirectory(prefix="multiarch-kit-bench-") as tmp:
        port = _free_port()
        cfg = Path(tmp) / "raw.yml"
        cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
                       f"http:\n  addr: 127.0.0.1:{port}\n")
        raw = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            bad_raw, n_raw = hammer(f"127.0.0.1:{port}")
        finally:
            raw.terminate()
            raw.wait()
        guarded = lab.LabConfig(lab_dir=Path(tmp) / "lab", registry_port=_free_port())
        labregistry.start_registry(guarded)
        try:
            bad_guarded, n_guarded = hammer(guarded.registry_address)
        finally:
            lab.down(guarded)
    print(f"{'HEAD on a tag while 2 writers re-push it':<34} distribution alone: {bad_raw} of {n_raw} failed (500); "
          f"behind the lab's guard: {bad_guarded} of {n_guarded}   target 0")


def bench_harness(repeats: int = 5, sizes: dict | None = None) -> None:
    """Real builds (c and go): harness vs the bare command line, emulated and cross against native.

    Interleaved rounds: every round measures every cell once, so drift on the machine hits all of them alike.
    Emulated against native at small sizes (an emulated whole build takes minutes); cross against native on the
    whole builds too, because at small sizes the cross build's extra stage is a fixed cost that the ratio shows
    rather than the compiler's speed.
    """
    from multiarch_kit import bench, lab
    from multiarch_kit.bench import plans, stats
    from multiarch_kit.lab import workloads
    from multiarch_kit.oci.platforms import AMD64, ARM64

    sizes = sizes or {"c": 10, "go": 30}
    full = {w: workloads.workload(w).full_size for w in sizes}
    cfg = lab.LabConfig.from_env()
    status = lab.status(cfg)
    native = status.engine.platform
    target = AMD64 if native == ARM64 else ARM64
    cells = {(w, s, sizes[w]): plans.Cell(w, s, native if s == "native" else target, sizes[w])
             for w in ("c", "go") for s in ("native", "emulated", "cross")}
    cells.update({(w, s, full[w]): plans.Cell(w, s, native if s == "native" else target, full[w])
                  for w in ("c", "go") for s in ("native", "cross")})
    contexts = bench.prepare_contexts(list(cells.values()), status, echo=False)

    def harness(cell) -> float:
        start = time.perf_counter()
        bench.measure(cell, contexts)
        return time.perf_counter() - start

    def bare(cell) -> float:
        # The same build line, with no metadata file and no progress stream to parse.
        argv = [a if not a.startswith("--progress=") else "--progress=quiet" for a in bench.command(cell, contexts)]
        return timed(argv)

    plan = [("h", k) for k in cells] + [("b", ("c", "native", sizes["c"])), ("b", ("c", "emulated", sizes["c"]))]
    for how, key in plan:  # warm-up round
        (harness if how == "h" else bare)(cells[key])
    t = {(how, key): [] for how, key in plan}
    for r in range(repeats):
        for how, key in plan[r % len(plan):] + plan[:r % len(plan)]:
            t[(how, key)].append((harness if how == "h" else bare)(cells[key]))
    print(f"real builds, {repeats} interleaved rounds after one warm-up, target {target}:")
    for (how, key), xs in t.items():
        label = f"{'harness' if how == 'h' else 'bare   '} {key[0]} {key[1]} {key[2]}"
        print(f"  {label:<26} median {statistics.median(xs):7.2f} s   min {min(xs):6.2f}   max {max(xs):6.2f}")
    overhead = statistics.median([h / b for key in (("c", "native", sizes["c"]), ("c", "emulated", sizes["c"]))
                                  for h, b in zip(t[("h", key)], t[("b", key)])])
    print(f"harness overhead on c (median of harness/bare ratios)        {overhead:.3f}   target <= 1.03")

    def ratio(w: str, strategy: str, size: int):
        # Ratios round by round (the rounds are interleaved): their geometric mean and its interval.
        base = t[("h", (w, "native", size))]
        return stats.paired_ratio([x / n for x, n in zip(t[("h", (w, strategy, size))], base)])

    print(f"ratios: geometric mean of {repeats} paired rounds, with a 95 % CI by a t-interval on the log ratios "
          f"(the range when n < {stats.MIN_INTERVAL_N})")
    for w in ("c", "go"):
        r = ratio(w, "cross", full[w])
        print(f"{f'{w}: cross / native, whole build ({full[w]})':<40} {r.value:5.2f}  ({r.bounds()})   "
              "target <= 1.15")
        r = ratio(w, "cross", sizes[w])
        print(f"{f'{w}: cross / native, size {sizes[w]}':<40} {r.value:5.2f}  ({r.bounds()})   "
              "reported: the extra stage's fixed cost weighs more on a small build")
        r = ratio(w, "emulated", sizes[w])
        half = (r.high - r.low) / 2 / r.value * 100
        flag = "" if r.value >= 4 else "   BELOW 4: the workload is not doing what it claims"
        print(f"{f'{w}: emulated / native, size {sizes[w]}':<40} {r.value:5.2f}  ({r.bounds()}, +-{half:.1f} %)   "
              f"target CI within +-10 %{flag}")


def bench_split(rounds: int = 3) -> None:
    """The c workload pushed for amd64 and arm64: one engine (one command) against two (split, merged by digest)."""
    from multiarch_kit import bench, lab
    from multiarch_kit.bench import plans
    from multiarch_kit.lab import workloads
    from multiarch_kit.oci.platforms import AMD64, ARM64
    from multiarch_kit.scale import split

    status = lab.up(check_runs=False, nodes=2)
    node = next(n.name for n in status.nodes if n.index == 2 and not n.classic)
    c = workloads.workload("c")
    contexts = bench.prepare_contexts([plans.Cell("c", "native", status.engine.platform, c.default_size)],
                                      status, echo=False)
    # Uncached and compiled in each target's image: each engine has a cache of its own, and the in-target
    # stage is how most Dockerfiles build.
    options = {"here": status, "build_contexts": contexts.for_workload(c),
               "build_args": {"FILES": str(c.default_size)}, "no_cache": True, "target": "in-target",
               "echo": False}
    name = f"{status.registry.host}/kit-bench/split-c"
    one, two, overhead = [], [], []
    for r in range(rounds + 1):  # the first round warms caches and is not counted
        a = split.build(c.context(), f"{name}:one-{r}", [AMD64, ARM64], None, **options)
        b = split.build(c.context(), f"{name}:split-{r}", [AMD64, ARM64], {ARM64: node}, **options)
        if r:
            one.append(a.seconds)
            two.append(b.seconds)
            overhead.append(b.merge_seconds)
    print(f"c workload ({c.default_size} files, in-target, no cache), linux/amd64 + linux/arm64 pushed, {rounds} "
          "rounds after a warm-up:")
    report("  one engine, one command", one, "none (reported)")
    report("  split over two engines", two, "none (reported)")
    print(f"  split / one engine {statistics.median(two) / statistics.median(one):.2f} (both engines share this "
          "machine's CPUs and both emulate arm64)")
    report("  kit's own merge and checks", overhead, "<= 2 s beyond the slowest platform's build")


def bench_shared_cache(rounds: int = 3) -> None:
    """The c workload on a second engine's docker-container builder: cold, and warm from the registry cache the
    first engine's builder exported (the same measurement as notebook 10's section 6)."""
    from multiarch_kit import bench, engine, lab
    from multiarch_kit.bench import plans
    from multiarch_kit.lab import buildkit, workloads
    from multiarch_kit.oci.references import parse_reference
    from multiarch_kit.scale import cache

    status = lab.up(check_runs=False, nodes=2)
    node = next(n.name for n in status.nodes if n.index == 2 and not n.classic)
    second_engine = engine.connect(status.config.env, node)
    first, second = status.container_builder(echo=False), status.container_builder(second_engine, echo=False)
    c = workloads.workload("c")
    contexts = bench.prepare_contexts([plans.Cell("c", "native", status.engine.platform, c.default_size)],
                                      status, echo=False)
    what = cache.CacheBuild(c.context(), status.engine.platform, contexts.for_workload(c),
                            {"FILES": str(c.default_size)}, target="in-target")
    ref = parse_reference(f"{status.registry.host}/kit-bench/cache-c:{status.engine.platform.tag_suffix}")
    runs = [cache.measure(what, ref, first.name, second.name, echo=False) for _ in range(rounds)]
    buildkit.remove_builder(status.config, second_engine, echo=False)
    print(f"c workload ({c.default_size} files, in-target, {status.engine.platform}), builder on a second engine, "
          f"its own cache emptied each round:")
    report("  cold (--no-cache)", [r.cold.seconds for r in runs], "none (reported)")
    report("  warm (--cache-from the registry)", [r.warm.seconds for r in runs], "none (reported)")
    print(f"  cold / warm {statistics.median(r.ratio for r in runs):.1f}x (median of {rounds} rounds)")


def bench_verify_memory() -> None:
    """Peak memory of `verify` on an image whose layer holds a 100 MB file, in a fresh process."""
    import tempfile

    from multiarch_kit import buildx, lab

    status = lab.status()
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-bench-") as tmp:
        context = Path(tmp) / "big"
        context.mkdir()
        (context / "Dockerfile").write_text("FROM alpine:3.18\nRUN head -c 104857600 /dev/urandom > /big\n")
        tar = Path(tmp) / "big.tar"
        buildx.build(context, platforms=[status.engine.platform], output=f"type=oci,dest={tar}", base=status.base,
                     echo=False)
        probe = ("import resource, sys, time\nfrom multiarch_kit import verify\n"
                 "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\nt = time.perf_counter()\n"
                 "verify.verify(sys.argv[1])\n"
                 "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)")
        out = subprocess.run([sys.executable, "-c", probe, f"oci-archive:{tar}"], capture_output=True, text=True,
                             check=True).stdout.split()
    before, peak, seconds = int(out[0]) / 1024, int(out[1]) / 1024, float(out[2])
    print(f"{'verify, 100 MB layer (oci-archive)':<34} peak RSS {peak:6.1f} MB (after imports {before:.1f} MB, "
          f"+{peak - before:.1f} MB), {seconds:.2f} s")


def bench_three_ways(rounds: int = 3) -> None:
    """The article's Dockerfile for linux/amd64 and linux/arm64, from scratch, three ways (notebook 10, section 7):
    one docker-container builder with QEMU, one builder with a native node on each engine (the arm64 VM's under
    TCG), and one job per platform merged by digest (the split)."""
    from multiarch_kit import buildx, lab
    from multiarch_kit.lab import armvm, multinode
    from multiarch_kit.oci.platforms import AMD64, ARM64
    from multiarch_kit.scale import split

    status = lab.up(check_runs=False, arm64_vm=True)
    qemu, both = status.container_builder(echo=False).name, status.multinode_builder(echo=False).name
    article = ROOT / "notebooks" / "article"
    name = f"{status.registry.host}/kit-bench/three-ways"
    ways = {"one builder, QEMU": [], "one builder, two native nodes": [], "one job per platform, merged": []}
    for r in range(rounds + 1):  # the first round warms the nodes' image pulls and is not counted
        common = {"platforms": [AMD64, ARM64], "push": True, "base": status.base, "no_cache": True, "echo": False}
        a = buildx.build(article, tags=[f"{name}:qemu-{r}"], builder=qemu, **common).seconds
        b = buildx.build(article, tags=[f"{name}:nodes-{r}"], builder=both, **common).seconds
        c = split.build(article, f"{name}:split-{r}", [AMD64, ARM64], {ARM64: armvm.CONTEXT}, here=status,
                        base=status.base, no_cache=True, echo=False).seconds
        if r:
            for way, seconds in zip(ways, (a, b, c)):
                ways[way].append(seconds)
    print(f"the article's Dockerfile, linux/amd64 + linux/arm64 pushed, no cache, {rounds} rounds after a warm-up "
          f"(arm64 node and split: the arm64 VM, emulated whole by TCG):")
    for way, samples in ways.items():
        report(f"  {way}", samples, "none (reported)")
    multinode.remove(status.config, echo=False)


def bench_arm64_vm(loop: int = 200_000) -> None:
    """`lab up --arm64-vm`: cold (recorded when the disk image was made: making it, then the first boot) and warm
    (boot only, measured now), then QEMU's speed levers: each boot of the VM with one lever changed, and the same
    shell loop timed in a native arm64 container on it."""
    from multiarch_kit import lab
    from multiarch_kit.core import commands, files
    from multiarch_kit.engine import docker
    from multiarch_kit.lab import armvm

    status = lab.up(check_runs=False, arm64_vm=True)
    machine = armvm.vm(status.config.lab_dir)
    made = files.read_json(machine.record) or {}
    print(f"lab up --arm64-vm, cold: {made.get('seconds', '?')} s to make the disk image + "
          f"{made.get('first_boot_seconds', '?')} s for the first boot (recorded {made.get('made', '?')})")
    warm = []
    for _ in range(2):
        armvm.stop(machine, echo=False)
        warm.append(timed([KIT, "lab", "up", "--arm64-vm"]))
    report("lab up --arm64-vm, warm (boots)", warm, "none (reported)")
    job = docker("run", "--rm", "--platform", "linux/arm64", status.base.pinned, "sh", "-c",
                 f"i=0; while [ $i -lt {loop} ]; do i=$((i+1)); done", context=armvm.CONTEXT)
    levers = [armvm.Levers(), armvm.Levers(cpu="cortex-a72"), armvm.Levers(cpu="max"),
              armvm.Levers(threads="single"), armvm.Levers(smp=1)]
    print(f"QEMU's levers: boot, then a {loop:,}-step shell loop in a native arm64 container (3 runs, median):")
    for lever in levers:
        armvm.stop(machine, echo=False)
        boot = armvm.boot(machine, status.config.registry_port, lever, echo=False)
        runs = [commands.run(job, echo=False).seconds for _ in range(3)]
        print(f"  {lever.describe():<48} boot {boot:6.1f} s   loop median {statistics.median(runs):6.2f} s "
              f"(min {min(runs):.2f}, max {max(runs):.2f})")
    armvm.stop(machine, echo=False)
    armvm.boot(machine, status.config.registry_port, echo=False)  # back to the defaults


if __name__ == "__main__":
    print("multiarch-kit benchmarks (wall time, this host)")
    bench_first_run()
    bench_lab()
    bench_inspect()
    bench_registry_race()
    bench_harness()
    bench_split()
    bench_shared_cache()
    bench_verify_memory()
    bench_three_ways()
    bench_arm64_vm()
