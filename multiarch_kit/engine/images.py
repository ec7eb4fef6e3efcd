"""Images in the engine and the registry: ``docker load``, ``docker tag``, ``docker push``, ``docker run`` and
``docker manifest``, run as the reader would type them (printed first, through the one command runner).

``docker manifest`` is worth knowing well: it talks to registries only, never to the engine's image store,
so every image it puts in a list must have been pushed first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..core import commands, runlog
from ..core.commands import docker
from ..core.errors import CommandError, KitError
from ..oci.platforms import Platform
from .emulation import missing_emulator_error

_PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)")
_LOADED = re.compile(r"^Loaded image(?: ID)?: (.+)$", re.M)


@dataclass
class PushResult:
    """What ``docker push`` reported."""

    reference: str
    digest: str
    size: int
    seconds: float
    said: str = ""  # the CLI's own last line: "TAG: digest: sha256:... size: N"


@dataclass
class LoadResult:
    """What ``docker load`` reported: the names the archive carried, and the CLI's lines that said so."""

    names: list[str]
    said: list[str]  # "Loaded image: NAME" (or "Loaded image ID: sha256:..." for an untagged image)


def load(path: str | Path, *, echo: bool = True) -> LoadResult:
    """``docker load --input PATH``: the names the archive carried, as the CLI printed them."""
    if not Path(path).is_file():
        raise KitError(f"{path} does not exist", "build it first (docker buildx build ... --output=type=docker,dest=...)")
    done = commands.run(docker("load", "--input", path), echo=echo, timeout=600)
    return LoadResult(_LOADED.findall(done.stdout), [m.group(0).strip() for m in _LOADED.finditer(done.stdout)])


def tag(source: str, target: str, *, echo: bool = True) -> None:
    """``docker tag SOURCE TARGET``."""
    commands.run(docker("tag", source, target), echo=echo, timeout=60)


def push(reference: str, *, echo: bool = True) -> PushResult:
    """``docker push REFERENCE``; the digest is read from the CLI's last line (``TAG: digest: sha256:... size: N``)."""
    done = commands.run(docker("push", reference), echo=echo, timeout=1200)
    found = _PUSHED.findall(done.stdout)
    digest, size = (found[-1][0], int(found[-1][1])) if found else ("", 0)
    lines = [line for line in done.stdout.splitlines() if _PUSHED.search(line)]
    result = PushResult(reference, digest, size, done.seconds, lines[-1].strip() if lines else "")
    runlog.record("push", target=reference, digest=digest, seconds=round(done.seconds, 2))
    return result


def manifest_rm(list_ref: str, *, echo: bool = True) -> commands.Completed:
    """``docker manifest rm LIST``: forget a list kept in the CLI's local manifest store (fine when there is none)."""
    return commands.run(docker("manifest", "rm", list_ref), echo=echo, check=False, timeout=60)


def manifest_create(list_ref: str, images: list[str], *, amend: bool = False, insecure: bool = True,
                    echo: bool = True, check: bool = True) -> commands.Completed:
    """``docker manifest create [--insecure] [--amend] LIST IMAGE...``.

    The images are positional; ``--amend`` is a switch that lets the command add to a list already in the
    CLI's local manifest store (without it, such a list makes the command refuse).
    """
    argv = docker("manifest", "create").flag("--insecure", insecure).flag("--amend", amend).add(list_ref, *images)
    return commands.run(argv, echo=echo, timeout=300, check=check, said=True)  # "Created manifest list ..."


def manifest_annotate(list_ref: str, image: str, *, arch: str | None = None, os: str | None = None,
                      variant: str | None = None, echo: bool = True) -> commands.Completed:
    """``docker manifest annotate [--arch A] [--os O] [--variant V] LIST IMAGE``: rewrite an entry's platform claim.

    It changes only what the list says, never the image: the way a mislabelled list is made.
    """
    argv = (docker("manifest", "annotate").flag("--arch", arch).flag("--os", os).flag("--variant", variant)
            .add(list_ref, image))
    return commands.run(argv, echo=echo, timeout=60)


def manifest_push(list_ref: str, *, insecure: bool = True, echo: bool = True) -> str:
    """``docker manifest push [--insecure] LIST``: returns the list's digest."""
    done = commands.run(docker("manifest", "push").flag("--insecure", insecure).add(list_ref), echo=echo, timeout=300,
                        said=True)
    lines = done.stdout.strip().splitlines()
    digest = lines[-1] if lines else ""
    runlog.record("manifest push", target=list_ref, digest=digest, seconds=round(done.seconds, 2))
    return digest


def run(platform: Platform | None, image: str, *command: str, echo: bool = True, timeout: float = 300,
        check: bool = True, context: str | None = None) -> commands.Completed:
    """``docker run --rm [--platform PLATFORM] IMAGE COMMAND...``; without a platform the engine chooses.

    A missing emulator is named, with its fix; with ``check=False`` a failure is returned as it is (the
    engine's own words in ``stderr``), for a notebook to show.
    """
    argv = docker("run", "--rm", context=context).flag("--platform", platform).add(image, *command)
    try:
        return commands.run(argv, echo=echo, timeout=timeout, check=check)
    except CommandError as exc:
        if "exec format error" in exc.stderr and platform is not None:
            err = missing_emulator_error(platform)
            raise CommandError(argv, exc.returncode, exc.stderr, fix=err.fix, reason=err.message) from None
        raise


def pull(reference: str, platform: Platform | None = None, *, echo: bool = True, check: bool = True,
         context: str | None = None) -> commands.Completed:
    """``docker pull [--platform P] REFERENCE``: without a platform the engine picks its own."""
    argv = docker("pull", "--quiet", context=context).flag("--platform", platform).add(reference)
    return commands.run(argv, echo=echo, check=check, timeout=600, said=True)  # --quiet: the name pulled


def remove(reference: str, *, echo: bool = True, context: str | None = None) -> commands.Completed:
    """``docker image rm REFERENCE`` (fine when the engine does not have it)."""
    return commands.run(docker("image", "rm", reference, context=context), echo=echo, check=False, timeout=120,
                        said=True)  # "Untagged: ..."


def platform_of(reference: str, *, echo: bool = True, context: str | None = None) -> Platform:
    """The platform of an image in the engine, as ``docker image inspect`` reports it."""
    done = commands.run(docker("image", "inspect", "--format",
                               "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}", reference,
                               context=context), echo=echo, timeout=60, said=True)
    return Platform.parse(done.stdout.strip())


def imagetools_inspect(reference: str, *, raw: bool = False, echo: bool = True) -> str:
    """``docker buildx imagetools inspect [--raw] REFERENCE``: what buildx says a tag holds."""
    return commands.run(docker("buildx", "imagetools", "inspect").flag("--raw", raw).add(reference), echo=echo,
                        timeout=120).stdout


def imagetools_create(tag: str, sources: list[str], *, builder: str | None = None, echo: bool = True,
                      check: bool = True) -> commands.Completed:
    """``docker buildx imagetools create [--builder NAME] --tag TAG SOURCE...``: an index made from what is in the
    registry (through ``builder``'s registry settings: its buildkitd.toml says which registries speak plain HTTP)."""
    argv = docker("buildx", "imagetools", "create").option("--builder", builder).add("--tag", tag, *sources)
    return commands.run(argv, echo=echo, check=check,
                        timeout=600)


def manifest_inspect(reference: str, *, verbose: bool = False, insecure: bool = True, echo: bool = True) -> str:
    """``docker manifest inspect [--insecure] [-v] REFERENCE``: the docker CLI's own view of a list."""
    argv = docker("manifest", "inspect").flag("--insecure", insecure).flag("-v", verbose).add(reference)
    return commands.run(argv, echo=echo, timeout=120).stdout


@dataclass
class RunCheck:
    """``docker run --platform P IMAGE uname -m``: what the container says its machine is."""

    platform: Platform
    expected: str
    machine: str
    emulator: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.machine == self.expected


def run_check(platform: Platform, image: str, emulator: str, *, echo: bool = True) -> RunCheck:
    """Start a container of ``image`` for ``platform`` and read its ``uname -m``."""
    done = run(platform, image, "uname", "-m", echo=echo)
    return RunCheck(platform, platform.arch.uname, done.stdout.strip(), emulator, done.seconds)
