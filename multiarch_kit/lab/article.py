"""The article's example, as the notebooks reproduce it against the lab registry.

The article pushes ``zerok/multiarch-test`` to Docker Hub; the kit pushes the same names to the lab
registry (``localhost:5000/multiarch-test``) or to a registry the reader chooses, never to a personal
Docker Hub account. The Dockerfile is the article's, unchanged; the package carries it (``context()``), and the
notebooks keep a copy in their own folder so that the commands they print name ``article`` (a test keeps the two
equal).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from ..core.commands import Command, docker
from ..oci.platforms import AMD64, ARM64, Platform
from . import workloads

REPOSITORY = "multiarch-test"
CONTEXT = "article"  # the notebooks' build context, relative to their folder (the commands they print name it)
PLATFORMS = [AMD64, ARM64]  # the article's two
# Builds whose failure, or quiet success, is the lesson: in the notebooks' folder, beside the article's.
PREBUILT_TOOL = "breaks/prebuilt-tool"
BASE_LACKS_PLATFORM = "breaks/base-lacks-platform"
# The machines the article and the notebooks ask about, and the platform each one's engine pulls for.
DEVICES: dict[str, Platform] = {
    "M2 Mac (Docker Desktop)": ARM64,
    "Intel Mac (Docker Desktop)": AMD64,
    "Raspberry Pi 4, 64-bit OS": ARM64,
    "Raspberry Pi 3, 32-bit OS": Platform("linux", "arm", "v7"),
    "Raspberry Pi Zero": Platform("linux", "arm", "v6"),
}


def context() -> Path:
    """The article's build context inside the package: its Dockerfile, found wherever the kit is installed."""
    return workloads.workload("article").context()


def image(registry_host: str) -> str:
    """The article's image name in the given registry."""
    return f"{registry_host}/{REPOSITORY}"


def unpushed_image(registry_host: str) -> str:
    """A name the registry has never seen (``unpushed-<8 hex>``), for showing what fails before a push."""
    return f"{registry_host}/unpushed-{uuid.uuid4().hex[:8]}/{REPOSITORY}"


def platform_tag(platform: Platform) -> str:
    """The article's per-platform tag: ``linux/amd64`` -> ``latest-amd64``, ``linux/arm/v7`` -> ``latest-armv7``."""
    return "latest-" + platform.tag_suffix


def archive(platform: Platform, folder: str = "build") -> str:
    """Where the per-platform tar goes (the article writes ``latest-amd64.tar``)."""
    return f"{folder}/{platform_tag(platform)}.tar"


def expected_log(build_platform: Platform, target_platform: Platform) -> str:
    """What the Dockerfile's RUN step writes to /log."""
    return f"Building on {build_platform} for {target_platform}"


def manifest_create_as_written(list_ref: str, images: list[str]) -> Command:
    """``docker manifest create`` exactly as the article writes it: ``--insecure LIST --amend A --amend B``.

    (``--amend`` is a switch; the images are the positional arguments that follow it.)
    """
    argv = docker("manifest", "create", "--insecure", list_ref)
    for image in images:
        argv.add("--amend", image)
    return argv
