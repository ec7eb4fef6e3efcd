"""The ``multiarch-kit`` command line's grammar: one sub-command per job, each with its options."""

from __future__ import annotations

import argparse

from .. import __version__
from . import bench_commands, image_commands, lab_commands
from .bench_commands import BENCH_PLAN_DEFAULTS


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (what was wrong, then where to look) and exit 2."""

    def error(self, message: str):
        self.exit(2, f"multiarch-kit: error: {message}: see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="multiarch-kit", description="Learn and measure multi-platform images.")
    parser.add_argument("--version", action="version", version=f"multiarch-kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _lab(sub)
    _images(sub)
    _bench(sub)
    return parser


def _lab(sub) -> None:
    p = sub.add_parser("doctor", help="check the lab: one row per check with pass/warn/fail and the fix")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=lab_commands.run_doctor)
    p = sub.add_parser("lab", help="bring the build lab up, show it, or stop what it started")
    p.add_argument("action", choices=["up", "status", "down"])
    p.add_argument("--check", action="store_true",
                   help="with up: run a container per platform and probe Docker Hub again even if nothing changed")
    p.add_argument("--nodes", type=int, default=1, help="with up: engines in all (extra ones stand in for machines)")
    p.add_argument("--arm64-vm", action="store_true",
                   help="with up: also boot a Debian arm64 VM under qemu-system-aarch64 (Docker context "
                        "multiarch-kit-arm64), making its disk image the first time (about 10 minutes)")
    p.add_argument("--build-base", action="store_true", help="with up: make the real workloads' build base now")
    p.add_argument("--container-builder", action="store_true",
                   help="with up: also make the lab's docker-container builder (multiarch-kit-container), and its "
                        "BuildKit image the first time where Docker Hub is out of reach (about five minutes)")
    p.add_argument("--multi-node", action="store_true",
                   help="with up: boot the arm64 VM and make the multi-node builder multiarch-kit-multinode (linux/amd64 "
                        "here, linux/arm64 on the VM): then build --builder multiarch-kit-multinode")
    p.set_defaults(func=lab_commands.run_lab)
    p = sub.add_parser("notebooks", help="execute the numbered notebooks headless into a results directory")
    p.add_argument("--src", default="notebooks", help="folder of the numbered notebooks (default: notebooks)")
    p.add_argument("--out", default="results", help="where executed notebooks and HTML go (default: results)")
    p.set_defaults(func=lab_commands.run_notebooks)


def _images(sub) -> None:
    p = sub.add_parser("inspect", help="show what an image reference holds (registry, archive or OCI layout)")
    p.add_argument("reference", help="docker://NAME[:TAG|@DIGEST] (default transport), oci-archive:PATH, "
                   "docker-archive:PATH, oci:DIR")
    p.add_argument("--raw", action="store_true", help="write the manifest bytes exactly as stored")
    p.add_argument("--platform", help="resolve like a runtime on this platform, e.g. linux/arm64")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=image_commands.run_inspect)
    p = sub.add_parser("build", help="build for several platforms and push one tag, on one engine or split over "
                       "several (--node)")
    p.add_argument("context", help="the folder with the Dockerfile")
    p.add_argument("--tag", required=True, help="the tag to push, e.g. localhost:5000/app:latest")
    p.add_argument("--platform", required=True, help="comma-separated, e.g. linux/amd64,linux/arm64")
    p.add_argument("--node", action="append", help="PLATFORM=CONTEXT: build that platform on that Docker context")
    p.add_argument("--builder", help="a buildx builder to build every platform in one command (e.g. the lab's "
                   "multiarch-kit-multinode, whose nodes each build their own platform)")
    p.add_argument("--build-arg", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--build-context", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--resume", action="store_true", help="finish an interrupted split build: only missing platforms")
    p.add_argument("--target", help="the Dockerfile stage to build")
    p.add_argument("--no-cache", action="store_true", help="run every step (each engine has a cache of its own)")
    p.add_argument("--verify", action="store_true", help="then check every image's binaries (multiarch-kit verify)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=image_commands.run_build)
    p = sub.add_parser("verify", help="check each platform's image holds binaries for that platform")
    p.add_argument("reference", help="a registry reference, oci-archive:PATH, docker-archive:PATH or oci:DIR")
    p.add_argument("--run", action="store_true", help="also run uname -m in a container of each platform")
    p.set_defaults(func=image_commands.run_verify)
    p = sub.add_parser("diff", help="two references side by side: platforms, digests, media types, attestations")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(func=image_commands.run_diff)


def _bench(sub) -> None:
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
    p.set_defaults(func=bench_commands.run_bench)
    p = sub.add_parser("report", help="tables, the answer and plots from every host's results")
    p.add_argument("--results", action="append", help="a results folder (repeatable; default: "
                   "$MULTIARCH_KIT_RESULTS, else results/reference under the current folder)")
    p.add_argument("--plots", help="where the plots go (default: <first results folder>/plots)")
    p.add_argument("--metric", choices=["wall_s", "run_s"], default="wall_s")
    p.set_defaults(func=bench_commands.run_report)
    p = sub.add_parser("profile", help="per-step times of a Dockerfile, native vs emulated, and which steps to move")
    p.add_argument("context", help="a folder with a Dockerfile, or a workload name (c, go, cpu, article)")
    p.add_argument("--platform", help="comma-separated platforms to emulate (default: the lab's other platforms)")
    p.add_argument("--target", help="the Dockerfile stage to build")
    p.add_argument("--build-arg", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--build-context", action="append", help="NAME=VALUE, as docker buildx build takes it")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=bench_commands.run_profile)
