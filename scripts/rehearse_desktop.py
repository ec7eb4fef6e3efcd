"""Rehearse Docker Desktop's shape on this Debian machine and run every notebook in it (``make test-desktop``).

No Mac is at hand, so this builds, as far as Linux allows, what the kit meets on one:

* **The engine is somebody else's, and of Desktop's generation.** Debian's newest ``dockerd`` and containerd
  (sid's docker.io 28.5, containerd 2.1; :mod:`multiarch_kit.lab.newest` makes their root filesystem once, in the
  lab folder) run with that root as the root (pivot_root) of a mount namespace, in a network namespace of their own, the way
  Docker Desktop's engine runs in a VM. The kit reaches it over TCP on that namespace's loopback, so it cannot
  read the engine's ``/proc`` and must probe binfmt_misc through a privileged container, as on a Mac. The engine
  keeps images in containerd's store, as Docker Desktop does on clean installs since 4.34. The reader's ``docker``
  CLI and buildx plugin are that root's (28.5, buildx 0.29), as Desktop puts its own CLI on a Mac's PATH.
* **The reader is not root** (user ``mkdesk``), did not start the engine and cannot provision one: ``dockerd``,
  ``containerd``, ``docker-registry``, ``skopeo``, ``mmdebstrap`` and the QEMU binaries are not on its PATH.
* **Port 5000 is held** by a program that answers HTTP 403 as ``AirTunes``, as macOS's AirPlay Receiver does.
* **Docker Hub** is this machine's stand-in for it: a registry outside the namespace, which the engine uses as
  its Docker Hub mirror (``registry-mirrors``, a real dockerd setting). It serves ``library/debian:bookworm``
  and ``library/golang:1.19-bookworm`` made like Docker Hub's (no compilers in debian, Go in /usr/local/go),
  ``library/alpine:3.18`` (the lab's busybox stand-in) and ``library/registry:2`` (Debian's distribution binary).
  So the kit takes its Docker Hub path (``MULTIARCH_KIT_BASE=docker-hub``): ``FROM debian:bookworm`` resolves in
  the engine, the workloads' apt steps really run (build containers reach the Debian mirror through NAT), and
  the lab registry is the ``registry:2`` container.

Then, as that user, in a fresh copy of the checkout: ``make venv``, ``tests/desktop`` (which brings the lab up
and asserts the shape itself) and strict nbval over every notebook. Each phase's wall time, the bytes that came
into the namespace while it ran and the disk the run used are written to ``desktop-cost.json`` in the state folder
(:mod:`rehearsal.cost`; ``make bench`` prints it). ``--cold`` starts from an empty engine, venv and pip cache, as a
Mac reader's first run does; ``--record`` also writes the figures to ``results/desktop/``, for the README. Everything it starts is stopped at the end, and everything it
changed on the machine is undone: the namespace and its veth pair, the iptables rules it added, ``ip_forward`` as
it was (it checks ``ip netns list`` and ``iptables -S`` against what they were, and fails when they differ). The
engine's data and the hub's images are kept under ``/var/lib/multiarch-kit-desktop`` as a cache (``--fresh`` drops
them). Run as root after ``make lab`` (the stand-ins are made with the lab's own engine and registry). Its parts are
in ``scripts/rehearsal/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rehearsal import common, cost, engine, hub, network, reader
from rehearsal.common import AIRPLAY_PORT, ENGINE_TCP, HUB, NETNS, STATE

from multiarch_kit.core import commands
from multiarch_kit.core.errors import KitError
from multiarch_kit.lab import newest
from multiarch_kit.lab.config import LabConfig

REPO = Path(__file__).resolve().parent.parent  # the checkout (scripts are outside the package)
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "notebooks/sanitize.cfg"]


def rehearse(args, started: float, processes: list[subprocess.Popen]) -> int:
    """Bring the shape up, then run the reader's commands in it; returns their exit code."""
    copies = hub.make_hub(LabConfig.from_env())
    processes.append(hub.start_hub(copies))  # on the host's end of the namespace's link, made before
    user = reader.ensure_user()
    made = newest.ensure(LabConfig.from_env().paths)
    if args.cold:  # the engine as Docker Desktop installs it: no image, no build cache (the hub's images stay)
        shutil.rmtree(engine.DATA, ignore_errors=True)
    fresh_engine = not engine.DATA.exists() or not any(engine.DATA.iterdir())
    processes[:0] = engine.start_engine(user, made.root)
    processes.insert(0, commands.start(common.in_ns(sys.executable, Path(__file__).resolve(), "--airplay",
                                                    AIRPLAY_PORT), log=STATE / "airplay.log"))
    kit = reader.copy_checkout(user, REPO)
    path = reader.path_without_engine_tools(STATE / "path", reader.newest_cli(made, user, STATE / "cli"))
    versions = ", ".join(f"{k} {v}" for k, v in made.versions().items())
    print(f"Rehearsal ready after {time.monotonic() - started:.0f} s: the reader is {user.pw_name}, the engine "
          f"{ENGINE_TCP} in namespace {NETNS} ({versions}), Docker Hub's stand-in {HUB}, port {AIRPLAY_PORT} held.",
          flush=True)
    home = Path(user.pw_dir)
    if args.cold:  # a Mac reader's first run: nothing downloaded or built yet
        for folder in (kit / ".venv", home / ".cache" / "pip"):
            shutil.rmtree(folder, ignore_errors=True)
    cold = not any(p.exists() for p in (kit / ".venv", home / ".cache" / "pip")) and fresh_engine
    meter = cost.Meter()
    pytest = [".venv/bin/python", "-m", "pytest", "-p", "no:cacheprovider"]
    junit = kit / "lessons.xml"

    def reader_runs(*argv: str, timeout: int) -> int:
        return reader.as_reader(user, kit, path, *argv, timeout=timeout)

    code = meter.run("make venv", lambda: reader_runs("make", "venv", timeout=1800))
    if code == 0 and args.pytest_args:
        code = meter.run("pytest " + " ".join(args.pytest_args),
                         lambda: reader_runs(*pytest, *args.pytest_args, *NBVAL, timeout=3600))
    elif code == 0:  # the shape's checks bring the lab up first, as a reader's first command does; then the lessons
        code = meter.run("lab up + tests/desktop", lambda: reader_runs(*pytest, "tests/desktop", timeout=1800))
        code = meter.run("every lesson under nbval", lambda: reader_runs(
            *pytest, f"--junitxml={junit}", "notebooks", *NBVAL, timeout=3600)) or code
    measured = cost.Cost(
        measured=time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), machine=cost.machine(), engine=versions,
        cold=cold, phases=meter.phases, notebooks=cost.notebook_seconds(junit),
        disk={"engine data": cost.disk(engine.DATA), "venv": cost.disk(kit / ".venv"),
              "pip cache": cost.disk(home / ".cache" / "pip"),
              "lab folder": cost.disk(home / ".local" / "state" / "multiarch-kit")},
        passed=code == 0)
    cost.record(measured, STATE / cost.RECORD, *([REPO / "results" / "desktop" / cost.RECORD] if args.record else []))
    print("\n".join(cost.describe(json.loads((STATE / cost.RECORD).read_text()))), flush=True)
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="drop the engine's data and the hub's images first")
    parser.add_argument("--cold", action="store_true",
                        help="drop the engine's data, the reader's venv and pip's cache first (Docker Hub's stand-in keeps "
                        "its images): a first run's time, downloads and disk")
    parser.add_argument("--record", action="store_true",
                        help="also write the measured cost to results/desktop/ (make bench prints it)")
    parser.add_argument("--airplay", type=int, help=argparse.SUPPRESS)  # the AirPlay stand-in, run in the namespace
    parser.add_argument("pytest_args", nargs="*", help="what to test (default: tests/desktop and every notebook)")
    args = parser.parse_args()
    if args.airplay:
        engine.serve_airplay(args.airplay)
        return 0
    if os.geteuid() != 0:
        print("make test-desktop needs root: it starts an engine and makes a user (run it on the Debian lab machine)",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    if args.fresh and STATE.exists():
        shutil.rmtree(STATE)
    STATE.mkdir(parents=True, exist_ok=True)
    before = network.snapshot()
    processes: list[subprocess.Popen] = []
    made = network.Made()
    try:
        made = network.make()
        code = rehearse(args, started, processes)
    except KitError as exc:
        print(str(exc), file=sys.stderr)
        code = 1
    finally:
        common.stop(processes)
        network.remove(made)
    if network.snapshot() != before:
        print("make test-desktop: the machine's namespaces, iptables rules or ip_forward differ from before the "
              "rehearsal", file=sys.stderr)
        code = code or 1
    print(f"make test-desktop: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
