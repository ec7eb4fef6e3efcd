"""ELF headers, and whether a binary fits a platform: its machine, class and byte order, and for 32-bit arm the
architecture version its build attributes name. Headers are read with pyelftools."""

from __future__ import annotations

from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..oci.platforms import ARCHITECTURES, Platform, architecture_for_elf

# ARM build attribute Tag_CPU_arch -> architecture major version (ARM IHI 0045: 6 = v6, 10 = v7, 14 = v8...).
ARM_TAG_VERSION = {0: 4, 1: 4, 2: 4, 3: 5, 4: 5, 5: 5, 6: 6, 7: 6, 8: 6, 9: 6, 10: 7, 11: 6, 12: 6, 13: 7,
                   14: 8, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9}


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
