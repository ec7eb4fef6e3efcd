"""The build lab: engine, emulation, a local registry and the base image, brought up by one call.

``up()`` makes the lab usable and says what it did; ``status()`` only looks; ``down()`` stops what
``up()`` started and nothing else. Everything the lab keeps (registry storage, logs, the stand-in's
build context, a record of what it started) lives under one directory, ``$MULTIARCH_KIT_LAB``
(default ``~/.local/state/multiarch-kit``).

On Debian, as root, a missing engine is provisioned by ``scripts/provision-debian.sh``; on a Mac the
engine is Docker Desktop, which the reader starts.
"""

from __future__ import annotations

import json
import os
import platform as _pyplatform
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import base, buildx, commands, emulation, engine, registry
from .errors import CommandError, KitError
from .platforms import LAB_PLATFORMS

ENV_LAB_DIR = "MULTIARCH_KIT_LAB"
ENV_PORT = "MULTIARCH_KIT_REGISTRY_PORT"
ENV_BASE = "MULTIARCH_KIT_BASE"  # auto (default), docker-hub or stand-in
DEFAULT_PORT = 5000
PROVISION_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "provision-debian.sh"
REGISTRY_CONTAINER = "multiarch-kit-registry"


@dataclass(frozen=True)
class LabConfig:
    """Where the lab keeps its state and which port its registry uses."""

    lab_dir: Path
    registry_port: int = DEFAULT_PORT
    platforms: tuple[str, ...] = LAB_PLATFORMS
    base: str = "auto"

    @classmethod
    def from_env(cls) -> LabConfig:
        lab_dir = Path(os.environ.get(ENV_LAB_DIR) or Path.home() / ".local" / "state" / "multiarch-kit")
        raw_port = os.environ.get(ENV_PORT, str(DEFAULT_PORT))
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise KitError(f"{ENV_PORT}={raw_port!r} is not a port number", f"set {ENV_PORT} to a free port such as 5001")
        choice = os.environ.get(ENV_BASE, "auto")
        if choice not in ("auto", "docker-hub", "stand-in"):
            raise KitError(f"{ENV_BASE}={choice!r} is not a base choice", f"set {ENV_BASE} to auto, docker-hub or stand-in")
        return cls(lab_dir=lab_dir.expanduser().resolve(), registry_port=int(raw_port), base=choice)

    @property
    def registry_address(self) -> str:
        """Host and port the registry binds (loopback only)."""
        return f"127.0.0.1:{self.registry_port}"

    @property
    def registry_host(self) -> str:
        """How image references name the lab registry: Docker treats localhost as an insecure registry."""
        return f"localhost:{self.registry_port}"

    @property
    def state_file(self) -> Path:
        return self.lab_dir / "registry" / "started.json"


@dataclass
class RegistryInfo:
    """The lab registry and who runs it."""

    address: str
    host: str
    kind: str  # "docker-registry" (Debian's binary), "registry:2 container" or "external"
    started_by_lab: bool
    answers: bool


@dataclass
class LabStatus:
    """What the lab is made of right now."""

    engine: engine.EngineFacts
    buildx_version: str
    builder: buildx.Builder
    registry: RegistryInfo
    base: base.BaseImage
    runs: list[emulation.RunCheck] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # what up() changed; empty when nothing was needed

    def table(self) -> pd.DataFrame:
        """One row per platform: how the engine runs it and what a container of it printed."""
        return pd.DataFrame(
            [
                {"platform": r.platform, "emulator": r.emulator, "uname -m": r.machine, "expected": r.expected,
                 "ok": r.ok}
                for r in self.runs
            ]
        )


# --- engine -------------------------------------------------------------------------------------


def can_provision(system: str, is_root: bool) -> bool:
    """Whether this host may provision its own engine: Debian, root, the default local socket."""
    return system == "Linux" and is_root and engine.uses_default_socket() and engine.is_debian()


def provision(cfg: LabConfig) -> None:
    """Run the Debian provisioning script (idempotent) and show what it printed."""
    done = commands.run(["bash", str(PROVISION_SCRIPT)], env={ENV_LAB_DIR: str(cfg.lab_dir)}, timeout=1800)
    sys.stdout.write(done.stdout)


def _ensure_engine(cfg: LabConfig):
    if can_provision(_pyplatform.system(), os.geteuid() == 0):
        # Cheap when all is in place; installs what a fresh Debian lacks (engine, qemu, registry, busybox).
        provision(cfg)
    return engine.connect()


def exports_type_docker(facts: engine.EngineFacts, builder: buildx.Builder | None) -> bool:
    """Whether builds can write ``--output type=docker``: the containerd image store, or a builder of its own."""
    return facts.containerd_store or (builder is not None and builder.driver != "docker")


def buildx_facts() -> tuple[str, buildx.Builder]:
    """buildx's version and the current builder, or a one-line error saying how to install buildx."""
    try:
        return buildx.version(), buildx.inspect()
    except CommandError as exc:
        if "buildx" in exc.stderr and ("unknown" in exc.stderr or "not a docker command" in exc.stderr):
            raise KitError(
                "docker buildx is not installed",
                "Debian: apt-get install docker-buildx (or run scripts/provision-debian.sh); "
                "macOS: update Docker Desktop, which ships buildx",
            ) from None
        raise


# --- registry ------------------------------------------------------------------------------------


def _port_state(port: int) -> str:
    """``free``, ``registry`` (something answers the v2 API) or ``other``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return "free"
    return "registry" if registry.ping(f"127.0.0.1:{port}") else "other"


def _read_state(cfg: LabConfig) -> dict | None:
    try:
        return json.loads(cfg.state_file.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    # A registry started by this very process lingers as a zombie until reaped; reap it first.
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def registry_info(cfg: LabConfig) -> RegistryInfo:
    """Who runs the registry on the lab port, without changing anything."""
    state = _read_state(cfg)
    answers = registry.ping(cfg.registry_address)
    ours = bool(state) and state.get("port") == cfg.registry_port and (
        state.get("kind") != "docker-registry" or _alive(state.get("pid", -1))
    )
    kind = state["kind"] if ours else "external"
    return RegistryInfo(cfg.registry_address, cfg.registry_host, kind, ours and answers, answers)


def _registry_config(cfg: LabConfig) -> Path:
    root = cfg.lab_dir / "registry"
    (root / "data").mkdir(parents=True, exist_ok=True)
    path = root / "config.yml"
    path.write_text(
        "# Written by multiarch-kit's lab: distribution's config, loopback only.\n"
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {cfg.registry_address}\n"
    )
    return path


def _start_registry(cfg: LabConfig) -> str:
    state = _port_state(cfg.registry_port)
    if state == "other":
        raise KitError(
            f"port {cfg.registry_port} on 127.0.0.1 is taken by a program that is not a registry "
            "(on macOS: the AirPlay Receiver)",
            f"choose another port, e.g. export {ENV_PORT}=5001, or free port {cfg.registry_port}",
        )
    if state == "registry":
        return "reused"
    cfg.lab_dir.joinpath("logs").mkdir(parents=True, exist_ok=True)
    binary = shutil.which("docker-registry")
    if binary:
        proc = commands.start([binary, "serve", str(_registry_config(cfg))], log=cfg.lab_dir / "logs" / "registry.log")
        record = {"kind": "docker-registry", "pid": proc.pid, "port": cfg.registry_port}
    else:
        data = cfg.lab_dir / "registry" / "data"
        data.mkdir(parents=True, exist_ok=True)
        name = f"{REGISTRY_CONTAINER}-{cfg.registry_port}"
        commands.run(["docker", "rm", "-f", name], echo=False, check=False)
        done = commands.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{cfg.registry_port}:5000",
                             "-v", f"{data}:/var/lib/registry", "registry:2"], timeout=300)
        record = {"kind": "registry:2 container", "container": done.stdout.strip(), "port": cfg.registry_port}
    cfg.state_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.state_file.write_text(json.dumps(record))
    for _ in range(100):
        if registry.ping(cfg.registry_address, timeout=0.5):
            return "started"
        time.sleep(0.1)
    raise KitError(f"the registry did not answer on {cfg.registry_address} within 10 s",
                   f"see {cfg.lab_dir / 'logs' / 'registry.log'}")


# --- base image ------------------------------------------------------------------------------------


def _want_standin(cfg: LabConfig) -> bool:
    if cfg.base != "auto":
        return cfg.base == "stand-in"
    return not base.hub_reachable()


def base_image(cfg: LabConfig) -> base.BaseImage:
    """The base in use, without building anything (the stand-in's digest is None until pushed)."""
    if not _want_standin(cfg):
        return base.hub_base()
    head = registry.head_manifest(cfg.registry_address, base.STANDIN_REPOSITORY, base.STANDIN_TAG) \
        if registry.ping(cfg.registry_address) else None
    return base.standin_base(cfg.registry_host, head.digest if head else None)


def _ensure_base(cfg: LabConfig, actions: list[str]) -> base.BaseImage:
    if not _want_standin(cfg):
        return base.hub_base()
    context = cfg.lab_dir / "base" / "context"
    recipe = base.prepare_context(cfg.lab_dir / "base" / "debs", context)
    stamp = cfg.lab_dir / "base" / "pushed-recipe.sha256"
    current = base_image(cfg)
    if current.digest and stamp.exists() and stamp.read_text() == recipe:
        return current
    base.build_standin(context, cfg.registry_host, cfg.platforms)
    stamp.write_text(recipe)
    actions.append("built and pushed the stand-in base image")
    return base_image(cfg)


# --- the lab -----------------------------------------------------------------------------------------


def up(cfg: LabConfig | None = None, *, check_runs: bool = True) -> LabStatus:
    """Bring the lab up (idempotent) and prove each platform runs: returns the lab's status."""
    cfg = cfg or LabConfig.from_env()
    actions: list[str] = []
    client = _ensure_engine(cfg)
    facts = engine.facts(client)
    version, builder = buildx_facts()
    if not exports_type_docker(facts, builder):
        raise KitError("the builder cannot export type=docker: the engine keeps images in the classic store",
                       engine.IMAGE_STORE_FIX)
    if _start_registry(cfg) == "started":
        actions.append(f"started the registry on {cfg.registry_address}")
    chosen = _ensure_base(cfg, actions)
    print(chosen.note)
    status = LabStatus(facts, version, builder, registry_info(cfg), chosen, actions=actions)
    if check_runs:
        status.runs = check_platforms(status, cfg.platforms)
    return status


def check_platforms(status: LabStatus, platforms: tuple[str, ...]) -> list[emulation.RunCheck]:
    """Run ``uname -m`` in a container of the base for each platform."""
    image = status.base.pinned
    handlers = emulation.read_handlers(image, status.engine.platform)
    return [
        emulation.run_check(p, image, emulation.emulator_for(p, status.engine.architecture, handlers))
        for p in platforms
    ]


def status(cfg: LabConfig | None = None) -> LabStatus:
    """The lab as it is, changing nothing (raises when the engine does not answer)."""
    cfg = cfg or LabConfig.from_env()
    facts = engine.facts(engine.connect())
    version, builder = buildx_facts()
    return LabStatus(facts, version, builder, registry_info(cfg), base_image(cfg))


def _stop_pid(pid: int, what: str, stopped: list[str], seconds: float = 30) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    stopped.append(what)


def down(cfg: LabConfig | None = None) -> list[str]:
    """Stop what ``up()`` started (registry, and the engine if the lab provisioned it); returns what stopped."""
    cfg = cfg or LabConfig.from_env()
    stopped: list[str] = []
    state = _read_state(cfg)
    if state and state.get("kind") == "docker-registry":
        _stop_pid(state["pid"], f"registry (pid {state['pid']})", stopped)
    elif state and state.get("container"):
        commands.run(["docker", "rm", "-f", state["container"]], check=False)
        stopped.append("registry container")
    cfg.state_file.unlink(missing_ok=True)
    # The provisioning script records the daemons it started; stop dockerd before its containerd.
    for name in ("dockerd", "containerd"):
        pid_file = cfg.lab_dir / "run" / f"{name}.pid"
        if pid_file.exists():
            _stop_pid(int(pid_file.read_text().strip() or -1), f"{name} (pid {pid_file.read_text().strip()})", stopped)
            pid_file.unlink()
    return stopped
