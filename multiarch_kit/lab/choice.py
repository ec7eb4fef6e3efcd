"""Stand-in or Docker Hub: which images the lab's builds start from, as ``lab up`` decided it and recorded it.

``MULTIARCH_KIT_BASE`` decides when set; otherwise ``lab up`` probes Docker Hub once and records the answer in the
lab folder (again with ``lab up --check``). Reading the lab only looks at that record: it probes nothing and
writes nothing.
"""

from __future__ import annotations

import time

from ..core import files
from ..oci import registry
from . import base
from .config import LabConfig
from .standins import Base


def want_standin(cfg: LabConfig) -> bool:
    """Stand-in or Docker Hub, as the lab last decided: the setting, else the answer ``lab up`` recorded. Before
    any ``lab up`` (nothing recorded), the stand-in when the lab registry holds it. Reading probes and writes
    nothing."""
    if cfg.base != "auto":
        return cfg.base == "stand-in"
    recorded = files.read_json(cfg.base_choice_file)
    if recorded is None:
        return base.STANDIN.pushed(cfg).digest is not None
    return not recorded.get("hub_reachable")


def _decide(cfg: LabConfig, probe: bool) -> bool:
    """What ``lab up`` decides: the setting, else one probe of Docker Hub, recorded (again with ``probe``)."""
    if cfg.base != "auto":
        return cfg.base == "stand-in"
    recorded = files.read_json(cfg.base_choice_file)
    if recorded is None or probe:
        recorded = {"hub_reachable": registry.hub_reachable(), "probed": time.strftime("%Y-%m-%dT%H:%M:%S")}
        files.write_json(cfg.base_choice_file, recorded)
    return not recorded.get("hub_reachable")


def base_image(cfg: LabConfig) -> Base:
    """The base in use, without building anything (the stand-in's digest is None until pushed)."""
    return base.STANDIN.pushed(cfg) if want_standin(cfg) else base.STANDIN.hub()


def ensure_base(cfg: LabConfig, actions: list[str], probe: bool) -> Base:
    if not _decide(cfg, probe):
        return base.STANDIN.hub()
    found, made = base.ensure(cfg)
    if made:
        actions.append("built and pushed the stand-in base image")
    return found
