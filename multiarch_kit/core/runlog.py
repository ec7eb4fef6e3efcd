"""A record of what the notebooks built and pushed, for the summary `make run` prints.

`multiarch-kit notebooks` starts each kernel with ``MULTIARCH_KIT_RUNLOG`` naming a file in the results directory
(:func:`multiarch_kit.core.settings.runlog_path`), and each build or push appends one JSON line there. Without the
variable (a reader in JupyterLab, the tests) nothing is written.
"""

from __future__ import annotations

import json
import time

from . import settings


def record(kind: str, **fields) -> None:
    """Append one event when a run log is active."""
    path = settings.runlog_path()
    if path is None:
        return
    line = json.dumps({"kind": kind, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields})
    with open(path, "a") as f:  # one short line per append: concurrent kernels do not interleave
        f.write(line + "\n")


def read(path) -> list[dict]:
    """The events recorded in ``path`` (none when it does not exist)."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
