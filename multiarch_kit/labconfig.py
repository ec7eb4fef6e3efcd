"""The lab's settings, read from the environment once: its folder, its registry's port, the base it uses.

Everything the lab keeps (registry storage, logs, the stand-ins' build contexts, a record of what it started
and of what it last proved) lives under one directory, ``$MULTIARCH_KIT_LAB`` (default
``~/.local/state/multiarch-kit``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import KitError
from .platforms import LAB_PLATFORMS, Platform

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

    @classmethod
    def from_env(cls) -> LabConfig:
        """The settings of this process's environment (a one-line error for a bad value)."""
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
