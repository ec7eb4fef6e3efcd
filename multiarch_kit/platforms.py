"""Platforms: the lab's three targets and how an engine names its machine.

Names follow containerd's platforms package: ``os/architecture[/variant]``, with the architecture
spelled the Go way (amd64, arm64, arm) rather than the kernel way (x86_64, aarch64, armv7l).
"""

from __future__ import annotations

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
