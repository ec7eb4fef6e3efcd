"""The machine a bench runs on: its id, its fingerprint (OS, CPU, engine, builder) and, per platform, which
node builds it and how (natively, under QEMU or Rosetta).

Every row of the results carries this fingerprint, so files from several machines merge and still say where
each number came from.
"""

from __future__ import annotations

import os
import platform as _pyplatform
import re
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, buildx, engine, lab
from ..core import commands, files
from ..core.errors import KitError
from ..core.settings import ENV_HOST_ID
from ..engine import emulation
from ..lab import armvm, generation
from ..lab.config import LabConfig, LabPaths
from ..oci import matching
from ..oci.platforms import Platform
from .plans import Plan

MACOS = "macOS"  # the host_os of a Mac's rows
# In the host_os of rows measured on the lab's arm64 VM, for the reader: a full-system-emulated arm64 machine, never
# a real one (what the kit reads is the row's engine_kind).
SYSTEM_VM = "arm64 VM under qemu-system-aarch64"


def host_id(cfg: LabConfig, on: engine.Engine) -> str:
    """This machine's id: its host name and a random suffix made once and kept in the lab folder.

    Unique per machine (two VMs both called ``vm`` differ) and stable on it; ``$MULTIARCH_KIT_HOST_ID`` (in the
    lab's settings) overrides. With the lab's arm64 VM as the engine ``on``, it is the VM's own id, this machine's
    with ``-arm64-vm`` after it: its rows go to a results file of their own.
    """
    if cfg.env.host_id:
        return _slug(cfg.env.host_id)
    if on.is_arm64_vm:
        return f"{_machine_id(cfg.lab_dir)}-arm64-vm"
    return _machine_id(cfg.lab_dir)


def _machine_id(lab_dir: Path) -> str:
    path = LabPaths(Path(lab_dir)).host_id
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
        return MACOS, _pyplatform.mac_ver()[0]
    try:
        info = _pyplatform.freedesktop_os_release()
    except OSError:
        return _pyplatform.system(), _pyplatform.release()
    return info["NAME"], info.get("VERSION_ID", "")


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
    cpu_model, cpus = _cpu_model(), os.cpu_count() or 0
    if status.engine.is_arm64_vm:  # the engine is a VM that QEMU emulates whole: say so on every row
        vm = files.read_json(armvm.vm(status.config.lab_dir).state) or {}
        host_os, host_version = f"{status.engine.operating_system}, {SYSTEM_VM} (TCG) on {host_os}", host_version
        cpu_model = f"QEMU TCG -cpu {vm.get('cpu', '?')} on {cpu_model}"
        cpus = int(vm.get("smp") or 0)
    fingerprint = {
        "host_id": plan.host_id, "host_os": host_os, "host_os_version": host_version, "cpu_model": cpu_model,
        "cpus": cpus, "engine_platform": str(status.engine.platform),
        "docker_version": status.engine.server_version, "buildx_version": status.buildx_version,
        "builder": builder.name, "driver": builder.driver, "kit_version": __version__,
        "engine_kind": status.engine.kind.value, "containerd_version": status.engine.containerd_version,
        "docker_cli_version": generation.cli_version(status.engine.context),
    }
    platforms = sorted({c.platform for c in plan.cells}, key=str)
    nodes, emulators, node_engines = {}, {}, {}
    for p in platforms:
        if p in plan.nodes:  # a split run: this platform is built on an engine of its own, read once
            context = plan.nodes[p]
            if context not in node_engines:
                node_engines[context] = engine.connect(status.config.env, context)
            how = emulation.describe(node_engines[context], [p], status.base.pinned)
            nodes[p], emulators[p] = context, how[p]
            continue
        # buildx sends a platform to the first node that lists it (a node's own platforms come first).
        node = next((n for n in builder.nodes if p in n.platforms), builder.nodes[0] if builder.nodes else None)
        nodes[p] = node.name if node else ""
        if builder.driver == "docker":
            emulators[p] = status.emulator_for(p)
        else:
            # A node runs natively what its own platform runs in containerd's eyes.
            native = bool(node and node.platforms) and matching.runs_natively(node.platforms[0], p)
            emulators[p] = "native" if native else "emulated"
    return Host(fingerprint, nodes, emulators)
