"""Verify: does each platform's image hold what its manifest claims, and does a rebuild reproduce it?

The classic multi-platform bug is an index whose arm64 entry holds amd64 binaries: it pulls fine and dies
with "exec format error". :func:`verify` checks, for every image entry of a reference (registry, archive,
layout):

* the image config's os/architecture/variant against the entry's platform;
* every ELF executable and shared library in its layers (machine, class, byte order, and for 32-bit arm
  the architecture version from the ELF build attributes) against the platform, naming layer and path;
* optionally (``run=True``) ``docker run --platform P IMAGE uname -m``.

Layers are streamed through ``tarfile`` and never unpacked or held whole: only ELF files are buffered, in a
spooled temporary file that moves to disk past a few MB. ELF headers are read with pyelftools.

:func:`compare` tells whether two references hold the same per-platform images and, where they differ,
which config fields, layers and files; :func:`rebuild` builds twice reproducibly and compares; :func:`diff`
sets two references side by side (platforms, digests, media types, attestations).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .. import buildx
from ..engine import images
from ..oci import manifests
from ..core.errors import KitError
from ..oci.platforms import ARCHITECTURES, Platform, architecture_for_elf
from ..oci.references import Reference, open_source, parse_reference
# ARM build attribute Tag_CPU_arch -> architecture major version (ARM IHI 0045: 6 = v6, 10 = v7, 14 = v8...).
ARM_TAG_VERSION = {0: 4, 1: 4, 2: 4, 3: 5, 4: 5, 5: 5, 6: 6, 7: 6, 8: 6, 9: 6, 10: 7, 11: 6, 12: 6, 13: 7,
                   14: 8, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9}
SPOOL_BYTES = 8 << 20  # ELF files up to this size stay in memory while parsed; larger ones go to disk
ELF_MAGIC = b"\x7fELF"


@dataclass
class ElfInfo:
    """What an ELF header says about the machine a binary needs."""

    machine: str
    elf_class: int
    little_endian: bool
    elf_type: str
    arm_version: int | None = None

    @property
    def architecture(self) -> str:
        return architecture_for_elf(self.machine, self.elf_class, self.little_endian) or self.machine

    def describe(self) -> str:
        arch = self.architecture + (f" (ARMv{self.arm_version})" if self.arm_version else "")
        order = "LE" if self.little_endian else "BE"
        return f"{arch}, ELF{self.elf_class} {order} {self.elf_type}"


def read_elf(fileobj) -> ElfInfo | None:
    """Parse an ELF header (and ARM attributes) from a seekable file; None when it is not a usable ELF."""
    try:
        elf = ELFFile(fileobj)
        version = None
        if elf.header.e_machine == "EM_ARM":
            section = elf.get_section_by_name(".ARM.attributes")
            if section is not None:
                for sub in section.iter_subsections():
                    for subsub in sub.iter_subsubsections():
                        for attr in subsub.iter_attributes():
                            if attr.tag == "TAG_CPU_ARCH":
                                version = ARM_TAG_VERSION.get(attr.value)
        return ElfInfo(elf.header.e_machine, elf.elfclass, elf.little_endian, elf.header.e_type, version)
    except (ELFError, ValueError, KeyError, EOFError):
        return None


def judge(info: ElfInfo, platform: Platform) -> str | None:
    """Why a binary does not fit ``platform``, or None when it does."""
    if info.architecture != platform.architecture:
        return f"{info.architecture} binary in a {platform} image"
    variant = platform.variant
    if platform.architecture == "arm" and info.arm_version and variant.startswith("v") and variant[1:].isdigit():
        if info.arm_version > int(variant[1:]):
            return f"ARMv{info.arm_version} binary in a {platform} image (needs a newer CPU)"
    return None


@dataclass
class Finding:
    """A file whose machine does not match its image's platform."""

    platform: str
    layer: int
    layer_digest: str
    path: str
    found: str
    problem: str
    explained: str = ""  # why the mismatch is expected (a cross sysroot, test data); empty: a real one


def expected_elsewhere(path: str, info: ElfInfo) -> str:
    """Why a binary for another machine belongs in an image, or "" when nothing explains it.

    Cross toolchains keep the target's libraries in ``/usr/<GNU triplet>/`` (a sysroot: linked against,
    never run here), and Go's sources carry ELF files of many machines as test data.
    """
    parts = path.split("/")
    for a in ARCHITECTURES:
        if a.architecture == info.architecture and parts[:2] == ["usr", a.gnu]:  # not /usr/lib/<triplet>/
            return f"cross-compilation sysroot for {a.gnu}: linked against, not run here"
    if "testdata" in parts:
        return "test data of a source tree: read by tests, not run"
    return ""


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


# --- comparing ------------------------------------------------------------------------------------------------


def _listing(stream) -> dict[str, tuple]:
    """path -> (type, size, mode, mtime, sha256 of content) for every entry of a layer tar."""
    out = {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for m in tar:
            content = ""
            if m.isfile():
                h, f = hashlib.sha256(), tar.extractfile(m)
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                content = h.hexdigest()
            out[m.name.removeprefix("./")] = (m.type, m.size, m.mode, int(m.mtime), content, m.linkname)
    if hasattr(stream, "drain"):
        stream.drain()
    return out


_FIELDS = ("type", "size", "mode", "mtime", "content", "link target")


def compare(ref_a: str, ref_b: str) -> pd.DataFrame:
    """Per platform: same image in both? Where not, every differing config field, layer and file, one row each."""
    src_a, src_b = open_source(ref_a), open_source(ref_b)
    a, b = manifests.follow(src_a, ref_a), manifests.follow(src_b, ref_b)
    by_b = {e.platform: e for e in b.images()}
    rows = []
    for ea in a.images():
        p = str(ea.platform)
        eb = by_b.get(ea.platform)
        if eb is None:
            rows.append({"platform": p, "where": "index", "path": "", "difference": f"only in {ref_a}"})
            continue
        if ea.digest == eb.digest:
            rows.append({"platform": p, "where": "manifest", "path": "", "difference": "same"})
            continue
        before = len(rows)
        ca, cb = _config_fields(ea.config.raw), _config_fields(eb.config.raw)
        for key in sorted(set(ca) | set(cb)):
            if ca.get(key) != cb.get(key):
                rows.append({"platform": p, "where": "config", "path": key, "difference": "differs"})
        for i, (la, lb) in enumerate(zip(ea.manifest.layers, eb.manifest.layers)):
            if la.digest == lb.digest:
                continue
            fa, fb = _listing(src_a.open_blob(la.digest)), _listing(src_b.open_blob(lb.digest))
            for path in sorted(set(fa) | set(fb)):
                if path not in fb or path not in fa:
                    rows.append({"platform": p, "where": f"layer {i}", "path": path,
                                 "difference": f"only in {ref_a if path in fa else ref_b}"})
                elif fa[path] != fb[path]:
                    what = [name for name, x, y in zip(_FIELDS, fa[path], fb[path]) if x != y]
                    rows.append({"platform": p, "where": f"layer {i}", "path": path, "difference": ", ".join(what)})
        if len(ea.manifest.layers) != len(eb.manifest.layers):
            rows.append({"platform": p, "where": "layers", "path": "",
                         "difference": f"{len(ea.manifest.layers)} vs {len(eb.manifest.layers)} layers"})
        if len(rows) == before:  # same config, same layers: only the manifest's own bytes differ
            ta, tb = (manifests.SHORT_NAMES.get(m.media_type, m.media_type) for m in (ea.manifest, eb.manifest))
            what = f"{ta} vs {tb}" if ta != tb else "annotations or field order"
            rows.append({"platform": p, "where": "manifest", "path": "",
                         "difference": f"same config and layers; the manifests differ: {what}"})
    return pd.DataFrame(rows, columns=["platform", "where", "path", "difference"])


def _config_fields(raw: bytes) -> dict:
    obj = json.loads(raw)
    flat = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            for k, v in value.items():
                flat[f"{key}.{k}"] = json.dumps(v, sort_keys=True)
        else:
            flat[key] = json.dumps(value, sort_keys=True)
    return flat


def rebuild(context, platforms: list[Platform], base, folder, *, reproducible: bool = True) -> pd.DataFrame:
    """Build ``context`` twice from scratch into OCI tars under ``folder`` and :func:`compare` the two."""
    tars = []
    for name in ("first", "second"):
        tar = Path(folder) / f"{name}.tar"
        buildx.build(context, platforms=platforms, output=f"type=oci,dest={tar}", base=base, no_cache=True,
                     reproducible=reproducible)
        tars.append(f"oci-archive:{tar}")
    return compare(*tars)


def diff(ref_a: str, ref_b: str) -> pd.DataFrame:
    """Two references side by side: media type, digest, platforms, per-platform digests, attestations."""
    a, b = manifests.inspect(ref_a), manifests.inspect(ref_b)

    def platforms_of(x):
        return {e.platform: e.digest for e in x.images()}

    pa, pb = platforms_of(a), platforms_of(b)
    rows = [
        ("media type", manifests.SHORT_NAMES.get(a.media_type, a.media_type),
         manifests.SHORT_NAMES.get(b.media_type, b.media_type)),
        ("digest", a.digest, b.digest),
        ("platforms", ", ".join(sorted(map(str, pa))), ", ".join(sorted(map(str, pb)))),
        ("attestations", str(len(a.attestations())), str(len(b.attestations()))),
    ]
    for p in sorted(set(pa) | set(pb), key=str):
        rows.append((f"{p} image", pa.get(p, "-"), pb.get(p, "-")))
    df = pd.DataFrame(rows, columns=["aspect", "a", "b"])
    df["same"] = df.a == df.b
    return df
