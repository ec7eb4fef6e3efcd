"""Stand-ins: labelled images the lab makes in place of Docker Hub's when Docker Hub is out of reach.

A :class:`StandIn` describes one: the names it stands for, where it goes in the lab registry, its folder in
the lab, its Dockerfile over one root filesystem per platform, and how the notebooks name it. Its two
instances are the article's base (``base.STANDIN``: busybox from Debian, for ``alpine:3.18``) and the
workloads' build base (``buildbase.STANDIN``: Debian bookworm with gcc and Go from mmdebstrap); each of those
modules says what its root filesystems are made of and the recipe (a sha256 of every input) they come from.

What is common lives here: the resolved :class:`Base` a build uses (Docker Hub's image, or the stand-in wired
in by ``--build-context NAME=docker-image://...`` so the Dockerfiles stay as they are), the recipe stamp that
says which recipe the registry holds, and the build that pushes one index of the root filesystems.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..buildx import SOURCE_DATE_EPOCH, BuildOptions, NamedContext, StandInImage, build_argv
from ..core import commands
from ..core.errors import KitError
from ..oci import registry
from ..oci.platforms import Platform
from .config import LabConfig, LabPaths

DOCKER_HUB, STAND_IN = "docker-hub", "stand-in"


def recipe_digest(parts: Iterable[str], blobs: Iterable[bytes] = ()) -> str:
    """The one recipe hash: every text input joined by NUL, then every file's bytes. What the lab makes once (a
    stand-in, the build base, the arm64 VM's disk) is made again when its recipe's digest changes."""
    digest = hashlib.sha256("\0".join(parts).encode())
    for blob in blobs:
        digest.update(blob)
    return digest.hexdigest()
DESCRIPTION_LABEL = "org.opencontainers.image.description"
RECIPE_LABEL = "io.github.multiarch-kit.recipe"


@dataclass(frozen=True)
class StandIn:
    """One image the lab can make in place of Docker Hub's, and how it is told apart from the real one."""

    stands_for: tuple[str, ...]  # the names the Dockerfiles use; the first is the image containers start from
    repository: str  # in the lab registry
    tag: str
    folder: str  # under the lab folder: the recipe stamp and the build context
    description: str  # the image's OCI description label: it says what it is
    dockerfile: str  # the index's Dockerfile over rootfs-<platform>.tar files
    title: str  # how the notes begin: "Base image", "Build base"
    standin_note: str  # the note when the stand-in is used; {ref} is its reference
    what: str  # how messages name it: "the build base"

    def ref(self, registry_host: str) -> str:
        """The stand-in's tag in the lab registry."""
        return f"{registry_host}/{self.repository}:{self.tag}"

    def hub(self) -> Base:
        """Docker Hub's real image: builds resolve the names themselves."""
        return Base(self, DOCKER_HUB, self.stands_for[0])

    def standin(self, registry_host: str, digest: str | None) -> Base:
        """The stand-in in the lab registry, every name it stands for mapped to it."""
        ref = self.ref(registry_host)
        return Base(self, STAND_IN, ref, digest, {name: StandInImage(ref) for name in self.stands_for})

    def pushed(self, cfg: LabConfig) -> Base:
        """The stand-in as the registry holds it (digest None when it does not, or does not answer); builds nothing."""
        head = registry.head_manifest(cfg.registry_address, self.repository, self.tag) \
            if registry.ping(cfg.registry_address) else None
        return self.standin(cfg.registry_host, head.digest if head else None)

    def stamp(self, lab_dir: Path) -> Path:
        """The file that holds the recipe of the stand-in last pushed."""
        return LabPaths(lab_dir).standin(self.folder) / "pushed-recipe.sha256"

    def current(self, cfg: LabConfig, recipe: str) -> Base | None:
        """The stand-in when the registry holds it for this very recipe, else None (nothing is built)."""
        stamp = self.stamp(cfg.lab_dir)
        if not stamp.exists() or stamp.read_text().strip() != recipe:
            return None
        found = self.pushed(cfg)
        return found if found.digest else None

    def make(self, cfg: LabConfig, recipe: str, platforms: tuple[Platform, ...] | list[Platform],
             fill: Callable[[Path], None], *, echo: bool = True, context_name: str | None = None) -> Base:
        """Lay out the build context (the Dockerfile, then ``fill`` writes one ``rootfs-<platform>.tar`` per
        platform), build the index, push it, record its recipe, and read it back.

        Reproducible: SOURCE_DATE_EPOCH fixes the config's dates, the tars fix the files' times. No
        attestations, so the index lists exactly the lab's platforms. ``context_name`` builds it on that Docker
        context's engine instead of the current one: the index is the same wherever it is built.
        """
        context = cfg.paths.standin(self.folder) / "context"
        if context.exists():
            shutil.rmtree(context)
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(self.dockerfile)
        fill(context)
        ref = self.ref(cfg.registry_host)
        log = cfg.paths.logs / f"{self.folder}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"Pushing {self.what} to {ref} (one index, {len(platforms)} platforms); BuildKit's lines in {log}",
              flush=True)
        options = BuildOptions.of(platforms=list(platforms), provenance=False, sbom=False,
                                  labels={DESCRIPTION_LABEL: self.description, RECIPE_LABEL: recipe},
                                  output=f"type=image,name={ref},push=true", context_name=context_name)
        argv = build_argv(context, options, progress="plain")
        started = time.monotonic()
        with open(log, "w") as written:
            def progress(line: str) -> None:  # every line to the log; to the reader, the export and the push
                written.write(line + "\n")
                if line.startswith("#") and ("exporting to image" in line or "pushing manifest" in line) \
                        and " DONE " not in line:
                    print(f"  [{time.monotonic() - started:5.0f} s] {line.split(' ', 1)[1]}", flush=True)

            commands.run(argv, env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}, timeout=3600, echo=echo,
                         on_line=progress)
        print(f"  [{time.monotonic() - started:5.0f} s] pushed", flush=True)
        shutil.rmtree(context)
        self.stamp(cfg.lab_dir).write_text(recipe)
        found = self.current(cfg, recipe)
        if found is None:
            raise KitError(f"{self.what} was pushed but {ref} cannot be read back", "run 'multiarch-kit lab up'")
        return found


@dataclass
class Base:
    """Where a Dockerfile's ``FROM`` of the names a stand-in stands for comes from in this lab."""

    standin_of: StandIn = field(repr=False)  # what it resolves, for its notes
    source: str  # "docker-hub" or "stand-in"
    ref: str  # the image a container of the base is started from
    digest: str | None = None
    build_contexts: dict[str, NamedContext] = field(default_factory=dict)  # buildx --build-context NAME=VALUE

    @property
    def pinned(self) -> str:
        """The reference to start containers from: by digest when known, so a stale local tag cannot answer."""
        return f"{self.ref}@{self.digest}" if self.digest else self.ref

    @property
    def short(self) -> str:
        """One line for every notebook after 00, which explains the stand-in."""
        names = " and ".join(self.standin_of.stands_for)
        if self.source == DOCKER_HUB:
            return f"{names}: the real image{'s' if len(self.standin_of.stands_for) > 1 else ''} from Docker Hub"
        return f"{names}: the lab's labelled stand-in ({self.ref}; see 00-lab)"

    @property
    def note(self) -> str:
        """One visible line for the notebooks: which image the names resolve to, and why."""
        if self.source == DOCKER_HUB:
            return f"{self.standin_of.title}: the real {' and '.join(self.standin_of.stands_for)} from Docker Hub."
        return self.standin_of.standin_note.format(ref=self.ref)
