"""``multiarch-kit doctor``: one row per thing the lab needs, each pass, warn or fail, with the fix.

The doctor only looks (it starts containers to test emulation but changes nothing); ``lab up`` is
what repairs. Rows that depend on a failed one say so instead of repeating its error.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

import pandas as pd

from .. import engine
from ..core import files
from ..core.errors import KitError
from ..engine import emulation, images
from ..oci.matching import runs_natively
from ..oci.platforms import Platform
from . import (
    armvm,
    buildbase,
    buildkit,
    choice,
    extra_engines,
    generation,
    lifecycle,
    local_registry,
    multinode,
    trust,
)
from .config import LabConfig

PASS, WARN, FAIL = "pass", "warn", "fail"
MIN_FREE_GB_WARN, MIN_FREE_GB_FAIL = 5.0, 1.0


@dataclass
class Check:
    """One row of the doctor's table."""

    check: str
    status: str
    detail: str
    fix: str = ""


def run_checks(cfg: LabConfig) -> list[Check]:
    """Check everything the lab of ``cfg`` needs and return the rows."""
    rows: list[Check] = []
    try:
        facts = engine.connect(cfg.env)
    except KitError as exc:
        rows.append(Check("engine", FAIL, exc.message, exc.fix or ""))
        rows.append(_disk(cfg))
        return rows
    rows.append(Check("engine", PASS, f"{facts.operating_system}, {facts.platform} at {facts.endpoint}"))
    try:
        version, builder = lifecycle.buildx_facts()
    except KitError as exc:
        buildx_row, version, builder = Check("buildx", FAIL, exc.message, exc.fix or ""), "", None
    else:
        old = generation.number(version) < (0, 12)
        buildx_row = Check("buildx", WARN if old else PASS, f"buildx {version}, builder '{builder.name}' "
                           f"(driver {builder.driver})", "buildx 0.12+ is needed for --progress=rawjson" if old else "")
    versions = generation.read(facts, version, builder)
    rows.append(Check("versions", PASS, versions.summary()))
    rows.extend(Check("version trap", WARN, trap.what, trap.fix) for trap in versions.traps())
    rows.append(buildx_row)
    exportable = lifecycle.exports_type_docker(facts, builder)
    rows.append(Check("image store", PASS if exportable else FAIL,
                      f"{facts.image_store}" + ("" if exportable else ": buildx cannot export type=docker"),
                      "" if exportable else engine.IMAGE_STORE_FIX))
    reg = local_registry.registry_info(cfg)
    if reg.answers and cfg.named and not facts.trusts(cfg.registry_host):
        rows.append(Check("registry", FAIL, f"{reg.address} answers, but the engine would speak HTTPS to it",
                          trust.fix_line(cfg.registry_host)))
    else:
        rows.append(Check("registry", PASS if reg.answers else FAIL,
                          f"{reg.address} ({reg.kind})" if reg.answers else f"nothing answers /v2/ on {reg.address}",
                          "" if reg.answers else "run 'multiarch-kit lab up'" + (
                              " on the machine that serves it, with the same MULTIARCH_KIT_REGISTRY" if cfg.named else "")))
    try:
        base_img = choice.base_image(cfg)
    except KitError as exc:
        rows.append(Check("base image", FAIL, exc.message, exc.fix or ""))
        rows.append(_disk(cfg))
        return rows
    base_ok = base_img.source == "docker-hub" or bool(base_img.digest)
    rows.append(Check("base image", PASS if base_ok else FAIL,
                      f"{base_img.source}: {base_img.ref}" + (f" @ {base_img.digest}" if base_img.digest else ""),
                      "" if base_ok else "run 'multiarch-kit lab up' to build and push the stand-in"))
    rows.append(_build_base(cfg, facts, base_img))
    emulation_rows, ran = _emulation_rows(cfg, facts, base_img if base_ok else None)
    if builder is not None:
        rows.append(_builder_platforms(cfg, builder, facts, ran))
    rows.extend(emulation_rows)
    rows.append(_container_builder(facts))
    rows.extend(_multinode())
    rows.extend(_nodes(cfg))
    rows.extend(_arm64_vm(cfg))
    rows.append(_disk(cfg))
    return rows


def _build_base(cfg: LabConfig, facts: engine.Engine, base_img) -> Check:
    if base_img.source == "docker-hub":
        return Check("build base", PASS, "the real debian:bookworm and golang:1.19-bookworm from Docker Hub")
    found = buildbase.standin(facts.platform).current(cfg, buildbase.recipe(facts.platform, cfg.platforms))
    if found:
        return Check("build base", PASS, f"stand-in {found.ref} @ {found.digest}")
    return Check("build base", WARN, "not made yet: the C and Go workloads need it (about 4 min, once)",
                 "it is made on first use, or now with 'multiarch-kit lab up --build-base'")


def _container_builder(facts: engine.Engine) -> Check:
    found = buildkit.find(facts)
    what = f"container builder {buildkit.BUILDER}"
    if found is None:
        return Check(what, WARN, "not made yet: reproducible pushes and registry caches need it (04, 09, 10)",
                     "it is made on first use, or now with 'multiarch-kit lab up --container-builder'")
    node = found.nodes[0] if found.nodes else None
    if node is None or node.status != "running":
        return Check(what, WARN, f"{found.driver}, {node.status if node else 'no node'}",
                     f"docker buildx inspect --bootstrap {buildkit.BUILDER} starts it")
    return Check(what, PASS, f"{found.driver}, BuildKit {node.buildkit}, "
                 f"{len(node.platforms)} platforms ({', '.join(map(str, node.platforms[:3]))}...)")


def _multinode() -> list[Check]:
    """A row once the multi-node builder exists: its nodes and whether each runs."""
    found = multinode.find()
    if found is None:
        return []
    down = [n.name for n in found.nodes if n.status != "running"]
    return [Check(f"builder {multinode.NAME}", WARN if down else PASS,
                  ", ".join(f"{n.name} {n.status} ({', '.join(map(str, n.platforms[:1]))})" for n in found.nodes),
                  f"'multiarch-kit lab up --multi-node' boots the arm64 VM and starts {', '.join(down)}" if down else "")]


# Who starts the lab's extra engines: a stopped one is a folder left for the next start, not a fault.
STARTED_BY = {
    True: "notebooks 08 and 09 and the engine tests start it for the classic image store and stop it after",
    False: "'multiarch-kit lab up --nodes N' starts it, 'lab down' stops it; notebook 10 and the engine tests "
           "start it and stop it after",
}


def _nodes(cfg: LabConfig) -> list[Check]:
    rows = []
    for n in extra_engines.known(cfg.lab_dir):
        if not n.running:
            rows.append(Check(f"engine {n.name}", PASS, f"stopped ({STARTED_BY[n.classic]})"))
            continue
        try:
            facts = engine.connect(cfg.env, n.name)
        except KitError as exc:
            rows.append(Check(f"engine {n.name}", FAIL, exc.message, exc.fix or ""))
            continue
        rows.append(Check(f"engine {n.name}", PASS, f"{facts.platform}, image store {facts.image_store}, "
                          f"docker --context {n.name} ({STARTED_BY[n.classic]})"))
    return rows


def _arm64_vm(cfg: LabConfig) -> list[Check]:
    """A row once the arm64 VM exists: running (and how fast QEMU runs it), or made and stopped."""
    machine = armvm.vm(cfg.lab_dir)
    if not machine.disk.exists():
        return []
    if not machine.running:
        return [Check("arm64 VM", PASS, "made, stopped (started by 'multiarch-kit lab up --arm64-vm')")]
    state = files.read_json(machine.state) or {}
    try:
        facts = engine.connect(cfg.env, armvm.CONTEXT)
    except KitError as exc:
        return [Check("arm64 VM", FAIL, f"QEMU runs but {exc.message}",
                      "wait for it to finish booting, or 'multiarch-kit lab down' and 'lab up --arm64-vm' again")]
    return [Check("arm64 VM", PASS, f"{facts.platform}, image store {facts.image_store}, docker --context "
                  f"{armvm.CONTEXT}; full-system emulated: -cpu {state.get('cpu', '?')} -smp {state.get('smp', '?')}")]


def _builder_platforms(cfg, builder, facts, ran: dict[Platform, bool]) -> Check:
    # BuildKit lists the emulators it detected when the engine started; a platform missing there still
    # builds when its handler works now, which the run rows below prove (``ran``).
    unlisted = [p for p in cfg.platforms
                if p not in builder.platforms and not runs_natively(facts.platform, p)]
    failing = [p for p in unlisted if not ran.get(p)]
    detail = ", ".join(map(str, builder.platforms))
    if unlisted and not failing:
        detail += f" (not listed at engine start but runs now: {', '.join(map(str, unlisted))})"
    return Check("builder platforms", WARN if failing else PASS, detail,
                 f"{', '.join(map(str, failing))} missing: enable its binfmt handler, then restart the engine"
                 if failing else "")


def _emulation_rows(cfg: LabConfig, facts: engine.Engine,
                    base_img) -> tuple[list[Check], dict[Platform, bool]]:
    """The emulation rows, and for each platform whether a container of it ran."""
    if base_img is None:
        return [Check("emulation", FAIL, "needs the base image to start test containers",
                      "run 'multiarch-kit lab up'")], {}
    try:
        handlers = emulation.read_handlers(facts, base_img.pinned, echo=False)  # the doctor only looks, quietly
    except KitError as exc:
        # No probe container, so no run can work either: one row says why instead of four.
        return [Check("emulation", FAIL, f"cannot start a container of the base image: {exc.message}",
                      exc.fix or "run 'multiarch-kit lab up'")], {}
    rows, ran = [], {}
    relevant = [h for h in handlers if h.architecture]
    no_f = [h.name for h in relevant if h.enabled and not h.fix_binary]
    rows.append(Check("binfmt handlers", WARN if no_f else PASS,
                      ", ".join(f"{h.name} ({'on' if h.enabled else 'off'}, flags {h.flags or '-'})" for h in relevant)
                      or "none registered",
                      f"{', '.join(no_f)} lack the F flag, so containers cannot use them: re-register with "
                      "update-binfmts or tonistiigi/binfmt" if no_f else ""))
    for p in cfg.platforms:
        how = emulation.emulator_for(p, facts.platform, handlers)
        try:
            run = images.run_check(p, base_img.pinned, how, echo=False)
        except KitError as exc:
            rows.append(Check(f"run {p}", FAIL, f"{how}: {exc.message}", exc.fix or ""))
            ran[p] = False
            continue
        rows.append(Check(f"run {p}", PASS if run.ok else FAIL,
                          f"{how}: uname -m = {run.machine} (expected {run.expected})",
                          "" if run.ok else emulation.missing_emulator_error(p).fix or ""))
        ran[p] = run.ok
    return rows, ran


def _disk(cfg: LabConfig) -> Check:
    where = cfg.lab_dir if cfg.lab_dir.exists() else cfg.lab_dir.parent
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free / 1e9
    status = FAIL if free < MIN_FREE_GB_FAIL else WARN if free < MIN_FREE_GB_WARN else PASS
    return Check("free disk", status, f"{free:.1f} GB free at {where}",
                 "" if status == PASS else "free some space (docker system prune removes unused images)")


def table(rows: list[Check]) -> pd.DataFrame:
    """The rows as a DataFrame (columns check, status, detail, fix)."""
    return pd.DataFrame([asdict(r) for r in rows], columns=["check", "status", "detail", "fix"])
