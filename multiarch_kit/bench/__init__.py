"""The bench: plans, results on disk, statistics, the host's fingerprint, plots, per-step profiles, the ways
compared, and the runner that measures a plan."""

from .runner import (  # the face: what callers use as bench.NAME
    Contexts, prepare_contexts, options, command, by_hand, command_lines, measure, run, resume,
)
