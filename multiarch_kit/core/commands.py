"""The one place that builds and runs command lines.

Notebooks teach the Docker CLI, so every command the kit runs for the reader is first printed as the
exact shell line (``$ docker buildx build ...``) that does the same by hand, and the argument vector that
runs is the one that was printed. Where that exact line carries the kit's own wiring (a build's metadata
file, its lab paths), a comment under it gives the line to type on one's own machine (:func:`show`).
Commands are argument vectors, never shell strings: an image name holding ``; rm -rf /`` reaches docker as
one argument. A non-zero exit raises
:class:`~multiarch_kit.errors.CommandError` with the command, its exit code and its standard error.

Argument vectors are built with :class:`Command`, in the style of python-on-whales: a flag whose value is
``None`` or ``False`` is left out, ``True`` writes the bare flag, a list repeats it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from . import settings
from .errors import CommandError, KitError


class Command(list):
    """An argument vector, built flag by flag (``Command("docker", "run").flag("--rm", True)``)."""

    def __init__(self, *args: object):
        super().__init__(str(a) for a in args)

    def add(self, *args: object) -> Command:
        """Positional arguments, as they are."""
        self.extend(str(a) for a in args)
        return self

    def flag(self, name: str, value: object = True) -> Command:
        """``name value`` (or ``name`` alone for ``True``); nothing for ``None``/``False``; a list repeats it."""
        if value is None or value is False:
            return self
        if value is True:
            self.append(name)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self.flag(name, item)
        else:
            self.extend([name, str(value)])
        return self

    def option(self, name: str, value: object) -> Command:
        """``name=value`` in one argument (``--progress=rawjson``); nothing for ``None``; bools as true/false;
        a list repeats it."""
        if value is None:
            return self
        if isinstance(value, (list, tuple)):
            for item in value:
                self.option(name, item)
            return self
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.append(f"{name}={value}")
        return self


def docker(*args: object, context: str | None = None) -> Command:
    """``docker [--context NAME] ARGS...``: every docker command line the kit runs starts here."""
    return Command("docker").flag("--context", context).add(*args)


@dataclass
class Completed:
    """What a finished command left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def shell_line(argv: Iterable[str], env: dict[str, str] | None = None) -> str:
    """The argument vector as a line one could paste into a POSIX shell.

    Extra environment variables the kit sets for this command are shown in front (``VAR=value cmd``).
    """
    prefix = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
    return " ".join(prefix + [shlex.quote(str(a)) for a in argv])


def show(argv: Iterable[str], env: dict[str, str] | None = None, *, note: str | None = None,
         background: bool = False) -> None:
    """Print a command as one would type it (``$ ...``; `` &`` when it runs in the background), and ``note``
    under it as a shell comment (``# ...``): a build's line to type on one's own machine, say."""
    print("$ " + shell_line(argv, env) + (" &" if background else ""), flush=True)
    if note:
        print("# " + note, flush=True)


def run(
    argv: list[str],
    *,
    echo: bool = True,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
    on_line: Callable[[str], None] | None = None,
    note: str | None = None,
    said: bool = False,
) -> Completed:
    """Run ``argv``, print it first when ``echo`` is set (with ``note`` under it, see :func:`show`), and return
    its outputs. With ``said`` (and ``echo``), what the command printed on standard output is printed under it
    too, as a terminal would show it: for short commands whose answer the caller does not print itself.

    ``env`` holds only the variables added for this command (they are shown in the echoed line).
    ``on_line`` receives each line of standard output and standard error as it arrives (progress on long
    commands); both are still captured whole. Raises :class:`CommandError` on a non-zero exit when ``check``
    is set, and :class:`KitError` when the program is not installed or runs past ``timeout`` seconds.
    """
    argv = [str(a) for a in argv]
    if echo:
        show(argv, env, note=note)
    full_env = settings.child_env(env)
    start = time.perf_counter()
    try:
        if on_line is None:
            proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, input=input, timeout=timeout,
                                  cwd=cwd)
            stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
        else:
            stdout, stderr, code = _run_streaming(argv, full_env, input, timeout, cwd, on_line)
    except FileNotFoundError:
        raise KitError(f"'{argv[0]}' is not installed or not on PATH", _install_hint(argv[0])) from None
    except subprocess.TimeoutExpired:
        raise KitError(f"`{shell_line(argv)}` did not finish within {timeout:g} s",
                       "check that the engine is responsive") from None
    done = Completed(argv, code, stdout, stderr, time.perf_counter() - start)
    if echo and said and stdout.strip():
        print(stdout.rstrip(), flush=True)
    if check and code != 0:
        raise CommandError(argv, code, stderr)
    return done


def _run_streaming(argv, env, input, timeout, cwd, on_line) -> tuple[str, str, int]:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    out: list[str] = []
    err: list[str] = []

    def pump_out():
        for line in proc.stdout:
            out.append(line)
            on_line(line.rstrip("\n"))

    reader = threading.Thread(target=pump_out, daemon=True)
    reader.start()
    if input is not None:
        proc.stdin.write(input)
        proc.stdin.close()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for line in proc.stderr:
            err.append(line)
            on_line(line.rstrip("\n"))
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(argv, timeout)
        proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    except BaseException:
        # Ctrl-C or a timeout: the child must not outlive the kit's command.
        proc.kill()
        proc.wait()
        raise
    reader.join()
    return "".join(out), "".join(err), proc.returncode


# What names each command run together: a label, a Platform... (any value that can key a dict).
Name = TypeVar("Name", bound=Hashable)


class _Together:
    """The state of commands run side by side: their processes, results and failures, guarded by one lock."""

    def __init__(self, env: dict[str, str] | None, on_line, on_done, on_completed):
        self.env, self.on_line, self.on_done, self.on_completed = env, on_line, on_done, on_completed
        self.results: dict = {}
        self.errors: dict = {}
        self.procs: dict = {}
        self.stopping = False  # set by kill_the_rest: a command that starts after it is killed at once
        self.lock = threading.Lock()

    def one(self, name, argv: list[str]) -> None:
        """Run one command to its end, passing its lines on; record what it did under ``name``."""
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, env=self.env)
        except FileNotFoundError:
            self.errors[name] = KitError(f"'{argv[0]}' is not installed or not on PATH", _install_hint(argv[0]))
            return
        with self.lock:
            self.procs[name] = proc
            if self.stopping:  # its thread was still starting it when the others were stopped (Ctrl-C, a failure)
                proc.kill()
        out = []
        for line in proc.stdout:
            out.append(line)
            if self.on_line:
                self.on_line(name, line.rstrip("\n"))
        proc.wait()
        done = Completed(argv, proc.returncode, "".join(out), "".join(out), time.perf_counter() - started)
        self.results[name] = done
        if proc.returncode != 0:
            error = CommandError(argv, proc.returncode, done.stderr)
            error.job = name  # which of the commands run together it was
            self.errors[name] = error
            return
        if self.on_done:
            self.on_done(name)
        if self.on_completed:
            self.on_completed(name, done)

    def kill_the_rest(self) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.kill()


def run_all(argvs: dict[Name, list[str]], *, echo: bool = True, env: dict[str, str] | None = None,
            timeout: float | None = None, on_line: Callable[[Name, str], None] | None = None,
            on_done: Callable[[Name], None] | None = None,
            on_completed: Callable[[Name, Completed], None] | None = None,
            stop_on_failure: bool = True, notes: dict[Name, str] | None = None) -> dict[Name, Completed]:
    """Run several commands at once (``name -> argv``), each printed first (with its note from ``notes`` under it,
    see :func:`show`); returns ``name -> Completed``.

    ``on_line(name, line)`` receives every output line as it arrives; ``on_done(name)`` and
    ``on_completed(name, completed)`` each command that succeeded, as soon as it has. When one fails the others
    are stopped too (or, with ``stop_on_failure=False``, left to finish), and the first failure is raised (a
    :class:`CommandError` naming its command, its ``job`` the name it was given); Ctrl-C always stops them all.
    """
    together = _Together(settings.child_env(env), on_line, on_done, on_completed)
    argvs = {name: [str(a) for a in argv] for name, argv in argvs.items()}
    if echo:  # as one would type it: each in the background, then wait for all
        for name, argv in argvs.items():
            show(argv, env, note=(notes or {}).get(name), background=True)
        print("$ wait", flush=True)
    threads = [threading.Thread(target=together.one, args=(n, a), daemon=True) for n, a in argvs.items()]
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for t in threads:  # inside the try: a Ctrl-C while the last ones start still stops the first ones
            t.start()
        while any(t.is_alive() for t in threads):
            if (together.errors and stop_on_failure) or (deadline is not None and time.monotonic() > deadline):
                break
            time.sleep(0.2)
    finally:
        together.kill_the_rest()  # whatever ended the wait (a failure, the deadline, Ctrl-C): nothing keeps running
        for t in threads:
            if t.ident is not None:  # started (a Ctrl-C may have come before the rest were)
                t.join(timeout=30)
    if together.errors:
        raise next(iter(together.errors.values()))
    if deadline is not None and len(together.results) < len(argvs):
        late = ", ".join(sorted(map(str, set(argvs) - set(together.results))))
        raise KitError(f"{late} did not finish within {timeout:g} s",
                       "check the machine's load and network, then run it again")
    return together.results


def start(argv: list[str], *, log: str | os.PathLike, echo: bool = True,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``argv`` in the background, detached from this process, its output appended to ``log``.

    Shown as ``$ ... &``, the way one would start it by hand (with ``env``'s variables in front). For services
    the lab keeps running (the registry and its guard, extra engines); everything else goes through :func:`run`.
    """
    argv = [str(a) for a in argv]
    if echo:
        show(argv, env, background=True)
    try:
        with open(log, "ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=settings.child_env(env))
    except FileNotFoundError:
        raise KitError(f"'{argv[0]}' is not installed or not on PATH", _install_hint(argv[0])) from None


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a child of this process that has exited is reaped, not counted)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def runs(pid: int | None, program: str | None = None) -> bool:
    """The one answer to "is this recorded process still ours?": ``pid`` runs and, with ``program``, its command
    line names that program (after a reboot a recorded pid may be another program's)."""
    if pid is None or not alive(pid):
        return False
    if program is None:
        return True
    try:
        return program.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile, or no /proc (macOS: the lab's services are Linux's)
        return False


def stop(pid: int, *, what: str = "", echo: bool = True, seconds: float = 30) -> bool:
    """Stop a background service that :func:`start` began: SIGTERM, then SIGKILL after ``seconds``.

    Shown as ``$ kill PID``, which does the same by hand. Returns whether it was running.
    """
    if not alive(pid):
        return False
    if echo:
        print(f"$ kill {pid}" + (f"  # {what}" if what else ""), flush=True)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # SIGKILL cannot be refused, but the exit takes a moment
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
    return True


def _install_hint(program: str) -> str:
    hints = {
        "docker": "install Docker Desktop (macOS) or run 'sudo multiarch-kit lab up' (Debian: it provisions the engine)",
        "skopeo": "install skopeo (Debian: apt-get install skopeo; macOS: brew install skopeo)",
        "docker-registry": "install Debian's docker-registry package, or let the lab run the registry:2 container",
        "mmdebstrap": "install it (Debian: apt-get install mmdebstrap arch-test), or run 'multiarch-kit lab up'",
    }
    return hints.get(program, f"install {program}")
