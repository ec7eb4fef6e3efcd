"""The base image the article's Dockerfile starts from: ``alpine:3.18``, or a stand-in for it.

When Docker Hub answers, builds use the real ``alpine:3.18``. When it does not (no internet for image
registries), the lab builds a stand-in index for linux/amd64, linux/arm64 and linux/arm/v7 from Debian's
``busybox-static`` packages (real static busybox binaries for each architecture), pushes it to the lab
registry and wires it in with a buildx named context, ``--build-context alpine:3.18=docker-image://...``,
so the article's ``FROM alpine:3.18`` stays unchanged. The stand-in says what it is in its OCI
description label. This module is what the stand-in is made of; :mod:`multiarch_kit.standins` makes it.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

from ..buildx import SOURCE_DATE_EPOCH, dockerfile
from ..core import commands
from ..core.errors import KitError
from ..oci.platforms import Platform
from .config import LabConfig
from .standins import Base, StandIn, recipe_digest

ARTICLE_BASE = "alpine:3.18"
STANDIN_REPOSITORY = "multiarch-kit/alpine-standin"
STANDIN_TAG = "3.18"
STANDIN_DESCRIPTION = (
    "STAND-IN for alpine:3.18 made by multiarch-kit from Debian busybox-static on an empty base, not Alpine Linux"
)
# Commands the notebooks and experiments use, linked to /bin/busybox (busybox picks the applet by name).
APPLETS = (
    "sh ash cat cp date dd echo env false grep gzip gunzip head id ln ls md5sum mkdir mount mv printf rm "
    "sed sha256sum sleep sort stat tail tar test touch tr true uname wc xargs zcat"
).split()
_DOCKERFILE = dockerfile.from_root_filesystems(
    "Stand-in for alpine:3.18, made by multiarch-kit (see multiarch_kit/base.py).", ["/bin/sh"])


STANDIN = StandIn(
    stands_for=(ARTICLE_BASE,), repository=STANDIN_REPOSITORY, tag=STANDIN_TAG, folder="base",
    description=STANDIN_DESCRIPTION, dockerfile=_DOCKERFILE, title="Base image",
    standin_note=(f"Base image: {ARTICLE_BASE} is a STAND-IN ({{ref}}, busybox-static from Debian) because Docker "
                  "Hub is not reachable here; the Dockerfile is unchanged, buildx maps the name with --build-context."),
    what="the stand-in base image")


def find_debs(deb_dir: Path, platforms: tuple[Platform, ...]) -> dict[Platform, Path]:
    """The busybox-static package for each platform in ``deb_dir``, or a :class:`KitError`."""
    found, missing = {}, []
    for platform in platforms:
        arch = platform.arch.debian
        debs = sorted(deb_dir.glob(f"busybox-static_*_{arch}.deb"))
        if debs:
            found[platform] = debs[-1]
        else:
            missing.append(arch)
    if missing:
        raise KitError(
            f"Docker Hub is not reachable and the stand-in base needs busybox-static for {', '.join(missing)} "
            f"in {deb_dir}",
            "on Debian run 'sudo make lab' (it provisions the machine); elsewhere connect to the internet so "
            "alpine:3.18 can be pulled",
        )
    return found


def busybox_from_deb(deb: Path) -> bytes:
    """The static busybox binary inside a ``busybox-static`` package."""
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-deb-") as tmp:
        commands.run(["dpkg-deb", "--extract", str(deb), tmp], echo=False, timeout=120)
        return (Path(tmp) / "bin" / "busybox").read_bytes()


def write_rootfs(deb: Path, out: Path) -> None:
    """Write a minimal root filesystem tar: busybox from ``deb``, its applet links, /tmp and friends.

    Every entry has the same owner and timestamp so the tar, and the layer made from it, is identical
    on every machine.
    """
    busybox = busybox_from_deb(deb)
    mtime = int(SOURCE_DATE_EPOCH)

    def entry(name: str, kind: bytes, mode: int, **extra) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, mtime
        for k, v in extra.items():
            setattr(info, k, v)
        return info

    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "mnt", "proc", "root", "sys", "usr", "usr/bin", "var"):
            tar.addfile(entry(d, tarfile.DIRTYPE, 0o755))
        tar.addfile(entry("tmp", tarfile.DIRTYPE, 0o1777))
        tar.addfile(entry("bin/busybox", tarfile.REGTYPE, 0o755, size=len(busybox)), io.BytesIO(busybox))
        for applet in APPLETS:
            tar.addfile(entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777, linkname="busybox"))


def recipe(debs: dict[Platform, Path]) -> str:
    """A sha256 over everything the stand-in is made from: the lab rebuilds it when this changes."""
    return recipe_digest([STANDIN_DESCRIPTION, _DOCKERFILE, *APPLETS, SOURCE_DATE_EPOCH],
                         (f"\0{platform}\0".encode() + deb.read_bytes()
                          for platform, deb in sorted(debs.items(), key=lambda kv: str(kv[0]))))


def ensure(cfg: LabConfig) -> tuple[Base, bool]:
    """The stand-in for this lab's packages, made and pushed unless the registry holds it; and whether it was made."""
    debs = find_debs(cfg.paths.debs, cfg.platforms)
    digest = recipe(debs)
    found = STANDIN.current(cfg, digest)
    if found:
        return found, False

    def fill(context: Path) -> None:  # one rootfs tar per platform, named as TARGETARCH+TARGETVARIANT
        for platform, deb in debs.items():
            write_rootfs(deb, context / f"rootfs-{platform.tag_suffix}.tar")

    return STANDIN.make(cfg, digest, tuple(debs), fill), True
