"""The build lab: engine, emulation, a local registry and the base image, brought up by one call.

``up()`` makes the lab usable and says what it did; ``status()`` only looks; ``down()`` stops what
``up()`` started and nothing else. Everything the lab keeps (registry storage, logs, the stand-in's
build context, a record of what it started and of what it last proved) lives under one directory,
``$MULTIARCH_KIT_LAB`` (default ``~/.local/state/multiarch-kit``).

``up()`` checks cheaply first: when the engine answers and nothing it depends on changed since the platforms
were last proven (same engine, same binfmt handlers, same base image), it does not start the three proof
containers again; ``up(check=True)`` (``lab up --check``) always does.

On Debian, as root, a missing engine is provisioned by ``scripts/provision-debian.sh``; on a Mac the
engine is Docker Desktop, which the reader starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform as _pyplatform
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import base, buildbase, buildx, commands, emulation, engine, engines, files, images, registry
from .engine import docker
from .errors import CommandError, KitError
from .platforms import LAB_PLATFORMS, Platform

ENV_LAB_DIR = "MULTIARCH_KIT_LAB"
ENV_PORT = "MULTIARCH_KIT_REGISTRY_PORT"
ENV_BASE = "MULTIARCH_KIT_BASE"  # auto (default), docker-hub or stand-in
DEFAULT_PORT = 5000
PROVISION_SCRIPT = Path(__file__).resolve().parent / "data" / "provision-debian.sh"  # package data
REGISTRY_CONTAINER = "multiarch-kit-registry"
GUARDED = "docker-registry + guard"  # Debian's distribution on a Unix socket, served by the lab's guard


@dataclass(frozen=True)
class LabConfig:
    """Where the lab keeps its state and which port its registry uses."""

    lab_dir: Path
    registry_port: int = DEFAULT_PORT
    platforms: tuple[Platform, ...] = LAB_PLATFORMS
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

    @property
    def registry_socket(self) -> Path:
        return self.lab_dir / "registry" / f"registry-{self.registry_port}.sock"

    @property
    def proof_file(self) -> Path:
        return self.lab_dir / "proven.json"

    @property
    def base_choice_file(self) -> Path:
        return self.lab_dir / "base" / "choice.json"


@dataclass
class RegistryInfo:
    """The lab registry and who runs it."""

    address: str
    host: str
    kind: str  # "docker-registry + guard" (Debian's binary behind the lab's guard), "registry:2 container", "external"
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
    runs: list[images.RunCheck] = field(default_factory=list)
    proven_at: str = ""  # when the runs were made (now, or the earlier proof nothing has changed since)
    nodes: list[engines.Node] = field(default_factory=list)  # the extra engines running
    actions: list[str] = field(default_factory=list)  # what up() changed; empty when nothing was needed

    def table(self):
        """One row per platform: how the engine runs it and what a container of it printed."""
        import pandas as pd

        return pd.DataFrame(
            [{"platform": str(r.platform), "emulator": r.emulator, "uname -m": r.machine, "expected": r.expected,
              "ok": r.ok} for r in self.runs],
            columns=["platform", "emulator", "uname -m", "expected", "ok"])


# --- engine -------------------------------------------------------------------------------------


def can_provision(system: str, is_root: bool) -> bool:
    """Whether this host may provision its own engine: Debian, root, the default local socket."""
    return system == "Linux" and is_root and engine.uses_default_socket() and engine.is_debian()


def provision(cfg: LabConfig) -> None:
    """Run the Debian provisioning script (idempotent), showing each of its steps as it happens."""
    commands.run(["bash", str(PROVISION_SCRIPT)], env={ENV_LAB_DIR: str(cfg.lab_dir)}, timeout=3600,
                 on_line=lambda line: print(line, flush=True))


def _provisioned(cfg: LabConfig) -> bool:
    """What the provisioning script would install is already here (checked without running it)."""
    tools = all(shutil.which(t) for t in ("docker-registry", "skopeo", "mmdebstrap", "arch-test"))
    handlers = all((emulation.BINFMT / h).exists() for h in ("qemu-aarch64", "qemu-arm"))
    debs = all(list((cfg.lab_dir / "base" / "debs").glob(f"busybox-static_*_{p.arch.debian}.deb"))
               for p in cfg.platforms)
    return tools and handlers and debs


def _ensure_engine(cfg: LabConfig, actions: list[str]) -> engine.EngineFacts:
    if can_provision(_pyplatform.system(), os.geteuid() == 0):
        if not (engine.answers() and _provisioned(cfg)):
            provision(cfg)
            actions.append("ran the provisioning script")
    return engine.facts()


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
                "Debian: apt-get install docker-buildx (or run scripts/provision-debian.sh); "
                "macOS: update Docker Desktop, which ships buildx",
            ) from None
        raise


# --- registry ------------------------------------------------------------------------------------


def _is_guard_process(pid: int) -> bool:
    try:
        return b"multiarch_kit.registry_guard" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _port_state(port: int) -> str:
    """``free``, ``registry`` (something answers the v2 API) or ``other``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return "free"
    return "registry" if registry.ping(f"127.0.0.1:{port}") else "other"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pids(state: dict | None) -> list[int]:
    state = state or {}
    listed = state.get("pids", [state.get("pid")])  # a lab from before the guard recorded one "pid"
    return [p for p in listed if isinstance(p, int)] if isinstance(listed, list) else []


def registry_info(cfg: LabConfig) -> RegistryInfo:
    """Who runs the registry on the lab port, without changing anything."""
    state = _read_json(cfg.state_file)
    answers = registry.ping(cfg.registry_address)
    ours = bool(state) and state.get("port") == cfg.registry_port and (
        state.get("kind") == "registry:2 container" or any(commands.alive(p) for p in _pids(state))
    )
    kind = state["kind"] if ours else "external"
    return RegistryInfo(cfg.registry_address, cfg.registry_host, kind, ours and answers, answers)


def _registry_config(cfg: LabConfig) -> Path:
    root = cfg.lab_dir / "registry"
    (root / "data").mkdir(parents=True, exist_ok=True)
    path = root / "config.yml"
    path.write_text(
        "# Written by multiarch-kit's lab: distribution's config. It listens on a private Unix socket; the\n"
        "# lab's guard (multiarch_kit/registry_guard.py) serves it on 127.0.0.1.\n"
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  net: unix\n  addr: {cfg.registry_socket}\n"
    )
    return path


def _wait_for(what, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.05)
    return False


def start_registry(cfg: LabConfig) -> str:
    """Serve the lab registry on its port (started, or "reused" when a registry already answers there)."""
    state = _port_state(cfg.registry_port)
    stranded = registry.stranded_guard(cfg.registry_address) if state == "other" else None
    if stranded and _is_guard_process(stranded):
        # A guard of the lab's whose registry has gone (its record lost, say): replace the pair.
        commands.stop(stranded, echo=False)
        state = "free"
    if state == "other":
        raise KitError(
            f"port {cfg.registry_port} on 127.0.0.1 is taken by a program that is not a registry "
            "(on macOS: the AirPlay Receiver)",
            f"choose another port, e.g. export {ENV_PORT}=5001, or free port {cfg.registry_port}",
        )
    recorded = _read_json(cfg.state_file)
    ours = [p for p in _pids(recorded) if commands.alive(p)] if recorded and recorded.get("port") == cfg.registry_port else []
    if state == "registry" and (not ours or recorded.get("kind") == GUARDED and len(ours) == 2):
        return "reused"
    # Whatever an earlier lab left running in another shape (half of the pair, or no guard) goes first.
    for pid in ours:
        commands.stop(pid, echo=False)
    logs = cfg.lab_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("docker-registry")
    if binary:
        config = _registry_config(cfg)
        cfg.registry_socket.unlink(missing_ok=True)
        # GOGC=800: distribution's heap is small and its garbage collector ran on nearly every request; with it
        # collecting less often a manifest request costs about 40 % less CPU (measured here: 1.24 -> 0.74 ms).
        reg = commands.start([binary, "serve", config], log=logs / "registry.log", env={"GOGC": "800"})
        if not _wait_for(cfg.registry_socket.exists, 10):
            raise KitError(f"the registry did not open {cfg.registry_socket} within 10 s", f"see {logs / 'registry.log'}")
        guard = commands.start([sys.executable, "-m", "multiarch_kit.registry_guard", "--listen",
                                cfg.registry_address, "--upstream", f"unix:{cfg.registry_socket}"],
                               log=logs / "registry-guard.log")
        record = {"kind": GUARDED, "pids": [guard.pid, reg.pid], "port": cfg.registry_port}
    else:
        # Docker Desktop: the registry:2 container, published on loopback. Its builder reaches it from
        # inside Docker's VM, where a guard on this host could not stand in front of it.
        data = cfg.lab_dir / "registry" / "data"
        data.mkdir(parents=True, exist_ok=True)
        name = f"{REGISTRY_CONTAINER}-{cfg.registry_port}"
        commands.run(docker("rm", "-f", name), echo=False, check=False)
        done = commands.run(docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{cfg.registry_port}:5000",
                                   "-v", f"{data}:/var/lib/registry", "registry:2"), timeout=300)
        record = {"kind": "registry:2 container", "container": done.stdout.strip(), "port": cfg.registry_port}
    files.write_json(cfg.state_file, record)
    if not _wait_for(lambda: registry.ping(cfg.registry_address, timeout=0.5), 10):
        raise KitError(f"the registry did not answer on {cfg.registry_address} within 10 s",
                       f"see {logs / 'registry.log'} and {logs / 'registry-guard.log'}")
    return "started"


# --- base image ------------------------------------------------------------------------------------


def _want_standin(cfg: LabConfig, *, probe: bool = False) -> bool:
    """Stand-in or Docker Hub: the setting, else the recorded answer of one probe of Docker Hub."""
    if cfg.base != "auto":
        return cfg.base == "stand-in"
    recorded = _read_json(cfg.base_choice_file)
    if recorded is None or probe:
        recorded = {"hub_reachable": registry.hub_reachable(), "probed": time.strftime("%Y-%m-%dT%H:%M:%S")}
        files.write_json(cfg.base_choice_file, recorded)
    return not recorded.get("hub_reachable")


def base_image(cfg: LabConfig) -> base.BaseImage:
    """The base in use, without building anything (the stand-in's digest is None until pushed)."""
    if not _want_standin(cfg):
        return base.hub_base()
    head = registry.head_manifest(cfg.registry_address, base.STANDIN_REPOSITORY, base.STANDIN_TAG) \
        if registry.ping(cfg.registry_address) else None
    return base.standin_base(cfg.registry_host, head.digest if head else None)


def _ensure_base(cfg: LabConfig, actions: list[str], probe: bool) -> base.BaseImage:
    if not _want_standin(cfg, probe=probe):
        return base.hub_base()
    debs = base.find_debs(cfg.lab_dir / "base" / "debs", cfg.platforms)
    recipe = base.recipe(debs)
    stamp = cfg.lab_dir / "base" / "pushed-recipe.sha256"
    current = base_image(cfg)
    if current.digest and stamp.exists() and stamp.read_text() == recipe:
        return current
    context = cfg.lab_dir / "base" / "context"
    base.prepare_context(debs, context)
    base.build_standin(context, cfg.registry_host, cfg.platforms)
    stamp.write_text(recipe)
    actions.append("built and pushed the stand-in base image")
    return base_image(cfg)


def build_base(cfg: LabConfig, status: LabStatus, *, echo: bool = True) -> buildbase.BuildBase:
    """The base of the real workloads: Docker Hub's images, or the stand-in (made here on first use)."""
    if not _want_standin(cfg):
        return buildbase.hub()
    return buildbase.ensure(cfg.lab_dir, cfg.registry_host, cfg.registry_address, status.engine.platform,
                            cfg.platforms, echo=echo)


def build_base_status(cfg: LabConfig, status: LabStatus) -> buildbase.BuildBase | None:
    """The base of the real workloads as it is, building nothing: None while the stand-in is not made yet."""
    if not _want_standin(cfg):
        return buildbase.hub()
    return buildbase.current(cfg.lab_dir, cfg.registry_host, cfg.registry_address,
                             buildbase.recipe(status.engine.platform, cfg.platforms))


# --- proving each platform runs ---------------------------------------------------------------------


def _fingerprint(status: LabStatus) -> dict:
    """What a proof depends on: the engine, its emulators, the image the proof containers start from."""
    handlers = emulation.local_dump() if status.engine.shares_this_kernel else None
    return {"engine_id": status.engine.engine_id, "server_version": status.engine.server_version,
            "engine_platform": str(status.engine.platform), "base": status.base.pinned,
            "builder_platforms": [str(p) for p in status.builder.platforms],
            "binfmt": hashlib.sha256(handlers.encode()).hexdigest() if handlers is not None else "not visible here"}


def check_platforms(status: LabStatus, platforms: tuple[Platform, ...]) -> list[images.RunCheck]:
    """Run ``uname -m`` in a container of the base for each platform."""
    image = status.base.pinned
    handlers = emulation.read_handlers(image, status.engine.platform, local=status.engine.shares_this_kernel)
    return [images.run_check(p, image, emulation.emulator_for(p, status.engine.platform, handlers))
            for p in platforms]


def _prove(cfg: LabConfig, status: LabStatus, check: bool) -> None:
    fingerprint = _fingerprint(status)
    proof = _read_json(cfg.proof_file)
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


@contextlib.contextmanager
def exclusive(cfg: LabConfig):
    """One ``up`` or ``down`` at a time per lab folder; a second one waits for the first. Two at once would
    both start a registry on one port, or one would stop what the other is starting."""
    try:
        cfg.lab_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cfg.lab_dir / "lab.lock", "a")  # noqa: SIM115 - held for the whole block below
    except OSError as exc:
        raise KitError(f"cannot write the lab folder {cfg.lab_dir} ({exc.strerror})",
                       "set MULTIARCH_KIT_LAB to a folder you can write") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another 'lab up' or 'lab down' is at work on {cfg.lab_dir}: waiting for it", file=sys.stderr,
                  flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def up(cfg: LabConfig | None = None, *, check_runs: bool = True, check: bool = False, nodes: int = 1,
       build_base_now: bool = False) -> LabStatus:
    """Bring the lab up (idempotent) and make sure each platform runs: returns the lab's status.

    ``check`` runs the proof containers and probes Docker Hub again even when nothing changed;
    ``check_runs=False`` skips the proof entirely (the test suite's fixture). ``nodes`` > 1 starts that many
    engines in all (each extra one a Docker context ``multiarch-kit-node2``...); ``build_base_now`` makes the
    real workloads' build base now rather than on first use.
    """
    cfg = cfg or LabConfig.from_env()
    if nodes < 1:
        raise KitError(f"--nodes {nodes}: the lab has at least its own engine", "use --nodes 2 or more for extra engines")
    with exclusive(cfg):
        return _up(cfg, check_runs=check_runs, check=check, nodes=nodes, build_base_now=build_base_now)


def _up(cfg: LabConfig, *, check_runs: bool, check: bool, nodes: int, build_base_now: bool) -> LabStatus:
    actions: list[str] = []
    facts = _ensure_engine(cfg, actions)
    version, builder = buildx_facts()
    if not exports_type_docker(facts, builder):
        raise KitError("the builder cannot export type=docker: the engine keeps images in the classic store",
                       engine.IMAGE_STORE_FIX)
    if start_registry(cfg) == "started":
        actions.append(f"started the registry on {cfg.registry_address}")
    chosen = _ensure_base(cfg, actions, probe=check)
    status = LabStatus(facts, version, builder, registry_info(cfg), chosen, actions=actions)
    for index in range(2, nodes + 1):
        if engines.start(engines.node(cfg.lab_dir, index)):
            actions.append(f"started engine {engines.node(cfg.lab_dir, index).name}")
    status.nodes = [n for n in engines.known(cfg.lab_dir) if n.running]
    if build_base_now:
        build_base(cfg, status)
    if check_runs:
        _prove(cfg, status, check)
    return status


def status(cfg: LabConfig | None = None) -> LabStatus:
    """The lab as it is, changing nothing (raises when the engine does not answer)."""
    cfg = cfg or LabConfig.from_env()
    facts = engine.facts()
    version, builder = buildx_facts()
    return LabStatus(facts, version, builder, registry_info(cfg), base_image(cfg),
                     nodes=[n for n in engines.known(cfg.lab_dir) if n.running])


def down(cfg: LabConfig | None = None) -> list[str]:
    """Stop what ``up()`` started (registry, and the engine if the lab provisioned it); returns what stopped."""
    cfg = cfg or LabConfig.from_env()
    with exclusive(cfg):
        return _down(cfg)


def _down(cfg: LabConfig) -> list[str]:
    stopped: list[str] = []
    state = _read_json(cfg.state_file)
    if state and state.get("container"):
        commands.run(docker("rm", "-f", state["container"]), check=False)
        stopped.append("registry container")
    elif state:
        running = [p for p in _pids(state) if commands.alive(p)]
        for pid in running:
            commands.stop(pid, echo=False)
        if running:
            stopped.append(f"registry and its guard (pids {', '.join(map(str, running))})")
    cfg.state_file.unlink(missing_ok=True)
    cfg.registry_socket.unlink(missing_ok=True)
    for n in engines.known(cfg.lab_dir):  # the extra engines first: they use the first engine's containerd
        if engines.stop(n):
            stopped.append(f"engine {n.name}")
    # The provisioning script records the daemons it started; stop dockerd before its containerd.
    for name in ("dockerd", "containerd"):
        pid_file = cfg.lab_dir / "run" / f"{name}.pid"
        if pid_file.exists():
            text = pid_file.read_text().strip()
            if text.isdigit() and commands.stop(int(text), echo=False):
                stopped.append(f"{name} (pid {text})")
            pid_file.unlink()
    return stopped
