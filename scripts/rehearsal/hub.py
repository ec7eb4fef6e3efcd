"""Docker Hub's stand-in: debian:bookworm and golang:1.19-bookworm made as Docker Hub makes them, the lab's alpine
and BuildKit stand-ins, and registry:2 (Debian's distribution binary), in a registry outside the namespace that the rehearsal's
engine uses as its Docker Hub mirror (``registry-mirrors``, a real dockerd setting)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

from multiarch_kit import engine
from multiarch_kit.buildx import SOURCE_DATE_EPOCH, dockerfile
from multiarch_kit.core import commands
from multiarch_kit.lab import base, buildbase, buildkit
from multiarch_kit.lab.config import LabConfig
from multiarch_kit.lab.standins import StandIn, recipe_digest
from multiarch_kit.oci.platforms import LAB_PLATFORMS, Platform

from .common import HUB, STATE, answers, sh, wait


def hub_images() -> list[tuple[StandIn, dict[Platform, list[str]], str]]:
    """debian:bookworm and golang:1.19-bookworm as Docker Hub makes them, each with its packages per platform."""
    debian = StandIn(
        stands_for=("debian:bookworm",), repository="multiarch-kit/hub-debian", tag="bookworm", folder="hub/debian",
        description="STAND-IN for Docker Hub's debian:bookworm (Debian's apt variant, no compilers), made by "
                    "multiarch-kit's Docker Desktop rehearsal", title="debian:bookworm",
        dockerfile=dockerfile.from_root_filesystems("Docker Hub's debian:bookworm, as the rehearsal makes it.",
                                                    ["bash"]),
        standin_note="", what="the debian:bookworm stand-in")
    go_df = dockerfile.from_root_filesystems(
        "Docker Hub's golang:1.19-bookworm, as the rehearsal makes it: Go in /usr/local/go (Debian's Go 1.19), gcc "
        "and make.", ["bash"], env={"GOPATH": "/go"}, path="/go/bin:/usr/local/go/bin:" + dockerfile.DEFAULT_PATH,
        then=["RUN ln -s /usr/lib/go-1.19 /usr/local/go && mkdir -p /go/src /go/bin", "WORKDIR /go"])
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
    here = engine.connect(cfg.env).platform
    copies = []
    for standin, wanted, hub_name in hub_images():
        recipe = recipe_digest([standin.description, standin.dockerfile, SOURCE_DATE_EPOCH] +
                               [f"{p}={','.join(v)}" for p, v in sorted(wanted.items(), key=str)])
        if not standin.current(cfg, recipe):
            tars = buildbase.make_rootfs(cfg.paths.standin(standin.folder) / "rootfs" / recipe[:16], wanted)

            def fill(context: Path, tars=tars) -> None:
                for tar in tars.values():
                    (context / tar.name).hardlink_to(tar)

            standin.make(cfg, recipe, tuple(tars), fill)
        copies.append((standin.ref(cfg.registry_host), hub_name))
    binary = Path(shutil.which("docker-registry") or "/usr/bin/docker-registry")
    recipe = recipe_digest([REGISTRY.dockerfile], [binary.read_bytes()])
    if not REGISTRY.current(cfg, recipe):
        REGISTRY.make(cfg, recipe, (here,), lambda context: _registry_rootfs(context / f"rootfs-{here.tag_suffix}.tar"))
    copies.append((REGISTRY.ref(cfg.registry_host), "library/registry:2"))
    found, _ = base.ensure(cfg)
    copies.append((found.ref, "library/alpine:3.18"))
    copies.append((buildkit.ensure(cfg).ref, buildkit.NAME))  # what a plain docker-container builder pulls
    return copies


def start_hub(copies: list[tuple[str, str]]) -> subprocess.Popen:
    """Docker Hub's stand-in: distribution on the host side of the veth pair, filled with ``copies``."""
    (STATE / "hub").mkdir(parents=True, exist_ok=True)
    config = STATE / "hub.yml"
    config.write_text("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                      f"storage:\n  filesystem:\n    rootdirectory: {STATE / 'hub'}\n"
                      f"http:\n  addr: {HUB}\n")
    hub = commands.start(["docker-registry", "serve", config], log=STATE / "hub.log")
    wait(lambda: answers(f"http://{HUB}/v2/"), 10, "Docker Hub's stand-in")
    for lab_ref, hub_name in copies:
        sh("skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{lab_ref}", f"docker://{HUB}/{hub_name}", timeout=1200)
    return hub
