"""Rehearse Docker Desktop's shape on this Debian machine and run every notebook in it (``make test-desktop``).

No Mac is at hand, so this builds, as far as Linux allows, what the kit meets on one:

* **The engine is somebody else's.** A ``dockerd`` (with a containerd of its own) runs in a network namespace of
  its own, the way Docker Desktop's engine runs in a VM. The kit reaches it over TCP on that namespace's
  loopback, so it cannot read the engine's ``/proc`` and must probe binfmt_misc through a privileged container,
  as on a Mac. The engine keeps images in containerd's store, as Docker Desktop does when "Use containerd for
  pulling and storing images" is on.
* **The reader is not root** (user ``mkdesk``), did not start the engine and cannot provision one: ``dockerd``,
  ``containerd``, ``docker-registry``, ``skopeo``, ``mmdebstrap`` and the QEMU binaries are not on its PATH.
* **Port 5000 is held** by a program that answers HTTP 403 as ``AirTunes``, as macOS's AirPlay Receiver does.
* **Docker Hub** is this machine's stand-in for it: a registry outside the namespace, which the engine uses as
  its Docker Hub mirror (``registry-mirrors``, a real dockerd setting). It serves ``library/debian:bookworm``
  and ``library/golang:1.19-bookworm`` made like Docker Hub's (no compilers in debian, Go in /usr/local/go),
  ``library/alpine:3.18`` (the lab's busybox stand-in) and ``library/registry:2`` (Debian's distribution binary).
  So the kit takes its Docker Hub path (``MULTIARCH_KIT_BASE=docker-hub``): ``FROM debian:bookworm`` resolves in
  the engine, the workloads' apt steps really run (build containers reach the Debian mirror through NAT), and
  the lab registry is the ``registry:2`` container.

Then, as that user, in a fresh copy of the checkout: ``make venv`` and strict nbval over every notebook, plus
``tests/desktop`` (which asserts the shape itself). Everything it starts is stopped at the end; the engine's
data and the hub's images are kept under ``/var/lib/multiarch-kit-desktop`` as a cache (``--fresh`` drops them).
Run as root after ``make lab`` (the stand-ins are made with the lab's own engine and registry).
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

from multiarch_kit.lab import base, buildbase
from multiarch_kit.core import commands
from multiarch_kit.buildx import dockerfile
from multiarch_kit import engine
from multiarch_kit.buildx import SOURCE_DATE_EPOCH
from multiarch_kit.core.errors import KitError
from multiarch_kit.lab.config import LabConfig
from multiarch_kit.oci.platforms import LAB_PLATFORMS, Platform
from multiarch_kit.lab.standins import StandIn

REPO = Path(__file__).resolve().parent.parent
STATE = Path("/var/lib/multiarch-kit-desktop")  # kept between runs: the engine's data, the hub's storage
RUN = Path("/run/mkdesk")  # sockets and pid files; short, because Unix socket paths are capped at 108 bytes
NETNS = "mkdesk"
USER = "mkdesk"
HOST_SIDE, NS_SIDE, SUBNET = "10.214.0.1", "10.214.0.2", "10.214.0.0/30"
HUB = f"{HOST_SIDE}:5099"  # Docker Hub's stand-in, reached from the namespace over the veth pair
ENGINE_TCP = "tcp://127.0.0.1:2375"  # only inside the namespace: no other program on this machine can reach it
AIRPLAY_PORT = 5000
HIDDEN = ("dockerd", "docker-proxy", "docker-init", "containerd", "containerd-shim-runc-v2", "ctr", "runc",
          "docker-registry", "skopeo", "mmdebstrap", "arch-test")  # and every qemu-*
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "notebooks/sanitize.cfg"]


def sh(*argv: object, **kw) -> subprocess.CompletedProcess:
    return commands.run(list(map(str, argv)), timeout=kw.pop("timeout", 600), **kw)


def in_ns(*argv: object) -> list[str]:
    """``argv`` run inside the namespace's network only (``ip netns exec`` would remount /sys and hide cgroups)."""
    return ["nsenter", f"--net=/run/netns/{NETNS}", "--", *map(str, argv)]


# --- Docker Hub's stand-in --------------------------------------------------------------------------------

def _hub_images() -> list[tuple[StandIn, dict[Platform, list[str]], str]]:
    """debian:bookworm and golang:1.19-bookworm as Docker Hub makes them, each with its packages per platform."""
    debian = StandIn(
        stands_for=("debian:bookworm",), repository="multiarch-kit/hub-debian", tag="bookworm", folder="hub/debian",
        description="STAND-IN for Docker Hub's debian:bookworm (Debian's apt variant, no compilers), made by "
                    "multiarch-kit's Docker Desktop rehearsal", title="debian:bookworm",
        dockerfile=dockerfile.from_root_filesystems("Docker Hub's debian:bookworm, as the rehearsal makes it.",
                                                    ["bash"]),
        standin_note="", what="the debian:bookworm stand-in")
    go_df = (dockerfile.from_root_filesystems("Docker Hub's golang:1.19-bookworm, as the rehearsal makes it: Go "
                                              "in /usr/local/go (Debian's Go 1.19), gcc and make.", ["bash"])
             .replace("ENV PATH=/usr/local/sbin", "ENV GOPATH=/go\nENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin")
             + "RUN ln -s /usr/lib/go-1.19 /usr/local/go && mkdir -p /go/src /go/bin\nWORKDIR /go\n")
    golang = StandIn(
        stands_for=("golang:1.19-bookworm",), repository="multiarch-kit/hub-golang", tag="1.19-bookworm",
        folder="hub/golang", description="STAND-IN for Docker Hub's golang:1.19-bookworm (Go 1.19 in /usr/local/go, "
        "gcc, make), made by multiarch-kit's Docker Desktop rehearsal", title="golang:1.19-bookworm",
        dockerfile=go_df, standin_note="", what="the golang:1.19-bookworm stand-in")
    go_packages = ["golang-1.19-go", "gcc", "libc6-dev", "make", "pkg-config", "ca-certificates"]
    return [(debian, {p: [] for p in LAB_PLATFORMS}, "library/debian:bookworm"),
            (golang, {p: go_packages for p in LAB_PLATFORMS}, "library/golang:1.19-bookworm")]


def _registry_rootfs(out: Path) -> None:
    """Debian's distribution binary with its libraries and a registry:2-like config, as one root filesystem."""
    binary = Path(shutil.which("docker-registry") or "/usr/bin/docker-registry")
    libs = [Path(w) for line in sh("ldd", binary, echo=False).stdout.splitlines() for w in line.split()
            if w.startswith("/")]
    config = ("version: 0.1\nlog:\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
              "    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\n").encode()
    with tarfile.open(out, "w") as tar:
        def add(name: str, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(SOURCE_DATE_EPOCH)
            tar.addfile(info, io.BytesIO(data))
        add("/bin/registry", binary.read_bytes(), 0o755)
        for lib in libs:
            add(str(lib), lib.resolve().read_bytes(), 0o755)
        add("/etc/docker/registry/config.yml", config, 0o644)
        for folder in ("var/lib/registry", "tmp"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755, int(SOURCE_DATE_EPOCH)
            tar.addfile(info)


REGISTRY = StandIn(
    stands_for=("registry:2",), repository="multiarch-kit/hub-registry", tag="2", folder="hub/registry",
    description="STAND-IN for Docker Hub's registry:2: Debian's distribution (docker-registry) binary, made by "
                "multiarch-kit's Docker Desktop rehearsal", title="registry:2",
    dockerfile=("# Docker Hub's registry:2, as the rehearsal makes it: Debian's distribution binary.\n"
                "FROM scratch\nARG TARGETARCH\nARG TARGETVARIANT\nADD rootfs-${TARGETARCH}${TARGETVARIANT}.tar /\n"
                "VOLUME /var/lib/registry\nEXPOSE 5000\nENTRYPOINT [\"/bin/registry\"]\n"
                "CMD [\"serve\", \"/etc/docker/registry/config.yml\"]\n"),
    standin_note="", what="the registry:2 stand-in")


def make_hub(cfg: LabConfig) -> list[tuple[str, str]]:
    """Make the stand-ins with the lab's engine (kept while their recipe holds); returns (lab ref, hub name)."""
    here = engine.facts().platform
    copies = []
    for standin, wanted, hub_name in _hub_images():
        recipe = hashlib.sha256("\0".join([standin.description, standin.dockerfile, SOURCE_DATE_EPOCH] +
                                          [f"{p}={','.join(v)}" for p, v in sorted(wanted.items(), key=str)])
                                .encode()).hexdigest()
        if not standin.current(cfg, recipe):
            tars = buildbase.make_rootfs(cfg.lab_dir / standin.folder / "rootfs" / recipe[:16], wanted)

            def fill(context: Path, tars=tars) -> None:
                for tar in tars.values():
                    (context / tar.name).hardlink_to(tar)

            standin.make(cfg, recipe, tuple(tars), fill)
        copies.append((standin.ref(cfg.registry_host), hub_name))
    binary = Path(shutil.which("docker-registry") or "/usr/bin/docker-registry")
    recipe = hashlib.sha256(REGISTRY.dockerfile.encode() + binary.read_bytes()).hexdigest()
    if not REGISTRY.current(cfg, recipe):
        REGISTRY.make(cfg, recipe, (here,), lambda context: _registry_rootfs(context / f"rootfs-{here.tag_suffix}.tar"))
    copies.append((REGISTRY.ref(cfg.registry_host), "library/registry:2"))
    found, _ = base.ensure(cfg)
    copies.append((found.ref, "library/alpine:3.18"))
    return copies


def start_hub(copies: list[tuple[str, str]]) -> subprocess.Popen:
    """Docker Hub's stand-in: distribution on the host side of the veth pair, filled with ``copies``."""
    (STATE / "hub").mkdir(parents=True, exist_ok=True)
    config = STATE / "hub.yml"
    config.write_text("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                      f"storage:\n  filesystem:\n    rootdirectory: {STATE / 'hub'}\n"
                      f"http:\n  addr: {HUB}\n")
    hub = commands.start(["docker-registry", "serve", config], log=STATE / "hub.log")
    _wait(lambda: _answers(f"http://{HUB}/v2/"), 10, "Docker Hub's stand-in")
    for lab_ref, hub_name in copies:
        sh("skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{lab_ref}", f"docker://{HUB}/{hub_name}", timeout=1200)
    return hub


# --- the namespace, its engine, AirPlay --------------------------------------------------------------------

def _iptables(table: str, chain: str, *rule: str) -> None:
    """Add a rule once (``-C`` asks whether it is there)."""
    if sh("iptables", "-t", table, "-C", chain, *rule, echo=False, check=False).returncode != 0:
        sh("iptables", "-t", table, "-I", chain, *rule)


def make_namespace() -> None:
    """A network namespace with its own loopback, reaching out through a veth pair and NAT (like a VM's)."""
    if not Path(f"/run/netns/{NETNS}").exists():
        sh("ip", "netns", "add", NETNS)
        sh("ip", "link", "add", "mkd-host", "type", "veth", "peer", "name", "mkd-ns")
        sh("ip", "link", "set", "mkd-ns", "netns", NETNS)
        sh("ip", "addr", "add", f"{HOST_SIDE}/30", "dev", "mkd-host")
        sh("ip", "link", "set", "mkd-host", "up")
        sh(*in_ns("ip", "addr", "add", f"{NS_SIDE}/30", "dev", "mkd-ns"))
        sh(*in_ns("ip", "link", "set", "mkd-ns", "up"))
        sh(*in_ns("ip", "link", "set", "lo", "up"))
        sh(*in_ns("ip", "route", "add", "default", "via", HOST_SIDE))
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    _iptables("nat", "POSTROUTING", "-s", SUBNET, "-j", "MASQUERADE")
    _iptables("filter", "FORWARD", "-i", "mkd-host", "-j", "ACCEPT")
    _iptables("filter", "FORWARD", "-o", "mkd-host", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")


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
    _wait(lambda: (RUN / "containerd.sock").exists(), 30, "containerd")
    dockerd = commands.start(in_ns(
        "dockerd", "--config-file", STATE / "daemon.json", "--containerd", RUN / "containerd.sock",
        "--data-root", STATE / "docker", "--exec-root", RUN / "exec", "--pidfile", RUN / "dockerd.pid",
        "--group", user.pw_name, "-H", f"unix://{RUN / 'docker.sock'}", "-H", ENGINE_TCP, "--tls=false"),
        log=STATE / "dockerd.log")
    _wait(lambda: engine.answers(engine.Where(None, f"unix://{RUN / 'docker.sock'}")), 120, "dockerd")
    return [dockerd, containerd]


class _AirPlay(http.server.BaseHTTPRequestHandler):
    """What macOS's AirPlay Receiver answers on port 5000: 403, as AirTunes."""

    def version_string(self):  # the Server header
        return "AirTunes/620.8.2"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args):
        pass


def serve_airplay(port: int) -> None:
    http.server.ThreadingHTTPServer(("0.0.0.0", port), _AirPlay).serve_forever()


# --- the reader -----------------------------------------------------------------------------------------

def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        sh("useradd", "--create-home", "--shell", "/bin/bash", USER)
        return pwd.getpwnam(USER)


def path_without_engine_tools(folder: Path) -> str:
    """A PATH of links to this machine's programs, minus what Docker Desktop does not put on a Mac's PATH."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for src in ("/usr/local/bin", "/usr/bin", "/bin"):
        for program in sorted(Path(src).iterdir()):
            name = program.name
            if name in HIDDEN or name.startswith("qemu-") or (folder / name).exists() or (folder / name).is_symlink():
                continue
            if os.access(program, os.X_OK) and not program.is_dir():
                (folder / name).symlink_to(program)
    return str(folder)


def copy_checkout(user: pwd.struct_passwd) -> Path:
    """The checkout's files (as they are now, committed or not) in the user's home, owned by the user."""
    dest = Path(user.pw_dir) / "multiarch-kit"
    files_ = sh("git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                echo=False).stdout.split("\0")
    keep = dest / ".venv"
    for item in dest.iterdir() if dest.exists() else []:
        if item != keep:
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    dest.mkdir(exist_ok=True)
    for name in filter(None, files_):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    sh("chown", "-R", f"{user.pw_uid}:{user.pw_gid}", dest, echo=False)
    # Each rehearsal is the reader's first contact: no lab folder yet, so no port recorded from an earlier run.
    shutil.rmtree(Path(user.pw_dir) / ".local" / "state" / "multiarch-kit", ignore_errors=True)
    return dest


def as_reader(user: pwd.struct_passwd, kit: Path, path: str, *argv: str, timeout: int) -> int:
    """Run ``argv`` in the copy, as the user, inside the namespace, with a Mac reader's environment."""
    env = {"HOME": user.pw_dir, "USER": user.pw_name, "PATH": f"{kit / '.venv' / 'bin'}:{path}",
           "DOCKER_HOST": ENGINE_TCP, "MULTIARCH_KIT_BASE": "docker-hub", "CI": "true",
           "MULTIARCH_KIT_REHEARSAL": "desktop", "LANG": "C.UTF-8"}
    argv_ = in_ns("runuser", "-u", user.pw_name, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
                  "sh", "-c", f"cd {kit} && exec \"$@\"", "sh", *argv)
    return commands.run(argv_, check=False, timeout=timeout, on_line=lambda line: print(line, flush=True)).returncode


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _wait(ready, seconds: float, what: str = "") -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="drop the engine's data and the hub's images first")
    parser.add_argument("--airplay", type=int, help=argparse.SUPPRESS)  # the AirPlay stand-in, run in the namespace
    parser.add_argument("pytest_args", nargs="*", help="what to test (default: tests/desktop and every notebook)")
    args = parser.parse_args()
    if args.airplay:
        serve_airplay(args.airplay)
        return 0
    if os.geteuid() != 0:
        print("make test-desktop needs root: it starts an engine and makes a user (run it on the Debian lab machine)",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    if args.fresh and STATE.exists():
        shutil.rmtree(STATE)
    STATE.mkdir(parents=True, exist_ok=True)
    cfg = LabConfig.from_env()
    processes: list[subprocess.Popen] = []
    try:
        copies = make_hub(cfg)
        make_namespace()  # first: the hub listens on the host's end of the namespace's link
        processes.append(start_hub(copies))
        user = ensure_user()
        processes[:0] = start_engine(user)
        processes.insert(0, commands.start(in_ns(sys.executable, Path(__file__).resolve(), "--airplay",
                                                 AIRPLAY_PORT), log=STATE / "airplay.log"))
        kit = copy_checkout(user)
        path = path_without_engine_tools(STATE / "path")
        print(f"Rehearsal ready after {time.monotonic() - started:.0f} s: the reader is {user.pw_name}, the engine "
              f"{ENGINE_TCP} in namespace {NETNS}, Docker Hub's stand-in {HUB}, port {AIRPLAY_PORT} held.", flush=True)
        code = as_reader(user, kit, path, "make", "venv", timeout=1800)
        if code == 0:
            what = args.pytest_args or ["tests/desktop", "notebooks"]
            code = as_reader(user, kit, path, ".venv/bin/python", "-m", "pytest", "-p", "no:cacheprovider", *what,
                             *NBVAL, timeout=3600)
    except KitError as exc:
        print(str(exc), file=sys.stderr)
        code = 1
    finally:
        stop(processes)
    print(f"make test-desktop: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
