"""The lab's settings, made from the environment's (:class:`~multiarch_kit.core.settings.Settings`): its folder,
its registry's port, the base it uses.

Everything the lab keeps (registry storage, logs, the stand-ins' build contexts, a record of what it started
and of what it last proved) lives under one directory, ``$MULTIARCH_KIT_LAB`` (default
``~/.local/state/multiarch-kit``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..core import files, settings
from ..core.errors import KitError
from ..core.settings import ENV_REGISTRY, Settings
from ..oci.platforms import LAB_PLATFORMS, Platform

DEFAULT_PORT = 5000


@dataclass(frozen=True)
class LabPaths:
    """The lab folder's layout, in one place: every file and folder the lab keeps, by what it is for."""

    root: Path

    registry = property(lambda self: self.root / "registry")  # the lab registry: its storage, config, records
    port_record = property(lambda self: self.root / "registry" / "port.json")  # the port lab up moved to
    started = property(lambda self: self.root / "registry" / "started.json")  # what the lab started, to stop it
    logs = property(lambda self: self.root / "logs")
    run = property(lambda self: self.root / "run")  # pid files of the daemons the provisioning started
    lock = property(lambda self: self.root / "lab.lock")  # one lab up or down at a time
    proof = property(lambda self: self.root / "proven.json")  # the last proof that each platform runs
    base_choice = property(lambda self: self.root / "base" / "choice.json")  # Docker Hub or the stand-ins
    debs = property(lambda self: self.root / "base" / "debs")  # busybox-static per architecture
    nodes = property(lambda self: self.root / "nodes")  # the extra engines, a folder each
    arm64_vm = property(lambda self: self.root / "arm64-vm")
    sources = property(lambda self: self.root / "sources")  # fetched workload sources
    splits = property(lambda self: self.root / "splits")  # records of split builds, to resume them
    host_id = property(lambda self: self.root / "host-id")

    def standin(self, folder: str) -> Path:
        """A stand-in's folder: its recipe stamp, build context and root filesystems."""
        return self.root / folder


@dataclass(frozen=True)
class LabConfig:
    """Where the lab keeps its state and which port its registry uses."""

    lab_dir: Path
    registry_port: int = DEFAULT_PORT
    platforms: tuple[Platform, ...] = LAB_PLATFORMS
    base: str = "auto"
    # Set by the reader (the environment): the lab never moves such a port, it says the port is taken instead.
    port_from_env: bool = False
    registry_name: str = "localhost"  # how references name the registry's host (MULTIARCH_KIT_REGISTRY's host)
    settings: Settings | None = field(default=None, repr=False, compare=False)  # what it was made from

    @classmethod
    def of(cls, given: Settings) -> LabConfig:
        """The lab of these settings: the reader's port, else the one ``lab up`` recorded, else 5000."""
        if given.registry_port is not None:
            return cls(lab_dir=given.lab_dir, registry_port=given.registry_port, base=given.base,
                       port_from_env=True, registry_name=given.registry_name, settings=given)
        return cls(lab_dir=given.lab_dir, registry_port=recorded_port(given.lab_dir) or DEFAULT_PORT,
                   base=given.base, settings=given)

    @classmethod
    def from_env(cls) -> LabConfig:
        """The lab of this process's settings: what an edge calls (a one-line error for a bad value)."""
        return cls.of(settings.read())

    @property
    def env(self) -> Settings:
        """The settings this lab was made from (those of the lab folder alone when it was made by hand)."""
        return self.settings or Settings(lab_dir=self.lab_dir)

    @property
    def port_record(self) -> Path:
        return self.paths.port_record

    @property
    def named(self) -> bool:
        """Whether the reader named the registry an address other machines may reach (not loopback)."""
        return not _loopback_name(self.registry_name)

    @property
    def registry_address(self) -> str:
        """Where the kit's own client reaches the registry: loopback, or the name the reader gave."""
        return self.registry_host if self.named else f"127.0.0.1:{self.registry_port}"

    @property
    def registry_host(self) -> str:
        """How image references name the lab registry: ``localhost:<port>`` (every engine treats localhost as a
        plain-HTTP registry), or ``MULTIARCH_KIT_REGISTRY``, which the engines must be told to trust."""
        return f"{self.registry_name}:{self.registry_port}"

    def listen_address(self) -> str:
        """The ``IP:port`` the registry listens on: loopback, or the address the reader's name resolves to here
        (a one-line error when it does not resolve, or resolves to no address of this machine)."""
        if not self.named:
            return f"127.0.0.1:{self.registry_port}"
        try:
            ip = socket.getaddrinfo(self.registry_name, self.registry_port, socket.AF_INET)[0][4][0]
        except (socket.gaierror, IndexError):
            raise KitError(f"{ENV_REGISTRY}={self.registry_host}: {self.registry_name} does not resolve here",
                           "name this machine by an IPv4 address it has (hostname -I) or a name in /etc/hosts")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((ip, 0))  # only an address of this machine's own can be bound
        except OSError:
            raise KitError(f"{ENV_REGISTRY}={self.registry_host}: {ip} is not an address of this machine",
                           "the lab serves its registry here: name one of this machine's addresses (hostname -I)")
        return f"{ip}:{self.registry_port}"

    @property
    def paths(self) -> LabPaths:
        return LabPaths(self.lab_dir)

    @property
    def state_file(self) -> Path:
        return self.paths.started

    @property
    def registry_socket(self) -> Path:
        return self.paths.registry / f"registry-{self.registry_port}.sock"

    @property
    def proof_file(self) -> Path:
        return self.paths.proof

    @property
    def base_choice_file(self) -> Path:
        return self.paths.base_choice


def _loopback_name(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def recorded_port(lab_dir: Path) -> int | None:
    """The port ``lab up`` chose and recorded, so every later command and notebook uses the same address."""
    data = files.read_json(LabPaths(lab_dir).port_record)
    port = data.get("port") if isinstance(data, dict) else None
    return port if isinstance(port, int) and 0 < port < 65536 else None
