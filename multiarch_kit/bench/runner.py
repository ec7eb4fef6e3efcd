"""Experiments: how much slower is a build under emulation, and how much of that does cross-compiling win back?

This is the runner. It measures a plan (``plans``) cell by cell: every measurement is one ``docker buildx
build --output type=cacheonly`` (the build itself, no export) whose measured stages are never taken from the
cache, timed as wall time and as the RUN steps' own time from ``--progress=rawjson``. Each row, with the
host's fingerprint (``hostinfo``), is appended to the results (``store``) as soon as it is measured, so
Ctrl-C or a stopped engine loses nothing and ``resume`` finishes an interrupted plan. ``stats`` reads the
rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import buildx, engine, lab
from ..core import commands
from ..core.errors import CommandError, KitError
from ..lab import workloads
from ..lab.standins import Base
from ..lab.workloads import CROSS, EMULATED, NATIVE, Workload
from . import hostinfo, plans, store
from .plans import Cell, Plan


@dataclass
class Contexts:
    """What the plan's builds need besides their Dockerfile: the bases and the fetched sources."""

    status: lab.LabStatus
    build_base: Base | None
    sources: dict[str, Path]

    def for_workload(self, w: Workload) -> dict[str, buildx.NamedContext]:
        named = dict(self.status.base.build_contexts if w.base == workloads.ALPINE else
                     (self.build_base.build_contexts if self.build_base else {}))
        if w.source is not None:
            named[w.source.context] = self.sources[w.name]
        return named


def prepare_contexts(cells: list[Cell], status: lab.LabStatus, *, echo: bool = True) -> Contexts:
    """Make sure of every base and source the cells need (the build base is made here on first use)."""
    needed = {workloads.workload(c.workload) for c in cells}
    base = None
    if any(w.base == workloads.DEBIAN for w in needed):
        base = status.build_base(echo=echo)
    sources = {w.name: workloads.fetch(w.source, status.config.lab_dir, echo=echo) for w in needed if w.source}
    return Contexts(status, base, sources)


def options(cell: Cell, contexts: Contexts, builder: str | None = None, node: str | None = None) -> buildx.BuildOptions:
    """The build a measurement of ``cell`` runs: its measured stages never cached, no export; on ``node`` (a Docker
    context) when given."""
    w = workloads.workload(cell.workload)
    return buildx.BuildOptions.of(
        platforms=[cell.platform], output="type=cacheonly", builder=builder, context_name=node,
        no_cache=not w.measured_stages, no_cache_filter=list(w.measured_stages) or None,
        target=w.targets.get(cell.strategy), build_contexts=contexts.for_workload(w),
        build_args={w.size_arg: str(cell.size)} if w.size_arg else None)


def command(cell: Cell, contexts: Contexts, builder: str | None = None, node: str | None = None) -> list[str]:
    """The command line a measurement of ``cell`` runs (less its metadata file, a fresh temporary path each time)."""
    return buildx.build_argv(workloads.workload(cell.workload).context(), options(cell, contexts, builder, node))


def by_hand(cell: Cell, contexts: Contexts, builder: str | None = None, node: str | None = None) -> buildx.ByHand:
    """The same measurement as one types it on one's own machine (see :func:`buildx.by_hand`)."""
    return buildx.by_hand(workloads.workload(cell.workload).context(), options(cell, contexts, builder, node))


def command_lines(plan: Plan, contexts: Contexts) -> list[str]:
    """The commands of ``plan``'s cells as printed before a run: the first of each workload in full, each other
    one as its --platform and --target when that is all it changes (so a reader can still type every one); under
    each full one, the line to type on one's own machine."""
    lines, first = [], {}
    for cell in plan.cells:
        argv = command(cell, contexts, plan.builder, plan.nodes.get(cell.platform))
        head = first.setdefault(cell.workload, (cell, argv))
        w = workloads.workload(cell.workload)
        target = w.targets.get(cell.strategy)
        same = command(head[0], contexts, plan.builder, plan.nodes.get(head[0].platform))
        swapped = [str(cell.platform) if a == str(head[0].platform) else
                   (target if a == w.targets.get(head[0].strategy) else a) for a in same]
        if head[0] is not cell and swapped == argv and target:
            lines.append(f"  the same for {cell.workload} {cell.strategy}, with --platform {cell.platform} "
                         f"--target {target}")
        else:
            node = plan.nodes.get(cell.platform)
            lines += ["$ " + commands.shell_line(argv), f"# {by_hand(cell, contexts, plan.builder, node)}"]
    return lines


def measure(cell: Cell, contexts: Contexts, builder: str | None = None, *, node: str | None = None,
            echo: bool = False) -> buildx.BuildResult:
    """One measured build of ``cell``."""
    return buildx.build(workloads.workload(cell.workload).context(), options(cell, contexts, builder, node), echo=echo)


def run(plan: Plan, folder: Path | None, status: lab.LabStatus, *, progress: bool = True,
        done: set | None = None) -> pd.DataFrame:
    """Measure ``plan`` in the lab ``status`` describes (as the edge read it) and append each row to
    ``<folder>/<host-id>.csv`` as soon as it is measured.

    A plan without a host id is this machine's from now on (its id is read, or made, in the lab folder).
    ``done`` holds (repeat, Cell) pairs already measured (resume). Returns the rows this call added.
    Ctrl-C or an engine that stops keeps every row measured so far; ``resume`` completes the plan.
    """
    folder = Path(folder or store.results_dir(given=status.config.env))
    plan.host_id = plan.host_id or hostinfo.host_id(status.config, status.engine)
    store.prepare(folder)
    plan.save(folder)
    contexts = prepare_contexts(plan.cells, status, echo=progress)
    host = hostinfo.describe_host(plan, status)
    todo = [(r, c) for r, c in plan.order() if (r, c) not in (done or set())]
    path = folder / f"{plan.host_id}.csv"
    if progress:  # each cell's command, once: the measurements repeat it exactly
        for line in command_lines(plan, contexts):
            print(line, flush=True)
    added = []
    warmups = [] if done else [c for _ in range(plan.warmup) for c in plan.cells]
    bar = _progress(len(todo) + len(warmups), progress, len(plan.cells))
    try:
        for cell in warmups:  # fills caches and the page cache; never recorded
            bar.set_postfix_str(f"warm-up {cell.workload} {cell.strategy} {cell.platform}")
            _measure(cell, contexts, plan, 0, len(todo), folder)
            bar.update()
        for repeat, cell in todo:
            bar.set_postfix_str(f"{cell.workload} {cell.strategy} {cell.platform}")
            result = _measure(cell, contexts, plan, len(added), len(todo), folder)
            w = workloads.workload(cell.workload)
            # What happened, not what was planned: an "emulated" cell that a native node built is native.
            emulator = host.emulators[cell.platform] if cell.strategy != CROSS else "native"
            strategy = cell.strategy if cell.strategy == CROSS else (NATIVE if emulator == "native" else EMULATED)
            row = {**host.fingerprint, "run_id": plan.run_id, "timestamp": _utc_now(), "workload": cell.workload,
                   "strategy": strategy, "platform": str(cell.platform), "node": host.nodes[cell.platform],
                   "emulator": emulator,
                   "size": cell.size, "size_unit": w.unit, "repeat": repeat, "wall_s": round(result.seconds, 4),
                   "run_s": round(result.run_seconds, 4)}
            store.append_rows(path, [row])
            added.append(row)
            bar.update()
    except KeyboardInterrupt:
        bar.close()
        raise KitError(f"interrupted after {len(added)} of {len(todo)} measurements (all saved in {path})",
                       _resume_hint(plan, folder)) from None
    bar.close()
    return pd.DataFrame(added, columns=store.COLUMNS)


def _measure(cell: Cell, contexts: Contexts, plan: Plan, measured: int, planned: int,
             folder: Path) -> buildx.BuildResult:
    try:
        return measure(cell, contexts, plan.builder, node=plan.nodes.get(cell.platform))
    except CommandError as exc:
        raise _stopped(exc, measured, planned, plan, contexts.status.engine, folder) from None


def _resume_hint(plan: Plan, folder: Path) -> str:
    """The command that finishes ``plan``: a reference run is resumed with --reference (it lives in the committed
    folder), any other with the folder it writes to."""
    if folder.resolve() == Path(store.REFERENCE).resolve():
        how = "--reference --resume"
    elif folder.resolve() == store.results_dir().resolve():
        how = "--resume"
    else:
        how = f"--resume --results {folder}"
    return f"run 'multiarch-kit bench {how}' to finish run {plan.run_id}"


def _stopped(exc: CommandError, measured: int, planned: int, plan: Plan, on: engine.Engine,
             folder: Path) -> KitError:
    if not engine.answers(on.where):
        return KitError(f"the engine stopped answering after {measured} of {planned} measurements (those are saved)",
                        "start it again, then " + _resume_hint(plan, folder))
    return KitError(f"a build failed after {measured} of {planned} measurements ({exc.message}); those are saved",
                    (exc.fix + "; then " if exc.fix else "") + _resume_hint(plan, folder))


class _Lines:
    """Progress as one line per finished round of ``every`` builds, where a bar would not redraw (logs, notebooks'
    stored output); the builds' own times are in the rows."""

    def __init__(self, total: int, enabled: bool, every: int = 1):
        self.total, self.done, self.enabled, self.every = total, 0, enabled, max(1, every)
        self.started = time.monotonic()

    def set_postfix_str(self, what: str) -> None:
        pass

    def update(self) -> None:
        self.done += 1
        if self.enabled and (self.done % self.every == 0 or self.done == self.total):
            print(self.line(time.monotonic() - self.started), flush=True)

    def line(self, elapsed: float) -> str:
        """``bench 6/36 builds (76 s, about 380 s left)``: what is left at the pace of the rounds so far (every round
        builds each cell once, so rounds take alike; the warm-up round fills caches and may be slower)."""
        if self.done >= self.total:
            return f"bench {self.done}/{self.total} builds ({elapsed:.0f} s)"
        left = elapsed / self.done * (self.total - self.done)
        return f"bench {self.done}/{self.total} builds ({elapsed:.0f} s, about {left:.0f} s left)"

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, every: int = 1):
    import sys

    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, unit="build", desc="bench")
    return _Lines(total, enabled, every)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def resume(folder: Path | None, status: lab.LabStatus, *, progress: bool = True) -> pd.DataFrame:
    """Finish the newest unfinished plan of this host (in the lab ``status`` describes, as the edge read it)."""
    folder = Path(folder or store.results_dir(given=status.config.env))
    found = plans.pending(folder, hostinfo.host_id(status.config, status.engine))
    if found is None:
        raise KitError("nothing to resume: every bench run of this host is complete", "start a new one with 'multiarch-kit bench'")
    plan, done = found
    return run(plan, folder, status, progress=progress, done=done)
