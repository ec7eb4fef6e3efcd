"""docker buildx: builders, and builds run the way a reader types them.

:func:`build` runs ``docker buildx build`` (printing the exact line first) and returns a
:class:`BuildResult`. Two flags on that line serve the kit rather than the reader: ``--metadata-file`` makes
buildx write what it built (``containerimage.digest``...) to a JSON file the kit reads, and
``--progress=rawjson`` makes it report every build step as JSON (start, end, cached, logs) instead of the
terminal display. The steps become a :class:`Progress` value, parsed once. Those flags, the stand-ins' named
contexts and the lab's folders mean nothing on the reader's own machine, so every build is also shown as
:func:`by_hand` gives it: the same build typed in its context folder.

:func:`parse_inspect` reads the text of ``docker buildx inspect [NAME]``. buildx has no JSON output for
inspect in the versions the lab supports (0.12+), so the parser reads its ``Key: value`` layout: a builder
section, then one section per node after ``Nodes:``.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import commands, registry, runlog
from .commands import Command, Name
from .emulation import missing_emulator_error
from .engine import IMAGE_STORE_FIX, docker
from .errors import CommandError, KitError, InvalidPlatform
from .platforms import Platform

if TYPE_CHECKING:  # pandas is imported by the tables that need it, so `lab up` never loads it
    import pandas as pd

# The article's publication time. Builds asked to be reproducible set SOURCE_DATE_EPOCH to it, so the
# same inputs give the same digests on every machine.
SOURCE_DATE_EPOCH = "1694372522"


@dataclass
class BuilderNode:
    """One node of a builder: where BuildKit runs and what it can build."""

    name: str
    endpoint: str = ""
    status: str = ""
    buildkit: str = ""
    platforms: list[Platform] = field(default_factory=list)


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
                node.platforms = [Platform.parse(p.strip().rstrip("*")) for p in value.split(",") if p.strip()]
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


def version(*, echo: bool = False) -> str:
    """The buildx version (``docker buildx version``), e.g. ``0.13.1+ds1``."""
    out = commands.run(docker("buildx", "version"), echo=echo, timeout=30).stdout.split()
    return out[1] if len(out) > 1 else (out[0] if out else "")


# --- progress ---------------------------------------------------------------------------------------------

# BuildKit names a step "[PLATFORM STAGE N/M] INSTRUCTION": every part in the brackets is optional.
_STEP_NAME = re.compile(r"^\[(?P<inside>[^\]]*)\] (?P<instruction>.*)$", re.S)


@dataclass
class Step:
    """One BuildKit vertex: a Dockerfile instruction or a piece of the build's own work."""

    digest: str
    name: str
    started: datetime | None = None
    completed: datetime | None = None
    cached: bool = False
    error: str = ""
    log: str = ""

    @property
    def seconds(self) -> float:
        if self.started is None or self.completed is None:
            return float("nan")
        return (self.completed - self.started).total_seconds()

    @property
    def _parts(self) -> tuple[Platform | None, str, str, str]:
        m = _STEP_NAME.match(self.name)
        if not m:
            return None, "", "", self.name
        words = m.group("inside").split()
        position = words.pop() if words and re.fullmatch(r"\d+/\d+", words[-1]) else ""
        platform = None
        if words and "/" in words[0]:
            try:
                platform = Platform.parse(words[0])
                words.pop(0)
            except InvalidPlatform:
                pass
        return platform, " ".join(words), position, m.group("instruction")

    @property
    def platform(self) -> Platform | None:
        """The platform the step ran for, when BuildKit names it (multi-platform builds)."""
        return self._parts[0]

    @property
    def stage(self) -> str:
        """The Dockerfile stage (``build`` in ``FROM ... AS build``), or ``internal``, or empty."""
        return self._parts[1]

    @property
    def position(self) -> str:
        return self._parts[2]

    @property
    def instruction(self) -> str:
        """The name without its bracket: ``RUN make -j2``."""
        return self._parts[3]

    @property
    def is_run(self) -> bool:
        return self.instruction.startswith("RUN ")


@dataclass
class Progress:
    """What ``--progress=rawjson`` reported: the steps, in first-seen order, and the lines that were not JSON."""

    steps: list[Step]
    messages: list[str]

    def table(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{"name": s.name, "seconds": s.seconds, "cached": s.cached, "error": s.error, "started": s.started,
                 "completed": s.completed, "digest": s.digest, "log": s.log} for s in self.steps]
        return pd.DataFrame(rows, columns=["name", "seconds", "cached", "error", "started", "completed", "digest",
                                           "log"])

    def run_seconds(self) -> float:
        """Time spent in RUN steps that really ran (not cached)."""
        return float(sum(s.seconds for s in self.steps if s.is_run and not s.cached and s.seconds == s.seconds))

    def said(self) -> str:
        """Everything the build said: the plain lines, every step's log and error."""
        return "\n".join([*self.messages, *(s.log for s in self.steps), *(s.error for s in self.steps)])


def _time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        # BuildKit writes RFC 3339 with nanoseconds; Python keeps microseconds.
        text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_rawjson(text: str) -> Progress:
    """Read ``--progress=rawjson`` output: SolveStatus objects (merged by vertex digest) and the other lines.

    buildx writes one JSON object after another (0.13 indents them over several lines); anything else, such
    as the final ``ERROR: ...`` line, is kept as a message. Fields of the wrong type are ignored, never fatal.
    """
    decoder = json.JSONDecoder()
    steps: dict[str, Step] = {}
    logs: dict[str, list[bytes]] = {}
    messages: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if text[i] == "{":
            try:
                obj, i = decoder.raw_decode(text, i)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                _merge(obj, steps, logs)
                continue
            if obj is not None:
                continue
        end = text.find("\n", i)
        end = n if end < 0 else end
        messages.append(text[i:end].rstrip())
        i = end + 1
    for digest, chunks in logs.items():
        if digest in steps:
            steps[digest].log = b"".join(chunks).decode(errors="replace")
    return Progress(list(steps.values()), messages)


def _merge(obj: dict, steps: dict[str, Step], logs: dict[str, list[bytes]]) -> None:
    vertexes = obj.get("vertexes") if isinstance(obj.get("vertexes"), list) else []
    for v in vertexes:
        if not isinstance(v, dict) or not isinstance(v.get("digest"), str):
            continue
        step = steps.setdefault(v["digest"], Step(v["digest"], str(v.get("name", ""))))
        started, completed = _time(v.get("started")), _time(v.get("completed"))
        if started and (step.started is None or started < step.started):
            step.started = started
        if completed and (step.completed is None or completed > step.completed):
            step.completed = completed
        step.cached = step.cached or bool(v.get("cached"))
        if isinstance(v.get("error"), str) and v["error"]:
            step.error = v["error"]
    entries = obj.get("logs") if isinstance(obj.get("logs"), list) else []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        try:
            data = base64.b64decode(entry.get("data") or "", validate=False)
        except (ValueError, TypeError):
            continue
        logs.setdefault(str(entry.get("vertex", "")), []).append(data)


# --- building ------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    """What one ``docker buildx build`` did."""

    command: str  # the shell line, as printed before the build
    argv: list[str]
    seconds: float  # wall time of the whole command
    digest: str | None  # what the build made, from --metadata-file (the index's for multi-platform): built_digest
    metadata: dict
    progress: Progress

    @property
    def steps(self) -> pd.DataFrame:
        """One row per build step: name, seconds, cached, error, times, log."""
        return self.progress.table()

    @property
    def run_seconds(self) -> float:
        """Time spent in the build's own RUN steps (excludes loading contexts and exporting)."""
        return self.progress.run_seconds()

    def plain_lines(self) -> list[str]:
        """From a ``--progress=plain`` build: the lines that teach (each platform's steps, the export and push)."""
        return teaching_lines(self.progress.messages)

    def plain_steps(self) -> list[Step]:
        """The step headers among :meth:`plain_lines`, read as steps (platform, stage, instruction), without times."""
        return [Step("", line) for line in self.plain_lines() if _STEP_NAME.match(line)]


def run_steps(results: dict[Platform, BuildResult]) -> pd.DataFrame:
    """The RUN steps of several builds in one table: platform, step, seconds, and whether the cache answered."""
    import pandas as pd

    rows = [{"platform": str(p), "step": s.instruction, "seconds": round(s.seconds, 3), "cached": s.cached}
            for p, r in results.items() for s in r.progress.steps if s.is_run]
    return pd.DataFrame(rows, columns=["platform", "step", "seconds", "cached"])


# BuildKit's plain progress: "#5 [linux/arm64 2/2] RUN ...", "#8 exporting manifest list sha256:...".
_TEACHING = re.compile(r"^#\d+ (\[[^\]]*\] (FROM|RUN|COPY|ADD) |exporting (manifest|attestation|config|to)|"
                       r"pushing (layers|manifest)|naming to)")


def teaching_lines(lines: list[str]) -> list[str]:
    """Lines of plain progress worth reading: step headers once each, exporter and push lines, no timings."""
    seen, out = set(), []
    for line in lines:
        if not _TEACHING.match(line):
            continue
        text = re.sub(r" (\d+\.\d+s )?done$", "", line.strip())
        text = re.sub(r"^#\d+ ", "", text)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


class BuildError(CommandError):
    """A build that failed, with what its progress said (and, from :func:`build_all`, which job it was)."""

    def __init__(self, argv, returncode, stderr, progress: Progress, fix=None, reason=None):
        super().__init__(argv, returncode, stderr, fix=fix, reason=reason)
        self.progress = progress
        self.job = None  # the key build_all's caller gave the failed build


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


def build_argv(context: str | Path, *, platforms: list[Platform], tags: list[str] = (), output: str | None = None,
               push: bool = False, build_contexts: dict[str, NamedContext] | None = None, no_cache: bool = False,
               no_cache_filter: list[str] | None = None, target: str | None = None,
               provenance: bool | None = None, sbom: bool | None = None, builder: str | None = None,
               metadata_file: str | None = None, progress: str | None = "rawjson",
               build_args: dict[str, str] | None = None, labels: dict[str, str] | None = None,
               network: str | None = None, context_name: str | None = None) -> Command:
    """The ``docker buildx build`` argument vector, in the article's style (one --platform per platform).

    ``progress=None`` leaves buildx's own default (the terminal display)."""
    return (docker("buildx", "build", context=context_name)
            .flag("--builder", builder)
            .flag("--platform", list(platforms))
            .flag("--build-context", [f"{k}={v}" for k, v in (build_contexts or {}).items()])
            .flag("--build-arg", [f"{k}={v}" for k, v in (build_args or {}).items()])
            .flag("--label", [f"{k}={v}" for k, v in (labels or {}).items()])
            .flag("--target", target)
            .flag("--tag", list(tags))
            .option("--output", output)
            .flag("--push", push)
            .flag("--no-cache", no_cache)
            .flag("--no-cache-filter", ",".join(no_cache_filter) if no_cache_filter else None)
            .option("--provenance", provenance)
            .option("--sbom", sbom)
            .option("--network", network)
            .flag("--metadata-file", metadata_file)
            .option("--progress", progress)
            .add(context))


# The folder that holds the package: the repository in a clone (site-packages once installed, where the package's
# own folders keep the repository's names). The line to type by hand names context folders from here.
_ROOT = Path(__file__).resolve().parent.parent


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


def by_hand(context: str | Path, *, env: dict[str, str] | None = None,
            build_contexts: dict[str, NamedContext] | None = None, **options) -> ByHand:
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
             for name, value in (build_contexts or {}).items() if not isinstance(value, StandInImage)}
    folder = Path(context).resolve()
    where = folder.relative_to(_ROOT).as_posix() if folder.is_relative_to(_ROOT) else str(context)
    argv = build_argv(".", build_contexts=named, metadata_file=None, progress=None, **options)
    return ByHand(where, list(argv), dict(env or {}))


@dataclass
class Job:
    """One prepared ``docker buildx build``: its argument vector, the variables it sets, where its metadata goes,
    and the same build as one types it by hand."""

    argv: list[str]
    env: dict[str, str]
    metadata_file: Path
    platforms: list[Platform]
    target_name: str  # tags, or the output, for the run log
    by_hand: ByHand

    @property
    def command(self) -> str:
        return commands.shell_line(self.argv, self.env)

    def result(self, done: commands.Completed) -> BuildResult:
        result = BuildResult(self.command, list(self.argv), done.seconds, None, _read_metadata(self.metadata_file),
                             parse_rawjson(done.stderr))
        result.digest = built_digest(result.metadata)
        runlog.record("build", target=self.target_name, platforms=",".join(map(str, self.platforms)),
                      digest=result.digest or "", seconds=round(done.seconds, 2))
        return result


def job(context: str | Path, folder: Path, *, platforms: list[Platform], tags: list[str] = (),
        output: str | None = None, push: bool = False, base=None,
        build_contexts: dict[str, NamedContext] | None = None,
        reproducible: bool = False, no_cache: bool = False, no_cache_filter: list[str] | None = None,
        target: str | None = None, provenance: bool | None = None, sbom: bool | None = None,
        builder: str | None = None, build_args: dict[str, str] | None = None, labels: dict[str, str] | None = None,
        network: str | None = None, context_name: str | None = None, progress: str = "rawjson") -> Job:
    """Check the inputs and prepare one build (its metadata file goes in ``folder``); see :func:`build`."""
    if not Path(context).is_dir():
        raise KitError(f"build context {context} is not a folder", "give the folder that holds the Dockerfile")
    if not (Path(context) / "Dockerfile").is_file():
        raise KitError(f"no Dockerfile in {context}", "add one, or point the build at the folder that has it")
    env = {}
    if reproducible:
        if push or not output or not output.startswith(("type=docker", "type=oci")):
            raise KitError("reproducible builds here need a type=docker or type=oci output",
                           "build to a tar and compare (the kit checks reproducibility on tars)")
        env["SOURCE_DATE_EPOCH"] = SOURCE_DATE_EPOCH
        output += ",rewrite-timestamp=true"
    dest = re.search(r"(?:^|,)dest=([^,]+)", output or "")
    if dest:  # buildx does not create the destination's folder
        try:
            Path(dest.group(1)).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KitError(f"cannot create the folder for {dest.group(1)} ({exc.strerror})",
                           "choose a writable dest= path") from None
    metadata_file = Path(tempfile.mkstemp(prefix="metadata-", suffix=".json", dir=folder)[1])
    metadata_file.unlink()  # buildx writes it; an empty file left from here would read as broken
    options = {"platforms": platforms, "tags": list(tags), "output": output, "push": push,
               "build_contexts": {**(base.build_contexts if base else {}), **(build_contexts or {})},
               "no_cache": no_cache, "no_cache_filter": no_cache_filter, "target": target,
               "provenance": provenance, "sbom": sbom, "builder": builder, "build_args": build_args,
               "labels": labels, "network": network, "context_name": context_name}
    argv = build_argv(context, metadata_file=str(metadata_file), progress=progress, **options)
    return Job(list(argv), env, metadata_file, list(platforms), ", ".join(tags) or (output or ""),
               by_hand(context, env=env, **options))


def build(context: str | Path, *, echo: bool = True, timeout: float = 3600, **options) -> BuildResult:
    """Run ``docker buildx build`` as a reader would, then read its metadata file and rawjson progress.

    ``platforms`` is a list of :class:`Platform`; ``base`` (a :class:`multiarch_kit.standins.Base`) adds the
    named contexts that map the Dockerfile's ``FROM`` names to the lab's stand-ins; ``build_contexts`` adds more
    (``NAME=VALUE``, as ``--build-context``). ``reproducible`` sets SOURCE_DATE_EPOCH and ``rewrite-timestamp=true``
    on a tar output, so rebuilding the same platform gives the same digest. ``context_name`` runs the build on
    another engine (``docker --context NAME buildx build``). The other options are the flags of the same name.
    """
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-") as tmp:
        j = job(context, Path(tmp), **options)
        try:
            done = commands.run(j.argv, echo=echo, env=j.env or None, timeout=timeout, note=str(j.by_hand))
        except CommandError as exc:
            raise _build_error(j.argv, exc, j.platforms) from None
        return j.result(done)


def attempt(context: str | Path, *, env: dict[str, str] | None = None, echo: bool = True, timeout: float = 3600,
            **options) -> commands.Completed:
    """A build whose failure is the point (a notebook showing the engine's own words): printed, run, returned
    whatever its exit code. ``env`` adds variables (``SOURCE_DATE_EPOCH``...); the options are :func:`build`'s."""
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-") as tmp:
        j = job(context, Path(tmp), **options)
        merged = {**j.env, **(env or {})}
        hand = ByHand(j.by_hand.folder, j.by_hand.argv, merged)  # the added variables matter by hand too
        return commands.run(j.argv, echo=echo, env=merged or None, timeout=timeout, check=False, note=str(hand))


def build_all(jobs: dict[Name, Job], *, echo: bool = True, timeout: float = 3600,
              on_done=None) -> dict[Name, BuildResult]:
    """Run several prepared builds at once. A failure lets the others finish (their results still count);
    Ctrl-C stops them all.

    ``on_done(name, result)`` is called for each build that succeeded, as soon as it has. A failure is raised
    as a :class:`BuildError` whose ``job`` is the key of the build that failed (keys are any values: platforms...).
    """
    results: dict[Name, BuildResult] = {}

    def finished(name: Name, done: commands.Completed) -> None:
        results[name] = jobs[name].result(done)
        if on_done:
            on_done(name, results[name])

    envs = [j.env for j in jobs.values()]
    if any(e != envs[0] for e in envs):
        raise KitError("builds run together must set the same environment", "make them all reproducible, or none")
    try:
        commands.run_all({name: j.argv for name, j in jobs.items()}, echo=echo, timeout=timeout,
                         env=envs[0] or None, on_completed=finished, stop_on_failure=False,
                         notes={name: str(j.by_hand) for name, j in jobs.items()})
    except CommandError as exc:
        name = next(n for n, j in jobs.items() if j.argv == exc.argv)
        err = _build_error(jobs[name].argv, exc, jobs[name].platforms)
        err.job = name
        raise err from None
    return results


def built_digest(metadata: dict) -> str | None:
    """The digest of what this build made, from its ``--metadata-file``.

    Taken from ``containerimage.descriptor`` when that names a manifest or an index. With the docker driver,
    buildx pushes through the engine after the build and then overwrites ``containerimage.digest`` with
    whatever the tag holds in the registry at that moment: another push to the same tag in between (a second
    CI job, a second engine) makes it name that push's manifest, even one platform's child of it (3 of 48
    concurrent pushes on the lab's two engines). The descriptor is what this build exported and pushed. The
    classic image store's exporter puts an image config there, not a manifest: its pushed digest is then
    only the one buildx read back.
    """
    descriptor = metadata.get("containerimage.descriptor")
    if isinstance(descriptor, dict) and descriptor.get("mediaType") in registry.MANIFEST_TYPES \
            and isinstance(descriptor.get("digest"), str):
        return descriptor["digest"]
    digest = metadata.get("containerimage.digest")
    return digest if isinstance(digest, str) else None


def _read_metadata(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KitError(f"buildx wrote an unreadable metadata file ({exc})", "update buildx (0.12 or later)") from None
    if not isinstance(data, dict):
        raise KitError("buildx wrote a metadata file that is not a JSON object", "update buildx (0.12 or later)")
    return data


def _build_error(argv: list[str], exc: CommandError, platforms: list[Platform]) -> BuildError:
    progress = parse_rawjson(exc.stderr)
    text = "\n".join(progress.messages) or exc.stderr
    said = progress.said()
    if "exec format error" in said:
        # The step that failed names the platform it ran for in a multi-platform build.
        failing = next((s.platform for s in progress.steps if s.error and s.platform), None)
        err = missing_emulator_error(failing or platforms[0])
        return BuildError(argv, exc.returncode, text, progress, fix=err.fix, reason=err.message)
    if "Docker exporter is not supported" in said or "docker exporter does not currently support" in said:
        return BuildError(argv, exc.returncode, text, progress, fix=IMAGE_STORE_FIX,
                          reason="the engine's classic image store cannot export type=docker")
    return BuildError(argv, exc.returncode, text, progress)
