"""The Docker engine the lab builds on, as a value: where it is, what it says about itself, what kind it is.

Two ways in, one rule (ARCHITECTURE.md): the reader's commands (build, load, push, run...) are ``docker``
command lines, built by :func:`~multiarch_kit.core.commands.docker` and printed as they run; what the kit asks the
engine for its own use (its version and info) goes through docker-py's API client, with typed answers and nothing
printed. Both reach the same engine: DOCKER_HOST, else the Docker context (named, ``DOCKER_CONTEXT`` or the current
one).

An edge reads the engine once, with :func:`connect`: at most one ``docker context inspect`` and one info and
version, into an :class:`Engine` that is passed down from there. Its :class:`Kind` (this machine's own engine, a
lab engine, the lab's arm64 VM, Docker Desktop, another machine's) is read then, from the context's description
and the engine's own answers, and kept as a property.

The engine's platform is what matters for "native or emulated", not the Python process's: on an M2
Mac with Docker Desktop the engine is linux/arm64 even when a notebook runs under an x86 Python.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import platform as _pyplatform
from dataclasses import dataclass, fields

import docker as docker_sdk
import requests
from docker.tls import TLSConfig

from ..core import settings
from ..core.commands import Command, docker
from ..core.errors import KitError
from ..core.settings import Settings
from ..oci.platforms import Platform, from_uname
from . import contexts

DEFAULT_SOCKET = "/var/run/docker.sock"
IMAGE_STORE_FIX = (
    "turn on the containerd image store: Docker Desktop: Settings > General > 'Use containerd for pulling and "
    "storing images'; Linux: add {\"features\":{\"containerd-snapshotter\":true}} to /etc/docker/daemon.json and "
    "restart dockerd; or use a docker-container builder (docker buildx create --use --driver docker-container)"
)
_ERRORS = (docker_sdk.errors.DockerException, requests.exceptions.RequestException)


class Kind(enum.Enum):
    """What an engine is to the lab, decided once when it is read."""

    LOCAL = "this machine's engine"
    LAB_NODE = "a lab engine beside it"
    ARM64_VM = "the lab's arm64 VM"
    DESKTOP = "Docker Desktop"
    REMOTE = "another machine's engine"


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
    # What the engine reaches over plain HTTP besides loopback: registries by name, and networks (insecure-registries)
    insecure_registries: tuple[str, ...] = ()
    insecure_networks: tuple[str, ...] = ()

    def trusts(self, host: str) -> bool:
        """Whether the engine pushes to and pulls from ``host`` (``name:port``) over plain HTTP: loopback, a
        registry its ``insecure-registries`` names, or one whose IPv4 address is in a network listed there."""
        name = host.rpartition(":")[0] or host
        if host in self.insecure_registries or name == "localhost":
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        return ip.is_loopback or any(ip in ipaddress.ip_network(n, strict=False) for n in self.insecure_networks)

    @property
    def image_store(self) -> str:
        return "containerd" if self.containerd_store else f"classic ({self.storage_driver})"

    @property
    def shares_this_kernel(self) -> bool:
        """Whether the engine runs on this machine's own kernel (so /proc here is the engine's /proc)."""
        return (_pyplatform.system() == "Linux" and self.endpoint.startswith("unix://")
                and self.kernel == _pyplatform.release())


@dataclass(frozen=True)
class Where:
    """Where an engine is: the context the docker CLI is told (None: DOCKER_HOST or the default one), its host and
    TLS, and what the context says it is."""

    context: str | None
    host: str
    tls: TLSConfig | bool = False
    description: str = ""
    named: bool = False  # the caller named the context; else the CLI reaches it by itself (DOCKER_CONTEXT...)

    @property
    def cli_context(self) -> str | None:
        """What a ``docker`` line needs to say to reach this engine: ``--context NAME`` only when it was named."""
        return self.context if self.named else None

    @property
    def uses_default_socket(self) -> bool:
        """Whether it is the default local socket (the one the lab may provision)."""
        return self.context is None and self.host in (f"unix://{DEFAULT_SOCKET}", "unix:///run/docker.sock")


def locate(given: Settings, context: str | None = None) -> Where:
    """Where the engine of ``context`` (default: the one the CLI would use) is: one ``docker context inspect`` for a
    named context, none otherwise."""
    name = context or contexts.current(given)
    if not name:
        return Where(None, given.docker_host or f"unix://{DEFAULT_SOCKET}")
    found = contexts.inspect(name)
    if found is None:
        raise KitError(f"there is no Docker context {name!r} here", "create it (docker context create NAME --docker "
                       "host=...), or name one that 'docker context ls' lists")
    return Where(name, found.host, found.tls, found.description, named=context is not None)


def api_client(where: Where, timeout: float = 60) -> docker_sdk.APIClient:
    """A docker-py API client for the engine at ``where`` (the API version negotiated, so an older or newer engine
    answers in its own). A one-line "engine not answering" :class:`KitError` when nothing answers there."""
    try:
        if where.context is None:  # DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the default socket
            kwargs = docker_sdk.utils.kwargs_from_env()
            kwargs.setdefault("base_url", where.host)
            return docker_sdk.APIClient(version="auto", timeout=timeout, **kwargs)
        return docker_sdk.APIClient(base_url=where.host, tls=where.tls, version="auto", timeout=timeout,
                                    use_ssh_client=where.host.startswith("ssh://"))
    except _ERRORS as exc:
        raise not_answering_error(str(exc), where) from None


@dataclass
class Engine(EngineFacts):
    """An engine as an edge read it: its facts, the context that reaches it, and its kind."""

    context: str | None = None  # its Docker context; None: DOCKER_HOST's engine or the default one
    tls: TLSConfig | bool = False
    kind: Kind = Kind.LOCAL
    named: bool = False  # the context was named by the caller (a node), not found in the environment

    @property
    def name(self) -> str:
        """The context's name as the docker CLI prints it (``default`` for DOCKER_HOST's engine)."""
        return self.context or "default"

    @property
    def is_arm64_vm(self) -> bool:
        return self.kind is Kind.ARM64_VM

    @property
    def where(self) -> Where:
        return Where(self.context, self.endpoint, self.tls, named=self.named)

    def docker(self, *args: object) -> Command:
        """A ``docker`` command line for this engine: with ``--context NAME`` when the engine was named, as one
        types it for another engine; without, for the one the environment names."""
        return docker(*args, context=self.context if self.named else None)


def connect(given: Settings | None = None, context: str | None = None, *, where: Where | None = None) -> Engine:
    """Read the engine once: where it is (:func:`locate`), its info and version through the API, its kind. A
    one-line :class:`KitError` when it does not answer."""
    where = where or locate(given or settings.read(), context)
    try:
        with api_client(where) as api:
            info, server = api.info(), api.version()
    except _ERRORS as exc:
        raise not_answering_error(str(exc), where) from None
    if not isinstance(info, dict) or not isinstance(server, dict) or not info.get("ServerVersion"):
        raise KitError(f"the engine at {where.host} sent info or version that is not an object",
                       "check that DOCKER_HOST or the context points at a Docker engine")
    found = facts_from(info, server, where.host)
    return Engine(**{f.name: getattr(found, f.name) for f in fields(EngineFacts)}, context=where.context,
                  tls=where.tls, kind=kind_of(where, found), named=where.named)


def facts(context: str | None = None) -> Engine:
    """The engine of ``context`` (default: the CLI's), read from this process's settings: a notebook's or a test's
    own edge. Below an edge, the :class:`Engine` it read is passed instead."""
    return connect(settings.read(), context)


def kind_of(where: Where, found: EngineFacts) -> Kind:
    """What the engine is: the lab's contexts say so in their description; Docker Desktop names itself."""
    if where.description == contexts.ARM64_VM:
        return Kind.ARM64_VM
    if where.description == contexts.LAB_NODE:
        return Kind.LAB_NODE
    if found.operating_system == "Docker Desktop":
        return Kind.DESKTOP
    return Kind.LOCAL if found.shares_this_kernel else Kind.REMOTE


def facts_from(info: dict, server: dict, where: str) -> EngineFacts:
    """The :class:`EngineFacts` in the engine's ``/info`` and ``/version`` answers (docker-py's ``info()`` and
    ``version()`` dicts, the JSON of ``docker info`` and ``docker version --format '{{json .Server}}'``), for
    the engine at ``where``. Kept apart from :func:`facts` so recorded answers (Docker Desktop's) are read the
    same way as a live engine's."""
    components = server.get("Components") if isinstance(server.get("Components"), list) else []
    containerd = next((c for c in components if isinstance(c, dict) and c.get("Name") == "containerd"), {})
    driver_status = dict(tuple(x) for x in info.get("DriverStatus") or [] if isinstance(x, list) and len(x) == 2)
    arch = from_uname(str(info.get("Architecture", "")))
    registries = info.get("RegistryConfig") if isinstance(info.get("RegistryConfig"), dict) else {}
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
        hub_mirrors=tuple(str(m) for m in registries.get("Mirrors") or ()),
        insecure_registries=tuple(sorted(str(name) for name, index in (registries.get("IndexConfigs") or {}).items()
                                         if isinstance(index, dict) and index.get("Secure") is False)),
        insecure_networks=tuple(str(n) for n in registries.get("InsecureRegistryCIDRs") or ()),
    )


def answers(where: Where | str | None = None, *, given: Settings | None = None) -> bool:
    """Whether the engine answers at all (its API answers a ping): at ``where``, a context's name, or (None) the
    one the settings name. A :class:`Where` of a bare host asks an engine no context names yet, one just started."""
    try:
        if not isinstance(where, Where):
            where = locate(given or settings.read(), where)
        with api_client(where, timeout=20) as api:
            return api.ping() is True
    except (KitError, *_ERRORS):
        return False


def not_answering_error(stderr: str, where: Where) -> KitError:
    """The error for an engine that does not answer, with the fix that fits this host."""
    if "permission denied" in stderr.lower():
        return KitError(
            f"permission denied on the Docker socket ({where.host})",
            "add your user to the 'docker' group (sudo usermod -aG docker $USER, then log in again) or run as root",
        )
    if where.context:
        return KitError(f"the engine of docker context {where.context!r} ({where.host}) does not answer",
                        f"start it, or check the context with 'docker --context {where.context} info'")
    fix = engine_fix(_pyplatform.system(), os.geteuid() == 0, is_debian(), where.uses_default_socket)
    return KitError(f"no Docker engine answers at {where.host}", fix)


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
