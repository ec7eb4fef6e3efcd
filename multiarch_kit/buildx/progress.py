"""A build's progress as a value: BuildKit's ``--progress=rawjson`` steps, parsed once, and the lines of a plain
progress worth reading.

``--progress=rawjson`` makes buildx report every build step as JSON (start, end, cached, logs) instead of the
terminal display; :func:`parse_rawjson` merges those reports into one :class:`Step` per BuildKit vertex, each read
when it is made.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..core.errors import InvalidPlatform
from ..oci.platforms import Platform

if TYPE_CHECKING:  # pandas is imported by the tables that need it, so `lab up` never loads it
    import pandas as pd

# BuildKit names a step "[PLATFORM STAGE N/M] INSTRUCTION": every part in the brackets is optional.
_STEP_NAME = re.compile(r"^\[(?P<inside>[^\]]*)\] (?P<instruction>.*)$", re.S)


@dataclass
class Step:
    """One BuildKit vertex: a Dockerfile instruction or a piece of the build's own work.

    Its name (``[linux/arm64 build 2/4] RUN make``) is read once, when the step is made, into its platform,
    stage, position and instruction."""

    digest: str
    name: str
    started: datetime | None = None
    completed: datetime | None = None
    cached: bool = False
    error: str = ""
    log: str = ""
    platform: Platform | None = field(init=False, default=None)  # when BuildKit names it (multi-platform builds)
    stage: str = field(init=False, default="")  # ``build`` in ``FROM ... AS build``, or ``internal``, or empty
    position: str = field(init=False, default="")  # ``2/4``
    instruction: str = field(init=False, default="")  # the name without its bracket: ``RUN make -j2``

    def __post_init__(self) -> None:
        self.instruction = self.name
        m = _STEP_NAME.match(self.name)
        if not m:
            return
        words = m.group("inside").split()
        self.position = words.pop() if words and re.fullmatch(r"\d+/\d+", words[-1]) else ""
        if words and "/" in words[0]:
            try:
                self.platform = Platform.parse(words[0])
                words.pop(0)
            except InvalidPlatform:
                pass
        self.stage, self.instruction = " ".join(words), m.group("instruction")

    @property
    def seconds(self) -> float:
        if self.started is None or self.completed is None:
            return float("nan")
        return (self.completed - self.started).total_seconds()

    @property
    def is_run(self) -> bool:
        return self.instruction.startswith("RUN ")

    @classmethod
    def header(cls, line: str) -> Step | None:
        """A plain progress line's step header (``[linux/arm64 2/2] RUN ...``) as a step without times."""
        return cls("", line) if _STEP_NAME.match(line) else None


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
