"""Platforms, with containerd's semantics (github.com/containerd/platforms), and the one table of architectures.

``parse`` and ``format`` follow containerd's ``Parse`` and ``Format``. Text is parsed once, where it enters the
kit (the CLI, a notebook's call); inside, platforms travel as :class:`Platform` values. A :class:`Platform` is
normalised when it is made (containerd's ``Normalize``, so the kit has no separate function for it:
``linux/aarch64``, ``linux/arm64/v8`` and an OCI ``{"architecture": "arm64", "variant": "v8"}`` are one
value), so platforms that mean the same compare equal, hash alike and can key a dict. ``str(platform)`` is
the kit's one spelling of a platform (``linux/arm/v7``, never ``linux/arm``; ``linux/arm64``, never
``linux/arm64/v8``), so results written on different machines agree.

:data:`ARCHITECTURES` is the single table every module reads: Go name and variant, what ``uname -m`` says,
the QEMU binfmt handler, the Debian architecture, the ELF machine and the GNU triplet of the cross compiler.
Matching (which platform runs where) lives in :mod:`multiarch_kit.matching`.
"""

from __future__ import annotations

import platform as _pyplatform
import re
from dataclasses import dataclass, field

from ..core.errors import InvalidPlatform, KitError

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


# containerd's Normalize, field by field; every Platform applies it to itself when it is made.
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


@dataclass(frozen=True)
class Platform:
    """An OCI platform: what an image's entry in an index says it runs on, normalised as containerd does.

    However it is spelled when made (``Platform("linux", "aarch64", "v8")``, :meth:`parse`, :meth:`from_oci`,
    :func:`from_uname`), the fields hold containerd's normalised value: lower-case OS, Go architecture,
    canonical variant (empty for arm64/v8 and amd64/v1, written out for arm's default v7).
    """

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Normalised here, once, so that equality and hashing mean "the same platform"; frozen, hence
        # object.__setattr__.
        architecture, variant = _normalize_arch(self.architecture, self.variant)
        object.__setattr__(self, "os", _normalize_os(self.os))
        object.__setattr__(self, "architecture", architecture)
        object.__setattr__(self, "variant", variant)
        object.__setattr__(self, "os_features", tuple(self.os_features))

    def __str__(self) -> str:
        return format(self)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Text to the value the kit passes around (``linux/aarch64`` -> ``linux/arm64``); see :func:`parse`."""
        return parse(text)

    @classmethod
    def from_oci(cls, obj: dict) -> Platform:
        """From an OCI/Docker ``platform`` object (``os``, ``architecture``, ``variant``, ``os.version``...)."""
        features = obj.get("os.features") or ()
        return cls(
            os=str(obj.get("os", "")),
            architecture=str(obj.get("architecture", "")),
            variant=str(obj.get("variant", "") or ""),
            os_version=str(obj.get("os.version", "") or ""),
            os_features=tuple(str(f) for f in features) if isinstance(features, list) else (),
        )

    @property
    def tag_suffix(self) -> str:
        """``amd64``, ``arm64``, ``armv7``: architecture and variant run together, as TARGETARCH+TARGETVARIANT."""
        return self.architecture + self.variant

    @property
    def arch(self) -> Arch:
        """This platform's row of :data:`ARCHITECTURES` (a KitError for one the table does not know)."""
        return arch_of(self)


# --- the one table of architectures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Arch:
    """Everything the kit needs to know about one architecture, in one row."""

    architecture: str  # Go name: amd64, arm64, arm
    variant: str  # canonical variant ("" or v6, v7...)
    uname: str  # what `uname -m` prints in a container of it (QEMU reports the same)
    qemu: str  # the binfmt_misc handler that runs it (Debian's qemu-user-static, tonistiigi/binfmt)
    debian: str  # Debian's architecture name
    elf_machine: str  # ELF e_machine, as pyelftools names it
    elf_class: int  # 32 or 64
    little_endian: bool
    gnu: str  # GNU triplet: the cross compiler is <gnu>-gcc

    @property
    def platform(self) -> Platform:
        return Platform("linux", self.architecture, self.variant)


ARCHITECTURES: tuple[Arch, ...] = (
    Arch("amd64", "", "x86_64", "qemu-x86_64", "amd64", "EM_X86_64", 64, True, "x86_64-linux-gnu"),
    Arch("arm64", "", "aarch64", "qemu-aarch64", "arm64", "EM_AARCH64", 64, True, "aarch64-linux-gnu"),
    Arch("arm", "v7", "armv7l", "qemu-arm", "armhf", "EM_ARM", 32, True, "arm-linux-gnueabihf"),
    Arch("arm", "v6", "armv6l", "qemu-arm", "armel", "EM_ARM", 32, True, "arm-linux-gnueabi"),
    Arch("arm", "v5", "armv5tel", "qemu-arm", "armel", "EM_ARM", 32, True, "arm-linux-gnueabi"),
    Arch("386", "", "i686", "qemu-i386", "i386", "EM_386", 32, True, "i686-linux-gnu"),
    Arch("ppc64le", "", "ppc64le", "qemu-ppc64le", "ppc64el", "EM_PPC64", 64, True, "powerpc64le-linux-gnu"),
    Arch("ppc64", "", "ppc64", "qemu-ppc64", "ppc64", "EM_PPC64", 64, False, "powerpc64-linux-gnu"),
    Arch("s390x", "", "s390x", "qemu-s390x", "s390x", "EM_S390", 64, False, "s390x-linux-gnu"),
    Arch("riscv64", "", "riscv64", "qemu-riscv64", "riscv64", "EM_RISCV", 64, True, "riscv64-linux-gnu"),
    Arch("mips64le", "", "mips64", "qemu-mips64el", "mips64el", "EM_MIPS", 64, True, "mips64el-linux-gnuabi64"),
    Arch("loong64", "", "loongarch64", "qemu-loongarch64", "loong64", "EM_LOONGARCH", 64, True,
         "loongarch64-linux-gnu"),
)


def arch_of(p: Platform) -> Arch:
    """The table's row for ``p``, or a KitError naming the platforms it knows."""
    for row in ARCHITECTURES:
        if (row.architecture, row.variant) == (p.architecture, p.variant):
            return row
    raise KitError(f"the kit has no architecture table entry for {p}",
                   "use one of: " + ", ".join(str(a.platform) for a in ARCHITECTURES))


def architecture_for_elf(machine: str, elf_class: int, little_endian: bool) -> str | None:
    """The Go architecture whose binaries carry this ELF machine, class and byte order (None if unknown)."""
    for row in ARCHITECTURES:
        if (row.elf_machine, row.elf_class, row.little_endian) == (machine, elf_class, little_endian):
            return row.architecture
    return None


def from_uname(machine: str) -> Platform:
    """The platform whose containers print ``machine`` for ``uname -m`` (``x86_64`` -> linux/amd64)."""
    m = machine.strip().lower()
    for row in ARCHITECTURES:
        if row.uname == m:
            return row.platform
    return Platform("linux", m)


AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
ARMV7 = Platform("linux", "arm", "v7")
# The platforms the lab builds for, in the order the notebooks show them.
LAB_PLATFORMS: tuple[Platform, ...] = (AMD64, ARM64, ARMV7)


# --- containerd's Parse, Format, Normalize --------------------------------------------------------------


def _this_machine() -> Platform:
    return from_uname(_pyplatform.machine())


def parse(text: str) -> Platform:
    """containerd's ``Parse``: ``os``, ``arch``, ``os/arch`` or ``os/arch/variant``.

    A lone architecture gets the OS ``linux`` (images are Linux images here; containerd would use the
    client's OS); a lone OS gets this process's architecture, as containerd does. Raises
    :class:`~multiarch_kit.errors.InvalidPlatform` (a ``ValueError`` and a ``KitError``) on empty text, empty
    components (leading or trailing slash), characters outside ``[A-Za-z0-9_.-]``, wildcards, or more than
    three parts. Unlike containerd's ``Parse``, the result is already normalised (``linux/arm`` is
    ``linux/arm/v7``, ``linux/arm64/v8`` is ``linux/arm64``), as every :class:`Platform` is.
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
            here = _this_machine()
            return Platform(os_name, here.architecture, here.variant, os_version, features)
        if m.group(2) is not None:
            raise InvalidPlatform(f"{text!r}: unknown operating system")
        p = Platform("linux", parts[0])
        if p.architecture not in KNOWN_ARCH:
            raise InvalidPlatform(f"{text!r}: unknown operating system or architecture")
        return p
    return Platform(os_name, parts[1], parts[2] if len(parts) == 3 else "", os_version, features)


def format(p: Platform) -> str:
    """containerd's ``Format``: ``os/architecture[/variant]`` (``unknown`` without an OS)."""
    if not p.os:
        return "unknown"
    return "/".join(x for x in (p.os, p.architecture, p.variant) if x)


def parse_list(text: str) -> list[Platform]:
    """``linux/amd64,linux/arm64`` to canonical platforms, each once, in order (a KitError on a repeat)."""
    found: list[Platform] = []
    for part in (x.strip() for x in text.split(",")):
        if not part:
            continue
        p = Platform.parse(part)
        if p in found:
            raise KitError(f"platform {p} is given twice in {text!r}", "name each platform once")
        found.append(p)
    if not found:
        raise KitError(f"no platform in {text!r}", "give at least one, e.g. linux/amd64,linux/arm64")
    return found
