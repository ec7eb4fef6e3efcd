"""The build lab: engine, emulation, a local registry and the base image, brought up by one call.

``up()`` makes the lab usable and says what it did; ``status()`` only looks; ``down()`` stops what
``up()`` started and nothing else. The settings are ``labconfig``'s, the registry's lifecycle is
``labregistry``'s; this module puts them together with the engine, the base and the proof.

``up()`` checks cheaply first: when the engine answers and nothing it depends on changed since the platforms
were last proven (same engine, same binfmt handlers, same base image), it does not start the three proof
containers again; ``up(check=True)`` (``lab up --check``) always does.

On Debian, as root, a missing engine is provisioned by the package's ``data/provision-debian.sh``; on a Mac the
engine is Docker Desktop, which the reader starts.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform as _pyplatform
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from .. import buildx, engine
from ..buildx import NamedContext, dockerfile
from ..core import commands, files
from ..core.errors import CommandError, KitError
from ..core.settings import ENV_LAB_DIR
from ..engine import contexts, emulation, images
from ..oci import registry
from ..oci.platforms import Platform
from . import armvm, buildbase, buildkit, choice, extra_engines, multinode, trust
from .config import LabConfig
from .local_registry import RegistryInfo, choose_port, registry_info, start_registry, stop_registry
from .lock import exclusive
from .standins import Base

PROVISION_SCRIPT = Path(str(resources.files("multiarch_kit") / "data" / "provision-debian.sh"))  # package data


@dataclass
class Lab:
    """The lab as the edge read it, passed down from there: its settings, the engine, the registry, the base.

    Made once per command or notebook (by :func:`read`, :func:`status` or :func:`up`), so nothing below
    reads the environment or asks the engine again for what is here.
    """

    config: LabConfig
    engine: engine.Engine
    registry: RegistryInfo
    base: Base

    @functools.cached_property
    def handlers(self) -> list[emulation.BinfmtHandler]:
        """The engine's binfmt_misc handlers, read on first use and then kept (a container of the base reads
        them when the engine is not on this kernel)."""
        return emulation.read_handlers(self.engine, self.base.pinned)

    def describe(self, platforms: list[Platform], *, echo: bool = True) -> dict[Platform, str]:
        """How this lab's engine runs each of ``platforms``, from the handlers it keeps."""
        return emulation.describe(self.engine, platforms, self.base.pinned, handlers=self.handlers, echo=echo)

    def emulator_for(self, platform: Platform) -> str:
        """How this engine runs ``platform``: native, qemu, rosetta..."""
        return emulation.emulator_for(platform, self.engine.platform, self.handlers)

    def build_base(self, *, echo: bool = True) -> Base:
        """The base of the real workloads: Docker Hub's images, or the stand-in (made here on first use)."""
        if not choice.want_standin(self.config):
            return buildbase.STANDIN.hub()
        # On the arm64 VM, this machine's own engine writes the index: the same bytes, without sending a gigabyte
        # of root filesystems over ssh into a machine QEMU emulates whole.
        return buildbase.ensure(self.config, self.engine.platform, echo=echo,
                                make_on="default" if self.engine.is_arm64_vm else None)

    def contexts_for(self, folder: Path, *, echo: bool = True) -> dict[str, NamedContext]:
        """The named contexts a build of ``folder`` needs in this lab: for every image its Dockerfile starts
        from that a stand-in of the lab stands for, that stand-in (the build base made here on first use). The one
        place that decides it: ``build``, ``build --node``, ``profile`` and the bench all ask here."""
        names = dockerfile.images(dockerfile.read(folder))
        named: dict[str, NamedContext] = {}
        if names & set(self.base.standin_of.stands_for):
            named.update(self.base.build_contexts)
        if names & set(buildbase.STANDS_FOR):
            named.update(self.build_base(echo=echo).build_contexts)
        return named

    def container_builder(self, where: engine.Engine | None = None, *, echo: bool = True
                          ) -> buildkit.ContainerBuilder:
        """The lab's ``docker-container`` builder on this engine (or on ``where``'s, another context), made on
        first use, its image too: the stand-in when Docker Hub is out of reach (made here once), else Docker
        Hub's moby/buildkit."""
        image = buildkit.ensure(self.config, echo=echo) if choice.want_standin(self.config) \
            else buildkit.STANDIN.hub()
        return buildkit.ensure_builder(self.config, where or self.engine, image, echo=echo)

    def multinode_builder(self, *, echo: bool = True) -> buildx.Builder:
        """The lab's multi-node builder (:mod:`multiarch_kit.lab.multinode`): linux/amd64 on this machine's engine,
        linux/arm64 on the arm64 VM's, which must be running."""
        image = buildkit.ensure(self.config, echo=echo) if choice.want_standin(self.config) \
            else buildkit.STANDIN.hub()
        return multinode.ensure(self.config, image, echo=echo)

    def build_base_status(self) -> Base | None:
        """The base of the real workloads as it is, building nothing: None while the stand-in is not made yet."""
        if not choice.want_standin(self.config):
            return buildbase.STANDIN.hub()
        return buildbase.standin(self.engine.platform).current(
            self.config, buildbase.recipe(self.engine.platform, self.config.platforms))


@dataclass
class LabStatus(Lab):
    """What the lab is made of right now: the :class:`Lab`, its builder, and what ``up()`` proved and changed."""

    buildx_version: str
    builder: buildx.Builder
    runs: list[images.RunCheck] = field(default_factory=list)
    proven_at: str = ""  # when the runs were made (now, or the earlier proof nothing has changed since)
    nodes: list[extra_engines.Node] = field(default_factory=list)  # the extra engines running
    arm64_vm: armvm.Started | None = None  # what 'up --arm64-vm' did
    actions: list[str] = field(default_factory=list)  # what up() changed; empty when nothing was needed

    @property
    def changed(self) -> str:
        """What ``up()`` did, in one line (``changed: nothing (already up)`` when everything was)."""
        return "changed: " + ("; ".join(self.actions) if self.actions else "nothing (already up)")

    def table(self):
        """One row per platform: how the engine runs it and what a container of it printed."""
        import pandas as pd

        return pd.DataFrame(
            [{"platform": str(r.platform), "emulator": r.emulator, "uname -m": r.machine, "expected": r.expected,
              "ok": r.ok} for r in self.runs],
            columns=["platform", "emulator", "uname -m", "expected", "ok"])


# --- engine -------------------------------------------------------------------------------------


def can_provision(system: str, is_root: bool, where: engine.Where) -> bool:
    """Whether this host may provision its own engine: Debian, root, the default local socket."""
    return system == "Linux" and is_root and where.uses_default_socket and engine.is_debian()


def provision(cfg: LabConfig) -> None:
    """Run the Debian provisioning script (idempotent), showing each of its steps as it happens."""
    commands.run(["bash", str(PROVISION_SCRIPT)], env={ENV_LAB_DIR: str(cfg.lab_dir)}, timeout=3600,
                 on_line=lambda line: print(line, flush=True))


def _provisioned(cfg: LabConfig) -> bool:
    """What the provisioning script would install is already here (checked without running it)."""
    tools = all(shutil.which(t) for t in ("docker-registry", "skopeo", "mmdebstrap", "arch-test"))
    handlers = all((emulation.BINFMT / h).exists() for h in ("qemu-aarch64", "qemu-arm"))
    debs = all(list(cfg.paths.debs.glob(f"busybox-static_*_{p.arch.debian}.deb"))
               for p in cfg.platforms)
    return tools and handlers and debs


def _ensure_engine(cfg: LabConfig, actions: list[str]) -> engine.Engine:
    where = engine.locate(cfg.env)
    if can_provision(_pyplatform.system(), os.geteuid() == 0, where):
        if not (engine.answers(where) and _provisioned(cfg)):
            provision(cfg)
            actions.append("ran the provisioning script")
    return _connect(cfg, where)


def _connect(cfg: LabConfig, where: engine.Where | None = None) -> engine.Engine:
    """The engine, read once; the kit then reads Docker Hub's images where the engine pulls them (its mirrors)."""
    where = where or engine.locate(cfg.env)
    try:
        found = engine.connect(where=where)
    except KitError as exc:
        if where.description != contexts.ARM64_VM:
            raise
        raise KitError(exc.message, "boot the arm64 VM first: 'multiarch-kit lab up --arm64-vm' with "
                                    "DOCKER_CONTEXT unset (its disk image is kept: a warm boot takes minutes)") from None
    registry.use_hub_mirrors(found.hub_mirrors)
    if cfg.named:
        registry.use_plain_http(cfg.registry_host)
    return found


def exports_type_docker(facts: engine.EngineFacts, builder: buildx.Builder | None) -> bool:
    """Whether builds can write ``--output type=docker``: the containerd image store, or a builder of its own."""
    return facts.containerd_store or (builder is not None and builder.driver != "docker")


def buildx_facts(context: str | None = None) -> tuple[str, buildx.Builder]:
    """buildx's version and the current builder, or a one-line error saying how to install buildx."""
    try:
        return buildx.version(), buildx.inspect(context=context)
    except CommandError as exc:
        if "buildx" in exc.stderr and ("unknown" in exc.stderr or "not a docker command" in exc.stderr):
            raise KitError(
                "docker buildx is not installed",
                "Debian: apt-get install docker-buildx (or run 'sudo multiarch-kit lab up'); "
                "macOS: update Docker Desktop, which ships buildx",
            ) from None
        raise


# --- proving each platform runs ---------------------------------------------------------------------


def _fingerprint(status: LabStatus) -> dict:
    """What a proof depends on: the engine, its emulators, the image the proof containers start from."""
    handlers = emulation.local_dump() if status.engine.shares_this_kernel else None
    return {"engine_id": status.engine.engine_id, "server_version": status.engine.server_version,
            "engine_platform": str(status.engine.platform), "base": status.base.pinned,
            "builder_platforms": [str(p) for p in status.builder.platforms],
            "binfmt": hashlib.sha256(handlers.encode()).hexdigest() if handlers is not None else "not visible here"}


def check_platforms(status: Lab, platforms: tuple[Platform, ...]) -> list[images.RunCheck]:
    """Run ``uname -m`` in a container of the base for each platform."""
    return [images.run_check(p, status.base.pinned, status.emulator_for(p)) for p in platforms]


def _prove(status: LabStatus, check: bool) -> None:
    cfg = status.config
    fingerprint = _fingerprint(status)
    proof = files.read_json(cfg.proof_file)
    if not check and proof and proof.get("fingerprint") == fingerprint and proof.get("ok"):
        try:
            status.runs = [images.RunCheck(Platform.parse(r["platform"]), r["expected"], r["machine"], r["emulator"],
                                           float(r["seconds"])) for r in proof["runs"]]
            status.proven_at = str(proof.get("at", ""))
            return
        except (KeyError, TypeError, ValueError, KitError):
            pass  # an unreadable proof is made again
    status.runs = check_platforms(status, cfg.platforms)
    status.proven_at = time.strftime("%Y-%m-%dT%H:%M:%S")
    files.write_json(cfg.proof_file, {"fingerprint": fingerprint, "at": status.proven_at,
                                 "ok": all(r.ok for r in status.runs),
                                 "runs": [{**asdict(r), "platform": str(r.platform)} for r in status.runs]})
    if proof is None or proof.get("fingerprint") != fingerprint:
        actions = status.actions
        actions.append("proved each platform runs" + (" (something changed since the last proof)" if proof else ""))


def answer(status: LabStatus) -> str:
    """Notebook 00's question answered for this machine, in one sentence."""
    ways: dict[str, list[str]] = {}
    for r in status.runs:
        ways.setdefault("natively" if r.emulator == "native" else f"under {r.emulator}", []).append(str(r.platform))
    how = "; ".join(f"{', '.join(ps)} {way}" for way, ps in ways.items())
    bad = [str(r.platform) for r in status.runs if not r.ok]
    if bad:
        return f"Not fully: this machine (engine {status.engine.platform}) runs {how}, but {', '.join(bad)} did not " \
               "print the machine name expected (see the doctor's table)."
    return f"Yes: this machine (engine {status.engine.platform}) runs {how}, and every container printed the " \
           "machine name expected."


# --- the lab -----------------------------------------------------------------------------------------


def up(cfg: LabConfig | None = None, *, check_runs: bool = True, check: bool = False, nodes: int = 1,
       build_base_now: bool = False, arm64_vm: bool = False, container_builder: bool = False,
       multi_node: bool = False) -> LabStatus:
    """Bring the lab up (idempotent) and make sure each platform runs: returns the lab's status.

    ``check`` runs the proof containers and probes Docker Hub again even when nothing changed;
    ``check_runs=False`` skips the proof entirely (the test suite's fixture). ``nodes`` > 1 starts that many
    engines in all (each extra one a Docker context ``multiarch-kit-node2``...); ``build_base_now`` makes the
    real workloads' build base now rather than on first use; ``arm64_vm`` also boots the arm64 VM
    (:mod:`multiarch_kit.armvm`, Docker context ``multiarch-kit-arm64``), making its disk image the first time;
    ``container_builder`` makes the lab's ``docker-container`` builder now (:mod:`multiarch_kit.lab.buildkit`);
    ``multi_node`` boots the arm64 VM and makes the multi-node builder over both engines.
    """
    cfg = cfg or LabConfig.from_env()
    if nodes < 1:
        raise KitError(f"--nodes {nodes}: the lab has at least its own engine", "use --nodes 2 or more for extra engines")
    with exclusive(cfg):
        status = _up(cfg, check_runs=check_runs, check=check, nodes=nodes, build_base_now=build_base_now,
                     arm64_vm=arm64_vm or multi_node)
        if container_builder:
            made = status.container_builder()
            if made.created:
                status.actions.append(f"created the builder {made.name} ({made.builder.driver}, BuildKit {made.buildkit})")
        if multi_node:
            both = status.multinode_builder()
            status.actions.append(f"builder {both.name}: " + ", ".join(f"{n.name} {n.status}" for n in both.nodes))
        return status


def _up(cfg: LabConfig, *, check_runs: bool, check: bool, nodes: int, build_base_now: bool,
        arm64_vm: bool) -> LabStatus:
    if arm64_vm and _names_the_vm(cfg):
        raise KitError(f"'lab up --arm64-vm' with DOCKER_CONTEXT={armvm.CONTEXT}: the VM's engine is not up yet",
                       "run 'multiarch-kit lab up --arm64-vm' with DOCKER_CONTEXT unset (this machine's lab first, "
                       "then the VM), then use the VM's engine")
    actions: list[str] = []
    facts = _ensure_engine(cfg, actions)
    version, builder = buildx_facts()
    if not exports_type_docker(facts, builder):
        raise KitError("the builder cannot export type=docker: the engine keeps images in the classic store",
                       engine.IMAGE_STORE_FIX)
    cfg, moved = choose_port(cfg)
    if moved:
        print(moved, flush=True)
        actions.append(f"moved the registry to port {cfg.registry_port}")
    if start_registry(cfg) == "started":
        actions.append(f"started the registry on {cfg.listen_address()}")
    chosen = choice.ensure_base(cfg, actions, probe=check)
    status = LabStatus(cfg, facts, registry_info(cfg), chosen, version, builder, actions=actions)
    for index in range(2, nodes + 1):
        if extra_engines.start(extra_engines.node(cfg.lab_dir, index)):
            actions.append(f"started engine {extra_engines.node(cfg.lab_dir, index).name}")
    status.nodes = [n for n in extra_engines.known(cfg.lab_dir) if n.running]
    if arm64_vm:
        status.arm64_vm = armvm.up(cfg.lab_dir, cfg.registry_port)
        if status.arm64_vm.made_seconds:
            actions.append(f"made the arm64 VM's disk image ({status.arm64_vm.made_seconds:.0f} s)")
        if status.arm64_vm.boot_seconds:
            actions.append(f"booted the arm64 VM ({status.arm64_vm.boot_seconds:.0f} s)")
    actions += trust.ensure_each(cfg, facts, status.nodes, vm=arm64_vm)
    if build_base_now:
        status.build_base()
    if check_runs:
        _prove(status, check)
    return status


def _names_the_vm(cfg: LabConfig) -> bool:
    """Whether the environment's engine is the arm64 VM's context."""
    try:
        return engine.locate(cfg.env).description == contexts.ARM64_VM
    except KitError:
        return False


def read(cfg: LabConfig | None = None) -> Lab:
    """The lab as it is, cheaply (the engine's facts, one look at the registry), changing nothing."""
    cfg = cfg or LabConfig.from_env()
    return Lab(cfg, _connect(cfg), registry_info(cfg), choice.base_image(cfg))


def status(cfg: LabConfig | None = None) -> LabStatus:
    """The lab as it is, changing nothing (raises when the engine does not answer): :func:`read`, the builder
    and the extra engines."""
    here = read(cfg)
    version, builder = buildx_facts()
    return LabStatus(here.config, here.engine, here.registry, here.base, version, builder,
                     nodes=[n for n in extra_engines.known(here.config.lab_dir) if n.running])


def down(cfg: LabConfig | None = None) -> list[str]:
    """Stop what ``up()`` started (registry, and the engine if the lab provisioned it); returns what stopped."""
    cfg = cfg or LabConfig.from_env()
    with exclusive(cfg):
        return _down(cfg)


def _down(cfg: LabConfig) -> list[str]:
    if armvm.vm(cfg.lab_dir).running:  # its builder first: a node whose engine is gone is an error in buildx ls
        multinode.remove(cfg, echo=False)
    stopped = [f"the arm64 VM ({armvm.CONTEXT})"] if armvm.stop(armvm.vm(cfg.lab_dir)) else []
    stopped += stop_registry(cfg)
    for n in extra_engines.known(cfg.lab_dir):  # the extra engines first: they use the first engine's containerd
        if extra_engines.stop(n):
            stopped.append(f"engine {n.name}")
    # The provisioning script records the daemons it started; stop dockerd before its containerd.
    for name in ("dockerd", "containerd"):
        pid_file = cfg.paths.run / f"{name}.pid"
        if pid_file.exists():
            text = pid_file.read_text().strip()
            if text.isdigit() and commands.stop(int(text), echo=False):
                stopped.append(f"{name} (pid {text})")
            pid_file.unlink()
    return stopped
