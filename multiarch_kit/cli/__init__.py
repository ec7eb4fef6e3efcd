"""The ``multiarch-kit`` command line.

Text from the command line is parsed here, once (platforms, lists, sizes); the package receives values.
Every :class:`~multiarch_kit.errors.KitError`, and every usage mistake, ends the program with one line on
stderr (what went wrong, then what to do) and exit code 2; a failed doctor check exits 1.
Modules with heavy imports (pandas, matplotlib) are imported inside the commands that need them, so
``multiarch-kit lab up`` starts fast.
"""

from __future__ import annotations

import sys

from ..core.errors import KitError
from .parser import build_parser

__all__ = ["build_parser", "main"]


def _plain_http_lab_registry() -> None:
    """A lab registry the reader named (MULTIARCH_KIT_REGISTRY) is read over plain HTTP by every command, as the
    engines are told to (``inspect`` of it, too, which asks the lab nothing else)."""
    from ..lab.config import LabConfig
    from ..oci import registry

    cfg = LabConfig.from_env()
    if cfg.named:
        registry.use_plain_http(cfg.registry_host)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _plain_http_lab_registry()
        return args.func(args)
    except KitError as exc:
        print(f"multiarch-kit: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader's pager or head closed the pipe: nothing to say, as for cat
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("multiarch-kit: interrupted: nothing measured so far is lost; run the command again to go on",
              file=sys.stderr)
        return 130
