"""More Docker engines on this machine, next to the lab's own: each one stands in for another machine.

A split build (``multiarch-kit build --node``) sends each platform to an engine of its own, named by a
Docker context. On real machines those are contexts over ssh or tcp (an M2, an Intel Mac, a CI runner); in
the lab they are extra ``dockerd`` processes beside the first, each with its own data root, exec root, socket,
pid file, containerd namespace and network bridge, sharing the machine's containerd, CPUs and kernel (so its
QEMU too); they reach the lab registry on this machine's loopback. The kit names their contexts
``multiarch-kit-node2``, ``...-node3``.

Why a bridge of its own: a second dockerd started with ``--bridge=none`` deletes the host's ``docker0`` on
start, which the first engine's containers need. So the lab makes a bridge for each extra engine
(``mkit-br2``..., a private /24), hands it over with ``--bridge``, and keeps the first engine's ``docker0`` and
firewall rules untouched (``--iptables=false``).

``classic=True`` starts an engine with the classic image store (no containerd snapshotter), the way many
Docker Engine installs still are: notebooks 08 and 09 show what fails there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import engine
from ..core import commands
from ..core.errors import KitError
from ..engine import contexts
from .config import LabPaths

CONTEXT_PREFIX = "multiarch-kit-node"
CONTAINERD_SOCKET = Path("/run/containerd/containerd.sock")
SUBNET = "10.213.{}.1/24"  # each extra engine's bridge gets its own


@dataclass
class Node:
    """One extra engine of the lab."""

    index: int
    folder: Path
    classic: bool

    @property
    def name(self) -> str:
        """Its Docker context."""
        return f"{CONTEXT_PREFIX}{self.index}" if not self.classic else f"{CONTEXT_PREFIX}{self.index}-classic"

    @property
    def socket(self) -> Path:
        return self.folder / "docker.sock"

    @property
    def bridge(self) -> str:
        """Its network bridge (interface names are capped at 15 characters)."""
        return f"mkit-br{self.index}{'c' if self.classic else ''}"

    @property
    def exec_root(self) -> Path:
        # Short on purpose: containerd's shim sockets live under it and Unix socket paths are capped at 108 bytes.
        return Path("/run") / f"mkit-{self.index}{'c' if self.classic else ''}"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.folder / "dockerd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        return commands.runs(self.pid, "dockerd") and self.socket.exists()


def node(lab_dir: Path, index: int, *, classic: bool = False) -> Node:
    return Node(index, LabPaths(lab_dir).nodes / (f"node{index}" + ("-classic" if classic else "")), classic)


def known(lab_dir: Path) -> list[Node]:
    """The extra engines the lab has made (running or not)."""
    found = []
    for folder in sorted(LabPaths(lab_dir).nodes.glob("node*")):
        digits = folder.name.removeprefix("node").removesuffix("-classic")
        if digits.isdigit():
            found.append(Node(int(digits), folder, folder.name.endswith("-classic")))
    return found


def can_start() -> tuple[bool, str]:
    """Whether this machine can run more engines: Linux, root, dockerd and a running containerd."""
    if os.geteuid() != 0:
        return False, "more engines need root (sudo)"
    if not shutil.which("dockerd"):
        return False, "dockerd is not installed here (on a Mac, name real engines with docker contexts)"
    if not CONTAINERD_SOCKET.exists():
        return False, f"no containerd at {CONTAINERD_SOCKET}"
    return True, ""


def start(n: Node, *, echo: bool = True) -> bool:
    """Start ``n`` unless it runs, and give it its Docker context; returns whether it was started now."""
    if n.running:
        _ensure_context(n, echo=echo)
        return False
    ok, why = can_start()
    if not ok:
        raise KitError(f"cannot start the lab engine {n.name}: {why}",
                       "run as root on Linux, or point --node at an engine you have (docker context create ...)")
    n.folder.mkdir(parents=True, exist_ok=True)
    (n.folder / "daemon.json").write_text(json.dumps({"features": {"containerd-snapshotter": not n.classic}}) + "\n")
    n.socket.unlink(missing_ok=True)
    if not Path(f"/sys/class/net/{n.bridge}").exists():
        commands.run(["ip", "link", "add", "name", n.bridge, "type", "bridge"], echo=echo, timeout=30)
        subnet = SUBNET.format(n.index + (100 if n.classic else 0))
        commands.run(["ip", "addr", "add", subnet, "dev", n.bridge], echo=echo, timeout=30)
    commands.run(["ip", "link", "set", n.bridge, "up"], echo=echo, timeout=30)
    namespace = n.name.replace(CONTEXT_PREFIX, "multiarch-kit-node-")
    argv = (commands.Command("dockerd", "--config-file", n.folder / "daemon.json")
            .flag("--data-root", n.folder / "data").flag("--exec-root", n.exec_root)
            .flag("--pidfile", n.folder / "dockerd.pid").flag("-H", f"unix://{n.socket}")
            .flag("--containerd", CONTAINERD_SOCKET).flag("--containerd-namespace", namespace)
            .flag("--containerd-plugins-namespace", f"{namespace}-plugins")
            .option("--bridge", n.bridge).add("--iptables=false", "--ip6tables=false"))
    commands.start(argv, log=n.folder / "dockerd.log", echo=echo)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if engine.answers(engine.Where(None, f"unix://{n.socket}")):
            _ensure_context(n, echo=echo)
            return True
        time.sleep(0.3)
    raise KitError(f"the lab engine {n.name} did not answer within 90 s", f"see {n.folder / 'dockerd.log'}")


def _ensure_context(n: Node, *, echo: bool) -> None:
    contexts.ensure(n.name, f"unix://{n.socket}", contexts.LAB_NODE, echo=echo)


def stop(n: Node, *, echo: bool = True) -> bool:
    """Stop ``n`` and remove its context; returns whether it was running."""
    was = n.running
    if was and n.pid:
        commands.stop(n.pid, what=f"dockerd of {n.name}", echo=echo, seconds=60)
    contexts.remove(n.name)
    if Path(f"/sys/class/net/{n.bridge}").exists():
        commands.run(["ip", "link", "del", n.bridge], echo=echo, check=False, timeout=30)
    return was
