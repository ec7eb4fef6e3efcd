"""Experiments: how much slower is an emulated build, and does the cross strategy avoid it?

A *plan* is a matrix of cells (workload x platform x size) run ``repeats`` times after ``warmup`` runs.
Every measurement is one ``docker buildx build --no-cache --output type=cacheonly`` (the build itself,
no export), timed as wall time and as the RUN steps' own time from ``--progress=rawjson``. Repeats are
interleaved (each round visits every cell, in a rotated order) so drift on the machine hits every cell
alike.

Each measurement becomes one tidy row, with the host's fingerprint, appended at once to
``results/<host-id>.csv`` by writing a new file and renaming it over the old one: a killed run leaves
the previous file intact, nothing is ever overwritten, and ``resume`` finishes an interrupted plan.
``load_results`` merges every host's file; ``summarize``, ``slowdown`` and ``fit_lines`` do the
statistics (median and IQR, bootstrap confidence intervals, fixed overhead + cost per MB).

Workloads: ``article`` (the article's Dockerfile), ``cpu`` (compress and hash MB megabytes in the
target platform's RUN step) and ``cross`` (the same work in a ``FROM --platform=$BUILDPLATFORM`` stage,
copied into the target image).
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
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, buildx, commands, emulation, engine, lab
from .errors import CommandError, KitError
from .platforms import Platform

ENV_RESULTS = "MULTIARCH_KIT_RESULTS"
ENV_HOST_ID = "MULTIARCH_KIT_HOST_ID"
SCHEMA_VERSION = 1
# name, type, unit, meaning: the columns of every results/<host-id>.csv, in order.
SCHEMA = [
    ("run_id", "str", "", "one bench run (a plan)"),
    ("timestamp", "str", "ISO 8601 UTC", "when the measurement finished"),
    ("host_id", "str", "", "the machine, as in the file name"),
    ("host_os", "str", "", "the host's operating system (Linux distribution or macOS)"),
    ("host_os_version", "str", "", "its version"),
    ("cpu_model", "str", "", "the host CPU"),
    ("engine_platform", "str", "", "the Docker engine's platform (linux/arm64 on an M2 with Docker Desktop)"),
    ("docker_version", "str", "", "Docker engine version"),
    ("buildx_version", "str", "", "buildx version"),
    ("builder", "str", "", "buildx builder name"),
    ("driver", "str", "", "its driver (docker, docker-container, remote...)"),
    ("node", "str", "", "the builder node that built this platform"),
    ("kit_version", "str", "", "multiarch-kit version"),
    ("workload", "str", "", "article, cpu or cross"),
    ("strategy", "str", "", "native, emulated or cross"),
    ("platform", "str", "", "target platform"),
    ("emulator", "str", "", "how the node runs the target: native, qemu, rosetta, emulated"),
    ("size_mb", "int", "MB", "workload size (0 for the article's Dockerfile)"),
    ("repeat", "int", "", "repeat number within the run, from 0"),
    ("wall_s", "float", "s", "wall time of the whole docker buildx build command"),
    ("run_s", "float", "s", "the RUN steps' own time, from --progress=rawjson"),
]
COLUMNS = [c[0] for c in SCHEMA]
WORKLOADS = ("article", "cpu", "cross")


# --- where things live -----------------------------------------------------------------------------------


def results_dir(default: str | Path = "results") -> Path:
    """The results folder: ``$MULTIARCH_KIT_RESULTS`` when set (the test suite uses a scratch one), else ``default``."""
    return Path(os.environ.get(ENV_RESULTS) or default)


def workload_context(workload: str) -> Path:
    """The build context of a workload."""
    if workload == "article":
        here = Path(__file__).resolve().parents[1] / "notebooks" / "article"
        if not (here / "Dockerfile").exists():
            raise KitError("the article's Dockerfile is not next to the package", "run from a clone of multiarch-kit")
        return here
    if workload not in WORKLOADS:
        raise KitError(f"unknown workload {workload!r}", f"choose from {', '.join(WORKLOADS)}")
    return Path(str(files("multiarch_kit") / "workloads" / workload))


def host_id() -> str:
    """A stable name for this machine's results file (``$MULTIARCH_KIT_HOST_ID`` overrides)."""
    if os.environ.get(ENV_HOST_ID):
        return _slug(os.environ[ENV_HOST_ID])
    return _slug(f"{socket.gethostname().split('.')[0]}-{_pyplatform.system()}-{_pyplatform.machine()}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "host"


# --- the plan ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One point of the matrix."""

    workload: str
    platform: Platform
    size_mb: int


@dataclass
class Plan:
    """What one bench run measures."""

    cells: list[Cell]
    repeats: int = 5
    warmup: int = 1
    builder: str | None = None
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6])
    host_id: str = field(default_factory=host_id)

    @classmethod
    def matrix(cls, workloads: list[str], platforms: list[str], sizes: list[int], **kw) -> Plan:
        """Every workload x platform x size (the article's Dockerfile has one size, 0)."""
        cells = []
        for w in workloads:
            workload_context(w)  # unknown workloads fail before anything runs
            for p in platforms:
                for s in ([0] if w == "article" else sizes):
                    cells.append(Cell(w, p, int(s)))
        if not cells:
            raise KitError("the bench plan is empty", "give at least one workload, platform and size")
        if kw.get("repeats", 5) < 1:
            raise KitError("repeats must be at least 1", "use --repeats 5 or more for stable medians")
        return cls(cells, **kw)

    def order(self) -> list[tuple[int, Cell]]:
        """(repeat, cell) in measuring order: round r visits every cell, starting r cells further on."""
        n = len(self.cells)
        return [(r, self.cells[(r + i) % n]) for r in range(self.repeats) for i in range(n)]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{**asdict(c), "platform": str(c.platform)} for c in self.cells])

    def save(self, folder: Path) -> Path:
        path = Path(folder) / "runs" / f"{self.run_id}.json"
        data = {"run_id": self.run_id, "host_id": self.host_id, "repeats": self.repeats, "warmup": self.warmup,
                "builder": self.builder, "cells": [{**asdict(c), "platform": str(c.platform)} for c in self.cells]}
        try:
            _write_atomically(path, json.dumps(data, indent=2).encode())
        except OSError as exc:
            raise _write_error(path, exc) from None
        return path

    @classmethod
    def load(cls, path: Path) -> Plan:
        """A saved plan; a damaged plan file is a one-line KitError naming the file."""
        try:
            data = json.loads(Path(path).read_text())
            cells = [Cell(str(c["workload"]), Platform.parse(c["platform"]), int(c["size_mb"])) for c in data["cells"]]
            return cls(cells, int(data["repeats"]), int(data["warmup"]), data["builder"] or None, str(data["run_id"]),
                       str(data["host_id"]))
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
        "engine_platform": str(status.engine.platform), "docker_version": status.engine.server_version,
        "buildx_version": status.buildx_version, "builder": builder.name, "driver": builder.driver,
        "kit_version": __version__,
    }
    platforms = sorted({c.platform for c in plan.cells}, key=str)
    handlers = emulation.read_handlers(status.base.pinned, status.engine.platform,
                                       local=status.engine.shares_this_kernel) if builder.driver == "docker" else []
    nodes, emulators = {}, {}
    for p in platforms:
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


def _options(cell: Cell, builder: str | None) -> dict:
    """The build a measurement runs: no cache, no export (the build's own cost)."""
    return {"platforms": [cell.platform], "output": "type=cacheonly", "no_cache": True, "builder": builder,
            "build_args": {"MB": str(cell.size_mb)} if cell.workload != "article" else None}


def command(cell: Cell, status: lab.LabStatus, builder: str | None = None) -> list[str]:
    """The command line a measurement of ``cell`` runs (less its metadata file, a fresh temporary path each time)."""
    return buildx.build_argv(workload_context(cell.workload), build_contexts=status.base.build_contexts,
                             **_options(cell, builder))


def measure(cell: Cell, status: lab.LabStatus, builder: str | None = None, *, echo: bool = False) -> buildx.BuildResult:
    """One measured build of ``cell``."""
    return buildx.build(workload_context(cell.workload), base=status.base, echo=echo, **_options(cell, builder))


def strategy(cell: Cell, emulator: str) -> str:
    if cell.workload == "cross":
        return "cross"
    return "native" if emulator == "native" else "emulated"


def run(plan: Plan, folder: Path | None = None, *, progress: bool = True, done: set | None = None) -> pd.DataFrame:
    """Measure ``plan`` and append each row to ``<folder>/<host-id>.csv`` as soon as it is measured.

    ``done`` holds (repeat, Cell) pairs already measured (resume). Returns the rows this call added.
    Ctrl-C or an engine that stops keeps every row measured so far; ``resume`` completes the plan.
    """
    folder = Path(folder or results_dir())
    prepare(folder)
    plan.save(folder)
    status = lab.status()
    host = describe_host(plan, status)
    todo = [(r, c) for r, c in plan.order() if (r, c) not in (done or set())]
    path = folder / f"{plan.host_id}.csv"
    if progress:  # each cell's command, once: the measurements repeat it exactly
        for cell in plan.cells:
            print("$ " + commands.shell_line(command(cell, status, plan.builder)), flush=True)
    added = []
    bar = _progress(len(todo) + plan.warmup * len(plan.cells), progress)
    try:
        if not done:
            for _ in range(plan.warmup):  # fills caches and page cache; never recorded
                for cell in plan.cells:
                    measure(cell, status, plan.builder)
                    bar.update()
        for repeat, cell in todo:
            try:
                result = measure(cell, status, plan.builder)
            except CommandError as exc:
                raise _stopped(exc, len(added), len(todo), plan) from None
            row = {**host.fingerprint, "run_id": plan.run_id, "timestamp": _utc_now(), "workload": cell.workload,
                   "strategy": strategy(cell, host.emulators[cell.platform]), "platform": str(cell.platform),
                   "node": host.nodes[cell.platform], "emulator": host.emulators[cell.platform],
                   "size_mb": cell.size_mb, "repeat": repeat, "wall_s": round(result.seconds, 4),
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


def _stopped(exc: CommandError, measured: int, planned: int, plan: Plan) -> KitError:
    if not engine.answers():
        return KitError(f"the engine stopped answering after {measured} of {planned} measurements (those are saved)",
                        f"start it again, then run 'multiarch-kit bench --resume' to finish run {plan.run_id}")
    return KitError(f"a build failed after {measured} of {planned} measurements ({exc.message}); those are saved",
                    (exc.fix + "; then " if exc.fix else "") + f"run 'multiarch-kit bench --resume' to finish run {plan.run_id}")


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="build", desc="bench")


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
        mine = rows[rows.run_id == plan.run_id] if len(rows) else rows
        done = {(int(r.repeat), Cell(r.workload, Platform.parse(r.platform), int(r.size_mb))) for r in mine.itertuples()}
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
            _write_atomically(path, (json.dumps(schema, indent=2) + "\n").encode())
    except OSError as exc:
        raise _write_error(path, exc) from None


def _write_error(path: Path, exc: OSError) -> KitError:
    return KitError(f"cannot write {path} ({exc.strerror or exc})",
                    f"free disk space or choose a writable folder with {ENV_RESULTS}=DIR or --results DIR; "
                    "files already there are intact")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to a results CSV atomically: the old file stays whole until the new one replaces it."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old:
        header = old.split(b"\n", 1)[0].decode().strip().split(",")
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
        _write_atomically(path, old + buf.getvalue().encode())
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
        raise KitError(f"{path} has other columns than this kit writes", "move that file aside")
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


def load_results(folder: Path | None = None) -> pd.DataFrame:
    """Every host's rows from ``folder`` merged into one DataFrame (files that do not fit are skipped, with a note)."""
    folder = Path(folder or results_dir())
    frames = []
    for path in sorted(folder.glob("*.csv")):
        try:
            frames.append(read_rows(path))
        except (KitError, ValueError, pd.errors.ParserError) as exc:
            print(f"skipped {path.name}: {getattr(exc, 'message', exc)}")
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    for col in ("size_mb", "repeat"):
        df[col] = df[col].astype(int)
    for col in ("wall_s", "run_s"):
        df[col] = df[col].astype(float)
    return df


# --- statistics ----------------------------------------------------------------------------------------------

CELL = ["host_id", "workload", "strategy", "platform", "size_mb"]


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
            .agg(host_os=("host_os", "first"), cpu=("cpu_model", "first"), engine=("engine_platform", "first"),
                 docker=("docker_version", "first"), rows=("wall_s", "size"), runs=("run_id", "nunique"))
            .reset_index())


def at_largest_size(df: pd.DataFrame) -> pd.DataFrame:
    """The rows at the largest size each host measured (where fixed costs weigh least)."""
    return df[df.size_mb == df.groupby("host_id").size_mb.transform("max")]


def slowdown(df: pd.DataFrame, workload: str = "cpu", metric: str = "wall_s", n_boot: int = 2000) -> pd.DataFrame:
    """Per host and size: each platform's median time over the native platform's, with a 95 % bootstrap CI.

    The native reference is the ``native`` strategy of the same workload, size and host. ``cross`` rows
    are compared against it too (for ``workload="cross"``, native means the engine platform's cross build).
    """
    rows = []
    for (host, size), g in df[df.workload == workload].groupby(["host_id", "size_mb"]):
        native_platforms = df[(df.host_id == host) & (df.strategy == "native")].platform.unique()
        if not len(native_platforms):
            continue
        ref = g[g.platform == native_platforms[0]][metric].to_numpy()
        if not len(ref):
            continue
        for (platform, strat), h in g.groupby(["platform", "strategy"]):
            ratio, lo, hi = bootstrap_ratio(h[metric].to_numpy(), ref, n_boot)
            rows.append({"host_id": host, "size_mb": size, "platform": platform, "strategy": strat,
                         "reference": native_platforms[0], "slowdown": ratio, "ci_low": lo, "ci_high": hi, "n": len(h)})
    return pd.DataFrame(rows, columns=["host_id", "size_mb", "platform", "strategy", "reference", "slowdown",
                                       "ci_low", "ci_high", "n"])


def fit_lines(df: pd.DataFrame, workload: str = "cpu", metric: str = "wall_s") -> pd.DataFrame:
    """Per host, platform and strategy: ``time = overhead + cost_per_mb * size`` by least squares.

    ``slope_ratio`` divides each cost per MB by the native platform's: the emulation slowdown of the work
    itself, with the fixed costs (starting the build, loading contexts) taken out.
    """
    rows = []
    for (host, platform, strat), g in df[df.workload == workload].groupby(["host_id", "platform", "strategy"]):
        if g.size_mb.nunique() < 2:
            continue
        slope, intercept = np.polyfit(g.size_mb.astype(float), g[metric].astype(float), 1)
        pred = intercept + slope * g.size_mb
        ss_res = float(((g[metric] - pred) ** 2).sum())
        ss_tot = float(((g[metric] - g[metric].mean()) ** 2).sum())
        rows.append({"host_id": host, "platform": platform, "strategy": strat, "overhead_s": intercept,
                     "s_per_mb": slope, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0})
    out = pd.DataFrame(rows, columns=["host_id", "platform", "strategy", "overhead_s", "s_per_mb", "r2"])
    native = out[out.strategy == "native"].set_index("host_id").s_per_mb
    out["slope_ratio"] = [r.s_per_mb / native.get(r.host_id, np.nan) if r.host_id in native.index else np.nan
                          for r in out.itertuples()]
    return out
