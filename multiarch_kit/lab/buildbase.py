"""The build base of the real workloads: Debian bookworm with gcc, make and Go, one image per lab platform.

On a machine with Docker Hub (a Mac with Docker Desktop) the workloads' Dockerfiles pull the real
``debian:bookworm`` and ``golang:1.19-bookworm``. Without it (this lab) the kit makes a labelled STAND-IN for
both, offline, with Debian's own bootstrap tool: ``mmdebstrap`` builds a bookworm root filesystem per platform
from this machine's Debian mirror (read from its apt sources), running the foreign architectures' package
scripts through the lab's QEMU (``arch-test`` says whether that works). The build platform's root filesystem
also gets the cross compilers for the other platforms. The three root filesystems become one index in the lab
registry, ``localhost:5000/multiarch-kit/debian-build-standin:bookworm``, which builds use through
``--build-context debian:bookworm=docker-image://...`` so the Dockerfiles stay as they are.

Made once per machine and cached in the lab folder: a finished root filesystem is kept (an interrupted build
starts again with the platforms it lacks), and nothing is rebuilt while the recipe, the lab platforms and the
pushed index are unchanged. ``SOURCE_DATE_EPOCH`` makes the root filesystems and the image reproducible.
This module is what the stand-in is made of; :mod:`multiarch_kit.lab.standins` builds and pushes it.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from pathlib import Path

from ..buildx import SOURCE_DATE_EPOCH, dockerfile
from ..core import commands
from ..core.errors import CommandError, KitError
from ..oci.platforms import Platform
from .config import LabConfig
from .standins import Base, StandIn, recipe_digest

SUITE = "bookworm"
REPOSITORY = "multiarch-kit/debian-build-standin"
TAG = SUITE
STANDS_FOR = ("debian:bookworm", "golang:1.19-bookworm")
PACKAGES = ("gcc", "libc6-dev", "make", "golang-go")
DESCRIPTION = ("STAND-IN for debian:bookworm and golang:1.19-bookworm made by multiarch-kit with mmdebstrap from "
               "Debian bookworm packages (gcc 12, make, Go 1.19 from Debian): not the Docker Official Images")
MIN_FREE_GB = 8.0  # three root filesystems, their layers in the engine and in the registry
# Documentation, manuals and translations are left out: they are a third of the size and no build reads them.
DPKG_OPTIONS = ("path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
                 "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/info/*")
_DOCKERFILE = dockerfile.from_root_filesystems(
    "The STAND-IN build base, made by multiarch-kit (see multiarch_kit/buildbase.py): one Debian root filesystem\n"
    "per platform, made by mmdebstrap.", ["bash"])


STANDIN = StandIn(
    stands_for=STANDS_FOR, repository=REPOSITORY, tag=TAG, folder="buildbase", description=DESCRIPTION,
    dockerfile=_DOCKERFILE, title="Build base",
    standin_note=("Build base: debian:bookworm and golang:1.19-bookworm are a STAND-IN ({ref}, made here by "
                  "mmdebstrap from Debian packages) because Docker Hub is not reachable; the Dockerfiles are unchanged."),
    what="the build base")


def standin(build_platform: Platform) -> StandIn:
    """The stand-in for engines of ``build_platform``: its root filesystem carries the cross compilers for the
    others, so each build platform has an index of its own. The amd64 one keeps the plain tag; another's tag
    names its build platform (``bookworm-build-arm64``, made on the lab's arm64 VM)."""
    if build_platform.architecture == "amd64":
        return STANDIN
    return dataclasses.replace(STANDIN, tag=f"{TAG}-build-{build_platform.tag_suffix}",
                               folder=f"{STANDIN.folder}-{build_platform.tag_suffix}")


def packages(platform: Platform, build_platform: Platform, platforms: tuple[Platform, ...]) -> list[str]:
    """What goes into ``platform``'s root filesystem: the toolchain, and on the build platform the cross compilers
    (``gcc-aarch64-linux-gnu``, ``libc6-dev-arm64-cross``...) for every other platform."""
    wanted = list(PACKAGES)
    if platform == build_platform:
        for other in platforms:
            if other.architecture != build_platform.architecture:
                wanted += [f"gcc-{other.arch.gnu.replace('_', '-')}", f"libc6-dev-{other.arch.debian}-cross"]
    return wanted


def recipe(build_platform: Platform, platforms: tuple[Platform, ...]) -> str:
    """A digest of everything the base is made from; the lab rebuilds it when this changes."""
    parts = [SUITE, DESCRIPTION, _DOCKERFILE, SOURCE_DATE_EPOCH, *DPKG_OPTIONS]
    for p in sorted(platforms, key=str):
        parts.append(f"{p}={','.join(packages(p, build_platform, platforms))}")
    return recipe_digest(parts)


def apt_mirror(suite: str = SUITE, *, sources: Path = Path("/etc/apt")) -> str:
    """The URI this machine's apt sources use for ``suite`` (deb822 ``.sources`` files, then ``sources.list``)."""
    for path in sorted((sources / "sources.list.d").glob("*.sources")):
        try:
            text = path.read_text()
        except OSError:
            continue
        for block in re.split(r"\n\s*\n", text):
            fields = {}
            for line in block.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and suite in fields.get("suites", []) and fields.get("uris"):
                return fields["uris"][0]
    for path in [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.list"))]:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    raise KitError(f"no apt source for Debian {suite} on this machine (read {sources})",
                   f"add one (e.g. a file in {sources}/sources.list.d/), or build where Docker Hub is reachable")


def _rootfs_argv(platform: Platform, packages_: list[str], mirror: str, out: Path) -> list[str]:
    return (commands.Command("mmdebstrap", "--variant=apt", "--format=tar")
            .option("--architectures", platform.arch.debian)
            .option("--include", ",".join(packages_) or None)  # none: the variant alone
            .option("--dpkgopt", list(DPKG_OPTIONS))
            .option("--aptopt", 'Acquire::Retries "3"')
            .add(SUITE, out, mirror))


def ensure(cfg: LabConfig, build_platform: Platform, *, echo: bool = True, make_on: str | None = None) -> Base:
    """The stand-in, made and pushed if the registry does not hold it for this recipe yet.

    Prints each step, with a line per platform and stage while mmdebstrap works (its full log in the lab's
    ``logs/build-base.log``). Root filesystems already
    made are kept and reused; an interrupted run (Ctrl-C, a full disk) leaves no half-written file behind.
    ``make_on`` names the Docker context whose engine builds the index (default: the current one).
    """
    digest = recipe(build_platform, cfg.platforms)
    made = standin(build_platform)
    found = made.current(cfg, digest)
    if found:
        return found
    tars = make_rootfs(cfg.paths.standin(made.folder) / "rootfs" / digest[:16],
                       {p: packages(p, build_platform, cfg.platforms) for p in cfg.platforms},
                       log=cfg.paths.logs / "build-base.log")

    def fill(context: Path) -> None:  # hard links: the context costs no disk of its own
        for tar in tars.values():
            (context / tar.name).hardlink_to(tar)

    return made.make(cfg, digest, tuple(tars), fill, echo=echo, context_name=make_on)


def make_rootfs(folder: Path, wanted: dict[Platform, list[str]], *, log: Path | None = None) -> dict[Platform, Path]:
    """One root filesystem tar per platform in ``folder``, made by mmdebstrap in parallel where missing.

    The reader sees one line per platform and stage (packages fetched, installed, the tar written) with the time
    so far; the commands and every line mmdebstrap and apt print go to ``log`` (``FOLDER.log`` beside the folder
    unless given), whose path the first line names: so the machine's mirror and apt's chatter stay out of a
    notebook.
    Each tar is written as ``.part`` and renamed the moment its mmdebstrap succeeds, so a later failure or a
    Ctrl-C keeps it; the half-written ones are removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tars = {p: folder / f"rootfs-{p.tag_suffix}.tar" for p in wanted}
    missing = [p for p, tar in tars.items() if not tar.exists()]
    if not missing:
        return tars
    _check_disk(folder)
    log = log or folder.with_name(folder.name + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    mirror = apt_mirror()
    print(f"Making the build base (once per machine, a few minutes): Debian {SUITE} for "
          f"{', '.join(map(str, missing))} with mmdebstrap; full log in {log}", flush=True)
    argvs = {p: _rootfs_argv(p, wanted[p], mirror, folder / f"rootfs-{p.tag_suffix}.tar.part") for p in missing}
    started = time.monotonic()
    width = max(len(str(p)) for p in missing)
    with open(log, "a") as written:
        written.writelines(f"$ {commands.shell_line(a, {'SOURCE_DATE_EPOCH': SOURCE_DATE_EPOCH})}\n"
                           for a in argvs.values())

        def progress(p: Platform, line: str) -> None:
            written.write(f"[{p}] {line}\n")
            if line.startswith(("E: ", "W: ")) or line.startswith(_STAGES):  # errors, and a stage begun
                print(f"  [{p!s:<{width}} {time.monotonic() - started:5.0f} s] {line}", flush=True)

        def finished(p: Platform) -> None:  # kept at once: a later failure or Ctrl-C does not lose it
            (folder / f"rootfs-{p.tag_suffix}.tar.part").rename(tars[p])
            done = sum(t.exists() for t in tars.values())
            print(f"  [{p!s:<{width}} {time.monotonic() - started:5.0f} s] root filesystem done "
                  f"({done} of {len(tars)})", flush=True)

        try:
            commands.run_all(argvs, env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}, timeout=3600, on_line=progress,
                             on_done=finished, echo=False)
        except CommandError as exc:
            raise KitError(f"making the Debian build base failed: {exc.message.splitlines()[0]}",
                           f"read {log}; free disk space or wait for a mirror mid-sync, then run the same "
                           "command again (finished platforms are kept)") from None
        finally:
            for part in folder.glob("*.part"):  # half-written by a failed or interrupted mmdebstrap
                part.unlink()
    return tars


# mmdebstrap's lines that begin the stages worth a line each: fetching, installing, writing the tar.
_STAGES = ("I: downloading packages", "I: installing remaining packages", "I: creating tarball")


def _check_disk(folder: Path) -> None:
    free = shutil.disk_usage(folder).free / 1e9
    if free < MIN_FREE_GB:
        raise KitError(f"only {free:.1f} GB free at {folder}: the build base needs about {MIN_FREE_GB:.0f} GB",
                       "free some space (docker system prune removes unused images), then run again")
