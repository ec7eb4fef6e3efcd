"""Builders: ``docker buildx inspect``, ``ls`` and ``version``, read into values.

:func:`parse_inspect` reads the text of ``docker buildx inspect [NAME]``. buildx has no JSON output for inspect in
the versions the lab supports (0.12+), so the parser reads its ``Key: value`` layout: a builder section, then one
section per node after ``Nodes:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core import commands
from ..core.commands import docker
from ..core.errors import InvalidPlatform, KitError
from ..oci.platforms import Platform


@dataclass
class BuilderNode:
    """One node of a builder: where BuildKit runs and what it can build."""

    name: str
    endpoint: str = ""
    status: str = ""
    buildkit: str = ""
    platforms: list[Platform] = field(default_factory=list)
    pinned: list[Platform] = field(default_factory=list)  # set with --platform at create (buildx marks them *)


@dataclass
class Builder:
    """A buildx builder (``docker buildx inspect``)."""

    name: str
    driver: str
    nodes: list[BuilderNode] = field(default_factory=list)

    @property
    def platforms(self) -> list[Platform]:
        """Every platform any node lists, first node first, without repeats."""
        seen: dict[Platform, None] = {}
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
        if key == "Name" and builder is not None:
            node = BuilderNode(name=value)
            builder.nodes.append(node)
        elif node is None:
            continue
        elif key == "Endpoint":
            node.endpoint = value
        elif key == "Status":
            node.status = value
        elif key.lower() in ("buildkit", "buildkit version"):  # buildx 0.13 and older print "Buildkit:"
            node.buildkit = value
        elif key == "Platforms":
            try:
                listed = [p.strip() for p in value.split(",") if p.strip()]
                node.platforms = [Platform.parse(p.rstrip("*")) for p in listed]
                node.pinned = [Platform.parse(p.rstrip("*")) for p in listed if p.endswith("*")]
            except InvalidPlatform as exc:
                raise KitError(f"`docker buildx inspect` listed a platform the kit cannot read ({exc.message})",
                               "update buildx, or report the line") from None
    if builder is None:
        raise KitError("not the output of `docker buildx inspect`: no 'Name:' line", "check the builder name")
    return builder


def inspect(name: str | None = None, *, context: str | None = None, echo: bool = False) -> Builder:
    """Run ``docker buildx inspect [NAME]`` and parse it."""
    argv = docker("buildx", "inspect", context=context).add(*([name] if name else []))
    return parse_inspect(commands.run(argv, echo=echo, timeout=60).stdout)


def ls(*, context: str | None = None, echo: bool = True) -> str:
    """``docker buildx ls``: every builder, its driver, nodes and platforms, as Docker prints them for the reader
    (the kit reads a builder through :func:`inspect`, whose output is stable enough to parse)."""
    return commands.run(docker("buildx", "ls", context=context), echo=echo, timeout=60).stdout


def prune_cache_mounts(builder: str | None = None, *, echo: bool = True) -> None:
    """Empty the builder's cache mounts (``RUN --mount=type=cache``) and nothing else:
    ``docker buildx prune --force --filter type=exec.cachemount``."""
    commands.run(docker("buildx", "prune", "--force").option("--builder", builder)
                 .option("--filter", "type=exec.cachemount"), echo=echo, timeout=300)


def version(*, echo: bool = False) -> str:
    """The buildx version (``docker buildx version``), e.g. ``0.13.1+ds1``."""
    out = commands.run(docker("buildx", "version"), echo=echo, timeout=30).stdout.split()
    return out[1] if len(out) > 1 else (out[0] if out else "")
