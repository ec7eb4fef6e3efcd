"""docker buildx: builders, a build's progress as a value, its argument vector and the line to type by hand,
and the runner."""

from .argv import SOURCE_DATE_EPOCH, BuildOptions, ByHand, NamedContext, StandInImage, build_argv, by_hand, where_typed
from .builders import Builder, BuilderNode, inspect, ls, parse_inspect, prune_cache_mounts, version
from .progress import Progress, Step, parse_rawjson, teaching_lines
from .runner import BuildError, BuildResult, Job, attempt, build, build_all, built_digest, job, run_steps

__all__ = ["SOURCE_DATE_EPOCH", "BuildError", "BuildOptions", "BuildResult", "Builder", "BuilderNode", "ByHand", "Job",
           "NamedContext", "Progress", "StandInImage", "Step", "attempt", "build", "build_all", "build_argv",
           "built_digest", "by_hand", "inspect", "job", "ls", "parse_inspect", "parse_rawjson", "prune_cache_mounts",
           "run_steps", "teaching_lines", "version", "where_typed"]
