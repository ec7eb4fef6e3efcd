"""A build's argument vector, from its options as a value, and the same build as one types it by hand.

Two flags on the line the kit runs serve the kit rather than the reader: ``--metadata-file`` makes buildx write
what it built (``containerimage.digest``...) to a JSON file the kit reads, and ``--progress=rawjson`` makes it
report every build step as JSON. Those flags, the stand-ins' named contexts and the lab's folders mean nothing on
the reader's own machine, so every build is also shown as :func:`by_hand` gives it: the same build typed in its
context folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

from ..core import commands
from ..core.commands import Command, docker
from ..oci.platforms import Platform
from ..oci.references import Reference, parse_reference

# The article's publication time. Builds asked to be reproducible set SOURCE_DATE_EPOCH to it, so the
# same inputs give the same digests on every machine.
SOURCE_DATE_EPOCH = "1694372522"


@dataclass(frozen=True)
class StandInImage:
    """A named context that puts the lab's stand-in where the Dockerfile names one of Docker Hub's images
    (``--build-context alpine:3.18=docker-image://REF``). The lab's own wiring: a machine that reaches Docker Hub
    builds the Dockerfile as written, so the line to type by hand leaves it out."""

    ref: str

    def __str__(self) -> str:
        return f"docker-image://{self.ref}"


# A named context's value: what buildx reads as it is (a folder the reader names, an image, a URL), a folder
# the kit put in place (a fetched source: typed by hand by its name), or the lab's stand-in.
NamedContext = str | Path | StandInImage


@dataclass(frozen=True)
class BuildOptions:
    """What a ``docker buildx build`` is asked to do: its flags as values (each field is the flag of that name).

    Made once from keyword arguments (:meth:`of`, which names a misspelt option), then passed whole."""

    platforms: tuple[Platform, ...]
    tags: tuple[Reference, ...] = ()
    output: str | None = None
    push: bool = False
    build_contexts: Mapping[str, NamedContext] = field(default_factory=dict)  # --build-context NAME=VALUE
    build_args: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None
    target: str | None = None
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] | None = None
    provenance: bool | None = None
    sbom: bool | None = None
    builder: str | None = None
    network: str | None = None
    cache_to: str | None = None  # --cache-to type=registry,ref=...,mode=max: export the build's cache
    cache_from: str | None = None  # --cache-from type=registry,ref=...: start from a cache someone exported
    context_name: str | None = None  # another engine: docker --context NAME buildx build

    @classmethod
    def of(cls, **flags) -> BuildOptions:
        """The options named by keyword: tags are parsed into references here, where they enter."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(flags) - known)
        if unknown:
            raise TypeError(f"unknown build option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "platforms" not in flags:
            raise TypeError("a build needs its platforms")
        flags["platforms"] = tuple(flags["platforms"])
        flags["tags"] = tuple(parse_reference(t) for t in flags.get("tags") or ())
        if flags.get("no_cache_filter") is not None:
            flags["no_cache_filter"] = tuple(flags["no_cache_filter"])
        flags["build_contexts"] = dict(flags.get("build_contexts") or {})
        return cls(**flags)

    def with_contexts(self, named: Mapping[str, NamedContext]) -> BuildOptions:
        """These options with ``named`` contexts under the ones already given (a caller's own mapping wins)."""
        return replace(self, build_contexts={**named, **self.build_contexts})


def build_argv(context: str | Path, options: BuildOptions, *, metadata_file: str | None = None,
               progress: str | None = "rawjson") -> Command:
    """The ``docker buildx build`` argument vector, in the article's style (one --platform per platform).

    ``progress=None`` leaves buildx's own default (the terminal display)."""
    o = options
    return (docker("buildx", "build", context=o.context_name)
            .flag("--builder", o.builder)
            .flag("--platform", list(o.platforms))
            .flag("--build-context", [f"{k}={v}" for k, v in o.build_contexts.items()])
            .flag("--build-arg", [f"{k}={v}" for k, v in (o.build_args or {}).items()])
            .flag("--label", [f"{k}={v}" for k, v in (o.labels or {}).items()])
            .flag("--target", o.target)
            .flag("--tag", [t.docker for t in o.tags])
            .option("--output", o.output)
            .flag("--push", o.push)
            .flag("--no-cache", o.no_cache)
            .flag("--no-cache-filter", ",".join(o.no_cache_filter) if o.no_cache_filter else None)
            .option("--provenance", o.provenance)
            .option("--sbom", o.sbom)
            .option("--network", o.network)
            .flag("--cache-to", o.cache_to)
            .flag("--cache-from", o.cache_from)
            .flag("--metadata-file", metadata_file)
            .option("--progress", progress)
            .add(context))


def where_typed(context: str | Path) -> str:
    """The context folder as a reader names it where they type the build: a folder of the package as
    ``multiarch_kit/...`` (its place in a clone), a folder of the clone the current folder is in relative to the
    clone's top (``notebooks/article``), anything else as given. Nothing above the package is read."""
    folder = Path(context).resolve()
    package = Path(str(resources.files("multiarch_kit")))
    if folder.is_relative_to(package):
        return (Path(package.name) / folder.relative_to(package)).as_posix()
    top = next((d for d in (Path.cwd(), *Path.cwd().parents)
                if (d / "pyproject.toml").is_file() and (d / "notebooks").is_dir()), None)
    if top is not None and folder.is_relative_to(top):
        return folder.relative_to(top).as_posix()
    return str(context)


@dataclass(frozen=True)
class ByHand:
    """A build as one types it on one's own machine: in ``folder``, ``docker buildx build ... .``"""

    folder: str  # the context folder, named where it is in the repository (or as the caller gave it)
    argv: list[str]
    env: dict[str, str]

    @property
    def line(self) -> str:
        """The shell line, to type in ``folder``."""
        return commands.shell_line(self.argv, self.env)

    def __str__(self) -> str:
        return f"by hand, in {self.folder}: {self.line}"


def by_hand(context: str | Path, options: BuildOptions, *, env: dict[str, str] | None = None) -> ByHand:
    """The build :func:`build_argv` makes of the same ``options`` (no metadata file or progress), as a reader
    types it on their own machine.

    What only the lab needs goes: the stand-ins' named contexts (the Dockerfile's names then come from Docker
    Hub), the metadata file and the progress format (buildx's default display stays). The context is ``.``,
    typed in its folder as the repository names it (``multiarch_kit/workloads/c``, ``notebooks/article``); a
    folder the kit put in place (a fetched source) is named by its folder's name, and a folder outside the
    repository as the caller gave it. Platforms, tags, outputs, build arguments, targets and the variables in
    ``env`` stay as they are, the registry's address included.
    """
    named = {name: value.name if isinstance(value, Path) else value
             for name, value in options.build_contexts.items() if not isinstance(value, StandInImage)}
    argv = build_argv(".", replace(options, build_contexts=named), metadata_file=None, progress=None)
    return ByHand(where_typed(context), list(argv), dict(env or {}))
