"""multiarch-kit: learn and measure multi-platform Docker images.

The package backs the numbered notebooks in ``notebooks/``: :mod:`multiarch_kit.lab` brings up the
build lab (engine, emulation, registry, base image), :mod:`multiarch_kit.doctor` checks it.
"""

from .core.errors import CommandError, KitError

__version__ = "0.1.0"
__all__ = ["CommandError", "KitError", "__version__"]
