"""Docker Desktop's generation of Docker, from Debian: the newest docker.io, docker-cli, docker-buildx and
containerd Debian ships (unstable, "sid"), in a root filesystem of their own.

Our Mac readers run Docker Desktop's Engine 29, buildx 0.30 and containerd 2; the lab's own engine is Debian 13's
26.1 with buildx 0.13 and containerd 1.7. Both must run side by side, and installing the newer packages would
replace the lab's, so the newer engine gets a Linux of its own, as Desktop's engine has its VM: ``mmdebstrap``
makes a sid root filesystem from this machine's own mirror (read from its apt sources), once, kept in the lab
folder and made again only when its recipe changes. The Desktop rehearsal (``make test-desktop``) starts its
``dockerd`` with it as the root of a mount namespace of its own, in a network namespace of its own, and gives the reader that root's
``docker`` CLI and buildx plugin.

Debian's sid on a mirror that is a frozen snapshot has a Release file whose "Valid-Until" date has passed, which
apt refuses by default; the root is made with that check off (the packages' signatures are still checked).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..core import commands, files
from ..core.errors import CommandError, KitError
from . import buildbase, standins
from .config import LabPaths

SUITE = "sid"
# mount: the rehearsal unmounts the machine's root from under the engine's with its umount.
PACKAGES = ("docker.io", "docker-cli", "docker-buildx", "containerd", "iptables", "ca-certificates", "mount")
# The versions a reader sees, read back from the root's dpkg database once it is made.
REPORTED = ("docker.io", "docker-cli", "docker-buildx", "containerd", "runc")
APT_OPTIONS = ('Acquire::Retries "3"', 'Acquire::Check-Valid-Until "false"')
CLI = "usr/bin/docker"
BUILDX = "usr/libexec/docker/cli-plugins/docker-buildx"


@dataclass(frozen=True)
class NewestDocker:
    """The root filesystem, where it is kept and what it holds."""

    folder: Path

    @classmethod
    def of(cls, paths: LabPaths) -> NewestDocker:
        return cls(paths.root / "newest-docker")

    root = property(lambda self: self.folder / "root")
    record = property(lambda self: self.folder / "made.json")
    cli = property(lambda self: self.root / CLI)
    buildx = property(lambda self: self.root / BUILDX)

    def versions(self) -> dict[str, str]:
        """Package: version, as recorded when the root was made (empty if it is not made)."""
        made = files.read_json(self.record)
        return dict(made.get("versions", {})) if isinstance(made, dict) else {}

    def current(self) -> bool:
        made = files.read_json(self.record)
        return isinstance(made, dict) and made.get("recipe") == recipe() and self.cli.exists()


def recipe() -> str:
    """A digest of what the root is made of; a different one makes it again."""
    return standins.recipe_digest([SUITE, *PACKAGES, *APT_OPTIONS, *buildbase.DPKG_OPTIONS])


def mmdebstrap_argv(root: Path, mirror: str) -> commands.Command:
    """The ``mmdebstrap`` line that makes the root filesystem in ``root``."""
    return (commands.Command("mmdebstrap", "--variant=apt")
            .option("--include", ",".join(PACKAGES))
            .option("--aptopt", list(APT_OPTIONS))
            .option("--dpkgopt", list(buildbase.DPKG_OPTIONS))
            .add(SUITE, root, mirror))


def dpkg_versions(root: Path, names: tuple[str, ...] = REPORTED) -> dict[str, str]:
    """The installed versions of ``names`` in ``root``'s dpkg database (``/var/lib/dpkg/status``)."""
    found: dict[str, str] = {}
    for block in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line[0].isspace())
        if fields.get("Package") in names and fields.get("Status", "").endswith(" installed"):
            found[fields["Package"]] = fields.get("Version", "")
    return {name: found[name] for name in names if name in found}


def ensure(paths: LabPaths, *, echo: bool = True) -> NewestDocker:
    """The root filesystem, made first if it is missing or its recipe changed (about a minute, once)."""
    made = NewestDocker.of(paths)
    if made.current():
        return made
    if os.geteuid() != 0 or not shutil.which("mmdebstrap"):
        raise KitError("the newest Docker's root filesystem is made with mmdebstrap in root mode, as root on Debian",
                       "run it as root on a Debian machine the lab provisioned ('multiarch-kit lab up')")
    mirror = buildbase.apt_mirror()
    started = time.monotonic()
    made.folder.mkdir(parents=True, exist_ok=True)
    part = made.folder / "root.part"
    shutil.rmtree(part, ignore_errors=True)
    made.record.unlink(missing_ok=True)
    print(f"Making the newest Docker's root filesystem (once per machine): Debian {SUITE} with "
          f"{', '.join(PACKAGES)}, by mmdebstrap from this machine's mirror", flush=True)
    _bootstrap(part, mirror, echo=echo)
    shutil.rmtree(made.root, ignore_errors=True)
    part.rename(made.root)
    versions = dpkg_versions(made.root)
    files.write_json(made.record, {"recipe": recipe(), "suite": SUITE, "versions": versions,
                                   "made": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                   "seconds": round(time.monotonic() - started, 1)})
    print(f"Made in {time.monotonic() - started:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    return made


ATTEMPTS, PAUSE_S = 3, 30  # a mirror mid-sync answers "File has unexpected size" for a while, then recovers


def _bootstrap(part: Path, mirror: str, *, echo: bool) -> None:
    """Run mmdebstrap into ``part``, again after a pause when it fails (up to :data:`ATTEMPTS` times)."""
    for attempt in range(1, ATTEMPTS + 1):
        shutil.rmtree(part, ignore_errors=True)
        try:
            commands.run(mmdebstrap_argv(part, mirror), echo=echo, timeout=1800,
                         on_line=lambda line: print(f"  {line}", flush=True) if line.startswith("E: ") else None)
            return
        except CommandError as exc:
            shutil.rmtree(part, ignore_errors=True)
            if attempt == ATTEMPTS:
                raise KitError(f"making the newest Docker's root filesystem failed {ATTEMPTS} times: {exc.message}",
                               "check the mirror (one mid-sync fails for a while) and the free disk, then try again"
                               ) from None
            print(f"mmdebstrap failed (attempt {attempt} of {ATTEMPTS}); trying again in {PAUSE_S} s", flush=True)
            time.sleep(PAUSE_S)
