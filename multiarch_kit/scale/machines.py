"""The other engines a lesson uses, chosen once at the edge: the reader's, the lab's own, or none.

Notebooks 08 and 09 show what fails on an engine with the classic image store, and notebook 10 builds each platform
on an engine of its own. The reader names such engines by Docker contexts in the environment
(``MULTIARCH_KIT_CLASSIC_CONTEXT=NAME``, ``MULTIARCH_KIT_NODES=linux/arm64=m2,linux/amd64=intel``); without
them, on Linux as root, the lab starts its own (:mod:`engines`); elsewhere (Docker Desktop, a user without
root) there is one engine and no second: 08 and 09 skip their classic-store parts and say in one line how to see
them, 10 builds every platform on that one engine through the same split code and says what to set. So no
notebook fails for lack of root or of a second engine.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .. import engine
from ..core.errors import KitError
from ..core.settings import ENV_CLASSIC, ENV_NODES, Settings
from ..engine import contexts
from ..lab import Lab, extra_engines, trust
from ..oci.platforms import Platform
from . import split

# The docker CLI's own rule for context names; checked here so a typo is named before any engine is asked.
CONTEXT_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.+-]+")

CLASSIC_NOTICE = (f"The classic image store's parts are skipped: no engine with that store here. To see them, set "
                  f"{ENV_CLASSIC} to the Docker context of an engine with the classic store, or run as root on "
                  f"Linux, where the lab starts one.")
ONE_ENGINE_NOTICE = (f"Every platform is built on this one engine, through the same split code. To split across "
                     f"real machines, set {ENV_NODES}=linux/arm64=CONTEXT,linux/amd64=CONTEXT2 (Docker contexts "
                     f"of engines that reach the registry).")


class Source(enum.Enum):
    """Where a lesson's other engines come from."""

    READER = "yours, named in the environment"
    LAB = "the lab's own, on this machine"
    NONE = "none: the one engine builds every platform"


def choose(named: bool, can_start: bool) -> Source:
    """The reader's engines when the environment names them; else the lab's own where it can start them (Linux,
    root, dockerd, containerd); else none."""
    if named:
        return Source.READER
    return Source.LAB if can_start else Source.NONE


def _context(text: str, named_by: str) -> str:
    if not CONTEXT_NAME.fullmatch(text):
        raise KitError(f"{named_by}: {text!r} is not a Docker context name",
                       "name a context that `docker context ls` lists (letters, digits, _.+-)")
    return text


# --- notebooks 08 and 09: an engine with the classic image store --------------------------------------


def parse_classic(given: Settings) -> str | None:
    """The context ``MULTIARCH_KIT_CLASSIC_CONTEXT`` names (None when unset or empty)."""
    return _context(given.classic_context, ENV_CLASSIC) if given.classic_context else None


@dataclass(frozen=True)
class ClassicEngine:
    """An engine with the classic image store: its Docker context, and the lab's node when the lab started it."""

    context: str
    lab_node: extra_engines.Node | None = None  # the lab's own: started for the lesson, stopped after it

    @property
    def source(self) -> Source:
        return Source.LAB if self.lab_node else Source.READER

    def stop(self, *, echo: bool = True) -> bool:
        """Stop the lab's own engine (the reader's is left alone); returns whether one was stopped."""
        return extra_engines.stop(self.lab_node, echo=echo) if self.lab_node else False


def classic_engine(here: Lab, *, echo: bool = True) -> ClassicEngine | None:
    """The classic-store engine a lesson can use, started if it is the lab's; None where there is none.

    The reader's context (in the lab's settings) must exist and keep images in the classic store (one-line error
    otherwise).
    """
    named = parse_classic(here.config.env)
    source = choose(named is not None, extra_engines.can_start()[0])
    if source is Source.READER:
        if contexts.inspect(named) is None:
            raise KitError(f"{ENV_CLASSIC}={named}: there is no such Docker context here",
                           f"create it (docker context create {named} --docker host=...) or unset {ENV_CLASSIC}")
        if engine.connect(here.config.env, named).containerd_store:
            raise KitError(f"{ENV_CLASSIC}={named}: that engine keeps images in the containerd store, not the "
                           "classic one", "name an engine whose daemon.json sets \"containerd-snapshotter\": false, "
                           f"or unset {ENV_CLASSIC}")
        return ClassicEngine(named)
    if source is Source.LAB:
        node = extra_engines.node(here.config.lab_dir, 2, classic=True)
        extra_engines.start(node, echo=echo)
        trust.ensure_context(here.config, node.name, echo=echo)  # a registry named other than localhost
        return ClassicEngine(node.name, node)
    return None


# --- notebook 10: one engine per platform ----------------------------------------------------------------


def parse_nodes(given: Settings, platforms: list[Platform]) -> dict[Platform, str] | None:
    """``MULTIARCH_KIT_NODES=linux/arm64=CONTEXT,...`` as {platform: context}, read as ``--node`` is (None when
    unset or empty)."""
    if not given.nodes:
        return None
    nodes = split.parse_nodes([item.strip() for item in given.nodes.split(",")], platforms, named_by=ENV_NODES)
    return {p: _context(context, ENV_NODES) for p, context in nodes.items()}


@dataclass(frozen=True)
class Nodes:
    """Each platform's engine for a split build (a Docker context; a platform not named builds on the lab's
    engine, without one), and where they came from."""

    contexts: dict[Platform, str]
    source: Source
    lab_node: extra_engines.Node | None = None  # the lab's second engine: started for the lesson, stopped after it

    def context(self, platform: Platform) -> str | None:
        """The context ``platform`` builds on (None: the lab's engine, as the CLI reaches it without --context)."""
        return self.contexts.get(platform)

    def stop(self, *, echo: bool = True) -> bool:
        """Stop the lab's second engine (the reader's are left alone); returns whether one was stopped."""
        return extra_engines.stop(self.lab_node, echo=echo) if self.lab_node else False


def split_nodes(here: Lab, platforms: list[Platform], *, echo: bool = True) -> Nodes:
    """Where each of ``platforms`` builds: the reader's contexts (in the lab's settings); else the first on the lab's
    engine and the others on the lab's second engine (started here); else every one on the one engine, by its
    context's name (``default`` for DOCKER_HOST's engine), so the build still goes through the split code (each
    platform pushed alone, then merged by digest)."""
    named = parse_nodes(here.config.env, platforms)
    source = choose(named is not None, extra_engines.can_start()[0])
    if source is Source.READER:
        for p, context in named.items():
            if contexts.inspect(context) is None:
                raise KitError(f"{ENV_NODES}: {context} (for {p}) is not a Docker context here",
                               f"create it (docker context create {context} --docker host=ssh://user@machine) "
                               "or fix the name")
        return Nodes(named, source)
    if source is Source.LAB:
        second = extra_engines.node(here.config.lab_dir, 2)
        extra_engines.start(second, echo=echo)
        trust.ensure_context(here.config, second.name, echo=echo)  # a registry named other than localhost
        return Nodes({p: second.name for p in platforms[1:]}, source, second)
    return Nodes({p: here.engine.name for p in platforms}, source)
