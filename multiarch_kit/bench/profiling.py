"""``multiarch-kit profile``: where does an emulated build spend its time, step by step, and what to move.

The Dockerfile is built without cache (nothing exported) once for the build platform and once per other
platform; every step's time is read from ``--progress=rawjson``. Steps are matched across the builds by
stage and position, so the table says, per Dockerfile step, how long it took natively and emulated, the
slowdown, and its share of the emulated build. The RUN steps that cost most under emulation are named with
the change that would run them natively: a ``FROM --platform=$BUILDPLATFORM`` stage that cross-compiles.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import buildx, lab
from ..buildx import dockerfile
from ..core.errors import KitError
from ..engine import emulation
from ..lab import workloads
from ..oci.platforms import Platform

MIN_SHARE = 0.05  # steps under 5 % of the emulated build, or under a second, are not worth moving
MIN_SECONDS = 1.0

_ADVICE = [
    (r"\bgo (build|install)\b", "cross-compile with Go: run it in a `FROM --platform=$BUILDPLATFORM` stage with "
     "`ARG TARGETARCH TARGETVARIANT` and `GOARCH=$TARGETARCH GOARM=${TARGETVARIANT#v}`, then `COPY --from=` the binary"),
    (r"\bcargo (build|install)\b", "cross-compile with Rust: in a `FROM --platform=$BUILDPLATFORM` stage, "
     "`cargo build --target <the target's triple>` with its linker, then copy the binary"),
    (r"(\bgcc\b|\bg\+\+|\bclang\b|\bcc\b|\bmake\b|\bcmake\b|\bninja\b|\./configure\b)",
     "cross-compile C/C++: in a `FROM --platform=$BUILDPLATFORM` stage, install the target's cross compiler "
     "(e.g. gcc-aarch64-linux-gnu) and build with CC=<triplet>-gcc, then copy the results"),
    (r"\b(npm|yarn|pnpm)\b", "if no package has a native addon, install in a `FROM --platform=$BUILDPLATFORM` "
     "stage and copy node_modules; addons must be built for the target"),
    (r"\bpip3? install\b", "pure-Python packages can be installed in a `FROM --platform=$BUILDPLATFORM` stage "
     "(`pip install --target`) and copied; wheels with C code must match the target"),
    (r"\b(apt-get|apt|apk|dnf|yum|microdnf)\b", "installs the target's own packages, so it must run for the "
     "target: keep it early and rarely changed so the cache serves it, or start FROM an image that has them"),
]
_DEFAULT_ADVICE = ("runs a program for the target: if its output does not depend on the platform, run it in a "
                   "`FROM --platform=$BUILDPLATFORM` stage and COPY the result into the target's stage")


def advice(instruction: str) -> str:
    """What to do about one costly emulated RUN step, from what it runs."""
    for pattern, text in _ADVICE:
        if re.search(pattern, instruction):
            return text
    return _DEFAULT_ADVICE


@dataclass
class Profile:
    """Per-step times of one Dockerfile, natively and emulated per platform."""

    context: Path
    native: Platform
    platforms: list[Platform]
    steps: pd.DataFrame  # one row per step and platform
    totals: dict[Platform, float]  # wall seconds of each build
    commands: list[str]
    hints: list[dict] = field(default_factory=list)
    # Per platform, the last line its longest RUN step printed: the build's own word on what ran where (the
    # kit's workloads end with e.g. "compiled 8 files with gcc on aarch64").
    said: dict[Platform, str] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per step and emulated platform: native s, emulated s, slowdown, share of the emulated build."""
        return self.steps[self.steps.platform != str(self.native)].reset_index(drop=True)

    def as_json(self) -> dict:
        def clean(v):
            return None if isinstance(v, float) and math.isnan(v) else v

        rows = [{k: clean(v) for k, v in r.items()} for r in self.table().to_dict(orient="records")]
        return {"context": str(self.context), "native": str(self.native), "platforms": [str(p) for p in self.platforms],
                "totals": {str(p): s for p, s in self.totals.items()}, "steps": rows, "advice": self.hints,
                "said": {str(p): s for p, s in self.said.items()}, "commands": self.commands}


def _tidy(steps: pd.DataFrame, stages: list[dockerfile.Stage], totals: dict[Platform, float]) -> pd.DataFrame:
    """Dockerfile steps in Dockerfile order, platform by platform (``totals``' order); BuildKit's own work
    (loading contexts, metadata) as one row per platform."""
    order = {s.name: s.index for s in stages}
    names = [str(p) for p in totals]  # the table's platform column holds the platforms as they print
    own = steps[steps.stage != ""].copy()
    own["_order"] = [(names.index(p), order.get(st, 99), int(pos.split("/")[0]) if pos else 0)
                     for p, st, pos in zip(own.platform, own.stage, own.step)]
    own = own.sort_values("_order", kind="stable").drop(columns="_order")
    rest = []
    for platform, total in totals.items():
        g = steps[(steps.stage == "") & (steps.platform == str(platform))]
        if g.empty:
            continue
        native, emulated = g.native_s.sum(), g.emulated_s.sum(min_count=1)
        rest.append({"platform": str(platform), "stage": "", "step": "", "instruction": "(BuildKit: load "
                     "definition, contexts, metadata)", "native_s": round(native, 3), "emulated_s": emulated,
                     "slowdown": round(emulated / native, 2) if native and emulated == emulated else float("nan"),
                     "share": round(emulated / total, 3) if emulated == emulated else float("nan"),
                     "runs_emulated": False})
    return pd.concat([own, pd.DataFrame(rest, columns=steps.columns)], ignore_index=True)


def _key(step: buildx.Step, single_stage: str) -> tuple[str, str]:
    return (step.stage or single_stage, step.position or step.instruction)


@dataclass(frozen=True)
class Subject:
    """What to profile: a Dockerfile's folder and how to build it (a workload's size, target and stages)."""

    folder: Path
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    measured: list[str] | None = None  # the stages built afresh; None: every stage
    source: workloads.Source | None = None  # a workload's sources, fetched in the lab


def subject(what: str | Path, *, target: str | None = None, build_args: dict[str, str] | None = None) -> Subject:
    """A folder with a Dockerfile, or one of the kit's workloads by name (with its default size, its emulated
    target and its sources), checked without asking any engine: a one-line error for anything else."""
    build_args = dict(build_args or {})
    folder = Path(what)
    if folder.exists():
        stages = dockerfile.read(folder)
        if target is not None and target not in {s.name for s in stages}:
            raise KitError(f"the Dockerfile has no stage named {target!r}",
                           f"stages: {', '.join(s.name for s in stages)}")
        return Subject(folder, build_args, target)
    if str(what) not in workloads.WORKLOADS:
        raise KitError(f"{what} is neither a folder nor a workload",
                       "give a folder with a Dockerfile, or one of: " + ", ".join(workloads.WORKLOADS))
    w = workloads.workload(str(what))
    if w.size_arg:
        build_args.setdefault(w.size_arg, str(w.default_size))
    return Subject(w.context(), build_args, target or w.targets.get(workloads.EMULATED),
                   list(w.measured_stages) or None, w.source)


def profile(what: Subject, platforms: list[Platform], native: Platform, *,
            build_contexts: dict[str, buildx.NamedContext] | None = None,
            emulators: dict[Platform, str] | None = None, echo: bool = True) -> Profile:
    """Build ``what`` without cache for ``native`` and each of ``platforms`` and compare the steps.

    ``what.measured`` names the stages to build afresh (``--no-cache-filter``); the others come from the cache when
    built before. The kit's workloads name the stages the bench measures, so installing a compiler (apt under
    emulation on Docker Hub's debian, a long step) is not mistaken for the work; a reader's Dockerfile is
    built afresh whole.

    ``emulators`` (platform -> native/qemu/rosetta/none, see :mod:`multiarch_kit.engine.emulation`) lets a
    platform the engine cannot run fail before anything is built.
    """
    stages = dockerfile.read(what.folder)
    others = [p for p in platforms if p != native]
    if not others:
        raise KitError(f"nothing to compare: the only platform given is the build platform {native}",
                       "add --platform with another platform, e.g. --platform linux/arm64")
    for p in others:
        if emulators is not None and emulators.get(p) == "none":
            raise emulation.missing_emulator_error(p)
    single = stages[0].name if len(stages) == 1 else (stages[-1].name if what.target is None else what.target)
    builds = {p: buildx.build(what.folder, platforms=[p], output="type=cacheonly", no_cache=not what.measured,
                              no_cache_filter=what.measured, target=what.target, build_args=what.build_args,
                              build_contexts=build_contexts, echo=echo)
              for p in [native, *others]}
    totals = {p: round(b.seconds, 3) for p, b in builds.items()}
    steps = _tidy(_rows(builds, native, others, stages, single, totals), stages, totals)
    return Profile(what.folder, native, others, steps, totals, [b.command for b in builds.values()],
                   _hints(steps, native), {p: last_words(b.progress) for p, b in builds.items()})


_COLUMNS = ["platform", "stage", "step", "instruction", "native_s", "emulated_s", "slowdown", "share",
            "runs_emulated"]


def _rows(builds: dict[Platform, buildx.BuildResult], native: Platform, others: list[Platform],
          stages: list[dockerfile.Stage], single: str, totals: dict[Platform, float]) -> pd.DataFrame:
    """One row per step that ran, per platform, matched with the native build's same step."""
    native_steps = {_key(s, single): s for s in builds[native].progress.steps if s.instruction and s.started}
    by_stage = {s.name: s for s in stages}
    rows = []
    for p in others:
        for s in builds[p].progress.steps:
            if not s.started or s.cached:
                continue
            key = _key(s, single)
            n = native_steps.get(key)
            stage = by_stage.get(key[0])
            emulated = stage is not None and not stage.on_build_platform and s.is_run
            rows.append({"platform": str(p), "stage": key[0] if stage else "", "step": s.position,
                         "instruction": s.instruction, "native_s": round(n.seconds, 3) if n else float("nan"),
                         "emulated_s": round(s.seconds, 3),
                         "slowdown": round(s.seconds / n.seconds, 2) if n and n.seconds > 0 else float("nan"),
                         "share": round(s.seconds / totals[p], 3) if totals[p] else float("nan"),
                         "runs_emulated": emulated})
    for key, s in native_steps.items():
        rows.append({"platform": str(native), "stage": key[0], "step": s.position, "instruction": s.instruction,
                     "native_s": round(s.seconds, 3), "emulated_s": float("nan"), "slowdown": float("nan"),
                     "share": float("nan"), "runs_emulated": False})
    return pd.DataFrame(rows, columns=_COLUMNS)


def _hints(steps: pd.DataFrame, native: Platform) -> list[dict]:
    """The emulated RUN steps worth moving (a large share of their build, and long), costliest first."""
    emulated = steps[(steps.platform != str(native)) & steps.runs_emulated & (steps.share >= MIN_SHARE)
                     & (steps.emulated_s >= MIN_SECONDS)]
    return [{"platform": r.platform, "stage": r.stage, "step": r.step, "instruction": r.instruction,
             "emulated_s": r.emulated_s, "share": r.share, "advice": advice(r.instruction)}
            for r in emulated.sort_values("emulated_s", ascending=False).itertuples()]


def last_words(progress: buildx.Progress) -> str:
    """The last line the longest RUN step of a build printed ("" when no RUN step printed anything)."""
    runs = [s for s in progress.steps if s.is_run and not s.cached and s.log.strip()]
    if not runs:
        return ""
    return max(runs, key=lambda s: s.seconds if s.seconds == s.seconds else 0).log.strip().splitlines()[-1]


def profile_in_lab(here: lab.Lab, what: str | Path | Subject, platforms: list[Platform] | None = None, *,
                   target: str | None = None, build_args: dict[str, str] | None = None,
                   build_contexts: dict[str, buildx.NamedContext] | None = None, echo: bool = True) -> Profile:
    """Profile a folder with a Dockerfile, or one of the kit's workloads by name (see :func:`subject`), in the lab.

    The lab's stand-ins answer to the names they stand for (``alpine:3.18``, ``debian:bookworm``,
    ``golang:1.19-bookworm``: :meth:`~multiarch_kit.lab.Lab.contexts_for`) unless the reader maps a name with
    ``build_contexts``. ``platforms`` defaults to the lab's platforms other than the build platform. ``here`` is
    the lab as the caller read it (``lab.status()``): its bases, its engine and its emulators.
    """
    chosen = what if isinstance(what, Subject) else subject(what, target=target, build_args=build_args)
    contexts = {**here.contexts_for(chosen.folder, echo=echo), **(build_contexts or {})}
    if chosen.source:
        contexts.setdefault(chosen.source.context, workloads.fetch(chosen.source, here.config.lab_dir, echo=echo))
    wanted = platforms or [p for p in here.config.platforms if p != here.engine.platform]
    emulators = {p: here.emulator_for(p) for p in wanted}
    return profile(chosen, wanted, here.engine.platform, build_contexts=contexts, emulators=emulators, echo=echo)
