"""One ``lab up`` or ``lab down`` at a time per lab folder: a lock file in it, held while either works.

Two at once would both start a registry on one port, or one would stop what the other is starting; the second
one says it is waiting, then goes on when the first is done.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys

from ..core.errors import KitError
from .config import LabConfig


@contextlib.contextmanager
def exclusive(cfg: LabConfig):
    """One ``up`` or ``down`` at a time per lab folder; a second one waits for the first. Two at once would
    both start a registry on one port, or one would stop what the other is starting."""
    try:
        cfg.lab_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cfg.paths.lock, "a")
    except OSError as exc:
        raise KitError(f"cannot write the lab folder {cfg.lab_dir} ({exc.strerror})",
                       "set MULTIARCH_KIT_LAB to a folder you can write") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another 'lab up' or 'lab down' is at work on {cfg.lab_dir}: waiting for it", file=sys.stderr,
                  flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
