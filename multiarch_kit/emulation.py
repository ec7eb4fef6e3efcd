"""Emulation: which binfmt_misc handlers the engine's kernel has, and whether each platform really runs.

The handlers are read from inside a privileged container rather than from this host's /proc: the
kernel that matters is the engine's, which on Docker Desktop is a Linux VM the Mac cannot see into.
An emulated container only works when its handler carries the F (fix-binary) flag: the kernel then
opens the interpreter once at registration, so it need not exist inside the container.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import commands
from .errors import KitError
from .platforms import UNAME_MACHINE, arch_of

# binfmt_misc handler names (as Debian's qemu-user-static, tonistiigi/binfmt and Docker Desktop
# register them) to the Go architecture each one runs.
HANDLER_ARCH: dict[str, str] = {
    "qemu-x86_64": "amd64",
    "rosetta": "amd64",
    "qemu-aarch64": "arm64",
    "qemu-arm": "arm",
    "qemu-i386": "386",
    "qemu-riscv64": "riscv64",
    "qemu-ppc64le": "ppc64le",
    "qemu-s390x": "s390x",
}

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
        return HANDLER_ARCH.get(self.name)

    @property
    def emulator(self) -> str:
        return "rosetta" if self.name == "rosetta" else "qemu"


def parse_handlers(text: str) -> list[BinfmtHandler]:
    """Parse the probe's dump: ``== NAME`` then the lines of that handler's file."""
    handlers: list[BinfmtHandler] = []
    for block in text.split("== ")[1:]:
        lines = block.splitlines()
        fields = {}
        for line in lines[1:]:
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
        handlers.append(
            BinfmtHandler(
                name=lines[0].strip(),
                enabled=lines[1:2] == ["enabled"],
                interpreter=fields.get("interpreter", ""),
                flags=fields.get("flags:", ""),
            )
        )
    return handlers


def read_handlers(image: str, engine_platform: str) -> list[BinfmtHandler]:
    """The engine kernel's binfmt_misc handlers, read by a privileged container of ``image``."""
    argv = ["docker", "run", "--rm", "--privileged", "--platform", engine_platform, image, "sh", "-c", _PROBE]
    return parse_handlers(commands.run(argv, echo=False, timeout=120).stdout)


def emulator_for(platform: str, engine_arch: str, handlers: list[BinfmtHandler]) -> str:
    """How the engine runs ``platform``: ``native``, ``rosetta``, ``qemu`` or ``none``."""
    arch = arch_of(platform)
    if arch == engine_arch:
        return "native"
    usable = [h for h in handlers if h.enabled and h.architecture == arch]
    # Docker Desktop keeps a qemu-x86_64 entry beside Rosetta's; Rosetta wins when it is enabled.
    for h in sorted(usable, key=lambda h: h.emulator != "rosetta"):
        return h.emulator
    return "none"


def handler_name(platform: str) -> str:
    """The qemu handler a platform needs (``linux/arm64`` -> ``qemu-aarch64``)."""
    arch = arch_of(platform)
    return next((n for n, a in HANDLER_ARCH.items() if a == arch and n.startswith("qemu-")), f"qemu-{arch}")


def missing_emulator_error(platform: str) -> KitError:
    """The one-line error for a platform the engine cannot run, naming the handler and the fix."""
    return KitError(
        f"the engine cannot run {platform}: binfmt handler {handler_name(platform)} is missing or disabled",
        "on Debian: apt-get install qemu-user-static binfmt-support && update-binfmts --enable; "
        f"elsewhere: docker run --privileged --rm tonistiigi/binfmt --install {arch_of(platform)}",
    )


@dataclass
class RunCheck:
    """``docker run --platform P IMAGE uname -m``: what the container says its machine is."""

    platform: str
    expected: str
    machine: str
    emulator: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.machine == self.expected


def run_check(platform: str, image: str, emulator: str, *, echo: bool = True) -> RunCheck:
    """Start a container of ``image`` for ``platform`` and read its ``uname -m``."""
    from .images import run

    done = run(platform, image, "uname", "-m", echo=echo)
    return RunCheck(platform, UNAME_MACHINE.get(platform, "?"), done.stdout.strip(), emulator, done.seconds)
