"""Does each platform's image hold that platform's binaries, and does a rebuild reproduce it?"""

from .compare import compare, diff, rebuild
from .elf import ARM_TAG_VERSION, ElfInfo, Finding, expected_elsewhere, judge, read_elf
from .scan import ELF_MAGIC, SPOOL_BYTES, EntryReport, LayerScan, Report, elf_files, scan_layer, verify

__all__ = ["ARM_TAG_VERSION", "ELF_MAGIC", "SPOOL_BYTES", "ElfInfo", "EntryReport", "Finding", "LayerScan", "Report",
           "compare", "diff", "elf_files", "expected_elsewhere", "judge", "read_elf", "rebuild", "scan_layer",
           "verify"]
