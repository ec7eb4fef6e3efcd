"""The one place that builds and runs command lines.

Notebooks teach the Docker CLI, so every command the kit runs for the reader is first printed as the
exact shell line (``$ docker buildx build ...``) that would do the same by hand. Commands are always
argument vectors, never shell strings: an image name holding ``; rm -rf /`` reaches docker as one
argument. A non-zero exit raises :class:`~multiarch_kit.errors.CommandError`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass

from .errors import CommandError, KitError


@dataclass
class Completed:
    """What a finished command left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def line(self) -> str:
        return shell_line(self.argv)


def shell_line(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The argument vector as a line one could paste into a POSIX shell.

    Extra environment variables the kit sets for this command are shown in front (``VAR=value cmd``).
    """
    prefix = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
    return " ".join(prefix + [shlex.quote(a) for a in argv])


def run(
    argv: list[str],
    *,
    echo: bool = True,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
) -> Completed:
    """Run ``argv``, print it first when ``echo`` is set, and return its outputs.

    ``env`` holds only the variables added for this command (they are shown in the echoed line).
    Raises :class:`CommandError` on a non-zero exit when ``check`` is set, and :class:`KitError` when
    the program is not installed or the command runs past ``timeout`` seconds.
    """
    argv = [str(a) for a in argv]
    if echo:
        print("$ " + shell_line(argv, env), file=sys.stdout, flush=True)
    full_env = {**os.environ, **env} if env else None
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=full_env, input=input, timeout=timeout, cwd=cwd
        )
    except FileNotFoundError:
        raise KitError(f"'{argv[0]}' is not installed or not on PATH", _install_hint(argv[0])) from None
    except subprocess.TimeoutExpired:
        raise KitError(
            f"`{shell_line(argv)}` did not finish within {timeout:g} s", "check that the engine is responsive"
        ) from None
    done = Completed(argv, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)
    return done


def start(argv: list[str], *, log: str | os.PathLike, echo: bool = True) -> subprocess.Popen:
    """Start ``argv`` in the background, detached from this process, its output appended to ``log``.

    Shown as ``$ ... &``, the way one would start it by hand. For services the kit keeps running
    (the lab registry); everything else goes through :func:`run`.
    """
    argv = [str(a) for a in argv]
    if echo:
        print("$ " + shell_line(argv) + " &", flush=True)
    try:
        with open(log, "ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
    except FileNotFoundError:
        raise KitError(f"'{argv[0]}' is not installed or not on PATH", _install_hint(argv[0])) from None


def _install_hint(program: str) -> str:
    hints = {
        "docker": "install Docker Desktop (macOS) or run 'sudo scripts/provision-debian.sh' (Debian)",
        "skopeo": "install skopeo (Debian: apt-get install skopeo; macOS: brew install skopeo)",
        "docker-registry": "install Debian's docker-registry package, or let the lab run the registry:2 container",
    }
    return hints.get(program, f"install {program}")
