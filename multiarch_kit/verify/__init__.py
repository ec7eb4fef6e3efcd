"""Does each platform's image hold that platform's binaries, and does a rebuild reproduce it?"""

from .verify import (  # the face: what callers use as verify.NAME
    ARM_TAG_VERSION, SPOOL_BYTES, ELF_MAGIC, ElfInfo, read_elf, judge, Finding, expected_elsewhere,
    LayerScan, elf_files, scan_layer, EntryReport, Report, verify, compare, rebuild, diff,
)
