"""The kit's error types.

Every failure the reader can cause or meet (engine down, port taken, bad reference...) is raised as a
:class:`KitError` whose message is one line: what went wrong, then what to do. The CLI prints that line
and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

import shlex


class KitError(Exception):
    """A failure with a one-line explanation and, where there is one, the fix."""

    def __init__(self, message: str, fix: str | None = None):
        # One line, always: text quoted from elsewhere (a library's exception, a tool's output) may span several.
        self.message = " ".join(str(message).split())
        self.fix = " ".join(str(fix).split()) if fix else fix
        message, fix = self.message, self.fix
        super().__init__(f"{message}: {fix}" if fix else message)


class InvalidPlatform(KitError, ValueError):
    """A platform string containerd would reject. A ValueError too, as containerd's Parse contract says."""

    def __init__(self, message: str):
        super().__init__(f"invalid platform {message}", "write it as os/arch[/variant], e.g. linux/arm64")


class CommandError(KitError):
    """A command line the kit ran exited non-zero.

    Carries the exact argument vector, the exit code and the captured standard error, so a notebook
    reader can rerun the command by hand.
    """

    def __init__(self, argv: list[str], returncode: int, stderr: str, fix: str | None = None,
                 reason: str | None = None):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.job = None  # the name of the command among several run together (commands.run_all), when it was
        last = _last_line(stderr)
        # ``reason`` replaces the generic "exited with N" when the kit knows what went wrong.
        message = reason or (f"`{shlex.join(self.argv)}` exited with {returncode}" + (f" ({last})" if last else ""))
        super().__init__(message, fix)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
