"""The ways to get an image for another platform, side by side: what each cost where it was measured, when to
pick it, and the flags that choose it (notebook 11's table).

Every cost is computed from the bench's results (``store.load_results``), none is typed: a way that no committed
file measured says so, and names the command that would measure it. A way is recognised in the rows by its
strategy and, for emulation, by the emulator the row records (QEMU or Rosetta). :func:`go_stdlib` measures one
cost the committed workloads cannot show: a cross build that compiles the target's standard library first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import buildx
from ..buildx import BuildResult, NamedContext
from ..engine import Kind, emulation
from ..lab.workloads import CROSS, EMULATED, NATIVE
from ..oci.platforms import Platform
from . import hostinfo, stats

MEASURE = "not measured yet: run `multiarch-kit bench --reference` on a Mac"


@dataclass(frozen=True)
class Way:
    """One way to build for another platform, and how its rows are found in the results."""

    name: str
    strategy: str  # the bench's strategy that measures it
    emulator: str  # the emulator its rows record, or "" for any
    pick: str  # when to pick it
    flags: str  # what chooses it on the command line or in the Dockerfile (Markdown: code in backticks)
    linux_absent: str = "not measured yet"  # what the Linux column says when no Linux row measures it


WAYS = (
    Way("native node", NATIVE, "",
        "long or frequent builds, with a machine (or CI runner) of each architecture to build on",
        "a node per platform: `docker buildx create --append`; the kit: `--node P=CONTEXT` or `MULTIARCH_KIT_NODES`"),
    Way("emulation (QEMU)", EMULATED, emulation.QEMU,
        "short builds, or a Dockerfile that compiles in the target's image and cannot change; nothing to set up",
        "`--platform linux/arm64,linux/arm/v7` (with binfmt handlers registered)"),
    Way("Rosetta (Apple silicon)", EMULATED, emulation.ROSETTA,
        "linux/amd64 on an M-series Mac; it replaces QEMU for amd64 only, never for arm/v7",
        "Docker Desktop's Rosetta setting on, then `--platform linux/amd64`",
        linux_absent="none on Linux: Apple silicon only"),
    Way("cross-compiling", CROSS, "",
        "a toolchain that targets other platforms (Go, gcc's cross compilers): edit the Dockerfile once",
        "`FROM --platform=$BUILDPLATFORM` for the compile stage, `ARG TARGETARCH` to pick the target"),
)


def _on_mac(df: pd.DataFrame) -> pd.Series:
    return df.host_os == hostinfo.MACOS


def _cost(df: pd.DataFrame, way: Way) -> str | None:
    """What ``way`` cost in ``df``'s rows at each workload's largest size, or None when no row measured it."""
    if df.empty:
        return None
    several = df.host_id.nunique() > 1
    if way.strategy == NATIVE:
        med = stats.summarize(stats.at_largest_size(df[df.strategy == NATIVE]))
        if med.empty:
            return None
        return "1x, the reference: " + "; ".join(
            (f"{host}: " if several else "") + ", ".join(f"{r.workload} {r['median']:.1f} s" for _, r in g.iterrows())
            + f" on {g.platform.iloc[0]} (median)" for host, g in med.groupby("host_id"))
    emulators = df.groupby(stats.CELL).emulator.first()
    slow = stats.at_largest_size(stats.slowdown(df)).join(emulators, on=stats.CELL)
    slow = slow[slow.strategy == way.strategy]
    if way.emulator:
        slow = slow[slow.emulator == way.emulator]
    if slow.empty:
        return None
    low, high = slow.slowdown.min(), slow.slowdown.max()
    spread = f"{low:.2f}x" if len(slow) == 1 else f"{low:.2f}x to {high:.2f}x"
    over = (", ".join(sorted(set(slow.workload))) + "; " + ", ".join(sorted(set(slow.platform)))
            + (f"; {slow.host_id.nunique()} hosts" if several else ""))
    return f"{spread} native ({over})"


def _on_system_vm(df: pd.DataFrame) -> pd.Series:
    """The rows measured on the lab's arm64 VM, by the kind of engine each row records."""
    return df.engine_kind == Kind.ARM64_VM.value


def table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per way: its cost on Linux hosts and on Macs (from ``df``), when to pick it, its commands.

    Rows measured on the lab's arm64 VM are left out: QEMU emulates that whole machine, so its "native" is no
    machine's cost."""
    df = df[~_on_system_vm(df)] if not df.empty else df
    linux, mac = df[~_on_mac(df)], df[_on_mac(df)]
    return pd.DataFrame(
        [{"way": w.name, "cost on Linux": _cost(linux, w) or w.linux_absent, "cost on a Mac": _cost(mac, w) or MEASURE,
          "pick it when": w.pick, "commands": w.flags} for w in WAYS],
        columns=["way", "cost on Linux", "cost on a Mac", "pick it when", "commands"])


def markdown(frame: pd.DataFrame) -> str:
    """``frame`` (such as :func:`table`'s) as a Markdown table, which a notebook displays as a table and nbval
    compares as text; a ``|`` in a cell is escaped so that it stays in its cell."""
    def row(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([row(frame.columns), row(["---"] * len(frame.columns))] + [row(r) for r in frame.itertuples(index=False)])


@dataclass(frozen=True)
class GoStdlib:
    """One stdlib-only Go service built for ``other`` three ways from scratch: each a
    :class:`~multiarch_kit.buildx.BuildResult`, its RUN step being the ``go build``."""

    here: Platform
    other: Platform
    native: BuildResult
    emulated: BuildResult
    cross: BuildResult

    def rows(self) -> list[tuple[str, Platform, float, int]]:
        """(how, the platform built, seconds of its ``go build``, packages it compiled), in the order built."""
        built = [("native", self.here, self.native), ("emulated", self.other, self.emulated),
                 ("cross-compiled", self.other, self.cross)]
        return [(how, platform, result.run_seconds, compiled(result)) for how, platform, result in built]


def compiled(result: BuildResult) -> int:
    """How many packages the build's ``go build -v`` compiled: it names each one on a line of its own (the
    cached stage's ``round N`` line is not a package)."""
    (step,) = [s for s in result.progress.steps if s.is_run]
    return len([line for line in step.log.splitlines() if line.strip() and not line.startswith("round ")])


@dataclass(frozen=True)
class GoCacheMount:
    """The cross build of the Go service twice with Go's build cache on a cache mount (stage ``cross-cached``):
    ``first`` with the mount emptied, ``second`` with the step forced to run again and the mount kept."""

    other: Platform
    first: BuildResult
    second: BuildResult

    def rows(self) -> list[tuple[str, float, int]]:
        """(which build, seconds of its ``go build``, packages it compiled)."""
        return [(which, r.run_seconds, compiled(r)) for which, r in (("first", self.first), ("second", self.second))]


def go_stdlib(context: Path, here: Platform, other: Platform, build_contexts: Mapping[str, NamedContext], *,
              echo: bool = True) -> GoStdlib:
    """Build ``context``'s stages (``in-target``, ``cross``: notebook 11's Go service) once each from scratch:
    what a toolchain that ships its standard library for the host only costs to cross-compile. n = 1 per way."""
    def one(platform: Platform, target: str) -> BuildResult:
        return buildx.build(context, platforms=[platform], target=target, output="type=cacheonly",
                            build_contexts=dict(build_contexts), no_cache=True, echo=echo)

    return GoStdlib(here, other, one(here, "in-target"), one(other, "in-target"), one(other, "cross"))


def go_cache_mount(context: Path, other: Platform, build_contexts: Mapping[str, NamedContext], *,
                   echo: bool = True) -> GoCacheMount:
    """Cross-compile ``context``'s Go service for ``other`` twice, Go's build cache on a cache mount.

    Not with ``--no-cache``: BuildKit ignores cache mounts under it, so the second build would start from an empty
    cache again. The builder's cache mounts are emptied first instead, and each build passes a new ``ROUND``, the
    build argument its ``go build`` step names: a new value runs the step again, with the mount as the last build
    left it. n = 1 per build."""
    buildx.prune_cache_mounts(echo=echo)
    stamp = time.time_ns()

    def one(n: int) -> BuildResult:
        return buildx.build(context, platforms=[other], target="cross-cached", output="type=cacheonly",
                            build_contexts=dict(build_contexts), build_args={"ROUND": f"{stamp}-{n}"}, echo=echo)

    return GoCacheMount(other, one(1), one(2))
