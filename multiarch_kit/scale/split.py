"""One tag from several engines: each platform built where it runs natively, merged by digest.

Docker's recipe for a build spread over machines: build each platform on its own runner and push it by
digest, then make the index from the digests (``docker buildx imagetools create``). The docker driver, which
every plain engine and Docker Desktop use, refuses ``push-by-digest``, so each node here pushes its platform
under a tag of its own (``TAG-split-RUN-PLATFORM``), the kit reads the pushed digest from ``--metadata-file``
and merges the digests into the final tag. No node ever writes the final tag, so nothing races on it; the
merge happens only when every platform has succeeded, so a failure leaves the tag as it was. The digests
already pushed are recorded, and ``resume`` rebuilds only the platforms that are missing.

Without nodes, :func:`build` is the article's one-command ``docker buildx build --platform ... --push``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from .. import buildx, engine
from ..core import commands, files
from ..core.errors import KitError
from ..engine import contexts, emulation, images
from ..lab import Lab, buildkit
from ..lab.config import LabPaths
from ..oci import manifests
from ..oci.platforms import Platform
from ..oci.references import Reference, parse_reference


@dataclass
class PlatformBuild:
    """What one platform's build did, and where."""

    platform: Platform
    node: str  # the Docker context that built it ("" for the default engine)
    engine_platform: Platform
    emulator: str  # how that engine ran the platform: native, qemu, rosetta, emulated
    digest: str  # what the node pushed: its platform's image with its attestation
    seconds: float
    pushed_as: Reference

    def as_dict(self) -> dict:
        return {"platform": str(self.platform), "node": self.node or "(default)",
                "engine": str(self.engine_platform), "emulator": self.emulator, "digest": self.digest,
                "seconds": round(self.seconds, 2)}


@dataclass
class SplitResult:
    """The tag, its index, and each platform's build."""

    reference: Reference
    index: str
    builds: list[PlatformBuild]
    seconds: float  # the whole command: builds, merge and checks
    merge_seconds: float  # the kit's own part after the slowest build: merge, checks, bookkeeping
    commands: list[str] = field(default_factory=list)
    inspection: manifests.Inspection | None = field(default=None, repr=False)  # the index as read back, followed

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([b.as_dict() for b in self.builds],
                            columns=["platform", "node", "engine", "emulator", "digest", "seconds"])

    def as_json(self) -> dict:
        return {"index": self.index, "reference": self.reference.docker,
                "platforms": [{k: v for k, v in b.as_dict().items() if k != "engine"} for b in self.builds]}


def parse_nodes(items: list[str], platforms: list[Platform], *, named_by: str = "--node") -> dict[Platform, str]:
    """``P=CONTEXT`` values to {platform: context}, each platform once and among ``platforms``.

    ``named_by`` is where the values came from (``--node``, or an environment variable), so each one-line error
    names the place the reader must fix.
    """
    nodes: dict[Platform, str] = {}
    for item in items:
        text, sep, context = item.partition("=")
        if not sep or not context or not text:
            raise KitError(f"{named_by} {item!r} is not PLATFORM=CONTEXT", "write each as e.g. linux/arm64=m2")
        try:
            p = Platform.parse(text)
        except KitError as exc:
            raise KitError(f"{named_by} {item!r}: {exc.message}", exc.fix) from None
        if p in nodes:
            raise KitError(f"{named_by} names {p} twice", "give one engine per platform")
        if p not in platforms:
            raise KitError(f"{named_by} {item!r}: {p} is not among the platforms to build "
                           f"({', '.join(map(str, platforms))})", f"build it too, or drop it from {named_by}")
        nodes[p] = context
    return nodes


@dataclass(frozen=True)
class _Pushed:
    """One platform pushed by its node: what the record of an interrupted build keeps of it."""

    digest: str
    seconds: float
    pushed_as: Reference

    def as_json(self) -> dict:
        return {"digest": self.digest, "seconds": self.seconds, "pushed_as": self.pushed_as.docker}


def _state_file(lab_dir: Path, reference: Reference, context: Path, platforms: list[Platform],
                target: str | None) -> Path:
    # Another stage is another build: its record must not resume this one.
    key = hashlib.sha256("\0".join([reference.docker, str(Path(context).resolve()), target or "",
                                    *map(str, platforms)]).encode())
    return LabPaths(lab_dir).splits / f"{key.hexdigest()[:16]}.json"


def _engines(here: Lab, nodes: dict[Platform, str]) -> dict[str, engine.Engine]:
    """Each node's engine, read once whatever the number of platforms it builds (one context inspect and one info
    each). A node that is not a context here, or does not answer, is a one-line error naming it."""
    found: dict[str, engine.Engine] = {}
    for p, context in nodes.items():
        if context in found:
            continue
        if contexts.inspect(context) is None:
            raise KitError(f"node {context} for {p} is not a Docker context here",
                           f"create it (docker context create {context} --docker host=ssh://user@machine) or fix "
                           "the name")
        try:
            found[context] = engine.connect(here.config.env, context)
        except KitError as exc:
            raise KitError(f"node {context} for {p} does not answer ({exc.message})",
                           exc.fix or "start it, or choose another node") from None
    return found


def _describe(here: Lab, nodes: dict[Platform, engine.Engine], platforms: list[Platform],
              echo: bool) -> dict[Platform, tuple[Platform, str]]:
    """Each platform's engine platform and how that engine runs it (native, qemu, rosetta, emulated).

    The lab's own engine is not asked (its handlers are the Lab's); a node that is that engine under another name
    (``default`` under DOCKER_HOST, Desktop's ``desktop-linux``) neither; another node once, by a container of the
    lab's base, which every lab engine can pull."""
    described: dict[Platform, tuple[Platform, str]] = {}
    by_engine: dict[str, tuple[engine.Engine, list[Platform]]] = {}
    for p in platforms:
        found = nodes.get(p, here.engine)
        by_engine.setdefault(found.engine_id or found.name, (found, []))[1].append(p)
    for found, wanted in by_engine.values():
        same = found is here.engine or bool(found.engine_id) and found.engine_id == here.engine.engine_id
        how = here.describe(wanted, echo=echo) if same else \
            emulation.describe(found, wanted, here.base.pinned, echo=echo)
        described.update({p: (found.platform, how[p]) for p in wanted})
    return described


def check_request(context: Path, reference: str | Reference, platforms: list[Platform]) -> Reference:
    """The parsed tag, once the request makes sense (before any engine is asked anything).

    A reference without a tag means ``:latest``, as for docker.
    """
    ref = parse_reference(reference)
    if ref.transport != "docker" or ref.digest or not ref.tag:
        raise KitError(f"{reference} is not a tag in a registry", "write it like localhost:5000/name:tag")
    if not platforms:
        raise KitError("no platform to build", "name at least one, e.g. --platform linux/amd64,linux/arm64")
    if len(set(platforms)) != len(platforms):
        raise KitError("a platform is given twice", "name each platform once")
    if not (Path(context) / "Dockerfile").is_file():
        raise KitError(f"no Dockerfile in {context}", "point the build at the folder that holds the Dockerfile")
    return ref


def build(context: Path, reference: str | Reference, platforms: list[Platform],
          nodes: dict[Platform, str] | None = None, *, here: Lab, base=None, resume: bool = False, echo: bool = True,
          **flags) -> SplitResult:
    """Build ``context`` for ``platforms`` and push one tag: on one engine, or each platform on its node.

    ``here`` is the lab (its folder keeps the build's record, its base probes each node's emulators); ``base``
    maps the base's names into the build. ``flags`` are the build's own (:class:`~multiarch_kit.buildx.BuildOptions`'
    ``build_contexts``, ``build_args``, ``target``, ``no_cache``: every step run, for timing one way against the
    other, each engine having a cache of its own).
    """
    ref = check_request(context, reference, platforms)
    started = time.perf_counter()
    options = buildx.BuildOptions.of(platforms=platforms, **flags)
    if base is not None:
        options = options.with_contexts(base.build_contexts)
    if not nodes:
        return _on_one_engine(context, ref, options, here, echo, started)
    node_engines = _engines(here, nodes)
    state_path = _state_file(here.config.lab_dir, ref, context, platforms, options.target)
    recorded_run, recorded = _read_state(state_path) if resume else (None, {})
    if resume and recorded_run is None:
        raise KitError(f"nothing to resume for {ref.docker}: no split build of it was interrupted here",
                       "run the build without --resume")
    run_id = recorded_run or time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:4]
    done = {p: pushed for p, pushed in recorded.items() if ref.client.head_manifest(pushed.digest)}
    described = _describe(here, {p: node_engines[c] for p, c in nodes.items()}, platforms, echo)
    shown = _build_on_nodes(context, ref, options, nodes, done, (state_path, run_id), echo)
    slowest_done = time.perf_counter()
    sources = [ref.at(done[p].digest).docker for p in platforms]
    shown.append(merge(here, ref, sources, echo=echo).argv)
    index = ref.client.head_manifest(ref.tag)
    builds = [PlatformBuild(p, nodes.get(p, ""), described[p][0], described[p][1], done[p].digest, done[p].seconds,
                            done[p].pushed_as) for p in platforms]
    result = SplitResult(ref, index.digest if index else "", builds, time.perf_counter() - started, 0.0,
                         [commands.shell_line(argv) for argv in shown])
    result.inspection = check(result)
    result.merge_seconds = time.perf_counter() - slowest_done
    state_path.unlink(missing_ok=True)
    return result


def routed(builder: buildx.Builder, platforms: list[Platform]) -> dict[Platform, buildx.BuilderNode]:
    """The node of ``builder`` that builds each platform, as buildx sends it: the first node pinned to it
    (``--platform`` at create, marked ``*``), else the first that lists it. A one-line error for a platform no node
    lists."""
    found: dict[Platform, buildx.BuilderNode] = {}
    for p in platforms:
        node = next((n for n in builder.nodes if p in n.pinned), None) or \
            next((n for n in builder.nodes if p in n.platforms), None)
        if node is None:
            raise KitError(f"builder {builder.name} has no node that builds {p}",
                           f"add one (docker buildx create --append --name {builder.name} --platform {p} CONTEXT), "
                           "or drop the platform")
        found[p] = node
    return found


def merge(here: Lab, tag: str | Reference, sources: list[str], *, echo: bool = True) -> commands.Completed:
    """``docker buildx imagetools create --tag TAG SOURCE...``: the index of images already pushed, in ``here``'s
    lab. For a lab registry named other than localhost (MULTIARCH_KIT_REGISTRY) it goes through a builder whose
    buildkitd.toml marks the registry plain HTTP (``--builder``): buildx reads that setting there, never from the
    engine's insecure-registries."""
    ref = parse_reference(tag) if isinstance(tag, str) else tag
    builder = None
    if here.config.named and ref.host == here.config.registry_host:
        builder = buildkit.plain_http_builder(here.config)
        if builder is None:
            raise KitError(f"docker buildx imagetools speaks HTTPS to {ref.host} unless a builder's buildkitd.toml "
                           "marks it plain HTTP, and the lab has no such builder yet",
                           "run 'multiarch-kit lab up --container-builder' with the same MULTIARCH_KIT_REGISTRY")
    return images.imagetools_create(ref.docker, sources, builder=builder, echo=echo)


def _on_one_engine(context: Path, ref: Reference, options: buildx.BuildOptions, here: Lab, echo: bool,
                   started: float) -> SplitResult:
    """The article's one command: every platform on the lab's engine, or on the nodes of the builder named, pushed
    as one index."""
    platforms = list(options.platforms)
    via = routed(buildx.inspect(options.builder), platforms) if options.builder else {}
    # A node whose endpoint is a Docker context runs on that engine (the multi-node builder's arm64 VM); else here.
    on = {p: n.endpoint for p, n in via.items() if n.endpoint and contexts.inspect(n.endpoint) is not None}
    engines = _engines(here, on)
    result = buildx.build(context, replace(options, tags=(ref,), push=True), echo=echo)
    inspection = manifests.inspect(ref.at(result.digest) if result.digest else ref)
    described = _describe(here, {p: engines[c] for p, c in on.items()}, platforms, echo)
    builds = [PlatformBuild(p, via[p].name if p in via else "", *described[p], inspection.select(p).digest,
                            result.seconds, ref) for p in options.platforms]
    return SplitResult(ref, result.digest or inspection.digest, builds, time.perf_counter() - started, 0.0,
                       [result.command], inspection)


def _build_on_nodes(context: Path, ref: Reference, options: buildx.BuildOptions, nodes: dict[Platform, str],
                    done: dict[Platform, _Pushed], record: tuple[Path, str], echo: bool) -> list[list[str]]:
    """Build and push each platform not ``done`` on its node, under a tag of its own in the same repository (the
    final tag is written only by the merge); each one is recorded in ``done`` and on disk the moment it is
    pushed. Returns the command lines that ran."""
    state_path, run_id = record
    tags = {p: ref.with_tag(f"{ref.tag}-split-{run_id}-{p.tag_suffix}") for p in options.platforms}
    lock = threading.Lock()  # builds finish on their own threads, sometimes at the same moment

    def pushed(p: Platform, result: buildx.BuildResult) -> None:  # kept at once: a later failure keeps it
        with lock:
            done[p] = _Pushed(result.digest, result.seconds, tags[p])
            _write_state(state_path, run_id, ref, done)

    with tempfile.TemporaryDirectory(prefix="multiarch-kit-split-") as tmp:
        jobs = {p: buildx.job(context, Path(tmp), replace(options, platforms=(p,), tags=(tags[p],), push=True,
                                                          context_name=nodes.get(p)))
                for p in options.platforms if p not in done}
        _write_state(state_path, run_id, ref, done)
        try:
            if jobs:
                buildx.build_all(jobs, echo=echo, on_done=pushed)
        except buildx.BuildError as exc:
            p = exc.job
            raise KitError(f"node {nodes.get(p) or '(default)'} failed to build {p}: {exc.message}; {ref.docker} is "
                           f"untouched, {len(done)} platform(s) already pushed are recorded",
                           (exc.fix + "; then " if exc.fix else "") + "fix that node, then run the same command with "
                           "--resume") from None
        except KeyboardInterrupt:
            raise KitError(f"interrupted: {ref.docker} is untouched; {len(done)} of {len(options.platforms)} "
                           "platform(s) pushed are recorded", "run the same command with --resume to build the rest"
                           ) from None
    return [j.argv for j in jobs.values()]


def check(result: SplitResult) -> manifests.Inspection:
    """The merged index holds exactly the requested platforms, each with the image its node pushed (the
    attestation, if any, still naming it), and every config says its platform. Returns what was read, so a check
    of the binaries (``--verify``) starts from it."""
    if not result.index:
        raise KitError(f"{result.reference.docker} is not in the registry after the merge", "run the build again")
    inspection = manifests.inspect(result.reference.at(result.index))
    images = {e.platform: e for e in inspection.images()}
    wanted = {b.platform for b in result.builds}
    if set(images) != wanted:
        raise KitError(f"the merged index holds {', '.join(sorted(map(str, images)))}, not "
                       f"{', '.join(sorted(map(str, wanted)))}", "run the build again")
    for e in inspection.images():
        if e.config is None or e.config.platform.architecture != e.platform.architecture:
            raise KitError(f"the {e.platform} entry's config says {e.config.platform if e.config else 'nothing'}",
                           "the node built another platform than asked: check its context")
    attested = {e.descriptor.attests for e in inspection.entries if e.kind == "attestation"}
    if attested - {e.digest for e in inspection.images()}:
        raise KitError("an attestation in the merged index names an image that is not there", "run the build again")
    return inspection


def _write_state(path: Path, run_id: str, reference: Reference, done: dict[Platform, _Pushed]) -> None:
    files.write_json(path, {"run": run_id, "reference": reference.docker,
                            "done": {str(p): pushed.as_json() for p, pushed in done.items()}})


def _read_state(path: Path) -> tuple[str | None, dict[Platform, _Pushed]]:
    """The interrupted run's id and what it pushed, read once into values (no run: None)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, {}
    except (OSError, ValueError) as exc:
        raise KitError(f"the record of the interrupted build {path} cannot be read ({exc})",
                       "delete it and run the build without --resume") from None
    damaged = KitError(f"the record of the interrupted build {path} is damaged",
                       "delete it and run the build without --resume")
    if not isinstance(data, dict) or not isinstance(data.get("done"), dict) or not isinstance(data.get("run"), str):
        raise damaged
    try:
        done = {Platform.parse(k): _Pushed(str(v["digest"]), float(v["seconds"]), parse_reference(v["pushed_as"]))
                for k, v in data["done"].items()}
    except (KitError, KeyError, TypeError, ValueError):
        raise damaged from None
    return data["run"], done
