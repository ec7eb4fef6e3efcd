"""Verify: does each platform's image hold what its manifest claims?

The classic multi-platform bug is an index whose arm64 entry holds amd64 binaries: it pulls fine and dies
with "exec format error". :func:`verify` checks, for every image entry of a reference (registry, archive,
layout):

* the image config's os/architecture/variant against the entry's platform;
* every ELF executable and shared library in its layers (:mod:`multiarch_kit.verify.elf`) against the platform,
  naming layer and path;
* optionally (``run=True``) ``docker run --platform P IMAGE uname -m``.

Layers are streamed through ``tarfile`` and never unpacked or held whole: only ELF files are buffered, in a
spooled temporary file that moves to disk past a few MB.
"""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass, field

import pandas as pd

from ..core.errors import KitError
from ..engine import images
from ..oci import manifests
from ..oci.platforms import Platform
from ..oci.references import Reference, open_source, parse_reference
from .elf import ElfInfo, Finding, expected_elsewhere, judge, read_elf

SPOOL_BYTES = 8 << 20  # ELF files up to this size stay in memory while parsed; larger ones go to disk
ELF_MAGIC = b"\x7fELF"


@dataclass
class LayerScan:
    """What one layer holds, counted while streaming it."""

    index: int
    digest: str
    files: int = 0
    elf: int = 0
    other: int = 0  # regular files that are not ELF (scripts, data, whiteouts)
    links: int = 0  # symbolic and hard links (their targets are checked where they are files)
    findings: list[Finding] = field(default_factory=list)


def _walk(stream, digest: str):
    """Every entry of a layer tar (gzip or plain): (name, kind, ElfInfo or None), kind being link, file or other.

    Only ELF executables and shared libraries come with an ElfInfo; their bytes are spooled, never held whole.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.issym() or member.islnk():
                    yield name, "link", None
                    continue
                if not member.isfile():
                    continue
                f = tar.extractfile(member)
                head = f.read(4)
                if head != ELF_MAGIC:
                    yield name, "file", None
                    continue
                with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                    spool.write(head)
                    while chunk := f.read(1 << 20):
                        spool.write(chunk)
                    spool.seek(0)
                    info = read_elf(spool)
                # object files, core dumps, broken headers: not run by the loader
                yield name, "file", info if info is not None and info.elf_type in ("ET_EXEC", "ET_DYN") else None
    except tarfile.TarError as exc:
        raise KitError(f"layer {digest} is not a readable tar ({exc})", "the image is damaged, or its layers are "
                       "compressed with zstd, which the kit does not read") from None
    if hasattr(stream, "drain"):
        stream.drain()  # the rest (gzip trailer, padding) still counts towards the digest


def elf_files(stream, digest: str = "") -> dict[str, ElfInfo]:
    """The ELF executables and shared libraries of one layer, by path, with what their headers say."""
    return {name: info for name, _, info in _walk(stream, digest) if info is not None}


def scan_layer(stream, platform: Platform, index: int, digest: str) -> LayerScan:
    """Stream a layer tar (gzip or plain) and check every ELF executable and shared library in it."""
    scan = LayerScan(index, digest)
    for name, kind, info in _walk(stream, digest):
        if kind == "link":
            scan.links += 1
            continue
        scan.files += 1
        if info is None:
            scan.other += 1
            continue
        scan.elf += 1
        problem = judge(info, platform)
        if problem:
            scan.findings.append(Finding(str(platform), index, digest, name, info.describe(), problem,
                                         expected_elsewhere(name, info)))
    return scan


@dataclass
class EntryReport:
    """One image entry of the reference, checked."""

    platform: Platform
    digest: str
    config_platform: Platform
    layers: list[LayerScan]
    machine: str | None = None  # uname -m from the run check, when asked

    @property
    def config_ok(self) -> bool:
        return self.config_platform == self.platform

    @property
    def findings(self) -> list[Finding]:
        """The mismatches nothing explains: each one fails the check."""
        return [f for layer in self.layers for f in layer.findings if not f.explained]

    @property
    def notes(self) -> list[Finding]:
        """Mismatches that are expected where they are (a cross sysroot, test data): reported, not failed."""
        return [f for layer in self.layers for f in layer.findings if f.explained]

    @property
    def run_ok(self) -> bool | None:
        return None if self.machine is None else self.machine == self.platform.arch.uname

    @property
    def ok(self) -> bool:
        return self.config_ok and not self.findings and self.run_ok is not False


@dataclass
class Report:
    """What :func:`verify` found."""

    reference: str
    entries: list[EntryReport]

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    def table(self) -> pd.DataFrame:
        rows = [{"platform": str(e.platform), "digest": e.digest, "config": str(e.config_platform),
                 "config ok": e.config_ok, "layers": len(e.layers), "files": sum(x.files for x in e.layers),
                 "ELF": sum(x.elf for x in e.layers), "mismatches": len(e.findings), "expected": len(e.notes),
                 "uname -m": e.machine or "", "ok": e.ok} for e in self.entries]
        return pd.DataFrame(rows, columns=["platform", "digest", "config", "config ok", "layers", "files", "ELF",
                                           "mismatches", "expected", "uname -m", "ok"])

    def findings(self, *, expected: bool = False) -> pd.DataFrame:
        """The real mismatches (or, with ``expected``, the explained ones), one row per file."""
        rows = [vars(f) for e in self.entries for f in (e.notes if expected else e.findings)]
        return pd.DataFrame(rows, columns=["platform", "layer", "layer_digest", "path", "found", "problem",
                                           "explained"])


def verify(reference: str | Reference | manifests.Inspection, *, run: bool = False, echo: bool = True) -> Report:
    """Check every image entry of ``reference``: config, ELF binaries in every layer, and optionally a run.

    An :class:`~multiarch_kit.oci.manifests.Inspection` already read (a split build's merged index) is scanned as
    it is: its manifests and configs are not fetched again, only the layers."""
    ref = parse_reference(reference.reference if isinstance(reference, manifests.Inspection) else reference)
    if run and ref.transport != "docker":
        raise KitError("the run check needs a registry reference (the engine pulls it)",
                       "push the image first, or verify without --run")
    if isinstance(reference, manifests.Inspection):
        inspection, source = reference, reference.source
    else:
        source = open_source(ref)
        inspection = manifests.follow(source, str(reference))
    entries = []
    for entry in inspection.images():
        claimed = entry.platform
        layers = [scan_layer(source.open_blob(layer.digest), claimed, i, layer.digest)
                  for i, layer in enumerate(entry.manifest.layers)]
        report = EntryReport(claimed, entry.digest, entry.config.platform, layers)
        if run:
            report.machine = images.run(report.platform, ref.at(entry.digest).docker, "uname", "-m",
                                        echo=echo).stdout.strip()
        entries.append(report)
    return Report(inspection.reference, entries)
