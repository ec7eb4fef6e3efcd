"""The reader: not root, did not start the engine and cannot provision one (``dockerd``, ``containerd``,
``docker-registry``, ``skopeo``, ``mmdebstrap`` and the QEMU binaries are not on its PATH), working in a copy of the
checkout with a Mac reader's environment."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from multiarch_kit.core import commands
from multiarch_kit.lab.newest import NewestDocker

from .common import ENGINE_TCP, USER, in_ns, sh

HIDDEN = ("dockerd", "docker-proxy", "docker-init", "containerd", "containerd-shim-runc-v2", "ctr", "runc",
          "docker-registry", "skopeo", "mmdebstrap", "arch-test")  # and every qemu-*


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        sh("useradd", "--create-home", "--shell", "/bin/bash", USER)
        return pwd.getpwnam(USER)


def path_without_engine_tools(folder: Path, docker: Path) -> str:
    """A PATH of links to this machine's programs, minus what Docker Desktop does not put on a Mac's PATH, with
    ``docker`` the newest CLI (Desktop puts its own CLI on the PATH, of the engine's generation)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "docker").symlink_to(docker)
    for src in ("/usr/local/bin", "/usr/bin", "/bin"):
        for program in sorted(Path(src).iterdir()):
            name = program.name
            if name in HIDDEN or name.startswith("qemu-") or (folder / name).exists() or (folder / name).is_symlink():
                continue
            if os.access(program, os.X_OK) and not program.is_dir():
                (folder / name).symlink_to(program)
    return str(folder)


def newest_cli(newest: NewestDocker, user: pwd.struct_passwd, folder: Path) -> Path:
    """The newest root's ``docker`` CLI and buildx plugin, copied where the reader can run them (the lab folder is
    root's); the plugin goes into the reader's ``~/.docker/cli-plugins``, which the CLI searches before the
    machine's plugin folders. Returns the CLI's path."""
    folder.mkdir(parents=True, exist_ok=True)
    cli = folder / "docker"
    shutil.copy2(newest.cli, cli)
    plugins = Path(user.pw_dir) / ".docker" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copy2(newest.buildx, plugins / "docker-buildx")
    sh("chown", "-R", f"{user.pw_uid}:{user.pw_gid}", Path(user.pw_dir) / ".docker", echo=False)
    return cli


def copy_checkout(user: pwd.struct_passwd, repo: Path) -> Path:
    """The checkout's files (as they are now, committed or not) in the user's home, owned by the user."""
    dest = Path(user.pw_dir) / "multiarch-kit"
    files_ = sh("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                echo=False).stdout.split("\0")
    keep = dest / ".venv"
    for item in dest.iterdir() if dest.exists() else []:
        if item != keep:
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    dest.mkdir(exist_ok=True)
    for name in filter(None, files_):
        src = repo / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    sh("chown", "-R", f"{user.pw_uid}:{user.pw_gid}", dest, echo=False)
    # Each rehearsal is the reader's first contact: no lab folder yet, so no port recorded from an earlier run.
    shutil.rmtree(Path(user.pw_dir) / ".local" / "state" / "multiarch-kit", ignore_errors=True)
    return dest


def as_reader(user: pwd.struct_passwd, kit: Path, path: str, *argv: str, timeout: int) -> int:
    """Run ``argv`` in the copy, as the user, inside the namespace, with a Mac reader's environment."""
    env = {"HOME": user.pw_dir, "USER": user.pw_name, "PATH": f"{kit / '.venv' / 'bin'}:{path}",
           "DOCKER_HOST": ENGINE_TCP, "MULTIARCH_KIT_BASE": "docker-hub", "CI": "true",
           "MULTIARCH_KIT_REHEARSAL": "desktop", "LANG": "C.UTF-8"}
    argv_ = in_ns("runuser", "-u", user.pw_name, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
                  "sh", "-c", f"cd {kit} && exec \"$@\"", "sh", *argv)
    return commands.run(argv_, check=False, timeout=timeout, on_line=lambda line: print(line, flush=True)).returncode
