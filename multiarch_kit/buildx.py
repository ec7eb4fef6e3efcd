"""docker buildx: what a builder is made of.

:func:`parse_inspect` reads the text of ``docker buildx inspect [NAME]``. buildx has no JSON output
for inspect in the versions the lab supports (0.12+), so the parser reads its ``Key: value`` layout:
a builder section, then one section per node after ``Nodes:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import commands


@dataclass
class BuilderNode:
    """One node of a builder: where BuildKit runs and what it can build."""

    name: str
    endpoint: str = ""
    status: str = ""
    buildkit: str = ""
    platforms: list[str] = field(default_factory=list)


@dataclass
class Builder:
    """A buildx builder (``docker buildx inspect``)."""

    name: str
    driver: str
    nodes: list[BuilderNode] = field(default_factory=list)

    @property
    def platforms(self) -> list[str]:
        """Every platform any node lists, first node first, without repeats."""
        seen: dict[str, None] = {}
        for node in self.nodes:
            for p in node.platforms:
                seen.setdefault(p, None)
        return list(seen)


def parse_inspect(text: str) -> Builder:
    """Parse ``docker buildx inspect`` output into a :class:`Builder`."""
    builder: Builder | None = None
    node: BuilderNode | None = None
    in_nodes = False
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith(" "):  # blank lines and indented label/GC lines
            continue
        key, _, value = raw.partition(":")
        key, value = key.strip(), value.strip()
        if key == "Nodes":
            in_nodes = True
            continue
        if not in_nodes:
            if key == "Name":
                builder = Builder(name=value, driver="")
            elif key == "Driver" and builder is not None:
                builder.driver = value
            continue
        if key == "Name":
            node = BuilderNode(name=value)
            assert builder is not None
            builder.nodes.append(node)
        elif node is None:
            continue
        elif key == "Endpoint":
            node.endpoint = value
        elif key == "Status":
            node.status = value
        elif key in ("BuildKit", "BuildKit version"):
            node.buildkit = value
        elif key == "Platforms":
            node.platforms = [p.strip().rstrip("*") for p in value.split(",") if p.strip()]
    if builder is None:
        raise ValueError("not the output of `docker buildx inspect`: no 'Name:' line")
    return builder


def inspect(name: str | None = None, *, echo: bool = False) -> Builder:
    """Run ``docker buildx inspect [NAME]`` and parse it."""
    argv = ["docker", "buildx", "inspect"] + ([name] if name else [])
    return parse_inspect(commands.run(argv, echo=echo, timeout=60).stdout)


def version(*, echo: bool = False) -> str:
    """The buildx version (``docker buildx version``), e.g. ``0.13.1+ds1``."""
    out = commands.run(["docker", "buildx", "version"], echo=echo, timeout=30).stdout.split()
    return out[1] if len(out) > 1 else (out[0] if out else "")
