"""What a Mac reader's first run costs, read off the rehearsal as it runs: wall time, bytes that came into the
engine's namespace, and disk used, phase by phase (``make venv``, then the lessons under nbval).

Everything the reader and their engine download crosses the namespace's link, so the link's counters are the
download: bytes forwarded from outside (the NAT rule's counter: PyPI for the venv, the Debian mirror for the
workloads' apt steps) and bytes the machine itself sent in (Docker Hub's stand-in, which serves from this machine
as Docker Hub would from the internet). Both count IP packets, headers included, so they slightly exceed the
payload. Disk is ``du`` of what the run made: the engine's data, the venv, the reader's lab folder.

:func:`record` writes one JSON file; ``make bench`` prints it with :func:`describe`.
"""

from __future__ import annotations

import json
import os
import platform
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from .common import HOST_LINK, sh

RECORD = "desktop-cost.json"  # in the rehearsal's state folder; `--record` also writes it to results/desktop/


@dataclass(frozen=True)
class Counters:
    """The link's counters at one moment: bytes in from outside (forwarded), and all bytes the host's end sent."""

    forwarded: int
    sent: int

    @classmethod
    def read(cls) -> Counters:
        return cls(forwarded=_forwarded_bytes(), sent=int(Path(f"/sys/class/net/{HOST_LINK}/statistics/tx_bytes")
                                                             .read_text()))


def _forwarded_bytes() -> int:
    return forwarded_in(sh("iptables", "-t", "filter", "-S", "FORWARD", "-v", echo=False).stdout)


def forwarded_in(rules: str) -> int:
    """The byte counter of the FORWARD rule that lets answers from outside into the namespace (network.RULES),
    from ``iptables -S FORWARD -v`` (which prints each rule's ``-c PACKETS BYTES``)."""
    for line in rules.splitlines():
        words = line.split()
        if "-o" in words and words[words.index("-o") + 1] == HOST_LINK and "-c" in words:
            return int(words[words.index("-c") + 2])
    raise LookupError(f"no FORWARD rule for {HOST_LINK} in iptables -S FORWARD")


def disk(path: Path) -> int:
    """Bytes ``path`` uses on disk (``du -sb``; 0 when it does not exist)."""
    if not path.exists():
        return 0
    return int(sh("du", "-sb", path, echo=False).stdout.split()[0])


@dataclass
class Phase:
    """One phase of the reader's run: its wall time and the bytes that came in while it ran."""

    name: str
    seconds: float
    from_outside: int  # PyPI, the Debian mirror: forwarded through the NAT
    from_hub: int  # Docker Hub's stand-in on this machine (all bytes sent in, less the forwarded ones)


class Meter:
    """Times a phase and reads the link's counters around it."""

    def __init__(self) -> None:
        self.phases: list[Phase] = []

    def run(self, name: str, fn):
        before, start = Counters.read(), time.monotonic()
        try:
            return fn()
        finally:
            after = Counters.read()
            forwarded = after.forwarded - before.forwarded
            self.phases.append(Phase(name, round(time.monotonic() - start, 1), forwarded,
                                     max(0, after.sent - before.sent - forwarded)))


def notebook_seconds(junit: Path) -> dict[str, float]:
    """Seconds per notebook from pytest's JUnit XML: setup, call and teardown of each cell, summed. nbval's test
    ids are ``notebooks/<name>.ipynb::Cell <n>``, which JUnit turns into the class name ``notebooks.<name>.ipynb``."""
    if not junit.exists():
        return {}
    seconds: dict[str, float] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname = case.get("classname", "")
        if classname.endswith(".ipynb"):
            name = classname.removesuffix(".ipynb").rsplit(".", 1)[-1]
            seconds[name] = seconds.get(name, 0.0) + float(case.get("time", 0))
    return {name: round(total, 1) for name, total in seconds.items()}


@dataclass
class Cost:
    """The record :func:`record` writes."""

    measured: str  # UTC date and time
    machine: str  # what ran it: this is Linux dressed as Docker Desktop, not a Mac
    engine: str
    cold: bool  # the engine's data, the venv and pip's cache were empty at the start
    phases: list[Phase]
    notebooks: dict[str, float]
    disk: dict[str, int]
    passed: bool


def record(cost: Cost, *paths: Path) -> None:
    text = json.dumps(asdict(cost), indent=1) + "\n"
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()} (the Docker Desktop rehearsal)"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def describe(data: dict) -> list[str]:
    """The record as ``make bench`` prints it: one line per phase, the total, the disk, the slowest lessons."""
    phases = data["phases"]
    state = "cold" if data["cold"] else "NOT cold (engine data, venv or pip cache kept)"
    verdict = "passed" if data["passed"] else "FAILED"
    lines = [f"measured {data['measured']} on {data['machine']}; engine {data['engine']}; {state}; {verdict}"]
    for p in phases:
        lines.append(f"  {p['name']:<28} {_minutes(p['seconds']):>12}   downloaded {_mb(p['from_outside'])} "
                     f"from outside + {_mb(p['from_hub'])} from Docker Hub's stand-in")
    total_s = sum(p["seconds"] for p in phases)
    total_b = sum(p["from_outside"] + p["from_hub"] for p in phases)
    lines.append(f"  {'total':<28} {_minutes(total_s):>12}   downloaded {_mb(total_b)}")
    used = ", ".join(f"{k} {_mb(v)}" for k, v in data["disk"].items())
    lines.append(f"  disk: {used} (total {_mb(sum(data['disk'].values()))})")
    slow = sorted(data["notebooks"].items(), key=lambda kv: -kv[1])[:4]
    if slow:
        lines.append("  slowest lessons: " + ", ".join(f"{k} {v:.0f} s" for k, v in slow))
    return lines
