"""Files the kit keeps (results, plans, the lab's records): written whole or not at all.

A reader may press Ctrl-C, the disk may fill, two commands may write at once: a file the kit writes is
first written beside its place under a name of its own, flushed to disk, then renamed over the old one, so
whoever reads it sees the old contents or the new, never half of either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: two writers never share one
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    """``data`` as indented JSON with a final newline, written atomically."""
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())


def read_json(path: Path) -> dict | None:
    """A JSON object the kit wrote, or None when it is missing, unreadable or not an object (it is made again)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
