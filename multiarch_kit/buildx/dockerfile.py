"""Just enough of a Dockerfile to reason about its stages: names, bases, ``--platform`` flags, instructions.

Line continuations, comments and parser directives are handled; heredocs and JSON-form details are not
needed for what the kit asks (which stage a step is in, and whether that stage runs on the build platform).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import KitError


@dataclass
class Stage:
    """One ``FROM`` and what follows it."""

    index: int
    base: str  # the image or stage it starts from
    name: str  # its AS name, or BuildKit's "stage-N" for an unnamed one
    platform: str = ""  # the --platform flag as written, e.g. "$BUILDPLATFORM"
    instructions: list[str] = field(default_factory=list)

    @property
    def on_build_platform(self) -> bool:
        """Whether its steps run on the build platform (never emulated)."""
        return self.platform.strip("\"'") in ("$BUILDPLATFORM", "${BUILDPLATFORM}")


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#") and current:
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile's text (a KitError when there is no FROM)."""
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            try:
                words = shlex.split(rest)
            except ValueError:
                words = rest.split()
            platform = next((w.split("=", 1)[1] for w in words if w.startswith("--platform=")), "")
            words = [w for w in words if not w.startswith("--")]
            if not words:
                raise KitError(f"a FROM without an image: {line!r}", "fix the Dockerfile")
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"stage-{len(stages)}"
            stages.append(Stage(len(stages), words[0], name, platform))
        elif stages:
            stages[-1].instructions.append(line)
    if not stages:
        raise KitError("the Dockerfile has no FROM line", "every Dockerfile starts a stage with FROM")
    return stages


def read(folder: Path) -> list[Stage]:
    """The stages of ``folder/Dockerfile``."""
    path = Path(folder) / "Dockerfile"
    if not path.is_file():
        raise KitError(f"no Dockerfile in {folder}", "add one, or point at the folder that has it")
    try:
        return parse(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise KitError(f"{path} cannot be read ({exc})", "check the file") from None


def images(stages: list[Stage]) -> set[str]:
    """The images the stages start from (not the other stages, not scratch)."""
    names = {s.name for s in stages}
    return {s.base for s in stages if s.base not in names and s.base != "scratch" and not re.match(r"^\$", s.base)}


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def from_root_filesystems(comment: str, cmd: list[str], *, env: dict[str, str] | None = None,
                          path: str = DEFAULT_PATH, then: list[str] = ()) -> str:
    """A Dockerfile for a multi-platform image made of one root filesystem tar per platform, named
    ``rootfs-<arch><variant>.tar`` beside it (how the lab's stand-ins are made). ``comment`` opens it; ``env`` and
    ``path`` set its variables, ``then`` adds instructions after its CMD."""
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    variables = "".join(f"ENV {k}={v}\n" for k, v in (env or {}).items())
    return (f"{head}FROM scratch\nARG TARGETARCH\nARG TARGETVARIANT\n"
            "ADD rootfs-${TARGETARCH}${TARGETVARIANT}.tar /\n"
            f"{variables}ENV PATH={path}\n"
            f"CMD {json.dumps(cmd)}\n" + "".join(f"{line}\n" for line in then))


def instructions(path: Path) -> str:
    """A Dockerfile's text without its comment lines: the instructions alone, to print short (the file keeps the
    comments that explain them)."""
    lines = [line for line in Path(path).read_text().splitlines() if not line.lstrip().startswith("#")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
