"""The Docker engine the lab builds on: what the kit asks it for itself, and the ``docker`` command lines.

Two ways in, one rule (ARCHITECTURE.md): the reader's commands (build, load, push, run...) are ``docker``
command lines, built by :func:`docker` and printed as they run; what the kit asks the engine for its own use
(its version and info, as :class:`EngineFacts`) goes through docker-py's API client, with typed answers and
nothing printed. Both reach the same engine: DOCKER_HOST, else the Docker context (named, ``DOCKER_CONTEXT``
or the current one).

The engine's platform is what matters for "native or emulated", not the Python process's: on an M2
Mac with Docker Desktop the engine is linux/arm64 even when a notebook runs under an x86 Python.
"""

from __future__ import annotations

import json
import os
import platform as _pyplatform
from dataclasses import dataclass
from pathlib import Path

import docker as docker_sdk
import requests
from docker.context import ContextAPI
from docker.tls import TLSConfig

from ..core import commands
from ..core.commands import Command
from ..core.errors import KitError
from ..oci.platforms import Platform, from_uname

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
    hub_mirrors: tuple[str, ...] = ()  # registry-mirrors: where the engine pulls Docker Hub's images from first

    @property
    def image_store(self) -> str:
        return "containerd" if self.containerd_store else f"classic ({self.storage_driver})"

    @property
    def shares_this_kernel(self) -> bool:
        """Whether the engine runs on this machine's own kernel (so /proc here is the engine's /proc)."""
        return (_pyplatform.system() == "Linux" and self.endpoint.startswith("unix://")
                and self.kernel == _pyplatform.release())


@dataclass(frozen=True)
class Endpoint:
    """Where a Docker context points: its host and, for TLS, its certificates."""

    host: str
    tls: TLSConfig | bool = False


def _context_endpoint(name: str) -> Endpoint | None:
    """The named context's endpoint, read by the docker CLI (None: no such context).

    docker-py's ``ContextAPI.get_context`` finds the CLI's context store only beside a ``config.json``, which
    a machine that never logged in or switched contexts does not have; the CLI always finds it.
    """
    done = commands.run(docker("context", "inspect", name), echo=False, check=False, timeout=30)
    try:
        ctx = json.loads(done.stdout)[0] if done.returncode == 0 else {}
    except (ValueError, IndexError, KeyError):
        ctx = {}
    endpoint = (ctx.get("Endpoints") or {}).get("docker") or {}
    if not endpoint.get("Host"):
        return None
    material = set((ctx.get("TLSMaterial") or {}).get("docker") or [])
    if not material:
        return Endpoint(endpoint["Host"])
    tls_dir = Path((ctx.get("Storage") or {}).get("TLSPath", "")) / "docker"
    has_cert = {"cert.pem", "key.pem"} <= material
    cert = (str(tls_dir / "cert.pem"), str(tls_dir / "key.pem")) if has_cert else None
    ca = str(tls_dir / "ca.pem") if "ca.pem" in material else None
    return Endpoint(endpoint["Host"], TLSConfig(client_cert=cert, ca_cert=ca,
                                                verify=not endpoint.get("SkipTLSVerify", False)))


def context_host(name: str) -> str | None:
    """The host the named Docker context points at (``ssh://...``, ``unix://...``), or None when there is none."""
    found = _context_endpoint(name)
    return found.host if found else None


def context_name(context: str | None = None) -> str | None:
    """The Docker context the docker CLI would use: ``context``, else (without DOCKER_HOST) ``DOCKER_CONTEXT``
    or the current one; None for DOCKER_HOST or the default context."""
    if context or os.environ.get("DOCKER_HOST"):
        return context or None
    current = os.environ.get("DOCKER_CONTEXT") or getattr(ContextAPI.get_current_context(), "Name", "default")
    return None if current == "default" else current


def endpoint(context: str | None = None) -> str:
    """Where the engine is expected: the context's host, DOCKER_HOST, else the default local socket."""
    name = context_name(context)
    if name:
        found = _context_endpoint(name)
        return found.host if found else f"context {name}"
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def client(context: str | None = None, timeout: float = 60) -> docker_sdk.APIClient:
    """A docker-py API client for the engine the docker CLI would reach (same DOCKER_HOST, same context).

    The API version is negotiated with the engine, so an older or newer engine answers in its own version.
    Raises the one-line "engine not answering" :class:`KitError` when nothing answers there.
    """
    name = context_name(context)
    found = _context_endpoint(name) if name else None
    if name and found is None:
        raise not_answering_error(f"context {name!r} does not exist", name)
    try:
        if found is None:  # DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the default socket
            return docker_sdk.APIClient(version="auto", timeout=timeout, **docker_sdk.utils.kwargs_from_env())
        return docker_sdk.APIClient(base_url=found.host, tls=found.tls, version="auto", timeout=timeout,
                                    use_ssh_client=found.host.startswith("ssh://"))
    except (docker_sdk.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise not_answering_error(str(exc), name) from None


def uses_default_socket() -> bool:
    """True when DOCKER_HOST is unset or names the default local socket (the one the lab may provision)."""
    return endpoint() in (f"unix://{DEFAULT_SOCKET}", "unix:///run/docker.sock")


def facts(context: str | None = None) -> EngineFacts:
    """Read the engine's facts (its info and version, through the API), or raise a one-line :class:`KitError`
    when it does not answer."""
    try:
        with client(context) as api:
            info, server = api.info(), api.version()
    except (docker_sdk.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise not_answering_error(str(exc), context_name(context)) from None
    if not isinstance(info, dict) or not isinstance(server, dict) or not info.get("ServerVersion"):
        raise KitError(f"the engine at {endpoint(context)} sent info or version that is not an object",
                       "check that DOCKER_HOST or the context points at a Docker engine")
    return facts_from(info, server, endpoint(context))


def facts_from(info: dict, server: dict, where: str) -> EngineFacts:
    """The :class:`EngineFacts` in the engine's ``/info`` and ``/version`` answers (docker-py's ``info()`` and
    ``version()`` dicts, the JSON of ``docker info`` and ``docker version --format '{{json .Server}}'``), for
    the engine at ``where``. Kept apart from :func:`facts` so recorded answers (Docker Desktop's) are read the
    same way as a live engine's."""
    components = server.get("Components") if isinstance(server.get("Components"), list) else []
    containerd = next((c for c in components if isinstance(c, dict) and c.get("Name") == "containerd"), {})
    driver_status = dict(tuple(x) for x in info.get("DriverStatus") or [] if isinstance(x, list) and len(x) == 2)
    arch = from_uname(str(info.get("Architecture", "")))
    return EngineFacts(
        endpoint=where,
        engine_id=str(info.get("ID", "")),
        server_version=str(info.get("ServerVersion", "")),
        api_version=str(server.get("ApiVersion", "")),
        platform=Platform(str(info.get("OSType") or "linux"), arch.architecture, arch.variant),
        kernel=str(info.get("KernelVersion", "")),
        operating_system=str(info.get("OperatingSystem", "")),
        storage_driver=str(info.get("Driver", "")),
        containerd_store=str(driver_status.get("driver-type", "")).startswith("io.containerd.snapshotter"),
        containerd_version=str(containerd.get("Version", "")),
        hub_mirrors=tuple(str(m) for m in (info.get("RegistryConfig") or {}).get("Mirrors") or ()),
    )


def answers(context: str | None = None, *, host: str | None = None) -> bool:
    """Whether the engine answers at all (its API answers a ping); ``host`` (``unix://...``) asks an engine
    that no context names yet, such as one just started."""
    try:
        with (docker_sdk.APIClient(base_url=host, version="auto", timeout=20) if host
              else client(context, timeout=20)) as api:
            return api.ping() is True
    except (KitError, docker_sdk.errors.DockerException, requests.exceptions.RequestException):
        return False


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
        return "provisioning an engine needs root: run 'sudo make run' (or 'sudo multiarch-kit lab up' once)"
    return "run 'multiarch-kit lab up' (it provisions the engine on Debian) or start dockerd yourself"


def is_debian() -> bool:
    """Whether this host runs Debian (the one system the lab provisions by itself)."""
    try:
        return _pyplatform.freedesktop_os_release().get("ID") == "debian"
    except OSError:  # no os-release file: not a Linux distribution
        return False
