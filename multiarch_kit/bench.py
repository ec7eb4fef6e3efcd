"""Experiments: how much slower is a build under emulation, and how much of that does cross-compiling win back?

A *plan* is a matrix of cells (workload x strategy x platform x size) run ``repeats`` times after ``warmup``
runs. Every measurement is one ``docker buildx build --output type=cacheonly`` (the build itself, no export)
whose measured stages are never taken from the cache, timed as wall time and as the RUN steps' own time from
``--progress=rawjson``. Repeats are interleaved (each round visits every cell, in a rotated order) so drift on
the machine hits every cell alike.

Each measurement becomes one tidy row, with the host's fingerprint, appended at once to
``<results>/<host-id>.csv`` by writing a new file and renaming it over the old one: a killed run leaves the
previous file intact, nothing is ever overwritten, and ``resume`` finishes an interrupted plan. Where rows go:
``multiarch-kit bench`` writes the committed reference results (``results/reference/``); notebooks write to
``results/local/``, which git ignores. ``load_results`` merges every host's file; ``summarize``,
``slowdown``, ``fit_lines`` and ``answer`` do the statistics.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform as _pyplatform
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, buildbase, buildx, commands, emulation, engine, files, lab, workloads
from .errors import CommandError, KitError
from .platforms import Platform
from .workloads import CROSS, EMULATED, NATIVE, Workload

ENV_RESULTS = "MULTIARCH_KIT_RESULTS"
ENV_HOST_ID = "MULTIARCH_KIT_HOST_ID"
# Relative to the current folder (a clone's top, where make runs), never to the package, which may be installed
# read-only in site-packages; the notebooks, one folder down, put ".." before them.
REFERENCE = Path("results") / "reference"  # committed: written only by an explicit `multiarch-kit bench`
LOCAL = Path("results") / "local"  # git ignores it: notebooks and experiments
SCHEMA_VERSION = 2
# name, type, unit, meaning: the columns of every <host-id>.csv, in order.
SCHEMA = [
    ("run_id", "str", "", "one bench run (a plan)"),
    ("timestamp", "str", "ISO 8601 UTC", "when the measurement finished"),
    ("host_id", "str", "", "the machine: unique per machine, the same on every run there"),
    ("host_os", "str", "", "the host's operating system (Linux distribution or macOS)"),
    ("host_os_version", "str", "", "its version"),
    ("cpu_model", "str", "", "the host CPU"),
    ("cpus", "int", "", "logical CPUs the host has"),
    ("engine_platform", "str", "", "the Docker engine's platform (linux/arm64 on an M2 with Docker Desktop)"),
    ("docker_version", "str", "", "Docker engine version"),
    ("buildx_version", "str", "", "buildx version"),
    ("builder", "str", "", "buildx builder name"),
    ("driver", "str", "", "its driver (docker, docker-container, remote...)"),
    ("node", "str", "", "the builder node, or the engine (docker context), that built this platform"),
    ("kit_version", "str", "", "multiarch-kit version"),
    ("workload", "str", "", "cpu, c, go or article"),
    ("strategy", "str", "", "native, emulated or cross"),
    ("platform", "str", "", "target platform"),
    ("emulator", "str", "", "how the builder runs the target's RUN steps: native, qemu, rosetta, emulated"),
    ("size", "int", "", "the workload's size knob (0 when it has none)"),
    ("size_unit", "str", "", "what the size counts: MB, files, packages"),
    ("repeat", "int", "", "repeat number within the run, from 0"),
    ("wall_s", "float", "s", "wall time of the whole docker buildx build command"),
    ("run_s", "float", "s", "the measured RUN steps' own time, from --progress=rawjson"),
]
COLUMNS = [c[0] for c in SCHEMA]


# --- where things live -----------------------------------------------------------------------------------


def results_dir(default: Path = REFERENCE) -> Path:
    """The results folder: ``$MULTIARCH_KIT_RESULTS`` when set (the test suite uses a scratch one), else ``default``."""
    return Path(os.environ.get(ENV_RESULTS) or default)


def host_id(lab_dir: Path | None = None) -> str:
    """This machine's id: its host name and a random suffix made once and kept in the lab folder.

    Unique per machine (two VMs both called ``vm`` differ) and stable on it; ``$MULTIARCH_KIT_HOST_ID`` overrides.
    """
    if os.environ.get(ENV_HOST_ID):
        return _slug(os.environ[ENV_HOST_ID])
    path = (lab_dir or lab.LabConfig.from_env().lab_dir) / "host-id"
    try:
        known = path.read_text().strip()
        if re.fullmatch(r"[a-z0-9-]+", known):
            return known
    except OSError:
        pass
    made = f"{_slug(socket.gethostname().split('.')[0])}-{uuid.uuid4().hex[:6]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(made + "\n")
    except OSError as exc:
        raise KitError(f"cannot keep this machine's id in {path} ({exc.strerror})",
                       f"make {path.parent} writable, or set {ENV_HOST_ID}") from None
    return made


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "host"


# --- the plan ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One point of the matrix."""

    workload: str
    strategy: str
    platform: Platform
    size: int

    def as_dict(self) -> dict:
        return {"workload": self.workload, "strategy": self.strategy, "platform": str(self.platform), "size": self.size}


def default_plan(build_platform: Platform, **kw) -> Plan:
    """The short plan the notebooks run: c and go, all three strategies, linux/arm64 (or linux/amd64 on arm64)."""
    target = Platform("linux", "amd64") if build_platform.architecture == "arm64" else Platform("linux", "arm64")
    return Plan.matrix(["c", "go"], [target], build_platform, **kw)


def check_counts(repeats: int, warmup: int) -> None:
    """A plan needs at least one measured repeat; warm-up rounds may be none."""
    if repeats < 1:
        raise KitError("repeats must be at least 1", "use --repeats 5 or more for stable medians")
    if warmup < 0:
        raise KitError("warmup cannot be negative", "use --warmup 0 or more")


@dataclass
class Plan:
    """What one bench run measures."""

    cells: list[Cell]
    repeats: int = 5
    warmup: int = 1
    builder: str | None = None
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6])
    host_id: str = field(default_factory=host_id)
    nodes: dict[Platform, str] = field(default_factory=dict)  # platform -> the Docker context that builds it

    @classmethod
    def matrix(cls, workload_names: list[str], platforms: list[Platform], build_platform: Platform, *,
               sizes: dict[str, int] | None = None, strategies: list[str] | None = None, full: bool = False,
               **kw) -> Plan:
        """Every workload x strategy x platform at one size each.

        ``native`` builds for the build platform; ``emulated`` and ``cross`` for each other platform given.
        ``sizes`` sets a workload's size (default: its short default, or its full size with ``full``).
        """
        chosen = [workloads.workload(w) for w in workload_names]
        wanted = [workloads.check_strategy(s) for s in (strategies or workloads.STRATEGIES)]
        for name in sizes or {}:
            if name not in workload_names:
                raise KitError(f"--sizes names {name!r}, which is not among the workloads ({', '.join(workload_names)})",
                               "give a size only for a workload you measure")
        cells = []
        for w in chosen:
            size = w.size((sizes or {}).get(w.name, w.full_size if full else None))
            for strategy in (s for s in w.strategies if s in wanted):
                targets = [build_platform] if strategy == NATIVE else [p for p in platforms if p != build_platform]
                cells += [Cell(w.name, strategy, p, size) for p in targets]
        if not cells:
            raise KitError("the bench plan is empty",
                           "give a workload, a strategy it has and a platform other than the build platform's")
        check_counts(kw.get("repeats", 5), kw.get("warmup", 1))
        return cls(cells, **kw)

    def order(self) -> list[tuple[int, Cell]]:
        """(repeat, cell) in measuring order: round r visits every cell, starting r cells further on."""
        n = len(self.cells)
        return [(r, self.cells[(r + i) % n]) for r in range(self.repeats) for i in range(n)]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([c.as_dict() for c in self.cells], columns=["workload", "strategy", "platform", "size"])

    def save(self, folder: Path) -> Path:
        path = Path(folder) / "runs" / f"{self.run_id}.json"
        data = {"run_id": self.run_id, "host_id": self.host_id, "repeats": self.repeats, "warmup": self.warmup,
                "builder": self.builder, "nodes": {str(p): c for p, c in self.nodes.items()},
                "cells": [c.as_dict() for c in self.cells]}
        try:
            files.write_json(path, data)
        except OSError as exc:
            raise _write_error(path, exc) from None
        return path

    @classmethod
    def load(cls, path: Path) -> Plan:
        """A saved plan; a damaged plan file is a one-line KitError naming the file."""
        try:
            data = json.loads(Path(path).read_text())
            cells = [Cell(workloads.workload(c["workload"]).name, workloads.check_strategy(c["strategy"]),
                          Platform.parse(c["platform"]), int(c["size"])) for c in data["cells"]]
            nodes = {Platform.parse(p): str(c) for p, c in (data.get("nodes") or {}).items()}
            return cls(cells, int(data["repeats"]), int(data["warmup"]), data["builder"] or None, str(data["run_id"]),
                       str(data["host_id"]), nodes)
        except (OSError, ValueError, KeyError, TypeError, KitError) as exc:
            raise KitError(f"the bench plan {path} cannot be read ({type(exc).__name__}: {exc})",
                           "move it aside (the measured rows in the CSV stay), then start a new run") from None


# --- the host ----------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    if _pyplatform.system() == "Darwin":
        done = commands.run(["sysctl", "-n", "machdep.cpu.brand_string"], echo=False, check=False)
        return done.stdout.strip() or _pyplatform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _pyplatform.processor() or _pyplatform.machine()


def _host_os() -> tuple[str, str]:
    if _pyplatform.system() == "Darwin":
        return "macOS", _pyplatform.mac_ver()[0]
    try:
        info = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        return info.get("NAME", "Linux").strip('"'), info.get("VERSION_ID", "").strip('"')
    except OSError:
        return _pyplatform.system(), _pyplatform.release()


@dataclass
class Host:
    """Everything about the machine and the builder that goes on each row."""

    fingerprint: dict
    nodes: dict[Platform, str]  # platform -> builder node
    emulators: dict[Platform, str]  # platform -> native / qemu / rosetta / emulated


def describe_host(plan: Plan, status: lab.LabStatus) -> Host:
    """Fingerprint the host and work out, per platform, which node builds it and how."""
    builder = buildx.inspect(plan.builder) if plan.builder else status.builder
    host_os, host_version = _host_os()
    fingerprint = {
        "host_id": plan.host_id, "host_os": host_os, "host_os_version": host_version, "cpu_model": _cpu_model(),
        "cpus": os.cpu_count() or 0, "engine_platform": str(status.engine.platform),
        "docker_version": status.engine.server_version, "buildx_version": status.buildx_version,
        "builder": builder.name, "driver": builder.driver, "kit_version": __version__,
    }
    platforms = sorted({c.platform for c in plan.cells}, key=str)
    handlers = emulation.read_handlers(status.base.pinned, status.engine.platform,
                                       local=status.engine.shares_this_kernel) if builder.driver == "docker" else []
    nodes, emulators = {}, {}
    for p in platforms:
        if p in plan.nodes:  # a split run: this platform is built on an engine of its own
            context = plan.nodes[p]
            facts = engine.facts(context)
            on_node = emulation.read_handlers(status.base.pinned, facts.platform, context=context,
                                              local=facts.shares_this_kernel)
            nodes[p], emulators[p] = context, emulation.emulator_for(p, facts.platform, on_node)
            continue
        # buildx sends a platform to the first node that lists it (a node's own platforms come first).
        node = next((n for n in builder.nodes if p in n.platforms), builder.nodes[0] if builder.nodes else None)
        nodes[p] = node.name if node else ""
        if builder.driver == "docker":
            emulators[p] = emulation.emulator_for(p, status.engine.platform, handlers)
        else:
            native = node is not None and node.platforms and node.platforms[0].architecture == p.architecture
            emulators[p] = "native" if native else "emulated"
    return Host(fingerprint, nodes, emulators)


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Contexts:
    """What the plan's builds need besides their Dockerfile: the bases and the fetched sources."""

    status: lab.LabStatus
    build_base: buildbase.BuildBase | None
    sources: dict[str, Path]

    def for_workload(self, w: Workload) -> dict[str, str]:
        named = dict(self.status.base.build_contexts if w.base == workloads.ALPINE else
                     (self.build_base.build_contexts if self.build_base else {}))
        if w.source is not None:
            named[w.source.context] = str(self.sources[w.name])
        return named


def prepare_contexts(cells: list[Cell], status: lab.LabStatus, *, echo: bool = True) -> Contexts:
    """Make sure of every base and source the cells need (the build base is made here on first use)."""
    cfg = lab.LabConfig.from_env()
    needed = {workloads.workload(c.workload) for c in cells}
    base = None
    if any(w.base == workloads.DEBIAN for w in needed):
        base = lab.build_base(cfg, status, echo=echo)
    sources = {w.name: workloads.fetch(w.source, cfg.lab_dir, echo=echo) for w in needed if w.source}
    return Contexts(status, base, sources)


def options(cell: Cell, contexts: Contexts, builder: str | None = None, node: str | None = None) -> dict:
    """The build a measurement of ``cell`` runs: its measured stages never cached, no export; on ``node`` (a Docker
    context) when given."""
    w = workloads.workload(cell.workload)
    return {"platforms": [cell.platform], "output": "type=cacheonly", "builder": builder, "context_name": node,
            "no_cache": not w.measured_stages, "no_cache_filter": list(w.measured_stages) or None,
            "target": w.targets.get(cell.strategy), "build_contexts": contexts.for_workload(w),
            "build_args": {w.size_arg: str(cell.size)} if w.size_arg else None}


def command(cell: Cell, contexts: Contexts, builder: str | None = None, node: str | None = None) -> list[str]:
    """The command line a measurement of ``cell`` runs (less its metadata file, a fresh temporary path each time)."""
    return buildx.build_argv(workloads.workload(cell.workload).context(), **options(cell, contexts, builder, node))


def measure(cell: Cell, contexts: Contexts, builder: str | None = None, *, node: str | None = None,
            echo: bool = False) -> buildx.BuildResult:
    """One measured build of ``cell``."""
    return buildx.build(workloads.workload(cell.workload).context(), echo=echo,
                        **options(cell, contexts, builder, node))


def run(plan: Plan, folder: Path | None = None, *, progress: bool = True, done: set | None = None) -> pd.DataFrame:
    """Measure ``plan`` and append each row to ``<folder>/<host-id>.csv`` as soon as it is measured.

    ``done`` holds (repeat, Cell) pairs already measured (resume). Returns the rows this call added.
    Ctrl-C or an engine that stops keeps every row measured so far; ``resume`` completes the plan.
    """
    folder = Path(folder or results_dir())
    prepare(folder)
    plan.save(folder)
    status = lab.status()
    contexts = prepare_contexts(plan.cells, status, echo=progress)
    host = describe_host(plan, status)
    todo = [(r, c) for r, c in plan.order() if (r, c) not in (done or set())]
    path = folder / f"{plan.host_id}.csv"
    if progress:  # each cell's command, once: the measurements repeat it exactly
        for cell in plan.cells:
            print("$ " + commands.shell_line(command(cell, contexts, plan.builder, plan.nodes.get(cell.platform))),
                  flush=True)
    added = []
    warmups = [] if done else [c for _ in range(plan.warmup) for c in plan.cells]
    bar = _progress(len(todo) + len(warmups), progress)
    try:
        for cell in warmups:  # fills caches and the page cache; never recorded
            bar.set_postfix_str(f"warm-up {cell.workload} {cell.strategy} {cell.platform}")
            _measure(cell, contexts, plan, 0, len(todo))
            bar.update()
        for repeat, cell in todo:
            bar.set_postfix_str(f"{cell.workload} {cell.strategy} {cell.platform}")
            result = _measure(cell, contexts, plan, len(added), len(todo))
            w = workloads.workload(cell.workload)
            # What happened, not what was planned: an "emulated" cell that a native node built is native.
            emulator = host.emulators[cell.platform] if cell.strategy != CROSS else "native"
            strategy = cell.strategy if cell.strategy == CROSS else (NATIVE if emulator == "native" else EMULATED)
            row = {**host.fingerprint, "run_id": plan.run_id, "timestamp": _utc_now(), "workload": cell.workload,
                   "strategy": strategy, "platform": str(cell.platform), "node": host.nodes[cell.platform],
                   "emulator": emulator,
                   "size": cell.size, "size_unit": w.unit, "repeat": repeat, "wall_s": round(result.seconds, 4),
                   "run_s": round(result.run_seconds, 4)}
            append_rows(path, [row])
            added.append(row)
            bar.update()
    except KeyboardInterrupt:
        bar.close()
        raise KitError(f"interrupted after {len(added)} of {len(todo)} measurements (all saved in {path})",
                       f"run 'multiarch-kit bench --resume' to finish run {plan.run_id}") from None
    bar.close()
    return pd.DataFrame(added, columns=COLUMNS)


def _measure(cell: Cell, contexts: Contexts, plan: Plan, measured: int, planned: int) -> buildx.BuildResult:
    try:
        return measure(cell, contexts, plan.builder, node=plan.nodes.get(cell.platform))
    except CommandError as exc:
        raise _stopped(exc, measured, planned, plan) from None


def _stopped(exc: CommandError, measured: int, planned: int, plan: Plan) -> KitError:
    if not engine.answers():
        return KitError(f"the engine stopped answering after {measured} of {planned} measurements (those are saved)",
                        f"start it again, then run 'multiarch-kit bench --resume' to finish run {plan.run_id}")
    return KitError(f"a build failed after {measured} of {planned} measurements ({exc.message}); those are saved",
                    (exc.fix + "; then " if exc.fix else "") + f"run 'multiarch-kit bench --resume' to finish run {plan.run_id}")


class _Lines:
    """Progress as one line per finished build, where a bar would not redraw (logs, notebooks' stored output)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.what, self.started = total, 0, enabled, "", time.monotonic()

    def set_postfix_str(self, what: str) -> None:
        self.what, self.started = what, time.monotonic()

    def update(self) -> None:
        self.done += 1
        if self.enabled:
            print(f"bench {self.done}/{self.total}: {self.what} ({time.monotonic() - self.started:.1f} s)", flush=True)

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    import sys

    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, unit="build", desc="bench")
    return _Lines(total, enabled)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pending(folder: Path | None = None, host: str | None = None) -> tuple[Plan, set] | None:
    """The newest unfinished plan of this host and the (repeat, Cell) pairs it already has, or None."""
    folder = Path(folder or results_dir())
    host = host or host_id()
    plans = sorted((folder / "runs").glob("*.json"), reverse=True)
    rows = read_rows(folder / f"{host}.csv")
    for path in plans:
        plan = Plan.load(path)
        if plan.host_id != host:
            continue
        mine = rows[rows.run_id == plan.run_id]
        done = {(int(r.repeat), Cell(r.workload, r.strategy, Platform.parse(r.platform), int(r.size)))
                for r in mine.itertuples()}
        if len(done) < len(plan.order()):
            return plan, done
    return None


def resume(folder: Path | None = None, *, progress: bool = True) -> pd.DataFrame:
    """Finish the newest unfinished plan of this host."""
    found = pending(folder)
    if found is None:
        raise KitError("nothing to resume: every bench run of this host is complete", "start a new one with 'multiarch-kit bench'")
    plan, done = found
    return run(plan, folder, progress=progress, done=done)


# --- files --------------------------------------------------------------------------------------------------


def prepare(folder: Path) -> None:
    """Create the results folder and its schema file (``schema.json``), or say why it cannot be written."""
    schema = {"version": SCHEMA_VERSION, "file": "<host-id>.csv, one row per measurement",
              "columns": [{"name": n, "type": t, "unit": u, "description": d} for n, t, u, d in SCHEMA]}
    path = Path(folder) / "schema.json"
    try:
        if not path.exists() or json.loads(path.read_text()) != schema:
            files.write_json(path, schema)
    except (OSError, ValueError) as exc:
        raise _write_error(path, exc) from None


def _write_error(path: Path, exc: Exception) -> KitError:
    return KitError(f"cannot write {path} ({getattr(exc, 'strerror', None) or exc})",
                    f"free disk space or choose a writable folder with {ENV_RESULTS}=DIR or --results DIR; "
                    "files already there are intact")


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to a results CSV atomically: the old file stays whole until the new one replaces it."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old:
        header = old.split(b"\n", 1)[0].decode(errors="replace").strip().split(",")
        if header != COLUMNS:
            raise KitError(f"{path} has other columns than this kit writes (schema version {SCHEMA_VERSION})",
                           "move that file aside, or write to another folder with --results DIR")
        if not old.endswith(b"\n"):
            old += b"\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
    if not old:
        writer.writeheader()
    writer.writerows(rows)
    try:
        files.write_atomically(path, old + buf.getvalue().encode())
    except OSError as exc:
        unsaved = buf.getvalue()
        raise KitError(f"cannot write {path} ({exc.strerror or exc}); the previous file is intact; unsaved rows: "
                       f"{unsaved.strip()!r}", "free disk space or use --results DIR, then --resume") from None


def read_rows(path: Path) -> pd.DataFrame:
    """One host's rows (empty when the file does not exist); a damaged file is a KitError naming it."""
    if not Path(path).exists():
        return pd.DataFrame(columns=COLUMNS)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise KitError(f"{path} is not a readable results CSV ({exc})", "move that file aside") from None
    if list(df.columns) != COLUMNS:
        raise KitError(f"{path} has other columns than this kit writes (schema version {SCHEMA_VERSION})",
                       "move that file aside")
    for col, kind, _, _ in SCHEMA:
        if kind == "str":
            continue
        converted = pd.to_numeric(df[col], errors="coerce")
        if converted.isna().any():
            line = int(converted.isna().idxmax()) + 2
            raise KitError(f"{path} line {line}: {col} is not a number ({df[col].iloc[line - 2]!r})",
                           "fix or remove that line; every other row is kept")
        df[col] = converted.astype(int if kind == "int" else float)
    return df


def load_results(*folders: Path) -> pd.DataFrame:
    """Every host's rows from ``folders`` merged into one DataFrame (files that do not fit are skipped, with a note)."""
    frames = []
    for folder in folders or (results_dir(),):
        for path in sorted(Path(folder).glob("*.csv")):
            try:
                frames.append(read_rows(path))
            except KitError as exc:
                print(f"skipped {path.name}: {exc.message}")
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)


# --- statistics ----------------------------------------------------------------------------------------------

CELL = ["host_id", "workload", "strategy", "platform", "size"]


def summarize(df: pd.DataFrame, metric: str = "wall_s") -> pd.DataFrame:
    """Median, quartiles, IQR and count of ``metric`` per host and cell."""
    g = df.groupby(CELL)[metric]
    out = pd.DataFrame({"median": g.median(), "q1": g.quantile(0.25), "q3": g.quantile(0.75), "n": g.size()})
    out["iqr"] = out.q3 - out.q1
    return out.reset_index()


def bootstrap_ratio(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """median(a) / median(b) with a percentile bootstrap interval (both samples resampled)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    ra = np.median(rng.choice(a, (n_boot, len(a)), replace=True), axis=1)
    rb = np.median(rng.choice(b, (n_boot, len(b)), replace=True), axis=1)
    ratios = ra / rb
    tail = (1 - level) / 2 * 100
    return float(np.median(a) / np.median(b)), float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


def hosts(df: pd.DataFrame) -> pd.DataFrame:
    """One row per host in the results: OS, CPU, engine, Docker version, rows and runs measured."""
    return (df.groupby("host_id")
            # (not engine=: agg() takes that name for its own computing engine)
            .agg(host_os=("host_os", "first"), cpu=("cpu_model", "first"), cpus=("cpus", "first"),
                 engine_platform=("engine_platform", "first"), docker=("docker_version", "first"),
                 rows=("wall_s", "size"),
                 runs=("run_id", "nunique"))
            .reset_index())


def at_largest_size(df: pd.DataFrame) -> pd.DataFrame:
    """The rows at the largest size each host measured of each workload (where fixed costs weigh least)."""
    return df[df["size"] == df.groupby(["host_id", "workload"])["size"].transform("max")]


def bootstrap_paired(ratios: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """The median of per-round ratios with a percentile bootstrap interval (the rounds resampled)."""
    ratios = np.asarray(ratios, float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ratios, (n_boot, len(ratios)), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.median(ratios)), float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


def _paired(h: pd.DataFrame, ref: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Per-round ratios when both cells were measured in the same interleaved rounds (same run, same repeats)."""
    keys = ["run_id", "repeat"]
    if h.duplicated(keys).any() or ref.duplicated(keys).any():
        return None
    joined = h.merge(ref, on=keys, suffixes=("", "_native"))
    if len(joined) != len(h) or len(joined) != len(ref) or len(joined) < 3:
        return None
    return (joined[metric] / joined[f"{metric}_native"]).to_numpy()


def slowdown(df: pd.DataFrame, metric: str = "wall_s", n_boot: int = 2000) -> pd.DataFrame:
    """Per host, workload, size, platform and strategy: time over the native build's, with a 95 % CI.

    The reference is the ``native`` strategy of the same host, workload and size (the build platform's own).
    When both were measured in the same interleaved rounds, the ratio is taken round by round and the median of
    those ratios is bootstrapped (``pairing`` = "by round"): drift of the machine over the run, which hits both
    alike within a round, cancels. Otherwise the medians of the two samples are compared ("unpaired").
    """
    rows = []
    for (host, workload, size), g in df.groupby(["host_id", "workload", "size"]):
        native = g[g.strategy == NATIVE]
        if not len(native):
            continue
        reference = native.platform.iloc[0]
        for (platform, strat), h in g.groupby(["platform", "strategy"]):
            paired = _paired(h, native, metric)
            if paired is not None:
                ratio, lo, hi = bootstrap_paired(paired, n_boot)
            else:
                ratio, lo, hi = bootstrap_ratio(h[metric].to_numpy(), native[metric].to_numpy(), n_boot)
            rows.append({"host_id": host, "workload": workload, "size": size, "platform": platform, "strategy": strat,
                         "reference": reference, "slowdown": ratio, "ci_low": lo, "ci_high": hi, "n": len(h),
                         "n_native": len(native), "pairing": "by round" if paired is not None else "unpaired"})
    return pd.DataFrame(rows, columns=["host_id", "workload", "size", "platform", "strategy", "reference", "slowdown",
                                       "ci_low", "ci_high", "n", "n_native", "pairing"])


def fit_lines(df: pd.DataFrame, workload: str = "cpu", metric: str = "wall_s") -> pd.DataFrame:
    """Per host, platform and strategy: ``time = overhead + cost_per_unit * size`` by least squares.

    ``slope_ratio`` divides each cost per unit by the native one: the emulation slowdown of the work itself,
    with the fixed costs (starting the build, loading contexts) taken out.
    """
    rows = []
    for (host, platform, strat), g in df[df.workload == workload].groupby(["host_id", "platform", "strategy"]):
        if g["size"].nunique() < 2:
            continue
        slope, intercept = np.polyfit(g["size"].astype(float), g[metric].astype(float), 1)
        pred = intercept + slope * g["size"]
        ss_res = float(((g[metric] - pred) ** 2).sum())
        ss_tot = float(((g[metric] - g[metric].mean()) ** 2).sum())
        rows.append({"host_id": host, "platform": platform, "strategy": strat, "overhead_s": intercept,
                     "s_per_unit": slope, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0})
    out = pd.DataFrame(rows, columns=["host_id", "platform", "strategy", "overhead_s", "s_per_unit", "r2"])
    native = out[out.strategy == NATIVE].set_index("host_id").s_per_unit
    out["slope_ratio"] = [r.s_per_unit / native.get(r.host_id, np.nan) if r.host_id in native.index else np.nan
                          for r in out.itertuples()]
    return out


def answer(df: pd.DataFrame, metric: str = "wall_s") -> list[str]:
    """The question answered in one sentence per host, workload and target platform, with the numbers."""
    slow = slowdown(df, metric)
    sentences = []
    for (host, workload, size, platform), g in slow.groupby(["host_id", "workload", "size", "platform"], sort=True):
        if platform == g.reference.iloc[0]:
            continue
        w = workloads.workload(workload)
        what = f"the {workload} build ({size} {w.unit})" if w.size_arg else f"the {workload} build"
        parts = []
        for strat in (EMULATED, CROSS):
            r = g[g.strategy == strat]
            if len(r):
                r = r.iloc[0]
                verb = "under emulation" if strat == EMULATED else "cross-compiled"
                parts.append(f"{verb} {r.slowdown:.2f}x native (95 % CI {r.ci_low:.2f} to {r.ci_high:.2f}, n = {r.n}"
                             + (", paired by round)" if r.pairing == "by round" else ")"))
        if parts:
            sentences.append(f"On {host}, {what} for {platform} takes " + "; ".join(parts) +
                             f" ({metric}, native = {g.reference.iloc[0]}, n = {g.n_native.iloc[0]}).")
    return sentences


def hosts_note(df: pd.DataFrame) -> str:
    """One plain sentence on which hosts the results come from (and that one host is not a comparison)."""
    found = hosts(df)
    if found.empty:
        return "No host has results yet: run notebook 05, or `multiarch-kit bench`."
    described = "; ".join(f"{r.host_id} ({r.host_os}, {r.cpu}, {r.cpus} CPUs, engine {r.engine_platform}, "
                          f"{r.rows} rows)"
                          for r in found.itertuples())
    if len(found) == 1:
        return (f"Only one host has results: {described}. There is nothing to compare it with yet; the tables "
                "below are that host's alone.")
    return f"{len(found)} hosts have results: {described}."
