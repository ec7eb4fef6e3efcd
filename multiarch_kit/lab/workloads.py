"""The bench's workloads: what each one builds, its size knob, and the strategies it can be built with.

Strategies, the three ways to get an image for a platform:

* ``native``: the target is the build platform (the engine's own), so every step runs natively;
* ``emulated``: the target is another platform and its RUN steps run in that platform's image, emulated
  (QEMU through binfmt_misc, or Rosetta on Apple silicon);
* ``cross``: the work runs in a ``FROM --platform=$BUILDPLATFORM`` stage, natively, with a cross compiler for
  the target, and only the result is copied into the target platform's image.

Each workload is a Dockerfile folder under ``multiarch_kit/workloads/`` (``article`` is the article's own).
Real sources come from a package registry, pinned and hash-checked, and are fetched once into the lab folder.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from ..core import commands
from ..core.errors import CommandError, KitError
from .config import LabPaths

NATIVE, EMULATED, CROSS = "native", "emulated", "cross"
STRATEGIES = (NATIVE, EMULATED, CROSS)
ALPINE, DEBIAN = "alpine", "debian"  # which base a workload's FROM names: the article's, or the build base


@dataclass(frozen=True)
class Source:
    """A source archive from a package registry, fetched with pip and checked against a pinned sha256."""

    requirement: str
    archive: str
    sha256: str
    folder: str
    context: str = "source"  # the named build context the Dockerfile copies it from

    def path(self, lab_dir: Path) -> Path:
        return LabPaths(lab_dir).sources / self.folder


BROTLI = Source("brotli==1.2.1", "brotli-1.2.1.tar.gz",
                "02b2f7b5a83485efe448a44ddf7983def05c3bb1dcf917d4f7154070260e13de", "brotli-1.2.1")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per workload
class Workload:
    """One thing the bench builds."""

    name: str
    what: str
    strategies: tuple[str, ...]
    size_arg: str | None  # the build argument that carries the size
    unit: str
    default_size: int  # the default plan's: short
    full_size: int  # a thorough run's: the whole build
    base: str
    targets: dict[str, str] = field(default_factory=dict)  # strategy -> Dockerfile target
    measured_stages: tuple[str, ...] = ()  # never taken from the cache (empty: the whole Dockerfile)
    source: Source | None = None

    def context(self) -> Path:
        """The workload's Dockerfile folder: package data, so an installed kit has it too."""
        return Path(str(files("multiarch_kit") / "workloads" / self.name))

    def size(self, value: int | None) -> int:
        """``value`` checked against the knob (None: the default); 0 for a workload without one."""
        if self.size_arg is None:
            return 0
        size = self.default_size if value is None else value
        if not 1 <= size <= self.full_size:
            raise KitError(f"size {size} is out of range for the {self.name} workload (1 to {self.full_size} "
                           f"{self.unit})", f"give --sizes {self.name}={self.default_size}, or {self.full_size} for all")
        return size


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("cpu", "compress and hash MB megabytes of zeros in one RUN step (a micro benchmark)",
             (NATIVE, EMULATED), "MB", "MB", 32, 256, ALPINE),
    Workload("c", "gcc -O2 of the Brotli 1.2.1 C library (35 files) and its tool", STRATEGIES, "FILES", "files", 4, 35,
             DEBIAN, {NATIVE: "in-target", EMULATED: "in-target", CROSS: "cross"}, ("in-target", "cross-compile"),
             BROTLI),
    Workload("go", "go build -a of gofmt and the standard-library packages it needs (Go 1.19)", STRATEGIES,
             "PACKAGES", "packages", 20, 66, DEBIAN, {NATIVE: "in-target", EMULATED: "in-target", CROSS: "cross"},
             ("in-target", "cross-compile")),
    Workload("article", "the article's Dockerfile (one RUN echo)", (NATIVE, EMULATED), None, "", 0, 0, ALPINE),
)}


def workload(name: str) -> Workload:
    """The workload called ``name``, or a one-line error naming the ones there are."""
    if name not in WORKLOADS:
        raise KitError(f"unknown workload {name!r}", f"choose from {', '.join(WORKLOADS)}")
    return WORKLOADS[name]


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise KitError(f"unknown strategy {name!r}", f"choose from {', '.join(STRATEGIES)}")
    return name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def unpack(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack ``tar`` into ``dest`` with the "data" filter's rules: nothing absolute, no ``..``, no links or
    devices leading out. Pythons before 3.11.4 (Debian 12's is 3.11.2) have no extraction filters, so there the
    kit checks the rules itself and allows plain files and folders only (what a source archive holds)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    for member in tar.getmembers():
        if member.name.startswith("/") or ".." in Path(member.name).parts or not (member.isfile() or member.isdir()):
            raise tarfile.TarError(f"refused {member.name!r}: only plain files and folders inside the archive")
    tar.extractall(dest)


def fetch(source: Source, lab_dir: Path, *, echo: bool = True) -> Path:
    """The unpacked source folder, fetched once with ``pip download`` and checked against the pinned sha256."""
    folder = source.path(lab_dir)
    if (folder / ".verified").exists():
        return folder
    downloads = LabPaths(lab_dir).sources / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / source.archive
    if not archive.exists():
        try:
            commands.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                          "--disable-pip-version-check", "-q", source.requirement, "-d", downloads], echo=echo,
                         timeout=600)
        except CommandError as exc:
            raise KitError(f"cannot download {source.requirement} from the package index ({exc.message})",
                           "check the network, or put the file there by hand") from None
    actual = _sha256(archive)
    if actual != source.sha256:
        raise KitError(f"{archive} has sha256 {actual[:16]}..., not the pinned {source.sha256[:16]}...",
                       f"delete {archive} and run again to download it afresh")
    staging = folder.with_name(folder.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted unpacking
    try:
        with tarfile.open(archive) as tar:
            unpack(tar, staging)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise KitError(f"{archive} cannot be unpacked ({exc})", f"delete {archive} and run again") from None
    unpacked = staging / source.folder
    if not unpacked.is_dir():
        raise KitError(f"{archive} has no folder {source.folder}", f"delete {archive} and run again")
    if folder.exists():
        shutil.rmtree(folder)
    unpacked.rename(folder)
    staging.rmdir()
    (folder / ".verified").write_text(source.sha256)
    return folder
