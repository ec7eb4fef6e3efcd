"""docker buildx: builders, and builds run the way a reader types them.

:func:`build` runs ``docker buildx build`` (printing the exact line first) with ``--metadata-file`` for
the image digest and ``--progress=rawjson`` for per-step timings, and returns a :class:`BuildResult`.

:func:`parse_inspect` reads the text of ``docker buildx inspect [NAME]``. buildx has no JSON output
for inspect in the versions the lab supports (0.12+), so the parser reads its ``Key: value`` layout:
a builder section, then one section per node after ``Nodes:``.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import commands, runlog
from .errors import CommandError, KitError


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
        raise KitError("not the output of `docker buildx inspect`: no 'Name:' line", "check the builder name")
    return builder


def inspect(name: str | None = None, *, echo: bool = False) -> Builder:
    """Run ``docker buildx inspect [NAME]`` and parse it."""
    argv = ["docker", "buildx", "inspect"] + ([name] if name else [])
    return parse_inspect(commands.run(argv, echo=echo, timeout=60).stdout)


def version(*, echo: bool = False) -> str:
    """The buildx version (``docker buildx version``), e.g. ``0.13.1+ds1``."""
    out = commands.run(["docker", "buildx", "version"], echo=echo, timeout=30).stdout.split()
    return out[1] if len(out) > 1 else (out[0] if out else "")


# --- building ------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    """What one ``docker buildx build`` did."""

    command: str  # the shell line, as printed before the build
    argv: list[str]
    exit_code: int
    seconds: float  # wall time of the whole command
    digest: str | None  # containerimage.digest from --metadata-file (the index's for multi-platform)
    metadata: dict
    steps: pd.DataFrame  # one row per BuildKit vertex: name, seconds, cached, error, log
    log: str

    @property
    def run_seconds(self) -> float:
        """Time spent in the build's own RUN steps (excludes loading contexts and exporting)."""
        runs = self.steps[self.steps.name.str.contains(r"\bRUN\b", regex=True) & ~self.steps.cached]
        return float(runs.seconds.sum())


def parse_rawjson(text: str) -> tuple[list[dict], list[str]]:
    """Split ``--progress=rawjson`` output into SolveStatus objects and the plain lines between them.

    buildx writes one JSON object after another (0.13 indents them over several lines); anything else,
    such as the final ``ERROR: ...`` line, is kept as text.
    """
    decoder = json.JSONDecoder()
    objects, other, i, n = [], [], 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if text[i] == "{":
            try:
                obj, i = decoder.raw_decode(text, i)
                objects.append(obj)
                continue
            except ValueError:
                pass
        end = text.find("\n", i)
        end = n if end < 0 else end
        other.append(text[i:end].rstrip())
        i = end + 1
    return objects, other


def steps_table(objects: list[dict]) -> pd.DataFrame:
    """Merge the vertexes (which repeat as they progress) by digest into one row per build step."""
    steps: dict[str, dict] = {}
    logs: dict[str, list[bytes]] = {}
    for obj in objects:
        for v in obj.get("vertexes") or []:
            row = steps.setdefault(v["digest"], {"digest": v["digest"], "name": v.get("name", ""), "started": None,
                                                 "completed": None, "cached": False, "error": ""})
            if v.get("started"):
                t = pd.Timestamp(v["started"])
                row["started"] = t if row["started"] is None else min(row["started"], t)
            if v.get("completed"):
                t = pd.Timestamp(v["completed"])
                row["completed"] = t if row["completed"] is None else max(row["completed"], t)
            row["cached"] = row["cached"] or bool(v.get("cached"))
            row["error"] = v.get("error") or row["error"]
        for entry in obj.get("logs") or []:
            logs.setdefault(entry.get("vertex", ""), []).append(base64.b64decode(entry.get("data") or ""))
    rows = []
    for row in steps.values():
        done = row["started"] is not None and row["completed"] is not None
        row["seconds"] = (row["completed"] - row["started"]).total_seconds() if done else float("nan")
        row["log"] = b"".join(logs.get(row["digest"], [])).decode(errors="replace")
        rows.append(row)
    return pd.DataFrame(rows, columns=["name", "seconds", "cached", "error", "started", "completed", "digest", "log"])


def build_argv(context: str | Path, *, platforms: list[str], tags: list[str] = (), output: str | None = None,
               push: bool = False, build_contexts: list[str] = (), no_cache: bool = False,
               provenance: bool | None = None, builder: str | None = None, metadata_file: str | None = None,
               progress: str = "rawjson", build_args: dict[str, str] | None = None) -> list[str]:
    """The ``docker buildx build`` argument vector, in the article's style (one --platform per platform)."""
    argv = ["docker", "buildx", "build"]
    if builder:
        argv += ["--builder", builder]
    for p in platforms:
        argv += ["--platform", p]
    argv += list(build_contexts)
    for name, value in (build_args or {}).items():
        argv += ["--build-arg", f"{name}={value}"]
    for t in tags:
        argv += ["--tag", t]
    if output:
        argv.append(f"--output={output}")
    if push:
        argv.append("--push")
    if no_cache:
        argv.append("--no-cache")
    if provenance is not None:
        argv.append(f"--provenance={'true' if provenance else 'false'}")
    if metadata_file:
        argv += ["--metadata-file", metadata_file]
    argv.append(f"--progress={progress}")
    argv.append(str(context))
    return argv


def build(context: str | Path, *, platforms: list[str], tags: list[str] = (), output: str | None = None,
          push: bool = False, base=None, reproducible: bool = False, no_cache: bool = False,
          provenance: bool | None = None, builder: str | None = None, build_args: dict[str, str] | None = None,
          echo: bool = True, timeout: float = 3600) -> BuildResult:
    """Run ``docker buildx build`` as a reader would, then read its metadata file and rawjson progress.

    ``base`` (a :class:`multiarch_kit.base.BaseImage`) adds the named contexts that map ``alpine:3.18`` to
    the lab's stand-in. ``reproducible`` sets SOURCE_DATE_EPOCH and ``rewrite-timestamp=true`` on the
    output, so rebuilding the same platform gives the same digest.
    """
    from . import base as base_mod

    if not Path(context).is_dir():
        raise KitError(f"build context {context} is not a folder", "give the folder that holds the Dockerfile")
    if not (Path(context) / "Dockerfile").is_file():
        raise KitError(f"no Dockerfile in {context}", "add one, or point the build at the folder that has it")
    env = {}
    if reproducible:
        if push or not output or not output.startswith(("type=docker", "type=oci")):
            raise KitError("reproducible builds need a type=docker or type=oci output",
                           "the docker driver cannot rewrite timestamps while pushing; build to a tar and compare")
        env["SOURCE_DATE_EPOCH"] = base_mod.SOURCE_DATE_EPOCH
        output += ",rewrite-timestamp=true"
    dest = re.search(r"(?:^|,)dest=([^,]+)", output or "")
    if dest:  # buildx does not create the destination's folder
        try:
            Path(dest.group(1)).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KitError(f"cannot create the folder for {dest.group(1)} ({exc.strerror})",
                           "choose a writable dest= path") from None
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-") as tmp:
        metadata_file = str(Path(tmp) / "metadata.json")
        argv = build_argv(context, platforms=platforms, tags=list(tags), output=output, push=push,
                          build_contexts=base.build_context_args() if base else [], no_cache=no_cache,
                          provenance=provenance, builder=builder, metadata_file=metadata_file,
                          build_args=build_args)
        shown = commands.shell_line(argv, env)
        try:
            done = commands.run(argv, echo=echo, env=env or None, timeout=timeout)
        except CommandError as exc:
            raise _build_error(argv, exc, platforms) from None
        metadata = json.loads(Path(metadata_file).read_text()) if Path(metadata_file).exists() else {}
    objects, other = parse_rawjson(done.stderr)
    result = BuildResult(shown, argv, done.returncode, done.seconds, metadata.get("containerimage.digest"), metadata,
                         steps_table(objects), "\n".join(other))
    runlog.record("build", target=", ".join(tags) or (output or ""), platforms=",".join(platforms),
                  digest=result.digest or "", seconds=round(done.seconds, 2))
    return result


def _build_error(argv: list[str], exc: CommandError, platforms: list[str]) -> CommandError:
    from .emulation import missing_emulator_error
    from .engine import IMAGE_STORE_FIX

    objects, other = parse_rawjson(exc.stderr)
    text = "\n".join(other) or exc.stderr
    steps = steps_table(objects)
    # The container's own words ("exec /bin/sh: exec format error") are in the steps' base64 logs.
    said = "\n".join([text, *steps.log, *steps.error])
    if "exec format error" in said:
        # The failing step's name carries its platform: "[linux/arm64 2/2] RUN ...".
        failing = re.search(r"\[(\w+/[\w/.]+) \d+/\d+\]", text)
        platform = failing.group(1) if failing else platforms[0]
        err = missing_emulator_error(platform)
        return CommandError(argv, exc.returncode, text, fix=err.fix, reason=err.message)
    if "Docker exporter is not supported" in said or "docker exporter does not currently support" in said:
        return CommandError(argv, exc.returncode, text, fix=IMAGE_STORE_FIX,
                            reason="the engine's classic image store cannot export type=docker")
    return CommandError(argv, exc.returncode, text)
