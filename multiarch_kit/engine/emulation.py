"""Emulation: which binfmt_misc handlers the engine's kernel has, and how the engine runs each platform.

An emulated container only works when its handler carries the F (fix-binary) flag: the kernel then
opens the interpreter once at registration, so it need not exist inside the container. The handlers that
matter are those of the engine's kernel. When the engine runs on this machine's own kernel they are read
from /proc here; otherwise (Docker Desktop's Linux VM, a remote engine) a privileged container reads them.
"""

from __future__ import annotations

import contextlib
import json
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from ..core import commands
from ..core.errors import KitError
from ..oci.matching import runs_natively
from ..oci.platforms import ARCHITECTURES, Platform
from .daemon import Engine

BINFMT = Path("/proc/sys/fs/binfmt_misc")
ROSETTA = "rosetta"  # Docker Desktop's handler for amd64 on Apple silicon
QEMU = "qemu"  # every other handler: QEMU's user-mode emulators, whoever registered them

# Mounts binfmt_misc inside the probe container and prints every handler file after a header line.
_PROBE = (
    "mount -t binfmt_misc binfmt_misc /mnt 2>/dev/null; cd /mnt || exit 3; "
    'for f in *; do case "$f" in register|status) continue;; esac; echo "== $f"; cat "$f"; done'
)


@dataclass
class BinfmtHandler:
    """One entry of /proc/sys/fs/binfmt_misc."""

    name: str
    enabled: bool
    interpreter: str
    flags: str

    @property
    def fix_binary(self) -> bool:
        return "F" in self.flags

    @property
    def architecture(self) -> str | None:
        """The Go architecture this handler runs (from the architecture table), or None."""
        if self.name == ROSETTA:
            return "amd64"
        # Debian and tonistiigi/binfmt name a handler after its interpreter (qemu-arm); Docker Desktop's VM
        # drops the prefix (arm, x86_64: tests/data/desktop/apple-silicon-binfmt-status.json).
        return next((a.architecture for a in ARCHITECTURES if self.name in (a.qemu, a.qemu.removeprefix("qemu-"))),
                    None)

    @property
    def emulator(self) -> str:
        return ROSETTA if self.name == ROSETTA else QEMU


def parse_handlers(text: str) -> list[BinfmtHandler]:
    """Parse a dump of handler files: ``== NAME`` then the lines of that handler's file."""
    handlers: list[BinfmtHandler] = []
    for block in text.split("== ")[1:]:
        lines = block.splitlines()
        if not lines or not lines[0].strip():
            continue
        fields = {}
        for line in lines[1:]:
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
        handlers.append(BinfmtHandler(name=lines[0].strip(), enabled=lines[1:2] == ["enabled"],
                                      interpreter=fields.get("interpreter", ""), flags=fields.get("flags:", "")))
    return handlers


def local_dump() -> str | None:
    """This kernel's handler files in the probe's format, or None when binfmt_misc is not mounted here."""
    if not (BINFMT / "status").exists():
        return None
    parts = []
    for f in sorted(BINFMT.iterdir()):
        if f.name in ("register", "status"):
            continue
        try:
            parts.append(f"== {f.name}\n{f.read_text()}")
        except OSError:
            continue
    return "".join(parts)


def read_handlers(engine: Engine, image: str, *, echo: bool = True) -> list[BinfmtHandler]:
    """The engine kernel's binfmt_misc handlers: from /proc here when the engine shares this machine's kernel, else
    read by a privileged container of ``image`` (printed like every container the kit starts for the reader)."""
    if engine.shares_this_kernel:
        dump = local_dump()
        if dump is not None:
            return parse_handlers(dump)
    argv = engine.docker("run", "--rm", "--privileged", "--platform", engine.platform, image, "sh", "-c", _PROBE)
    return parse_handlers(commands.run(argv, echo=echo, timeout=120).stdout)


def emulator_for(platform: Platform, engine: Platform, handlers: list[BinfmtHandler]) -> str:
    """How an engine on ``engine`` runs ``platform``: ``native``, ``rosetta``, ``qemu`` or ``none``.

    The kernel asks binfmt_misc before its own loaders, so an enabled handler for another architecture is what
    runs it, even where the CPU could (arm/v7 on an arm64 that has the 32-bit mode); without one, what
    :func:`~multiarch_kit.matching.runs_natively` accepts runs natively (386 on amd64), the rest not at all.
    """
    # The engine's own architecture counts as native whatever binfmt_misc lists (a handler for it would send
    # every program through QEMU; installers skip it).
    usable = [h for h in handlers
              if h.enabled and h.architecture == platform.architecture != engine.architecture]
    # Docker Desktop keeps a qemu-x86_64 entry beside Rosetta's; Rosetta wins when it is enabled.
    for h in sorted(usable, key=lambda h: h.emulator != ROSETTA):
        return h.emulator
    return "native" if runs_natively(engine, platform) else "none"


def describe(engine: Engine, platforms: list[Platform], probe_image: str, *,
             handlers: list[BinfmtHandler] | None = None, echo: bool = True) -> dict[Platform, str]:
    """How ``engine`` runs each of ``platforms`` (native, qemu, rosetta, none; "emulated" when it cannot even start
    the probe): its own platform without asking, the others from its binfmt handlers, read once, from ``handlers``
    when the caller has them, else by a container of ``probe_image``."""
    described: dict[Platform, str] = {}
    for p in platforms:
        if p == engine.platform:  # the engine's own platform: no handler to read
            described[p] = "native"
            continue
        try:
            if handlers is None:
                handlers = read_handlers(engine, probe_image, echo=echo)
            described[p] = emulator_for(p, engine.platform, handlers)
        except KitError:  # the probe could not start: the engine will not run it natively anyway
            described[p] = "emulated"
    return described


def can_switch(engine: Engine) -> bool:
    """Whether the kit may switch this engine's emulators off and on: it runs on this machine's kernel, as root."""
    return engine.shares_this_kernel and os.geteuid() == 0 and (BINFMT / "status").exists()


@contextlib.contextmanager
def switched_off(engine: Engine, platform: Platform, *, echo: bool = True) -> Iterator[str]:
    """For the block, ``platform``'s emulator off on the engine's kernel (its binfmt_misc handler disabled with
    ``echo 0 > /proc/sys/fs/binfmt_misc/NAME``), then on again, whatever happens in the block. Meanwhile the engine
    is what most amd64 servers are: a kernel with no emulator, which cannot start another machine's programs.
    Yields the handler's name. A one-line error when this engine's kernel is not this machine's, or not as root."""
    if not can_switch(engine):
        raise KitError(f"the kit can switch emulators off only on this machine's own engine, as root ({engine.name})",
                       "run it as root on the Linux machine whose engine it is")
    found = [h for h in parse_handlers(local_dump() or "") if h.enabled and h.architecture == platform.architecture]
    if not found:
        raise KitError(f"no enabled binfmt_misc handler runs {platform} here", "there is nothing to switch off")
    switch = BINFMT / found[0].name
    commands.run(["sh", "-c", f"echo 0 > {switch}"], echo=echo, timeout=30)
    try:
        yield found[0].name
    finally:
        commands.run(["sh", "-c", f"echo 1 > {switch}"], echo=echo, timeout=30)


def missing_emulator_error(platform: Platform) -> KitError:
    """The one-line error for a platform the engine cannot run, naming the handler and the fix."""
    arch = platform.architecture
    handler = next((a.qemu for a in ARCHITECTURES if a.architecture == arch), f"qemu-{arch}")
    return KitError(
        f"the engine cannot run {platform}: binfmt handler {handler} is missing or disabled",
        "on Debian: apt-get install qemu-user-static binfmt-support && update-binfmts --enable; "
        f"elsewhere: docker run --privileged --rm tonistiigi/binfmt --install {arch}",
    )


@dataclass(frozen=True)
class ReportedError:
    """An emulator's error this lab cannot produce, as public reports recorded it (never typed from memory)."""

    name: str
    words: str  # as the first linked report printed it
    where: str
    cause: str
    fix: str
    links: tuple[str, ...]

    def __str__(self) -> str:
        """The words on their own line, then where, cause, fix and the reports, wrapped between words."""
        parts = [("where", self.where), ("cause", self.cause), ("fix", self.fix), ("seen", " ".join(self.links))]
        lines = [f"{self.name} (recorded): {self.words}"]
        for label, text in parts:
            lines += textwrap.wrap(text, 112, initial_indent=f"  {label + ':':7}", subsequent_indent=" " * 9,
                                   break_long_words=False, break_on_hyphens=False)
        return "\n".join(lines)


def reported_errors() -> list[ReportedError]:
    """The recorded reports (``multiarch_kit/data/reported-errors.json``): QEMU's crash, Rosetta without a
    loader, and a program that needs AVX. Shown in notebook 08, marked as recorded, each with its links."""
    data = json.loads((files("multiarch_kit") / "data" / "reported-errors.json").read_text())
    return [ReportedError(e["name"], e["words"], e["where"], e["cause"], e["fix"], tuple(e["links"]))
            for e in data["errors"]]
