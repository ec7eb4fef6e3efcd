"""The rehearsal's names (its folders, namespace, addresses, user) and the small helpers every part uses."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from multiarch_kit.core import commands
from multiarch_kit.core.errors import KitError

STATE = Path("/var/lib/multiarch-kit-desktop")  # kept between runs: the engine's data, the hub's storage
RUN = Path("/run/mkdesk")  # sockets and pid files; short, because Unix socket paths are capped at 108 bytes
NETNS = "mkdesk"
USER = "mkdesk"
HOST_SIDE, NS_SIDE, SUBNET = "10.214.0.1", "10.214.0.2", "10.214.0.0/30"
HOST_LINK, NS_LINK = "mkd-host", "mkd-ns"
HUB = f"{HOST_SIDE}:5099"  # Docker Hub's stand-in, reached from the namespace over the veth pair
ENGINE_TCP = "tcp://127.0.0.1:2375"  # only inside the namespace: no other program on this machine can reach it
AIRPLAY_PORT = 5000


def sh(*argv: object, **kw) -> subprocess.CompletedProcess:
    return commands.run(list(map(str, argv)), timeout=kw.pop("timeout", 600), **kw)


def in_ns(*argv: object) -> list[str]:
    """``argv`` run inside the namespace's network only (``ip netns exec`` would remount /sys and hide cgroups)."""
    return ["nsenter", f"--net=/run/netns/{NETNS}", "--", *map(str, argv)]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait(ready, seconds: float, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    raise KitError(f"{what} did not come up within {seconds:.0f} s", f"see the logs in {STATE}")


def stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        if proc.poll() is None:
            commands.stop(proc.pid, echo=True, seconds=60)
