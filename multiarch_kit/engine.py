"""The Docker engine the lab builds on, read through the ``docker`` CLI (the kit's one transport to it).

The engine's platform is what matters for "native or emulated", not the Python process's: on an M2
Mac with Docker Desktop the engine is linux/arm64 even when a notebook runs under an x86 Python.
"""

from __future__ import annotations

import json
import os
import platform as _pyplatform
from dataclasses import dataclass
from pathlib import Path

from . import commands
from .commands import Command
from .errors import CommandError, KitError
from .platforms import Platform, from_uname

DEFAULT_SOCKET = "/var/run/docker.sock"
IMAGE_STORE_FIX = (
    "turn on the containerd image store: Docker Desktop: Settings > General > 'Use containerd for pulling and "
    "storing images'; Linux: add {\"features\":{\"containerd-snapshotter\":true}} to /etc/docker/daemon.json and "
    "restart dockerd; or use a docker-container builder (docker buildx create --use --driver docker-container)"
)


def docker(*args: object, context: str | None = None) -> Command:
    """``docker [--context NAME] ARGS...``: every docker command line the kit runs starts here."""
    return Command("docker").flag("--context", context).add(*args)


@dataclass
class EngineFacts:
    """What the engine says about itself (``docker info`` and ``docker version``)."""

    endpoint: str
    engine_id: str  # changes when the engine's data root is recreated
    server_version: str
    api_version: str
    platform: Platform  # the engine's own platform (linux/arm64 on an M2 with Docker Desktop)
    kernel: str
    operating_system: str  # e.g. "Debian GNU/Linux 13 (trixie)" or "Docker Desktop"
    storage_driver: str
    containerd_store: bool  # images kept by containerd's snapshotters (multi-platform aware)
    containerd_version: str

    @property
    def image_store(self) -> str:
        return "containerd" if self.containerd_store else f"classic ({self.storage_driver})"

    @property
    def shares_this_kernel(self) -> bool:
        """Whether the engine runs on this machine's own kernel (so /proc here is the engine's /proc)."""
        return (_pyplatform.system() == "Linux" and self.endpoint.startswith("unix://")
                and self.kernel == _pyplatform.release())


def endpoint(context: str | None = None) -> str:
    """Where the engine is expected: the context's host, DOCKER_HOST, else the default local socket."""
    if context:
        done = commands.run(docker("context", "inspect", context, "--format", "{{.Endpoints.docker.Host}}"),
                            echo=False, check=False, timeout=30)
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else f"context {context}"
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def uses_default_socket() -> bool:
    """True when DOCKER_HOST is unset or names the default local socket (the one the lab may provision)."""
    return endpoint() in (f"unix://{DEFAULT_SOCKET}", "unix:///run/docker.sock")


def _json(argv: Command, context: str | None) -> dict:
    try:
        done = commands.run(argv, echo=False, timeout=60)
    except CommandError as exc:
        raise not_answering_error(exc.stderr, context) from None
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise KitError(f"`{commands.shell_line(argv)}` did not print JSON", "check the docker CLI installation") from None
    if not isinstance(data, dict):
        raise KitError(f"`{commands.shell_line(argv)}` printed {type(data).__name__}, not an object",
                       "check the docker CLI installation")
    return data


def facts(context: str | None = None) -> EngineFacts:
    """Read the engine's facts, or raise a one-line :class:`KitError` when it does not answer."""
    info = _json(docker("info", "--format", "{{json .}}", context=context), context)
    if not info.get("ServerVersion"):  # the CLI prints client facts and exits 0 on some versions
        raise not_answering_error(" ".join(map(str, info.get("ServerErrors") or [])), context)
    version = _json(docker("version", "--format", "{{json .}}", context=context), context)
    server = version.get("Server") if isinstance(version.get("Server"), dict) else {}
    components = server.get("Components") if isinstance(server.get("Components"), list) else []
    containerd = next((c for c in components if isinstance(c, dict) and c.get("Name") == "containerd"), {})
    driver_status = dict(tuple(x) for x in info.get("DriverStatus") or [] if isinstance(x, list) and len(x) == 2)
    arch = from_uname(str(info.get("Architecture", "")))
    return EngineFacts(
        endpoint=endpoint(context),
        engine_id=str(info.get("ID", "")),
        server_version=str(info.get("ServerVersion", "")),
        api_version=str(server.get("ApiVersion", "")),
        platform=Platform(str(info.get("OSType") or "linux"), arch.architecture, arch.variant),
        kernel=str(info.get("KernelVersion", "")),
        operating_system=str(info.get("OperatingSystem", "")),
        storage_driver=str(info.get("Driver", "")),
        containerd_store=str(driver_status.get("driver-type", "")).startswith("io.containerd.snapshotter"),
        containerd_version=str(containerd.get("Version", "")),
    )


def answers(context: str | None = None) -> bool:
    """Whether the engine answers at all (``docker version`` reaches the server)."""
    done = commands.run(docker("version", "--format", "{{.Server.Version}}", context=context), echo=False,
                        check=False, timeout=20)
    return done.returncode == 0 and bool(done.stdout.strip())


def not_answering_error(stderr: str = "", context: str | None = None) -> KitError:
    """The error for an engine that does not answer, with the fix that fits this host."""
    where = endpoint(context)
    if "permission denied" in stderr.lower():
        return KitError(
            f"permission denied on the Docker socket ({where})",
            "add your user to the 'docker' group (sudo usermod -aG docker $USER, then log in again) or run as root",
        )
    if context:
        return KitError(f"the engine of docker context {context!r} ({where}) does not answer",
                        f"start it, or check the context with 'docker --context {context} info'")
    fix = engine_fix(_pyplatform.system(), os.geteuid() == 0, is_debian(), uses_default_socket())
    return KitError(f"no Docker engine answers at {where}", fix)


def engine_fix(system: str, is_root: bool, debian: bool, default_socket: bool) -> str:
    """How to get an engine on this kind of host (the lab provisions one only on Debian, as root)."""
    if system == "Darwin":
        return "start Docker Desktop (or wait until its whale icon stops animating), then retry"
    if not default_socket:
        return "start the engine DOCKER_HOST names, or unset DOCKER_HOST to use the local one"
    if system != "Linux" or not debian:
        return "install and start Docker Engine (https://docs.docker.com/engine/install/), then retry"
    if not is_root:
        return "provisioning an engine needs root: run 'sudo make run' (or 'sudo scripts/provision-debian.sh' once)"
    return "run 'multiarch-kit lab up' (it provisions the engine on Debian) or start dockerd yourself"


def is_debian() -> bool:
    """Whether this host runs Debian (the one system the lab provisions by itself)."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return any(line.strip() == "ID=debian" for line in text.splitlines())
