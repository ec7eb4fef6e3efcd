"""Images in the engine and the registry: the article's `docker load`, `docker tag`, `docker push` and
`docker manifest` steps.

Load, tag and push go through the Docker SDK for Python; each first prints the CLI line that does the
same, so the reader learns the command. The SDK reports push failures inside the progress stream
(HTTP 200 with an ``error`` chunk), so every chunk is checked. ``docker manifest`` has no API in the
engine (the CLI talks to the registry itself), so it runs as a command.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from . import commands, engine, runlog
from .errors import CommandError, KitError


_PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)")


@dataclass
class PushResult:
    """What ``docker push`` reported."""

    reference: str
    digest: str
    size: int
    seconds: float


def _say(argv: list[str]) -> None:
    print("$ " + commands.shell_line(argv), flush=True)


def load(path: str | Path) -> list[str]:
    """``docker load --input PATH``: returns the names the archive carried (as the CLI prints them)."""
    argv = ["docker", "load", "--input", str(path)]
    _say(argv)
    loaded = []
    try:
        with open(path, "rb") as f:
            for chunk in engine.connect().api.load_image(f):
                if "error" in chunk or "errorDetail" in chunk:
                    raise CommandError(argv, 1, str(chunk.get("errorDetail", {}).get("message") or chunk.get("error")))
                said = (chunk.get("stream") or "").strip()
                if said.startswith("Loaded image: "):
                    loaded.append(said.removeprefix("Loaded image: "))
    except FileNotFoundError:
        raise KitError(f"{path} does not exist", "build it first (docker buildx build ... --output=type=docker,dest=...)") from None
    except CommandError:
        raise
    except Exception as exc:  # the SDK's APIError carries the engine's message
        raise CommandError(argv, 1, str(exc)) from None
    return loaded


def tag(source: str, target: str) -> None:
    """``docker tag SOURCE TARGET``."""
    _say(["docker", "tag", source, target])
    repository, _, name = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "latest")
    try:
        engine.connect().images.get(source).tag(repository, name)
    except Exception as exc:
        raise CommandError(["docker", "tag", source, target], 1, str(exc)) from None


def push(reference: str) -> PushResult:
    """``docker push REFERENCE``, checking every progress chunk for an error."""
    argv = ["docker", "push", reference]
    _say(argv)
    repository, _, name = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "latest")
    start = time.perf_counter()
    digest, size = "", 0
    try:
        for chunk in engine.connect().api.push(repository, tag=name, stream=True, decode=True):
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
                raise CommandError(argv, 1, str(detail))
            aux = chunk.get("aux") or {}
            digest, size = aux.get("Digest", digest), aux.get("Size", size)
            # The containerd image store sends no aux chunk, only "TAG: digest: sha256:... size: N".
            said = _PUSHED.search(chunk.get("status") or "")
            if said:
                digest, size = said.group(1), int(said.group(2))
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(argv, 1, str(exc)) from None
    result = PushResult(reference, digest, size, time.perf_counter() - start)
    runlog.record("push", target=reference, digest=digest, seconds=round(result.seconds, 2))
    return result


def manifest_create(list_ref: str, images: list[str], *, insecure: bool = True) -> commands.Completed:
    """``docker manifest create [--insecure] LIST --amend A --amend B ...``, as in the article.

    A list of that name left in the CLI's local manifest store by an earlier run is removed first, so
    the new list holds exactly ``images``.
    """
    commands.run(["docker", "manifest", "rm", list_ref], echo=False, check=False)
    argv = ["docker", "manifest", "create"] + (["--insecure"] if insecure else []) + [list_ref]
    for image in images:
        argv += ["--amend", image]
    return commands.run(argv, timeout=300)


def manifest_annotate(list_ref: str, image: str, *, arch: str | None = None, os: str | None = None,
                      variant: str | None = None) -> commands.Completed:
    """``docker manifest annotate [--arch A] [--os O] [--variant V] LIST IMAGE``: rewrite an entry's platform claim.

    It changes only what the list says, never the image: the way a mislabelled list is made.
    """
    argv = ["docker", "manifest", "annotate"]
    for flag, value in (("--arch", arch), ("--os", os), ("--variant", variant)):
        if value:
            argv += [flag, value]
    return commands.run(argv + [list_ref, image], timeout=60)


def manifest_push(list_ref: str, *, insecure: bool = True) -> str:
    """``docker manifest push [--insecure] LIST``: returns the list's digest."""
    argv = ["docker", "manifest", "push"] + (["--insecure"] if insecure else []) + [list_ref]
    done = commands.run(argv, timeout=300)
    digest = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    runlog.record("manifest push", target=list_ref, digest=digest, seconds=round(done.seconds, 2))
    return digest


def run(platform: str, image: str, *command: str, echo: bool = True, timeout: float = 300) -> commands.Completed:
    """``docker run --rm --platform PLATFORM IMAGE COMMAND...``; a missing emulator is named, with its fix."""
    from .emulation import missing_emulator_error

    argv = ["docker", "run", "--rm", "--platform", platform, image, *command]
    try:
        return commands.run(argv, echo=echo, timeout=timeout)
    except CommandError as exc:
        if "exec format error" in exc.stderr:
            err = missing_emulator_error(platform)
            raise CommandError(argv, exc.returncode, exc.stderr, fix=err.fix, reason=err.message) from None
        raise
