"""The lab's settings, read from the environment once: its folder, its registry's port, the base it uses.

Everything the lab keeps (registry storage, logs, the stand-ins' build contexts, a record of what it started
and of what it last proved) lives under one directory, ``$MULTIARCH_KIT_LAB`` (default
``~/.local/state/multiarch-kit``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core import files
from ..core.errors import KitError
from ..oci.platforms import LAB_PLATFORMS, Platform

ENV_LAB_DIR = "MULTIARCH_KIT_LAB"
ENV_PORT = "MULTIARCH_KIT_REGISTRY_PORT"
ENV_BASE = "MULTIARCH_KIT_BASE"  # auto (default), docker-hub or stand-in
DEFAULT_PORT = 5000


@dataclass(frozen=True)
class LabConfig:
    """Where the lab keeps its state and which port its registry uses."""

    lab_dir: Path
    registry_port: int = DEFAULT_PORT
    platforms: tuple[Platform, ...] = LAB_PLATFORMS
    base: str = "auto"
    # Set by the reader (the environment): the lab never moves such a port, it says the port is taken instead.
    port_from_env: bool = False

    @classmethod
    def from_env(cls) -> LabConfig:
        """The settings of this process's environment (a one-line error for a bad value)."""
        lab_dir = Path(os.environ.get(ENV_LAB_DIR) or Path.home() / ".local" / "state" / "multiarch-kit")
        lab_dir = lab_dir.expanduser().resolve()
        raw_port = os.environ.get(ENV_PORT)
        if raw_port is not None and (not raw_port.isdigit() or not 0 < int(raw_port) < 65536):
            raise KitError(f"{ENV_PORT}={raw_port!r} is not a port number", f"set {ENV_PORT} to a free port such as 5001")
        choice = os.environ.get(ENV_BASE, "auto")
        if choice not in ("auto", "docker-hub", "stand-in"):
            raise KitError(f"{ENV_BASE}={choice!r} is not a base choice", f"set {ENV_BASE} to auto, docker-hub or stand-in")
        if raw_port is not None:
            return cls(lab_dir=lab_dir, registry_port=int(raw_port), base=choice, port_from_env=True)
        return cls(lab_dir=lab_dir, registry_port=recorded_port(lab_dir) or DEFAULT_PORT, base=choice)

    @property
    def port_record(self) -> Path:
        return port_record(self.lab_dir)

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


def port_record(lab_dir: Path) -> Path:
    """Where ``lab up`` records the port it moved its registry to (when the default one was taken)."""
    return lab_dir / "registry" / "port.json"


def recorded_port(lab_dir: Path) -> int | None:
    """The port ``lab up`` chose and recorded, so every later command and notebook uses the same address."""
    data = files.read_json(port_record(lab_dir))
    port = data.get("port") if isinstance(data, dict) else None
    return port if isinstance(port, int) and 0 < port < 65536 else None
