"""Platforms, with containerd's semantics (github.com/containerd/platforms).

``parse``, ``format`` and ``normalize`` follow containerd's ``Parse``, ``Format`` and ``Normalize``;
``only`` and ``only_strict`` its ``Only`` and ``OnlyStrict`` matchers, including the ranking a runtime uses
to choose among an index's entries (``select``, ``explain``). Docker and containerd pull what these
choose, so the notebooks can say which entry an M2 Mac, an Intel Mac or a Raspberry Pi gets, and why.

Architectures are Go names (amd64, arm64, arm), not kernel names (x86_64, aarch64, armv7l).
"""

from __future__ import annotations

import platform as _pyplatform
import re
from dataclasses import dataclass, field

import pandas as pd

from .errors import InvalidPlatform, KitError

# The platforms the lab builds for, in the order the notebooks show them.
LAB_PLATFORMS: tuple[str, ...] = ("linux/amd64", "linux/arm64", "linux/arm/v7")

# What `uname -m` prints inside a container of each platform (under QEMU too).
UNAME_MACHINE: dict[str, str] = {
    "linux/amd64": "x86_64",
    "linux/arm64": "aarch64",
    "linux/arm/v7": "armv7l",
    "linux/arm/v6": "armv6l",
    "linux/386": "i686",
}

# Go's GOOS and GOARCH values, which containerd accepts for a one-part specifier.
KNOWN_OS = frozenset(
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 solaris wasip1 "
    "windows zos".split()
)
KNOWN_ARCH = frozenset(
    "386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 mips64le mips64p32 mips64p32le "
    "ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 wasm".split()
)

_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")
# An OS, optionally with (version+feature+feature...), as containerd writes Windows platforms.
_OS_PART = re.compile(r"^([A-Za-z0-9_.-]+)(?:\(([A-Za-z0-9_.-]*)((?:\+[A-Za-z0-9_.-]+)*)\))?$")


@dataclass(frozen=True)
class Platform:
    """An OCI platform: what an image's entry in an index says it runs on."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return format(self)

    @classmethod
    def from_oci(cls, obj: dict) -> Platform:
        """From an OCI/Docker ``platform`` object (``os``, ``architecture``, ``variant``, ``os.version``...)."""
        return cls(
            os=str(obj.get("os", "")),
            architecture=str(obj.get("architecture", "")),
            variant=str(obj.get("variant", "") or ""),
            os_version=str(obj.get("os.version", "") or ""),
            os_features=tuple(obj.get("os.features") or ()),
        )


def _normalize_os(os_name: str) -> str:
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
        return "arm", variant
    return arch, variant


def normalize(p: Platform) -> Platform:
    """containerd's ``Normalize``: lower-case OS (macos -> darwin), Go architecture, canonical variant.

    arm64/v8 and amd64/v1 come out with an empty variant; arm's default v7 is written out.
    """
    arch, variant = _normalize_arch(p.architecture, p.variant)
    return Platform(_normalize_os(p.os), arch, variant, p.os_version, p.os_features)


def _process_arch() -> tuple[str, str]:
    machine = _pyplatform.machine()
    return _normalize_arch(go_arch(machine), "v7" if machine.lower().startswith("armv7") else "")


def parse(text: str) -> Platform:
    """containerd's ``Parse``: ``os``, ``arch``, ``os/arch`` or ``os/arch/variant``.

    A lone architecture gets the OS ``linux`` (images are Linux images here; containerd would use the
    client's OS); a lone OS gets this process's architecture, as containerd does. Raises
    :class:`~multiarch_kit.errors.InvalidPlatform` (a ``ValueError`` and a ``KitError``) on empty text, empty
    components (leading or trailing slash), characters outside ``[A-Za-z0-9_.-]``, wildcards, or more than
    three parts.
    """
    if not isinstance(text, str):
        raise InvalidPlatform(f"{text!r}: a platform is text like linux/arm64")
    if "*" in text:
        raise InvalidPlatform(f"{text!r}: wildcards are not supported in a platform")
    parts = text.split("/")
    if len(parts) > 3:
        raise InvalidPlatform(f"{text!r}: a platform has at most three parts, os/architecture/variant")
    m = _OS_PART.match(parts[0])
    if not m:
        raise InvalidPlatform(f"{text!r}: {parts[0]!r} is not a valid operating system (expected e.g. linux)")
    for part in parts[1:]:
        if not _COMPONENT.match(part):
            raise InvalidPlatform(f"{text!r}: {part!r} is not a valid platform component (letters, digits, _ . - only)")
    os_name = _normalize_os(m.group(1))
    os_version = m.group(2) or ""
    features = tuple(f for f in (m.group(3) or "").split("+") if f)
    if len(parts) == 1:
        if os_name in KNOWN_OS:
            arch, variant = _process_arch()
            return Platform(os_name, arch, "" if (arch, variant) == ("arm", "v7") else variant, os_version, features)
        if m.group(2) is not None:
            raise InvalidPlatform(f"{text!r}: unknown operating system")
        arch, variant = _normalize_arch(parts[0], "")
        if arch not in KNOWN_ARCH:
            raise InvalidPlatform(f"{text!r}: unknown operating system or architecture")
        return Platform("linux", arch, "" if (arch, variant) == ("arm", "v7") else variant)
    if len(parts) == 2:
        arch, variant = _normalize_arch(parts[1], "")
        return Platform(os_name, arch, "" if (arch, variant) == ("arm", "v7") else variant, os_version, features)
    arch, variant = _normalize_arch(parts[1], parts[2])
    if arch == "arm64" and variant == "":
        variant = "v8"
    return Platform(os_name, arch, variant, os_version, features)


def format(p: Platform) -> str:  # noqa: A001 - containerd's name, part of the contract
    """containerd's ``Format``: ``os/architecture[/variant]`` (``unknown`` without an OS)."""
    if not p.os:
        return "unknown"
    return "/".join(x for x in (p.os, p.architecture, p.variant) if x)


def as_platform(value: Platform | str) -> Platform:
    """A :class:`Platform` from itself or from text (``ValueError`` on bad text)."""
    return value if isinstance(value, Platform) else parse(value)


# --- matching ----------------------------------------------------------------------------------------


def _vector(p: Platform) -> list[Platform]:
    """containerd's ``platformVector``: ``p`` then what also runs where ``p`` runs, best first."""
    def like(arch: str, variant: str) -> Platform:
        return Platform(p.os, arch, variant, p.os_version, p.os_features)

    vector = [p]
    if p.architecture == "amd64":
        level = _version(p.variant)
        if level and level > 1:
            vector += [like("amd64", f"v{v}") for v in range(level - 1, 0, -1)]
        vector.append(like("386", ""))
    elif p.architecture == "arm":
        level = _version(p.variant)
        if level and level > 5:
            vector += [like("arm", f"v{v}") for v in range(level - 1, 4, -1)]
    elif p.architecture == "arm64":
        variant = p.variant or "v8"
        major_s, _, minor_s = variant.removeprefix("v").partition(".")
        if not major_s.isdigit() or (minor_s and not minor_s.isdigit()):
            return vector
        major, minor = int(major_s), int(minor_s or 0)
        vector = [like("arm64", f"v{major}" + (f".{m}" if m else "")) for m in range(minor, -1, -1)]
        if major == 9:  # v9.x also runs v8.(x+5) and below
            vector += [like("arm64", "v8" + (f".{m}" if m else "")) for m in range(min(minor + 5, 9), -1, -1)]
        if major in (8, 9):  # and every arm64 runs 32-bit arm up to v8
            vector += _vector(like("arm", "v8"))
    return [normalize(v) for v in vector]


def _version(variant: str) -> int | None:
    digits = variant.removeprefix("v")
    return int(digits) if digits.isdigit() else None


class Matcher:
    """containerd's ordered matcher: ``match`` says whether a platform runs; ``rank`` how well (0 is best)."""

    def __init__(self, wanted: list[Platform]):
        self.wanted = wanted

    def rank(self, p: Platform) -> int | None:
        """The index of the first wanted platform ``p`` satisfies, or None."""
        q = normalize(p)
        for i, w in enumerate(self.wanted):
            if (w.os, w.architecture, w.variant) == (q.os, q.architecture, q.variant) and _os_version_ok(w, p):
                return i
        return None

    def match(self, p: Platform) -> bool:
        return self.rank(p) is not None

    def less(self, a: Platform, b: Platform) -> bool:
        ra, rb = self.rank(a), self.rank(b)
        return ra is not None and (rb is None or ra < rb)

    def __repr__(self) -> str:
        return f"Matcher({', '.join(format(w) for w in self.wanted)})"


def _os_version_ok(wanted: Platform, p: Platform) -> bool:
    # Only Windows compares OS versions (major.minor.build); elsewhere the field is ignored.
    if wanted.os != "windows" or not wanted.os_version or not p.os_version:
        return True
    return wanted.os_version.split(".")[:3] == p.os_version.split(".")[:3]


def only(p: Platform | str) -> Matcher:
    """containerd's ``Only``: ``p`` and the platforms that run on it, ranked best first."""
    return Matcher(_vector(normalize(as_platform(p))))


def only_strict(p: Platform | str) -> Matcher:
    """containerd's ``OnlyStrict``: ``p`` alone, after normalisation."""
    return Matcher([normalize(as_platform(p))])


# --- choosing from an index ------------------------------------------------------------------------------

ATTESTATION_TYPE = "attestation-manifest"


def _entry(d) -> tuple[Platform | None, str, bool]:
    """(platform, digest, is_attestation) of an index entry given as a dict or a manifests.Descriptor."""
    if isinstance(d, dict):
        raw = d.get("platform")
        platform = Platform.from_oci(raw) if isinstance(raw, dict) else None
        annotations, digest = d.get("annotations") or {}, d.get("digest", "")
    else:
        platform, annotations, digest = d.platform, d.annotations or {}, d.digest
    unknown = platform is not None and (platform.os, platform.architecture) == ("unknown", "unknown")
    attestation = unknown or annotations.get("vnd.docker.reference.type") == ATTESTATION_TYPE
    return platform, digest, attestation


def select(descriptors, want: Platform | str, *, strict: bool = False):
    """The entry a runtime pulls from an index for ``want`` (containerd's choice).

    Keeps the entries whose platform matches, orders them by rank (stable, so the index's order breaks
    ties) and takes the first. Attestation entries are never chosen. Raises :class:`KitError` listing the
    platforms present when nothing matches.
    """
    matcher = only_strict(want) if strict else only(want)
    candidates = []
    for i, d in enumerate(descriptors):
        platform, _, attestation = _entry(d)
        if platform is None or attestation:
            continue
        rank = matcher.rank(platform)
        if rank is not None:
            candidates.append((rank, i, d))
    if not candidates:
        present = sorted({format(p) for p, _, a in map(_entry, descriptors) if p is not None and not a})
        raise KitError(
            f"no image for {format(as_platform(want))} in this index (it has: {', '.join(present) or 'no platforms'})",
            "build for that platform too, or pick one of those with --platform",
        )
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def explain(descriptors, want: Platform | str) -> pd.DataFrame:
    """One row per index entry: its platform, whether it can run on ``want``, its rank and why; which is chosen."""
    matcher = only(want)
    wanted = format(matcher.wanted[0])
    rows = []
    for i, d in enumerate(descriptors):
        platform, digest, attestation = _entry(d)
        rank = None if platform is None or attestation else matcher.rank(platform)
        if attestation:
            reason = "attestation (provenance/SBOM), never run"
        elif platform is None:
            reason = "entry has no platform"
        elif rank == 0:
            reason = f"exact match for {wanted}"
        elif rank is not None:
            reason = f"runs on {wanted} (fallback #{rank})"
        else:
            reason = f"cannot run on {wanted}"
        rows.append({"entry": i, "platform": format(platform) if platform else "", "digest": digest,
                     "match": rank is not None, "rank": rank, "reason": reason})
    df = pd.DataFrame(rows, columns=["entry", "platform", "digest", "match", "rank", "reason"])
    df["rank"] = df["rank"].astype("Int64")
    try:
        chosen = select(descriptors, want)
        df["chosen"] = [d is chosen for d in descriptors]
    except KitError:
        df["chosen"] = False
    return df


# --- who gets what ----------------------------------------------------------------------------------------

# The machines the notebooks ask about, and the platform their engine pulls for.
DEVICES: dict[str, str] = {
    "M2 Mac (Docker Desktop)": "linux/arm64",
    "Intel Mac (Docker Desktop)": "linux/amd64",
    "Raspberry Pi 4, 64-bit OS": "linux/arm64",
    "Raspberry Pi 3, 32-bit OS": "linux/arm/v7",
    "Raspberry Pi Zero": "linux/arm/v6",
}


def who_gets(descriptors, devices: dict[str, str] | None = None) -> pd.DataFrame:
    """For each device: the platform it asks for, and the entry of the index its engine pulls (or none)."""
    rows = []
    for device, want in (devices or DEVICES).items():
        try:
            chosen = select(descriptors, want)
        except KitError:
            rows.append({"device": device, "asks for": want, "gets": "nothing (no matching manifest)", "digest": ""})
            continue
        platform, digest, _ = _entry(chosen)
        rows.append({"device": device, "asks for": want, "gets": format(platform), "digest": digest})
    return pd.DataFrame(rows, columns=["device", "asks for", "gets", "digest"])


# --- hosts -------------------------------------------------------------------------------------------------


def host() -> Platform:
    """The platform of the Docker engine (linux/arm64 on an M2 with Docker Desktop), not of this process."""
    from . import engine

    facts = engine.facts(engine.connect())
    variant = "v7" if facts.architecture == "arm" else ""
    return normalize(Platform(facts.os, facts.architecture, variant))


# Kernel machine names to Go architecture names (what `docker info` reports vs what images carry).
_KERNEL_TO_GO = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
                 "i386": "386", "i686": "386"}


def go_arch(machine: str) -> str:
    """The Go architecture name for a kernel machine name (``x86_64`` -> ``amd64``)."""
    m = machine.strip().lower()
    return _KERNEL_TO_GO.get(m, m)


def arch_of(platform: str) -> str:
    """The architecture part of ``os/arch[/variant]`` (``linux/arm/v7`` -> ``arm``)."""
    parts = platform.split("/")
    return parts[1] if len(parts) > 1 else parts[0]
