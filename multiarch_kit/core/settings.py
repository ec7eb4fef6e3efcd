"""Every setting the kit takes from the environment, read once, where a command or a notebook starts, into one
:class:`Settings` value that is passed down from there.

This module and the command line are the only places that touch ``os.environ`` (a test holds the package to
it). The variables:

- ``DOCKER_HOST``, ``DOCKER_CONTEXT``: which engine, as the docker CLI reads them;
- ``MULTIARCH_KIT_LAB``: the lab folder (default ``~/.local/state/multiarch-kit``);
- ``MULTIARCH_KIT_REGISTRY_PORT``: the lab registry's port, never moved once the reader sets it;
- ``MULTIARCH_KIT_REGISTRY``: ``HOST:PORT``, a name for the lab registry that other machines reach (a LAN
  address, say), in place of ``localhost:<port>``; the lab serves the registry there;
- ``MULTIARCH_KIT_BASE``: ``auto`` (default), ``docker-hub`` or ``stand-in``;
- ``MULTIARCH_KIT_RESULTS``: where the bench writes its rows (the test suite uses a scratch folder);
- ``MULTIARCH_KIT_NODES``, ``MULTIARCH_KIT_CLASSIC_CONTEXT``: the reader's other engines, by Docker context;
- ``MULTIARCH_KIT_HOST_ID``: this machine's id in the results, instead of the one the lab makes;
- ``MULTIARCH_KIT_RUNLOG``: the file ``make run`` collects builds and pushes in. It is the one setting read where
  it is used (:func:`runlog_path`): the kernels ``make run`` starts inherit it, and no caller between could pass
  it on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import KitError

ENV_LAB_DIR = "MULTIARCH_KIT_LAB"
ENV_PORT = "MULTIARCH_KIT_REGISTRY_PORT"
ENV_REGISTRY = "MULTIARCH_KIT_REGISTRY"
ENV_BASE = "MULTIARCH_KIT_BASE"
ENV_RESULTS = "MULTIARCH_KIT_RESULTS"
ENV_NODES = "MULTIARCH_KIT_NODES"
ENV_CLASSIC = "MULTIARCH_KIT_CLASSIC_CONTEXT"
ENV_HOST_ID = "MULTIARCH_KIT_HOST_ID"
ENV_RUNLOG = "MULTIARCH_KIT_RUNLOG"
BASE_CHOICES = ("auto", "docker-hub", "stand-in")


@dataclass(frozen=True)
class Settings:
    """The environment's settings, checked: a bad value is a one-line error naming the variable."""

    lab_dir: Path
    docker_host: str | None = None
    docker_context: str | None = None
    registry_port: int | None = None  # the reader's choice; None: the lab's default or the port it recorded
    registry_name: str = "localhost"  # the host part of the lab registry's references (MULTIARCH_KIT_REGISTRY)
    base: str = "auto"
    results_dir: Path | None = None
    nodes: str = ""  # PLATFORM=CONTEXT,... as written: read into platforms where the platforms to build are known
    classic_context: str = ""
    host_id: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings ``env`` holds (an environment as a mapping: ``os.environ``, or a test's own)."""
        raw_port = env.get(ENV_PORT)
        if raw_port is not None and (not raw_port.isdigit() or not 0 < int(raw_port) < 65536):
            raise KitError(f"{ENV_PORT}={raw_port!r} is not a port number", f"set {ENV_PORT} to a free port such as 5001")
        name, port = "localhost", int(raw_port) if raw_port is not None else None
        if env.get(ENV_REGISTRY, "").strip():
            name, port = registry_setting(env[ENV_REGISTRY].strip(), port)
        base = env.get(ENV_BASE, "auto")
        if base not in BASE_CHOICES:
            raise KitError(f"{ENV_BASE}={base!r} is not a base choice", f"set {ENV_BASE} to auto, docker-hub or stand-in")
        lab_dir = Path(env.get(ENV_LAB_DIR) or Path.home() / ".local" / "state" / "multiarch-kit")
        results = env.get(ENV_RESULTS)
        return cls(lab_dir=lab_dir.expanduser().resolve(), docker_host=env.get("DOCKER_HOST") or None,
                   docker_context=env.get("DOCKER_CONTEXT") or None,
                   registry_port=port, registry_name=name, base=base,
                   results_dir=Path(results) if results else None, nodes=(env.get(ENV_NODES) or "").strip(),
                   classic_context=(env.get(ENV_CLASSIC) or "").strip(), host_id=(env.get(ENV_HOST_ID) or "").strip())


def registry_setting(text: str, port_setting: int | None) -> tuple[str, int]:
    """``MULTIARCH_KIT_REGISTRY``'s host and port, checked: it names a registry as an image reference does (no
    scheme, no path), and its port agrees with ``MULTIARCH_KIT_REGISTRY_PORT`` when both are set."""
    fix = f"write it as HOST:PORT, e.g. export {ENV_REGISTRY}=192.168.1.20:5000 (this machine's LAN address)"
    if "://" in text or "/" in text:
        raise KitError(f"{ENV_REGISTRY}={text!r} is not HOST:PORT (no scheme, no path)", fix)
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise KitError(f"{ENV_REGISTRY}={text!r} has no port", fix)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise KitError(f"{ENV_REGISTRY}={text!r}: {port!r} is not a port number", fix)
    if ":" in host or not all(part.isalnum() for part in host.replace("-", ".").split(".")):
        raise KitError(f"{ENV_REGISTRY}={text!r}: {host!r} is not a host name or IPv4 address", fix)
    if port_setting is not None and port_setting != int(port):
        raise KitError(f"{ENV_REGISTRY}={text} and {ENV_PORT}={port_setting} name two ports",
                       f"unset {ENV_PORT}: {ENV_REGISTRY} carries the port")
    return host.lower(), int(port)


def read() -> Settings:
    """This process's settings: what an edge (a CLI command, a notebook's first call) reads, then passes down."""
    return Settings.from_env(os.environ)


def runlog_path() -> Path | None:
    """The run log's file, when ``make run`` set one for this process (see the module's docstring)."""
    path = os.environ.get(ENV_RUNLOG)
    return Path(path) if path else None


def child_env(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    """The environment for a program the kit starts: this one's with ``extra`` added (None: this one, unchanged)."""
    return {**os.environ, **extra} if extra else None
