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


def bench_lab() -> None:
    """Warm `lab up` (everything already up: it checks cheaply) and cold `lab up` (after `lab down`)."""
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
    from multiarch_kit import buildx, commands, lab, manifests
    from multiarch_kit.platforms import AMD64, ARM64
    from multiarch_kit.references import open_source

    status = lab.status()
    ref = f"{status.registry.host}/kit-bench/two:latest"
    commands.run(buildx.build_argv(ROOT / "notebooks" / "article", platforms=[AMD64, ARM64], tags=[ref], push=True,
                                   build_contexts=status.base.build_contexts, progress="quiet"), echo=False)

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
    import threading

    import requests

    from multiarch_kit import lab

    def hammer(address: str) -> tuple[int, int]:
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        digest = "sha256:" + __import__("hashlib").sha256(config).hexdigest()
        loc = requests.post(f"http://{address}/v2/bench/race/blobs/uploads/", timeout=10).headers["Location"]
        requests.put(f"{loc}{'&' if '?' in loc else '?'}digest={digest}", data=config, timeout=10).raise_for_status()
        bodies = [('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
                   '"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[],"annotations":'
                   '{"n":"%d"}}' % (digest, len(config), i)).encode() for i in range(4)]
        requests.put(f"http://{address}/v2/bench/race/manifests/latest", data=bodies[0], timeout=30,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).raise_for_status()
        heads, failed, stop = [0], [0], threading.Event()

        def writer(k):
            s = requests.Session()
            for n in range(puts):
                s.put(f"http://{address}/v2/bench/race/manifests/latest", data=bodies[(n + k) % 4],
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, timeout=30)

        def reader():
            s = requests.Session()
            while not stop.is_set():
                r = s.head(f"http://{address}/v2/bench/race/manifests/latest",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=30)
                heads[0] += 1
                failed[0] += r.status_code != 200

        ws = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
        rs = [threading.Thread(target=reader) for _ in range(2)]
        for t in ws + rs:
            t.start()
        for t in ws:
            t.join()
        stop.set()
        for t in rs:
            t.join()
        return failed[0], heads[0]

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
        lab.start_registry(guarded)
        try:
            bad_guarded, n_guarded = hammer(guarded.registry_address)
        finally:
            lab.down(guarded)
    print(f"{'HEAD on a tag while 2 writers re-push it':<34} distribution alone: {bad_raw} of {n_raw} failed (500); "
          f"behind the lab's guard: {bad_guarded} of {n_guarded}   target 0")


def bench_harness(repeats: int = 8, size_mb: int = 64) -> None:
    """The bench harness against the bare `docker buildx build` line, timed the same way, side by side.

    Per round, interleaved: harness amd64, bare amd64, harness arm64, bare arm64, harness arm64 (cross).
    """
    from multiarch_kit import bench, lab

    status = lab.status()
    cells = {"amd64": bench.Cell("cpu", "linux/amd64", size_mb), "arm64": bench.Cell("cpu", "linux/arm64", size_mb),
             "cross": bench.Cell("cross", "linux/arm64", size_mb)}

    def bare(cell: bench.Cell) -> float:
        # The same build line, with no metadata file and no progress stream to parse.
        argv = [a if not a.startswith("--progress=") else "--progress=quiet"
                for a in bench.command(cell, status)]
        return timed(argv)

    def harness(cell: bench.Cell) -> float:
        start = time.perf_counter()
        bench.measure(cell, status)
        return time.perf_counter() - start

    for cell in cells.values():  # warm-up
        harness(cell)
        bare(cell)
    t = {k: [] for k in ("h_amd64", "b_amd64", "h_arm64", "b_arm64", "h_cross")}
    for _ in range(repeats):
        t["h_amd64"].append(harness(cells["amd64"]))
        t["b_amd64"].append(bare(cells["amd64"]))
        t["h_arm64"].append(harness(cells["arm64"]))
        t["b_arm64"].append(bare(cells["arm64"]))
        t["h_cross"].append(harness(cells["cross"]))
    m = {k: statistics.median(v) for k, v in t.items()}
    print(f"cpu workload {size_mb} MB, {repeats} interleaved rounds, median wall time:")
    for k, label in [("h_amd64", "harness linux/amd64 (native)"), ("b_amd64", "bare    linux/amd64 (native)"),
                     ("h_arm64", "harness linux/arm64 (emulated)"), ("b_arm64", "bare    linux/arm64 (emulated)"),
                     ("h_cross", "harness linux/arm64 (cross)")]:
        print(f"  {label:<32} {m[k]:6.3f} s")
    overhead = statistics.median([h / b for h, b in zip(t["h_amd64"] + t["h_arm64"], t["b_amd64"] + t["b_arm64"])])
    print(f"harness overhead (median of harness/bare ratios)   {overhead:.3f}   target <= 1.03")
    slow_h, slow_b = m["h_arm64"] / m["h_amd64"], m["b_arm64"] / m["b_amd64"]
    print(f"emulated/native slowdown: harness {slow_h:.2f}, bare {slow_b:.2f}, differ by "
          f"{abs(slow_h - slow_b) / slow_b * 100:.1f} %   target within 10 %")
    print(f"cross arm64 / native amd64                         {m['h_cross'] / m['h_amd64']:.2f}   target <= 1.3")


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
        buildx.build(context, platforms=["linux/amd64"], output=f"type=oci,dest={tar}", base=status.base, echo=False)
        probe = ("import resource, sys, time\nfrom multiarch_kit import verify\n"
                 "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\nt = time.perf_counter()\n"
                 "verify.verify(sys.argv[1])\n"
                 "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)")
        out = subprocess.run([sys.executable, "-c", probe, f"oci-archive:{tar}"], capture_output=True, text=True,
                             check=True).stdout.split()
    before, peak, seconds = int(out[0]) / 1024, int(out[1]) / 1024, float(out[2])
    print(f"{'verify, 100 MB layer (oci-archive)':<34} peak RSS {peak:6.1f} MB (after imports {before:.1f} MB, "
          f"+{peak - before:.1f} MB), {seconds:.2f} s")


if __name__ == "__main__":
    print("multiarch-kit benchmarks (wall time, this host)")
    bench_lab()
    bench_inspect()
    bench_registry_race()
    bench_harness()
    bench_verify_memory()
