"""BuildKit's own distribution: one builder whose nodes each build their own platform natively.

``docker buildx create --append`` adds a node to a builder, each node a BuildKit on some engine with the platforms
it is fixed to (``--platform``). One ``docker buildx build --platform linux/amd64,linux/arm64 --push`` then sends
each platform to the node that lists it, and pushes one index: no merge step, one CLI that reaches every node.
Such a builder cannot ``--load`` (every node would have to load into one store) and refuses ``oci``/``tar``
exports, so it pushes.

The lab's: ``multiarch-kit-multinode``, a ``docker-container`` node on this machine's engine for linux/amd64 and one
on the arm64 VM's engine (context ``multiarch-kit-arm64``) for linux/arm64, both running the lab's BuildKit image
(the stand-in's own platform on each) with host networking, so ``localhost:<port>`` is the lab registry on both
(inside the VM, its forwarder). Two ``docker-container`` nodes on one engine would clash (buildx#1717: "invalid
duplicate endpoint"), so each node is on an engine of its own.

What proves where a platform was built: the article's ``/log`` holds ``BUILDPLATFORM``, which is the node's own
platform (``Building on linux/arm64 for linux/arm64`` on the VM; ``on linux/amd64`` under QEMU here), and a RUN
step's ``uname -r`` is the kernel of the machine that ran it (the VM's arm64 kernel, not this machine's: QEMU's
user emulation runs on this kernel, and ``uname -m`` says ``aarch64`` either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..buildx import builders
from ..core import commands
from ..core.commands import Command, docker
from ..core.errors import CommandError, KitError
from ..oci.platforms import Platform
from . import armvm, buildkit
from .config import LabConfig
from .standins import STAND_IN, Base

NAME = "multiarch-kit-multinode"
HERE = "default"  # the Docker context of this machine's engine


@dataclass(frozen=True)
class Node:
    """One node as ``docker buildx create`` is told it: its name, the platform it is fixed to, its context."""

    name: str
    platform: Platform
    context: str


def nodes(vm_context: str = armvm.CONTEXT) -> tuple[Node, ...]:
    """The lab's two nodes: linux/amd64 on this machine's engine, linux/arm64 on the arm64 VM's."""
    return (Node(f"{NAME}-amd64", Platform.parse("linux/amd64"), HERE),
            Node(f"{NAME}-arm64", Platform.parse("linux/arm64"), vm_context))


def create_argvs(name: str, specs: tuple[Node, ...], config: Path, image: str | None) -> list[Command]:
    """The commands a reader types: ``create`` with the first node, then ``create --append`` for each other."""
    argvs = []
    for i, node in enumerate(specs):
        argv = docker("buildx", "create").flag("--append", i > 0).flag("--name", name).flag("--node", node.name)
        argv.flag("--platform", node.platform).flag("--driver", "docker-container" if i == 0 else None)
        argv.flag("--driver-opt", [f"image={image}"] if image else []).flag("--driver-opt", "network=host")
        argvs.append(argv.flag("--buildkitd-config", config).add(node.context))
    return argvs


def find(name: str = NAME) -> builders.Builder | None:
    """The builder as ``docker buildx inspect`` reads it, None when there is none."""
    try:
        return builders.inspect(name)
    except (CommandError, KitError):
        return None


def ensure(cfg: LabConfig, image: Base, specs: tuple[Node, ...] | None = None, *, echo: bool = True
           ) -> builders.Builder:
    """The multi-node builder, created if missing or made with other nodes, image or config, then started
    (``docker buildx inspect --bootstrap``: the VM's node pulls the image and starts BuildKit under TCG, slowly)."""
    specs = specs or nodes()
    wanted_image = image.pinned if image.source == STAND_IN else None
    wanted = {"image": wanted_image, "config": buildkit.buildkitd_config(cfg.registry_host),
              "nodes": [[n.name, str(n.platform), n.context] for n in specs]}
    buildkit.remake(cfg, NAME, find(), wanted,
                    create_argvs(NAME, specs, buildkit.config_path(cfg, NAME), wanted_image),
                    docker("buildx", "rm", NAME), echo=echo)
    commands.run(docker("buildx", "inspect", "--bootstrap", NAME), echo=echo, timeout=1200)
    found = find()
    if found is None or [n.status for n in found.nodes] != ["running"] * len(specs):
        raise KitError(f"the builder {NAME} does not have its {len(specs)} nodes running",
                       f"docker buildx inspect {NAME} shows each node; is the arm64 VM up ('lab up --arm64-vm')?")
    return found


def remove(cfg: LabConfig, *, echo: bool = True) -> bool:
    """Remove the builder (before the VM stops: a node whose engine is gone is an error in ``buildx ls``)."""
    if find() is None:
        return False
    buildkit.forget(cfg, NAME, docker("buildx", "rm", NAME), echo=echo)
    return True


def built_on(log: str) -> Platform:
    """The platform a node built on, read from the article's ``/log`` (``Building on B for T``)."""
    words = log.split()
    if len(words) < 5 or words[:2] != ["Building", "on"] or words[3] != "for":
        raise KitError(f"not the article's /log: {log!r}", "build the article's Dockerfile (notebooks/article)")
    return Platform.parse(words[2])
