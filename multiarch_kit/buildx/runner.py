"""Running builds: :func:`build` runs ``docker buildx build`` (printing the exact line first, the line to type by
hand under it) and returns a :class:`BuildResult`, read from its metadata file and rawjson progress;
:func:`attempt` runs one whose failure is the point; :func:`build_all` runs several at once.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import commands, runlog
from ..core.commands import Name
from ..core.errors import CommandError, KitError
from ..engine import IMAGE_STORE_FIX
from ..engine.emulation import missing_emulator_error
from ..oci import registry
from ..oci.platforms import Platform
from .argv import SOURCE_DATE_EPOCH, BuildOptions, ByHand, build_argv, by_hand
from .progress import Progress, Step, parse_rawjson, teaching_lines

if TYPE_CHECKING:  # pandas is imported by the tables that need it, so `lab up` never loads it
    import pandas as pd


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
        return [step for line in self.plain_lines() if (step := Step.header(line))]


def run_steps(results: dict[Platform, BuildResult]) -> pd.DataFrame:
    """The RUN steps of several builds in one table: platform, step, seconds, and whether the cache answered."""
    import pandas as pd

    rows = [{"platform": str(p), "step": s.instruction, "seconds": round(s.seconds, 3), "cached": s.cached}
            for p, r in results.items() for s in r.progress.steps if s.is_run]
    return pd.DataFrame(rows, columns=["platform", "step", "seconds", "cached"])



class BuildError(CommandError):
    """A build that failed, with what its progress said (and, from :func:`build_all`, which job it was)."""

    def __init__(self, argv, returncode, stderr, progress: Progress, fix=None, reason=None):
        super().__init__(argv, returncode, stderr, fix=fix, reason=reason)
        self.progress = progress


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




def job(context: str | Path, folder: Path, options: BuildOptions, *, reproducible: bool = False,
        progress: str = "rawjson") -> Job:
    """Check the inputs and prepare one build (its metadata file goes in ``folder``); see :func:`build`."""
    if not Path(context).is_dir():
        raise KitError(f"build context {context} is not a folder", "give the folder that holds the Dockerfile")
    if not (Path(context) / "Dockerfile").is_file():
        raise KitError(f"no Dockerfile in {context}", "add one, or point the build at the folder that has it")
    env = {}
    if reproducible:
        env["SOURCE_DATE_EPOCH"] = SOURCE_DATE_EPOCH
        options = _reproducible(options)
    dest = re.search(r"(?:^|,)dest=([^,]+)", options.output or "")
    if dest:  # buildx does not create the destination's folder
        try:
            Path(dest.group(1)).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KitError(f"cannot create the folder for {dest.group(1)} ({exc.strerror})",
                           "choose a writable dest= path") from None
    metadata_file = Path(tempfile.mkstemp(prefix="metadata-", suffix=".json", dir=folder)[1])
    metadata_file.unlink()  # buildx writes it; an empty file left from here would read as broken
    argv = build_argv(context, options, metadata_file=str(metadata_file), progress=progress)
    target = ", ".join(t.docker for t in options.tags) or (options.output or "")
    return Job(list(argv), env, metadata_file, list(options.platforms), target, by_hand(context, options, env=env))


def _options(base, flags: dict) -> BuildOptions:
    """The keyword flags as :class:`BuildOptions`, with ``base``'s named contexts under the caller's own."""
    options = BuildOptions.of(**flags)
    return options.with_contexts(base.build_contexts) if base is not None else options


def _reproducible(options: BuildOptions) -> BuildOptions:
    """``rewrite-timestamp=true`` on the output: a tar (``type=docker``/``type=oci``), or a push of one tag, which
    becomes ``--output type=image,name=TAG,push=true,rewrite-timestamp=true`` (the option lives on an output).
    The engine's own builder refuses it on a push; a ``docker-container`` builder accepts it."""
    output = options.output
    if options.push and len(options.tags) == 1 and not output:
        return replace(options, push=False, tags=(), output=f"type=image,name={options.tags[0].docker},push=true,"
                                                             "rewrite-timestamp=true")
    if options.push or not output or not output.startswith(("type=docker", "type=oci")):
        raise KitError("a reproducible build needs a type=docker or type=oci output, or a push of one tag",
                       "give --output type=oci,dest=FILE, or one --tag with --push")
    return replace(options, output=output + ",rewrite-timestamp=true")


def build(context: str | Path, options: BuildOptions | None = None, *, echo: bool = True, timeout: float = 3600,
          base=None, reproducible: bool = False, progress: str = "rawjson", **flags) -> BuildResult:
    """Run ``docker buildx build`` as a reader would, then read its metadata file and rawjson progress.

    ``flags`` are :class:`BuildOptions`' fields: ``platforms`` (a list of :class:`Platform`), ``tags``, ``push``...;
    ``base`` (a :class:`multiarch_kit.lab.standins.Base`) adds the named contexts that map the Dockerfile's ``FROM``
    names to the lab's stand-ins. ``reproducible`` sets SOURCE_DATE_EPOCH and ``rewrite-timestamp=true`` on a tar
    output, so rebuilding the same platform gives the same digest. ``options`` instead of ``flags``: the same,
    made already.
    """
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-") as tmp:
        j = job(context, Path(tmp), options or _options(base, flags), reproducible=reproducible, progress=progress)
        try:
            done = commands.run(j.argv, echo=echo, env=j.env or None, timeout=timeout, note=str(j.by_hand))
        except CommandError as exc:
            raise _build_error(j.argv, exc, j.platforms) from None
        return j.result(done)


def attempt(context: str | Path, *, env: dict[str, str] | None = None, echo: bool = True, timeout: float = 3600,
            base=None, reproducible: bool = False, progress: str = "rawjson", **flags) -> commands.Completed:
    """A build whose failure is the point (a notebook showing the engine's own words): printed, run, returned
    whatever its exit code. ``env`` adds variables (``SOURCE_DATE_EPOCH``...); the rest is :func:`build`'s."""
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-") as tmp:
        j = job(context, Path(tmp), _options(base, flags), reproducible=reproducible, progress=progress)
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
        name = exc.job
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
