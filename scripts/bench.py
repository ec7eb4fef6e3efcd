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


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def report(name: str, samples: list[float], target: str) -> None:
    print(f"{name:<34} median {statistics.median(samples):7.2f} s   min {min(samples):6.2f}   "
          f"max {max(samples):6.2f}   n={len(samples)}   target {target}")


def bench_lab() -> None:
    """Warm `lab up` (everything already up) and cold `lab up` (after `lab down` stopped what the lab started)."""
    subprocess.run([KIT, "lab", "up"], check=True, stdout=subprocess.DEVNULL)
    report("lab up, warm", [timed([KIT, "lab", "up"]) for _ in range(5)], "< 10 s")
    cold = []
    for _ in range(2):
        subprocess.run([KIT, "lab", "down"], check=True, stdout=subprocess.DEVNULL)
        cold.append(timed([KIT, "lab", "up"]))
    report("lab up, cold (after lab down)", cold, "none (reported)")


def bench_inspect(runs: int = 30) -> None:
    """In-process inspect of a two-platform index in the lab registry vs a `skopeo inspect --raw` subprocess."""
    from multiarch_kit import commands, lab, manifests
    from multiarch_kit.references import open_source

    status = lab.status()
    ref = f"{status.registry.host}/kit-bench/two:latest"
    commands.run(["docker", "buildx", "build", *status.base.build_context_args(), "--platform",
                  "linux/amd64,linux/arm64", "--tag", ref, "--push", str(ROOT / "notebooks" / "article")], echo=False)

    def clock(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    skopeo = ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]
    run_skopeo = lambda: subprocess.run(skopeo, check=True, stdout=subprocess.DEVNULL)  # noqa: E731
    full = lambda: manifests.inspect(ref)  # noqa: E731  (top + 4 manifests + 4 configs)
    top = lambda: open_source(ref).top()  # noqa: E731  (the same single request skopeo --raw makes)
    for fn in (run_skopeo, full, top):  # warm-up: connections, imports, page cache
        fn()
    samples = {"skopeo": [], "full": [], "top": []}
    for _ in range(runs):  # interleaved, so drift hits all three alike
        samples["skopeo"].append(clock(run_skopeo))
        samples["full"].append(clock(full))
        samples["top"].append(clock(top))
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"{'skopeo inspect --raw (subprocess)':<34} median {med['skopeo'] * 1000:7.1f} ms")
    print(f"{'inspect --raw, in-process':<34} median {med['top'] * 1000:7.1f} ms   "
          f"ratio to skopeo {med['top'] / med['skopeo']:.2f}   target <= 0.5 (same single request as skopeo)")
    print(f"{'inspect, in-process, full tree':<34} median {med['full'] * 1000:7.1f} ms   "
          f"ratio to skopeo {med['full'] / med['skopeo']:.2f}   (9 requests: index, 4 manifests, 4 configs)")


if __name__ == "__main__":
    print("multiarch-kit benchmarks (wall time, this host)")
    bench_lab()
    bench_inspect()
