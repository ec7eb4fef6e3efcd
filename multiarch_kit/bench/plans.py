"""What a bench run measures: a *plan*, a matrix of cells (workload x strategy x platform x size) run
``repeats`` times after ``warmup`` runs, and its record in the results folder.

Repeats are interleaved (each round visits every cell, in a rotated order) so drift on the machine hits every
cell alike. A plan is saved as ``<results>/runs/<run-id>.json`` when its run starts, so ``pending`` can tell
which cells of an interrupted run are still to measure. Making a plan touches no file: the machine it runs
on is named by the runner when the run starts.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core import files
from ..core.errors import KitError
from ..lab import workloads
from ..lab.workloads import NATIVE
from ..oci.platforms import AMD64, ARM64, ARMV7, Platform
from . import store


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


# The platforms a reference run compares (one of them is the machine's own): amd64 and arm64, the two a Mac can be,
# and arm/v7, which no Mac runs natively.
REFERENCE_PLATFORMS = [AMD64, ARM64, ARMV7]


def reference_plan(build_platform: Platform, *, host_id: str = "") -> Plan:
    """The plan of a committed reference run: c and go at full size, the three strategies, for every reference
    platform but the build platform's own, 5 repeats after 1 warm-up.

    So every machine measures the same builds against the others: an amd64 machine (the VM, an Intel Mac)
    emulates arm64 and arm/v7, an arm64 one (an M2 Mac) amd64 (under Rosetta where Docker Desktop uses it) and
    arm/v7.
    """
    return Plan.matrix(["c", "go"], REFERENCE_PLATFORMS, build_platform, full=True, repeats=5, warmup=1,
                       host_id=host_id)


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
    # The machine that measures it: empty until the runner names this machine, when the run starts.
    host_id: str = ""
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
        """One row per cell: what the plan measures, as a reader sees it."""
        return pd.DataFrame([c.as_dict() for c in self.cells], columns=["workload", "strategy", "platform", "size"])

    def save(self, folder: Path) -> Path:
        """Write the plan to ``<folder>/runs/<run-id>.json`` (whole or not at all) and return that path."""
        path = Path(folder) / "runs" / f"{self.run_id}.json"
        data = {"run_id": self.run_id, "host_id": self.host_id, "repeats": self.repeats, "warmup": self.warmup,
                "builder": self.builder, "nodes": {str(p): c for p, c in self.nodes.items()},
                "cells": [c.as_dict() for c in self.cells]}
        try:
            files.write_json(path, data)
        except OSError as exc:
            raise store.write_error(path, exc) from None
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


def pending(folder: Path, host: str) -> tuple[Plan, set] | None:
    """The newest unfinished plan of ``host`` in ``folder`` and the (repeat, Cell) pairs it already has, or None."""
    folder = Path(folder)
    plans = sorted((folder / "runs").glob("*.json"), reverse=True)
    rows = store.read_rows(folder / f"{host}.csv")
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
