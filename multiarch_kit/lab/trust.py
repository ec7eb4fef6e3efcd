"""Engines that reach the lab registry over plain HTTP when the reader names it (``MULTIARCH_KIT_REGISTRY``).

Every engine speaks plain HTTP to ``localhost``; to any other name it speaks HTTPS, unless its ``daemon.json``
lists the registry under ``insecure-registries``. Without that line a push to ``192.168.1.20:5000/app`` fails
with ``http: server gave HTTP response to HTTPS client``. dockerd rereads the list on ``SIGHUP``, so adding
it needs no restart and stops no container.

The lab adds the line to the engines it runs itself (the one it provisioned, its extra engines, the arm64 VM's)
and says so; any other engine (Docker Desktop, another machine's) gets a one-line error with the JSON to add.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import engine
from ..core import commands, files
from ..core.errors import KitError
from ..engine.daemon import Kind
from . import armvm, extra_engines
from .config import LabConfig

LAB_DAEMON_JSON = "/etc/docker/daemon.json"  # where the provisioning script configures the engine


def with_registry(config: dict, host: str) -> dict | None:
    """``config`` (a daemon.json's object) with ``host`` added to ``insecure-registries``; None when it is there."""
    listed = config.get("insecure-registries")
    listed = list(listed) if isinstance(listed, list) else []
    if host in listed:
        return None
    return {**config, "insecure-registries": [*listed, host]}


def fix_line(host: str) -> str:
    """What a reader adds, and where, for an engine the lab does not run."""
    entry = json.dumps({"insecure-registries": [host]})
    return (f"add {entry} to the engine's daemon.json (Docker Desktop: Settings > Docker Engine, then Apply & "
            f"restart; Linux: /etc/docker/daemon.json, then restart dockerd)")


def ensure_each(cfg: LabConfig, here: engine.Engine, nodes: list[extra_engines.Node], *, vm: bool) -> list[str]:
    """:func:`ensure` for every engine of the lab: this one, its extra engines, the arm64 VM's (when it is up and
    not ``here`` already); returns what changed."""
    if not cfg.named:
        return []
    engines = [here] + [engine.connect(cfg.env, n.name) for n in nodes]
    if vm and not here.is_arm64_vm:
        engines.append(engine.connect(cfg.env, armvm.CONTEXT))
    return [said for said in (ensure(cfg, e) for e in engines) if said]


def ensure_context(cfg: LabConfig, context: str, *, echo: bool = True) -> str | None:
    """:func:`ensure` for the engine of a Docker context (a lab engine a notebook has just started); nothing is
    asked of it when the registry is not named."""
    return ensure(cfg, engine.connect(cfg.env, context), echo=echo) if cfg.named else None


def ensure(cfg: LabConfig, eng: engine.Engine, *, echo: bool = True) -> str | None:
    """Make ``eng`` trust the lab registry's name when the reader named it; returns what changed (None: nothing).
    A one-line error for an engine the lab does not run, and for one that still does not trust it after a reload."""
    host = cfg.registry_host
    if not cfg.named or eng.trusts(host):
        return None
    where = _daemon_of(cfg, eng)
    if where is None:
        raise KitError(f"the engine {eng.name} does not trust the plain-HTTP registry {host}", fix_line(host))
    where(host, echo)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the reload is asynchronous: docker info shows it a moment later
        if engine.connect(where=eng.where).trusts(host):
            return f"told the engine {eng.name} to trust {host} (insecure-registries, reloaded)"
        time.sleep(0.3)
    raise KitError(f"the engine {eng.name} was told to trust {host} but docker info does not list it",
                   f"see its log; or {fix_line(host)}")


def _daemon_of(cfg: LabConfig, eng: engine.Engine):
    """How to add a registry to ``eng``'s daemon.json and reload it, for an engine the lab runs; else None."""
    if eng.kind is Kind.ARM64_VM:
        return _in_vm
    if eng.kind is Kind.LAB_NODE:
        node = next((n for n in extra_engines.known(cfg.lab_dir) if n.name == eng.context and n.pid), None)
        return (lambda host, echo: _in_file(node.folder / "daemon.json", node.pid, host, echo)) if node else None
    pid_file = cfg.paths.run / "dockerd.pid"  # the provisioning script's record of the dockerd it started
    pid = pid_file.read_text().strip() if pid_file.exists() else ""
    if eng.kind is Kind.LOCAL and pid.isdigit() and commands.alive(int(pid)) and eng.where.uses_default_socket:
        return lambda host, echo: _in_file(Path(LAB_DAEMON_JSON), int(pid), host, echo)
    return None


def _in_file(path: Path, pid: int, host: str, echo: bool) -> None:
    changed = with_registry(files.read_json(path) or {}, host)
    if changed is not None:
        files.write_json(path, changed)
    commands.run(commands.Command("kill", "-HUP", pid), echo=echo, timeout=10)


def _in_vm(host: str, echo: bool) -> None:
    # The VM has no Python: its daemon.json is read here, merged, and written back through ssh's stdin.
    path = "/etc/docker/daemon.json"
    shown = commands.run(commands.Command("ssh", armvm.CONTEXT, "cat", path), echo=echo, check=False, timeout=60)
    config = json.loads(shown.stdout) if shown.returncode == 0 and shown.stdout.strip() else {}
    changed = with_registry(config, host)
    if changed is not None:
        commands.run(commands.Command("ssh", armvm.CONTEXT, f"cat > {path}.new && mv {path}.new {path}"),
                     input=json.dumps(changed, indent=2) + "\n", echo=echo, timeout=60)
    commands.run(commands.Command("ssh", armvm.CONTEXT, "kill -HUP $(cat /run/docker.pid)"), echo=echo, timeout=60)
