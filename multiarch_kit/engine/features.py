"""The multi-platform commands Docker added after the article, each with the Engine API version that first has
it, tried for real on the reader's engine.

The docker CLI knows which API version each flag needs. Against an older engine it refuses the flag before sending
anything (``"--platform" requires API version 1.48, but the Docker daemon API version is 1.45``); a CLI older than
the flag does not know it at all (``unknown flag: --platform``). So what a reader sees depends on both versions,
and a lesson written on one generation reads wrong on the other. :func:`try_all` runs each command once, checks
what it did against the registry or the image itself, and :meth:`Tried.as_documented` says whether that is what
Docker documents for this engine's API version: the one statement that holds on every generation.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core import commands
from ..core.commands import docker
from ..oci import manifests
from ..oci.platforms import Platform
from ..oci.references import Reference

DOCS = "https://docs.docker.com/reference/cli/docker/image/"


@dataclass(frozen=True)
class Feature:
    """A command and the Engine API version that first has it (Docker's API version matrix names the release)."""

    command: str
    api: tuple[int, int]
    release: str
    source: str


PUSH = Feature("docker image push --platform", (1, 46), "Engine 27.0", DOCS + "push/")
TREE = Feature("docker image ls --tree", (1, 47), "Engine 27.2", DOCS + "ls/")  # experimental until 29
SAVE = Feature("docker image save --platform", (1, 48), "Engine 28.0", DOCS + "save/")
LOAD = Feature("docker image load --platform", (1, 48), "Engine 28.0", DOCS + "load/")
INSPECT = Feature("docker image inspect --platform", (1, 49), "Engine 28.1", DOCS + "inspect/")
FEATURES = (PUSH, TREE, SAVE, LOAD, INSPECT)


@dataclass(frozen=True)
class Tried:
    """One command, run once: whether the engine had it, what was seen, and whether the result held up."""

    feature: Feature
    engine_api: tuple[int, ...]
    ran: bool  # the command exited 0 and its result checked out (see each try_* function)
    seen: str  # what it did, or the CLI's first line of refusal

    def as_documented(self) -> bool:
        """True when the command ran exactly where Docker documents it (this engine's API is new enough) and was
        refused everywhere else."""
        return self.ran == (self.engine_api >= self.feature.api)

    def row(self) -> dict[str, str]:
        return {"command": self.feature.command, "needs": f"API {'.'.join(map(str, self.feature.api))} "
                f"({self.feature.release})", "here": "ran" if self.ran else "refused", "seen": self.seen}


def _attempt(feature: Feature, api: tuple[int, ...], argv: commands.Command, timeout: float = 600):
    """Run ``argv``; a refusal is a :class:`Tried` (its first stderr line), success is the finished command."""
    done = commands.run(argv, echo=True, timeout=timeout, check=False)
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), f"exit {done.returncode}")
        return Tried(feature, api, False, first.strip())
    return done


def try_push(api: tuple[int, ...], image: Reference, platform: Platform, to: Reference) -> Tried:
    """Push one platform of the multi-platform ``image`` (already tagged ``to``) as a single-platform image: the
    registry must then hold an image manifest, not an index, whose config names ``platform``."""
    done = _attempt(PUSH, api, docker("image", "push", "--platform", platform, to.docker))
    if isinstance(done, Tried):
        return done
    held = manifests.inspect(to)
    images = held.images()
    ok = not held.is_index and len(images) == 1 and images[0].platform == platform
    return Tried(PUSH, api, ok, f"{to.docker} holds {'an index' if held.is_index else 'one image manifest'}"
                 f" for {', '.join(str(e.platform) for e in images)}")


def try_tree(api: tuple[int, ...], image: Reference, platforms: list[Platform]) -> Tried:
    """``docker image ls --tree IMAGE``: each of ``platforms`` must appear under the image."""
    done = _attempt(TREE, api, docker("image", "ls", "--tree", image.docker))
    if isinstance(done, Tried):
        return done
    listed = [p for p in platforms if str(p) in done.stdout]
    return Tried(TREE, api, listed == platforms, f"lists {', '.join(map(str, listed)) or 'no platform'} under it")


def try_save(api: tuple[int, ...], image: Reference, platform: Platform, out: Path) -> Tried:
    """``docker image save --platform``: the tar must hold that platform's image and no other."""
    done = _attempt(SAVE, api, docker("image", "save", "--platform", platform, "--output", out, image.docker))
    if isinstance(done, Tried):
        return done
    held = [e.platform for e in manifests.inspect(f"oci-archive:{out}").images()]
    return Tried(SAVE, api, held == [platform], f"the tar holds {', '.join(map(str, held))}")


def try_load(api: tuple[int, ...], archive: Path, platform: Platform) -> Tried:
    """``docker image load --platform`` from a tar of several platforms: the CLI must say what it loaded."""
    done = _attempt(LOAD, api, docker("image", "load", "--platform", platform, "--input", archive))
    if isinstance(done, Tried):
        return done
    said = [line for line in done.stdout.splitlines() if line.startswith("Loaded image")]
    return Tried(LOAD, api, bool(said), said[-1] if said else "nothing loaded")


def try_inspect(api: tuple[int, ...], image: Reference, platform: Platform) -> Tried:
    """``docker image inspect --platform``: the engine must describe that platform's image."""
    fmt = "{{.Os}}/{{.Architecture}}{{with .Variant}}/{{.}}{{end}}"
    done = _attempt(INSPECT, api, docker("image", "inspect", "--platform", platform, "--format", fmt, image.docker))
    if isinstance(done, Tried):
        return done
    seen = done.stdout.strip()
    return Tried(INSPECT, api, Platform.parse(seen) == platform, f"the image's config says {seen}")


def platforms_in_store(image: Reference) -> list[Platform]:
    """The platforms the engine's store holds for ``image``: what ``docker image save`` (no ``--platform``, so
    every generation has it) writes, read back from the tar, which is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-save-") as scratch:
        tar = Path(scratch) / "all.tar"
        commands.run(docker("image", "save", "--output", tar, image.docker), echo=True, timeout=600)
        return [e.platform for e in manifests.inspect(f"oci-archive:{tar}").images()]


def try_all(api: tuple[int, ...], image: Reference, platforms: list[Platform], push_to: Reference) -> list[Tried]:
    """Each of :data:`FEATURES` on ``image``, a multi-platform image in the engine's store that holds
    ``platforms`` (the last one is the platform asked for), in a scratch folder removed afterwards."""
    wanted = platforms[-1]
    commands.run(docker("image", "tag", image.docker, push_to.docker), echo=True, timeout=60)
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-today-") as scratch:
        whole, one = Path(scratch) / "all.tar", Path(scratch) / "one.tar"
        commands.run(docker("image", "save", "--output", whole, image.docker), echo=True, timeout=600)
        return [try_push(api, image, wanted, push_to), try_tree(api, image, platforms),
                try_save(api, image, wanted, one), try_load(api, whole, wanted), try_inspect(api, image, wanted)]
