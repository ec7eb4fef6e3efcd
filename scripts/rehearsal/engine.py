"""The rehearsal's engine, somebody else's: containerd and dockerd inside the namespace, reached over TCP on its
loopback, with Docker Hub's stand-in as their mirror; and the AirPlay Receiver's stand-in holding port 5000."""

from __future__ import annotations

import http.server
import json
import pwd
import subprocess

from multiarch_kit import engine
from multiarch_kit.core import commands

from .common import ENGINE_TCP, HUB, RUN, STATE, in_ns, wait


def start_engine(user: pwd.struct_passwd) -> list[subprocess.Popen]:
    """containerd and dockerd inside the namespace, with Docker Hub's stand-in as their mirror."""
    RUN.mkdir(parents=True, exist_ok=True)
    (STATE / "containerd.toml").write_text(
        "version = 2\n"
        f'root = "{STATE / "containerd"}"\nstate = "{RUN / "containerd"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{RUN / "containerd.sock"}"\n[ttrpc]\n  address = "{RUN / "containerd.sock.ttrpc"}"\n')
    (STATE / "daemon.json").write_text(json.dumps({
        "features": {"containerd-snapshotter": True},
        "registry-mirrors": [f"http://{HUB}"], "insecure-registries": [HUB]}, indent=1) + "\n")
    containerd = commands.start(in_ns("containerd", "--config", STATE / "containerd.toml"), log=STATE / "containerd.log")
    wait(lambda: (RUN / "containerd.sock").exists(), 30, "containerd")
    dockerd = commands.start(in_ns(
        "dockerd", "--config-file", STATE / "daemon.json", "--containerd", RUN / "containerd.sock",
        "--data-root", STATE / "docker", "--exec-root", RUN / "exec", "--pidfile", RUN / "dockerd.pid",
        "--group", user.pw_name, "-H", f"unix://{RUN / 'docker.sock'}", "-H", ENGINE_TCP, "--tls=false"),
        log=STATE / "dockerd.log")
    wait(lambda: engine.answers(engine.Where(None, f"unix://{RUN / 'docker.sock'}")), 120, "dockerd")
    return [dockerd, containerd]


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
