"""The lab registry's lifecycle: who serves the lab port, starting it, and stopping what the lab started.

On Debian the registry is Debian's ``docker-registry`` (distribution) on a private Unix socket, served on
127.0.0.1 by the lab's guard (``oci.guard``); without that binary (Docker Desktop) it is the
``registry:2`` container published on loopback. What the lab started is recorded in ``started.json``, so
``stop`` stops that and nothing else, and a registry someone else runs on the port is reused, never stopped.
When another program holds the port (on macOS 12 and later the AirPlay Receiver listens on 5000), the lab moves
to the next free port, unless the reader chose the port; :func:`choose_port` records the move, so every later
command and notebook reads the same address.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..core import commands, files
from ..core.commands import docker
from ..core.errors import KitError
from ..core.settings import ENV_PORT, ENV_REGISTRY
from ..oci import registry
from .config import LabConfig

PORT_TRIES = 20  # how far past a taken port the lab looks for a free one
REGISTRY_CONTAINER = "multiarch-kit-registry"
GUARDED = "docker-registry + guard"  # Debian's distribution on a Unix socket, served by the lab's guard
CONTAINER = "registry:2 container"


@dataclass
class RegistryInfo:
    """The lab registry and who runs it."""

    address: str
    host: str
    kind: str  # "docker-registry + guard" (Debian's binary behind the lab's guard), "registry:2 container", "external"
    started_by_lab: bool
    answers: bool


def _address(cfg: LabConfig) -> str:
    """Where the kit reaches the lab registry: over plain HTTP, the way it is served, also by a name the reader gave."""
    if cfg.named:
        registry.use_plain_http(cfg.registry_host)
    return cfg.registry_address


def _is_guard_process(pid: int) -> bool:
    return commands.runs(pid, "multiarch_kit.oci.guard")


def _port_state(port: int, ip: str = "127.0.0.1") -> str:
    """``free``, ``registry`` (something answers the v2 API) or ``other``, for ``port`` on ``ip``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        if s.connect_ex((ip, port)) != 0:
            return "free"
    return "registry" if registry.ping(f"{ip}:{port}") else "other"


def _stranded_guard(cfg: LabConfig) -> int | None:
    """A guard of the lab's on the port whose registry has gone (it answers 502 naming itself), or None."""
    pid = registry.stranded_guard(_address(cfg))
    return pid if pid and _is_guard_process(pid) else None


def choose_port(cfg: LabConfig) -> tuple[LabConfig, str | None]:
    """The settings with a port the lab registry can serve on, and the one line that says so if it moved.

    A port held by a program that is not a registry (and not a stranded guard of the lab's, which
    :func:`start_registry` replaces) is left alone: the lab takes the next free port, records it beside the
    registry's storage and says so. A port the reader set in the environment is never moved.
    """
    if cfg.port_from_env or _port_state(cfg.registry_port) != "other" or _stranded_guard(cfg):
        return cfg, None
    for port in range(cfg.registry_port + 1, min(cfg.registry_port + 1 + PORT_TRIES, 65536)):
        if _port_state(port) == "free":
            files.write_json(cfg.port_record, {"port": port, "taken": cfg.registry_port})
            return replace(cfg, registry_port=port), (
                f"port {cfg.registry_port} on 127.0.0.1 is taken by another program (on macOS, often the AirPlay "
                f"Receiver): the lab registry uses port {port}, recorded in {cfg.port_record} for every later "
                "command and notebook")
    raise KitError(f"ports {cfg.registry_port} to {cfg.registry_port + PORT_TRIES} on 127.0.0.1 are all taken",
                   f"free one, or choose one with export {ENV_PORT}=PORT")


def _pids(state: dict | None) -> list[int]:
    state = state or {}
    listed = state.get("pids", [state.get("pid")])  # a lab from before the guard recorded one "pid"
    return [p for p in listed if isinstance(p, int)] if isinstance(listed, list) else []


def _stop_if_elsewhere(cfg: LabConfig, listen: str) -> None:
    """The same storage asked for on another address (MULTIARCH_KIT_REGISTRY set or unset): the lab's own registry
    stops where it was, so that it can serve where asked."""
    recorded = files.read_json(cfg.state_file)
    if recorded and recorded.get("port") == cfg.registry_port and _listens(recorded) != listen:
        stop_registry(cfg)
        before = _listens(recorded).rpartition(":")[0]
        _wait_for(lambda: _port_state(cfg.registry_port, before) == "free", 10)


def _listens(record: dict) -> str:
    """Where a recorded registry listens (a record from before MULTIARCH_KIT_REGISTRY: loopback)."""
    return str(record.get("listen") or f"127.0.0.1:{record.get('port')}")


def registry_info(cfg: LabConfig) -> RegistryInfo:
    """Who runs the registry on the lab port, without changing anything."""
    state = files.read_json(cfg.state_file)
    answers = registry.ping(_address(cfg))
    ours = bool(state) and state.get("port") == cfg.registry_port and (
        state.get("kind") == CONTAINER or any(commands.alive(p) for p in _pids(state))
    )
    kind = state["kind"] if ours else "external"
    return RegistryInfo(cfg.registry_address, cfg.registry_host, kind, ours and answers, answers)


def _registry_config(cfg: LabConfig) -> Path:
    root = cfg.paths.registry
    (root / "data").mkdir(parents=True, exist_ok=True)
    path = root / "config.yml"
    path.write_text(
        "# Written by multiarch-kit's lab: distribution's config. It listens on a private Unix socket; the\n"
        "# lab's guard (multiarch_kit/oci/guard.py) serves it on 127.0.0.1.\n"
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
    """Serve the lab registry on its port (started, or "reused" when a registry already answers there), on
    loopback or on the address the reader named (:meth:`LabConfig.listen_address`)."""
    listen = cfg.listen_address()
    ip = listen.rpartition(":")[0]
    if cfg.named:
        print(f"warning: the lab registry serves {cfg.registry_host} over plain HTTP with no password: any machine "
              f"that reaches this address can push and pull (unset {ENV_REGISTRY} to keep it on loopback)", flush=True)
    _stop_if_elsewhere(cfg, listen)
    state = _port_state(cfg.registry_port, ip)
    stranded = _stranded_guard(cfg) if state == "other" else None
    if stranded:
        # A guard of the lab's whose registry has gone (its record lost, say): replace the pair.
        commands.stop(stranded, echo=False)
        state = "free"
    if state == "other":
        raise KitError(
            f"port {cfg.registry_port} on {ip} is taken by a program that is not a registry "
            "(on macOS: the AirPlay Receiver)",
            f"choose another port, e.g. export {ENV_PORT}=5001, or free port {cfg.registry_port}",
        )
    recorded = files.read_json(cfg.state_file)
    ours = [p for p in _pids(recorded) if commands.alive(p)] if recorded and recorded.get("port") == cfg.registry_port else []
    if state == "registry" and (not ours or recorded.get("kind") == GUARDED and len(ours) == 2):
        return "reused"
    # Whatever an earlier lab left running in another shape (half of the pair, or no guard) goes first.
    for pid in ours:
        commands.stop(pid, echo=False)
    logs = cfg.paths.logs
    logs.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("docker-registry")
    if binary:
        config = _registry_config(cfg)
        cfg.registry_socket.unlink(missing_ok=True)
        # GOGC=800: distribution's heap is small and its garbage collector ran on nearly every request; with it
        # collecting less often a manifest request costs about 40 % less CPU (measured here: 1.24 -> 0.74 ms).
        reg = commands.start([binary, "serve", config], log=logs / "registry.log", env={"GOGC": "800"})
        if not _wait_for(cfg.registry_socket.exists, 30):  # seconds on a loaded machine, a fraction idle
            raise KitError(f"the registry did not open {cfg.registry_socket} within 30 s", f"see {logs / 'registry.log'}")
        guard = commands.start([sys.executable, "-m", "multiarch_kit.oci.guard", "--listen",
                                listen, "--upstream", f"unix:{cfg.registry_socket}"],
                               log=logs / "registry-guard.log")
        record = {"kind": GUARDED, "pids": [guard.pid, reg.pid], "port": cfg.registry_port, "listen": listen}
    else:
        # Docker Desktop: the registry:2 container, published on loopback. Its builder reaches it from
        # inside Docker's VM, where a guard on this host could not stand in front of it.
        data = cfg.paths.registry / "data"
        data.mkdir(parents=True, exist_ok=True)
        name = f"{REGISTRY_CONTAINER}-{cfg.registry_port}"
        commands.run(docker("rm", "-f", name), echo=False, check=False)
        done = commands.run(docker("run", "-d", "--name", name, "-p", f"{listen}:5000",
                                   "-v", f"{data}:/var/lib/registry", "registry:2"), timeout=300)
        record = {"kind": CONTAINER, "container": done.stdout.strip(), "port": cfg.registry_port, "listen": listen}
    files.write_json(cfg.state_file, record)
    if not _wait_for(lambda: registry.ping(_address(cfg), timeout=0.5), 30):
        raise KitError(f"the registry did not answer on {cfg.registry_address} within 30 s",
                       f"see {logs / 'registry.log'} and {logs / 'registry-guard.log'}")
    return "started"


def stop_registry(cfg: LabConfig) -> list[str]:
    """Stop the registry the lab started (its container, or the registry and its guard); returns what stopped."""
    stopped: list[str] = []
    state = files.read_json(cfg.state_file)
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
    return stopped
