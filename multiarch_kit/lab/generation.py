"""Which generation of Docker the reader has: the versions that decide what the lessons show, and the known
multi-platform traps of those versions, each with its fix.

The lessons were first written on Debian 13's Docker (Engine 26.1, buildx 0.13, containerd 1.7); a Mac reader today
has Docker Desktop's (Engine 29, buildx 0.30, containerd 2). The doctor prints the five versions so a reader can
tell which of the lessons' "since version N" notes apply, and warns where a version changes an article step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..buildx.builders import Builder
from ..core import commands
from ..core.commands import docker
from ..core.errors import KitError
from ..engine.daemon import IMAGE_STORE_FIX, Engine


@dataclass(frozen=True)
class Trap:
    """A version-dependent multi-platform trap: what goes wrong, and what to do."""

    what: str
    fix: str


@dataclass(frozen=True)
class Generation:
    """The versions of the reader's Docker, as each part reports its own."""

    engine: str
    api: str
    cli: str
    buildx: str
    buildkit: str
    containerd: str
    containerd_store: bool

    def summary(self) -> str:
        return (f"engine {self.engine} (API {self.api}), CLI {self.cli or '?'}, buildx {self.buildx or '?'}, "
                f"BuildKit {self.buildkit or '?'}, containerd {self.containerd or '?'}")

    def traps(self) -> list[Trap]:
        """The traps these versions hold, in the order the article meets them."""
        found = []
        buildx = number(self.buildx)
        if buildx and buildx < (0, 10):
            found.append(Trap(
                f"buildx {self.buildx} attaches no provenance: the article's 'docker manifest create' works here, "
                "but with buildx 0.10 or newer each pushed tag is an index and it fails with '... is a manifest "
                "list'", "update buildx; then merge with 'docker buildx imagetools create', or build with "
                "--provenance=false to keep the article's path"))
        if not self.containerd_store:
            found.append(Trap(
                "the classic image store keeps one platform per tag: a multi-platform build with the docker "
                "driver fails ('Multi-platform build is not supported for the docker driver')", IMAGE_STORE_FIX))
        cli, engine = number(self.cli), number(self.engine)
        if cli and engine and abs(cli[0] - engine[0]) > 1:
            side = "newer" if cli[0] > engine[0] else "older"
            found.append(Trap(
                f"the docker CLI ({self.cli}) is {side} than the engine ({self.engine}) by more than a major "
                "version: flags the CLI offers (e.g. --platform on save, load and inspect) are refused, and an "
                "engine may refuse a CLI older than its minimum API version outright", "run the CLI of the "
                "engine's generation: Docker Desktop ships both, and on a Mac 'which -a docker' shows whether "
                "another docker (Homebrew's) comes first; on Linux, put the engine package's docker first on PATH"))
        return found


def number(text: str) -> tuple[int, ...]:
    """The numeric part of a version as Docker's parts print it: ``28.5.2+dfsg4`` and ``v0.29.1`` give
    ``(28, 5, 2)`` and ``(0, 29, 1)``; a version with no number (``?``, ``""``) gives ``()``."""
    found = re.match(r"v?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(part) for part in found.group(1).split(".")) if found else ()


def cli_version(context: str | None = None) -> str:
    """The docker CLI's own version (``docker version --format '{{.Client.Version}}'``), or ``""``."""
    try:
        done = commands.run(docker("version", "--format", "{{.Client.Version}}", context=context), echo=False,
                            timeout=30, check=False)
    except KitError:  # no docker CLI on PATH: the engine was read through its API, so the doctor goes on
        return ""
    return done.stdout.strip()


def read(facts: Engine, buildx_version: str, builder: Builder | None) -> Generation:
    """The generation of the engine ``facts`` describes, the CLI on PATH and the builder in use."""
    buildkit = next((node.buildkit for node in builder.nodes if node.buildkit), "") if builder else ""
    return Generation(engine=facts.server_version, api=facts.api_version, cli=cli_version(facts.context),
                      buildx=buildx_version, buildkit=buildkit, containerd=facts.containerd_version,
                      containerd_store=facts.containerd_store)
