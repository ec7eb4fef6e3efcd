"""The rehearsal's engine, somebody else's and of Docker Desktop's generation: Debian's newest dockerd and
containerd (:mod:`multiarch_kit.lab.newest`), with their own root filesystem as the root (pivot_root) of their own mount and network
namespaces, reached over TCP on the namespace's loopback, with Docker Hub's stand-in as their mirror; and the
AirPlay Receiver's stand-in holding port 5000."""

from __future__ import annotations

import http.server
import json
import pwd
import subprocess
from pathlib import Path

from multiarch_kit import engine
from multiarch_kit.core import commands

from .common import ENGINE_TCP, HUB, RUN, STATE, in_ns, wait

# Run inside the namespace's network, in a mount namespace of its own (unshare's default propagation, private,
# keeps every mount here from reaching the machine's). The root is bind-mounted onto itself (a root must be a mount
# point: runc makes "/" a slave mount for each container, which fails with EINVAL on a plain folder); it gets /proc,
# /sys, /dev and a /run of its own, the kept engine data, the sockets' folder and the machine's resolver; then
# pivot_root makes it the namespace's root, as a VM's disk is, and the machine's root is unmounted from under it.
# dockerd starts its own containerd from that root (containerd 2), as Desktop's VM runs both. When dockerd exits,
# the namespace and every mount in it go with it.
DATA = STATE / "engine-newest"  # kept between runs; not the 26.1 engine's old data: containerd 2 keeps its own layout

LAUNCH = """set -e
R="$1"; DATA="$2"; SOCKETS="$3"; shift 3
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mkdir -p "$R$SOCKETS" "$R/var/lib/docker" "$R/.machine"
mount --bind "$SOCKETS" "$R$SOCKETS"
mount --bind "$DATA" "$R/var/lib/docker"
mount --bind /etc/resolv.conf "$R/etc/resolv.conf"
cd "$R"
pivot_root . .machine
umount -l /.machine
exec "$@"
"""


def start_engine(user: pwd.struct_passwd, root: Path) -> list[subprocess.Popen]:
    """dockerd from ``root`` (the newest Docker's root filesystem) in the namespace, with Docker Hub's stand-in
    as its mirror and the containerd image store on."""
    RUN.mkdir(parents=True, exist_ok=True)
    data = DATA
    data.mkdir(parents=True, exist_ok=True)
    (RUN / "daemon.json").write_text(json.dumps({
        "features": {"containerd-snapshotter": True},
        "registry-mirrors": [f"http://{HUB}"], "insecure-registries": [HUB]}, indent=1) + "\n")
    dockerd = commands.start(in_ns(
        "unshare", "--mount", "--propagation", "private", "sh", "-c", LAUNCH, "launch", root, data, RUN,
        "dockerd", "--config-file", RUN / "daemon.json", "--data-root", "/var/lib/docker",
        "--pidfile", RUN / "dockerd.pid", "--group", str(user.pw_gid),
        "-H", f"unix://{RUN / 'docker.sock'}", "-H", ENGINE_TCP, "--tls=false"), log=STATE / "dockerd.log")
    wait(lambda: engine.answers(engine.Where(None, f"unix://{RUN / 'docker.sock'}")), 120, "dockerd")
    return [dockerd]


class _AirPlay(http.server.BaseHTTPRequestHandler):
    """What macOS's AirPlay Receiver answers on port 5000: 403, as AirTunes."""

    def version_string(self):  # the Server header
        return "AirTunes/620.8.2"

    def do_GET(self):
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args):
        pass


def serve_airplay(port: int) -> None:
    http.server.ThreadingHTTPServer(("0.0.0.0", port), _AirPlay).serve_forever()
