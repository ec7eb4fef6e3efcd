"""The Docker engine the lab builds on, read through the Docker SDK for Python.

The engine's platform is what matters for "native or emulated", not the Python process's: on an M2
Mac with Docker Desktop the engine is linux/arm64 even when a notebook runs under an x86 Python.
"""

from __future__ import annotations

import os
import platform as _pyplatform
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from .errors import KitError
from .platforms import go_arch

DEFAULT_SOCKET = "/var/run/docker.sock"


@dataclass
class EngineFacts:
    """What the engine says about itself (``docker info`` / ``docker version``)."""

    endpoint: str
    server_version: str
    api_version: str
    os: str
    architecture: str  # Go name: amd64, arm64
    operating_system: str  # e.g. "Debian GNU/Linux 13 (trixie)" or "Docker Desktop"
    storage_driver: str
    containerd_store: bool  # images kept by containerd's snapshotters (multi-platform aware)
    containerd_version: str
    root_dir: str
    ncpu: int

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.architecture}"

    @property
    def image_store(self) -> str:
        return "containerd" if self.containerd_store else f"classic ({self.storage_driver})"


def endpoint() -> str:
    """Where the engine is expected: DOCKER_HOST, else the default local socket."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def uses_default_socket() -> bool:
    """True when DOCKER_HOST is unset or names the default local socket (the one the lab may provision)."""
    return endpoint() in (f"unix://{DEFAULT_SOCKET}", "unix:///run/docker.sock")


def connect(timeout: float = 30) -> docker.DockerClient:
    """A Docker SDK client whose engine has answered a ping, or a one-line :class:`KitError`."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise not_answering_error(exc) from None


def not_answering_error(exc: Exception | None = None) -> KitError:
    """The error for an engine that does not answer, with the fix that fits this host."""
    where = endpoint()
    text = str(exc or "")
    if "Permission denied" in text or "PermissionError" in text:
        return KitError(
            f"permission denied on the Docker socket ({where})",
            "add your user to the 'docker' group (sudo usermod -aG docker $USER, then log in again) or run as root",
        )
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


def facts(client: docker.DockerClient) -> EngineFacts:
    """Read the engine's facts."""
    info = client.info()
    ver = client.version()
    driver_status = dict(tuple(x) for x in info.get("DriverStatus") or [] if len(x) == 2)
    containerd = next((c for c in ver.get("Components", []) if c.get("Name") == "containerd"), {})
    return EngineFacts(
        endpoint=endpoint(),
        server_version=info.get("ServerVersion", ""),
        api_version=ver.get("ApiVersion", ""),
        os=info.get("OSType", "linux"),
        architecture=go_arch(info.get("Architecture", "")),
        operating_system=info.get("OperatingSystem", ""),
        storage_driver=info.get("Driver", ""),
        containerd_store=driver_status.get("driver-type", "").startswith("io.containerd.snapshotter"),
        containerd_version=containerd.get("Version", ""),
        root_dir=info.get("DockerRootDir", ""),
        ncpu=int(info.get("NCPU") or 0),
    )


IMAGE_STORE_FIX = (
    "turn on the containerd image store: Docker Desktop: Settings > General > 'Use containerd for pulling and "
    "storing images'; Linux: add {\"features\":{\"containerd-snapshotter\":true}} to /etc/docker/daemon.json and "
    "restart dockerd; or use a docker-container builder (docker buildx create --use --driver docker-container)"
)
