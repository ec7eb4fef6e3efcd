"""Docker contexts: the one reader of the docker CLI's context store, and the contexts the lab makes.

A context names an engine (``docker --context NAME``): its host (``unix://``, ``ssh://``, ``tcp://``), its TLS
material and a description. The CLI is asked (``docker context inspect NAME``), not its files: docker-py's
``ContextAPI.get_context`` finds the store only beside a ``config.json``, which a machine that never logged in or
switched contexts does not have, and the CLI always finds it.

The lab's own contexts say what they are in their description, so an engine's kind is read from its context
(:data:`LAB_NODE`, :data:`ARM64_VM`), never guessed from its name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from docker.context import ContextAPI
from docker.tls import TLSConfig

from ..core import commands
from ..core.commands import docker
from ..core.settings import Settings

LAB_NODE = "multiarch-kit lab engine: stands in for another machine"
ARM64_VM = "multiarch-kit lab: a Debian arm64 VM under qemu-system-aarch64 (full-system emulation, TCG)"


@dataclass(frozen=True)
class Context:
    """What a Docker context says: its engine's host, the TLS to reach it with, and its description."""

    name: str
    host: str
    tls: TLSConfig | bool = False
    description: str = ""


def parse(obj: object) -> Context | None:
    """A context from one entry of ``docker context inspect``'s JSON (None: not a context with a docker host)."""
    if not isinstance(obj, dict):
        return None
    endpoint = (obj.get("Endpoints") or {}).get("docker") or {}
    if not isinstance(endpoint, dict) or not endpoint.get("Host"):
        return None
    description = str((obj.get("Metadata") or {}).get("Description") or "")
    name = str(obj.get("Name", ""))
    material = set((obj.get("TLSMaterial") or {}).get("docker") or [])
    if not material:
        return Context(name, endpoint["Host"], False, description)
    tls_dir = Path((obj.get("Storage") or {}).get("TLSPath", "")) / "docker"
    cert = (str(tls_dir / "cert.pem"), str(tls_dir / "key.pem")) if {"cert.pem", "key.pem"} <= material else None
    ca = str(tls_dir / "ca.pem") if "ca.pem" in material else None
    tls = TLSConfig(client_cert=cert, ca_cert=ca, verify=not endpoint.get("SkipTLSVerify", False))
    return Context(name, endpoint["Host"], tls, description)


def inspect(name: str) -> Context | None:
    """The named context, read with one ``docker context inspect`` (None when there is no such context)."""
    done = commands.run(docker("context", "inspect", name), echo=False, check=False, timeout=30)
    if done.returncode != 0:
        return None
    try:
        return parse(json.loads(done.stdout)[0])
    except (ValueError, IndexError):
        return None


def current(given: Settings) -> str | None:
    """The context the docker CLI would use, by name: DOCKER_CONTEXT, else the current one; None for DOCKER_HOST
    (which wins over every context) and for the ``default`` context."""
    if given.docker_host:
        return None
    name = given.docker_context or getattr(ContextAPI.get_current_context(), "Name", "default")
    return None if name == "default" else name


def ensure(name: str, host: str, description: str, *, echo: bool = True) -> bool:
    """Make the context ``name`` point at ``host`` with ``description`` (created, or updated when it says otherwise);
    returns whether it changed."""
    found = inspect(name)
    if found is not None and found.host == host and found.description == description:
        return False
    verb = "update" if found is not None else "create"
    commands.run(docker("context", verb, name).flag("--description", description).flag("--docker", f"host={host}"),
                 echo=echo, timeout=30)
    return True


def remove(name: str, *, echo: bool = False) -> None:
    """Remove the context ``name`` (fine when there is none)."""
    commands.run(docker("context", "rm", "--force", name), echo=echo, check=False, timeout=30)
