"""A build cache shared through a registry: one builder exports it, another starts from it.

``--cache-to type=registry,ref=REF,mode=max`` writes every step's result (``mode=max``: the intermediate stages
too, not only the final image's layers) to the registry as a cache manifest; ``--cache-from type=registry,ref=REF``
lets any builder that reaches the registry answer its steps from there. The engine's own builder cannot export a
cache on the classic image store; a ``docker-container`` builder can on any engine.

:func:`measure` times what a second machine gains: the first builder builds and exports; the second, its own
cache emptied first (``docker buildx prune --all``), builds once from the shared cache (warm), then once with
``--no-cache`` (cold, which ignores every cache). The ratio is cold over warm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import buildx
from ..buildx import BuildResult, NamedContext
from ..core import commands
from ..core.commands import docker
from ..oci.platforms import Platform
from ..oci.references import Reference


def cache_to(ref: Reference) -> str:
    """The ``--cache-to`` value that exports every step (``mode=max``) to ``ref`` in a registry."""
    return f"type=registry,ref={ref.docker},mode=max"


def cache_from(ref: Reference) -> str:
    """The ``--cache-from`` value that reads the cache at ``ref``."""
    return f"type=registry,ref={ref.docker}"


@dataclass(frozen=True)
class SharedCache:
    """One export and the two builds on the second builder, each a :class:`~multiarch_kit.buildx.BuildResult`."""

    ref: Reference
    exported: BuildResult  # the first builder's build, with --cache-to
    warm: BuildResult  # the second builder, its own cache empty, with --cache-from
    cold: BuildResult  # the second builder with --no-cache

    @property
    def ratio(self) -> float:
        """How many times faster the second builder was with the shared cache (cold over warm wall time)."""
        return self.cold.seconds / self.warm.seconds

    def cached_steps(self, result: BuildResult) -> tuple[int, int]:
        """(steps answered from a cache, steps) of ``result``'s RUN steps, from its progress."""
        runs = [s for s in result.progress.steps if s.is_run]
        return sum(s.cached for s in runs), len(runs)

    def summary(self) -> str:
        warm_cached, runs = self.cached_steps(self.warm)
        return (f"second builder: cold {self.cold.seconds:.1f} s, warm from {self.ref.docker} "
                f"{self.warm.seconds:.1f} s ({warm_cached} of {runs} RUN steps from the cache): "
                f"{self.ratio:.1f}x faster")


def prune(builder: str, *, echo: bool = True) -> None:
    """Empty ``builder``'s own cache (``docker buildx prune --all --force``), so only the shared one can help."""
    commands.run(docker("buildx", "prune").flag("--builder", builder).flag("--all").flag("--force"),
                 echo=echo, timeout=600)


@dataclass(frozen=True)
class CacheBuild:
    """What the three builds share: the workload's folder, its platform, and its named contexts and arguments."""

    context: Path
    platform: Platform
    build_contexts: Mapping[str, NamedContext] | None = None
    build_args: Mapping[str, str] | None = None
    target: str | None = None

    def run(self, builder: str, *, echo: bool, **flags) -> BuildResult:
        return buildx.build(self.context, platforms=[self.platform], builder=builder, output="type=cacheonly",
                            build_contexts=dict(self.build_contexts or {}), build_args=self.build_args,
                            target=self.target, echo=echo, **flags)


def measure(what: CacheBuild, ref: Reference, first: str, second: str, *, echo: bool = True) -> SharedCache:
    """Export ``what``'s cache from builder ``first`` to ``ref`` (built from scratch), then time builder
    ``second`` warm from it and cold without it (see the module's docstring)."""
    exported = what.run(first, echo=echo, no_cache=True, cache_to=cache_to(ref))
    prune(second, echo=echo)
    warm = what.run(second, echo=echo, cache_from=cache_from(ref))
    cold = what.run(second, echo=echo, no_cache=True)
    return SharedCache(ref, exported, warm, cold)
