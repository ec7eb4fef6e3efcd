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


if __name__ == "__main__":
    print("multiarch-kit benchmarks (wall time, this host)")
    bench_lab()
